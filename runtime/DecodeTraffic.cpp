//===- DecodeTraffic.cpp - Bytes the ranks send per decode step -----------===//

#include "runtime/DecodeTraffic.h"

#include <algorithm>

using namespace moert;

std::vector<StageTraffic>
moert::trafficByStage(const PlanInfo &plan,
                      const std::vector<DecodeTraffic> &ranks) {
  const int64_t width = plan.tensorParallel;
  if (width < 1 || plan.pipelineStages < 1 ||
      static_cast<int64_t>(ranks.size()) != plan.pipelineStages * width ||
      ranks[0].steps == 0)
    return {};
  std::vector<StageTraffic> stages(static_cast<size_t>(plan.pipelineStages));
  for (int64_t rank = 0; rank < static_cast<int64_t>(ranks.size()); ++rank) {
    const DecodeTraffic &count = ranks[rank];
    // Every rank runs every step; a rank that counted none sent nothing.
    const double steps = static_cast<double>(std::max<int64_t>(count.steps, 1));
    StageTraffic &stage = stages[rank / width];
    stage.withinStage = std::max(stage.withinStage, count.withinStage / steps);
    stage.toNextStage = std::max(stage.toNextStage, count.toNextStage / steps);
    stage.total += (count.withinStage + count.toNextStage) / steps;
  }
  return stages;
}
