//===- TrafficReport.cpp - Bytes the ranks sent per decode step -----------===//

#include "tools/moe-run/TrafficReport.h"

#include <cstdio>

using namespace moert;

std::string moert::decodeTrafficText(const PlanInfo &plan,
                                     const std::vector<DecodeTraffic> &ranks,
                                     const std::string &prefix) {
  if (ranks.size() < 2)
    return "";
  std::vector<StageTraffic> stages = trafficByStage(plan, ranks);
  if (stages.empty())
    return prefix + "bytes sent per decode step: no decode step ran\n";
  char line[160];
  std::snprintf(line, sizeof line,
                "bytes sent per decode step (mean of %lld), the most by one "
                "rank of each stage:\n",
                static_cast<long long>(ranks[0].steps));
  std::string text = prefix + line;
  double total = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    std::snprintf(line, sizeof line,
                  "  stage %zu: %.0f within the stage, %.0f to the next "
                  "stage\n",
                  s, stages[s].withinStage, stages[s].toNextStage);
    text += line;
    total += stages[s].total;
  }
  std::snprintf(line, sizeof line, "  all %zu ranks: %.0f\n", ranks.size(),
                total);
  return text + line;
}

bool moert::printDecodeTraffic(ModelRunner &runner, const PlanInfo &plan,
                               const std::string &prefix, std::string &error) {
  std::vector<DecodeTraffic> ranks;
  if (!runner.decodeTraffic(ranks, error))
    return false;
  std::fputs(decodeTrafficText(plan, ranks, prefix).c_str(), stderr);
  std::fflush(stderr);
  return true;
}
