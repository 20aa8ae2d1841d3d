//===- DecodeTraffic.h - Bytes the ranks send per decode step ---*- C++ -*-===//
//
// What a partitioned plan's ranks send to each other in the decode steps of
// a run, to set beside the planner's prediction (moec --report). Each rank
// counts its own bytes (RankExecutor::lastStepBytesSent, summed over a
// step's micro-batches) over the steps that only decode (speculative
// verifications included: DecodeTraffic::counts); the runner that
// drives the ranks hands the counts out (ModelRunner::decodeTraffic), and
// trafficByStage() makes the per-stage figures every report prints.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_DECODETRAFFIC_H
#define MOEC_RUNTIME_DECODETRAFFIC_H

#include "runtime/Artifact.h"
#include "runtime/ModelRunner.h"

#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace moert {

/// The bytes one rank sent over the decode steps it ran.
struct DecodeTraffic {
  int64_t steps = 0;
  /// Bytes sent within the rank's stage, and to the next stage.
  int64_t withinStage = 0, toNextStage = 0;

  /// Whether `step` is counted: every token's logits are wanted, as in a
  /// decode step (runtime/DecodeStep.h) or a speculative verification (the
  /// decode steps of speculative decoding); prefill and mixed steps are
  /// not. (A prefill of one-token prompts has the same shape, and counts.)
  static bool counts(const StepInputs &step) {
    return !step.tokens.empty() && step.logitRows.size() == step.tokens.size();
  }
  /// Counts one decode step that sent `bytes` (within the stage, to the
  /// next stage).
  void add(std::pair<int64_t, int64_t> bytes) {
    ++steps;
    withinStage += bytes.first;
    toNextStage += bytes.second;
  }
  /// What was counted after `earlier` (a copy of this count taken then).
  DecodeTraffic since(const DecodeTraffic &earlier) const {
    return {steps - earlier.steps, withinStage - earlier.withinStage,
            toNextStage - earlier.toNextStage};
  }
};
// Sent between processes as it is.
static_assert(std::is_trivially_copyable<DecodeTraffic>::value,
              "DecodeTraffic travels as raw bytes");

/// One pipeline stage's bytes per decode step (means over the steps).
struct StageTraffic {
  /// The most one rank of the stage sent within the stage, and to the next
  /// stage (what the planner predicts per rank).
  double withinStage = 0, toNextStage = 0;
  /// What all the stage's ranks sent together.
  double total = 0;
};

/// Per stage of `plan`, the bytes per decode step its ranks sent, from
/// `ranks` (every rank's count, in rank order); empty when no decode step
/// was counted or `ranks` does not hold one count per rank.
std::vector<StageTraffic>
trafficByStage(const PlanInfo &plan, const std::vector<DecodeTraffic> &ranks);

} // namespace moert

#endif // MOEC_RUNTIME_DECODETRAFFIC_H
