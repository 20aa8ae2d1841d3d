//===- ExpertRuns.cpp - Rows of a grouped GEMM, expert by expert ----------===//

#include "runtime/ExpertRuns.h"

using namespace moert;

bool moert::expertRuns(const int32_t *offsets, int64_t experts,
                       int64_t localExperts, int64_t firstExpert, int64_t rows,
                       std::vector<ExpertRun> &runs, bool &covered,
                       std::string &error) {
  runs.clear();
  if (offsets[0] != 0 || offsets[experts] != rows) {
    error = "the expert offsets run from " + std::to_string(offsets[0]) +
            " to " + std::to_string(offsets[experts]) + ", not from 0 to " +
            std::to_string(rows) + " (the routed rows)";
    return false;
  }
  int64_t held = 0;
  for (int64_t e = 0; e < experts; ++e) {
    int64_t begin = offsets[e], end = offsets[e + 1];
    if (end < begin) {
      error = "the expert offsets fall at expert " + std::to_string(e) +
              " (" + std::to_string(begin) + " then " + std::to_string(end) +
              ")";
      return false;
    }
    int64_t local = e - firstExpert;
    if (end == begin || local < 0 || local >= localExperts)
      continue;
    runs.push_back({begin, end - begin, local});
    held += end - begin;
  }
  covered = held == rows;
  return true;
}

bool moert::expertRuns(const ExecutionInfo &plan, const StepInfo &step,
                       const std::vector<std::vector<int64_t>> &sizes,
                       int64_t rankInStage, const int32_t *offsets,
                       std::vector<ExpertRun> &runs, bool &covered,
                       std::string &error) {
  int64_t local = sizes[step.b][0];
  int64_t group =
      step.group >= 0 ? rankInStage / plan.buffers[step.group].divisor : 0;
  return expertRuns(offsets, sizes[step.offsets][0] - 1, local, group * local,
                    sizes[step.a][0], runs, covered, error);
}
