//===- MicroBatch.h - Pipeline micro-batches of a step ----------*- C++ -*-===//
//
// A partitioned plan with pipeline stages runs a step as micro-batches of
// whole sequences, one after the other on every rank: while stage s works
// on micro-batch i, stage s-1 already works on i+1, so the stages overlap
// instead of waiting for each other (DESIGN.md section 6). A micro-batch is
// a step of its own (its sequences' tokens, block-table rows and logit
// rows), so cutting a step changes nothing it computes.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_MICROBATCH_H
#define MOEC_RUNTIME_MICROBATCH_H

#include "runtime/ModelRunner.h"

#include <cstdint>
#include <vector>

namespace moert {

/// A step cut into micro-batches.
struct MicroBatches {
  std::vector<StepInputs> parts;
  /// For each part, where each of its logit rows is in the step's
  /// `logitRows`.
  std::vector<std::vector<int64_t>> logitRowsOf;
};

/// How many micro-batches a plan of `stages` pipeline stages runs step
/// `in` as: one per stage, at most one per sequence; 1 keeps it whole.
int64_t microBatchCount(const StepInputs &in, int64_t stages);

/// Cuts well-formed step `in` into at most `count` micro-batches of
/// consecutive sequences with about as many tokens each (fewer parts when
/// there are fewer sequences; no empty part).
MicroBatches splitMicroBatches(const StepInputs &in, int64_t count);

/// The step's logits [logitRows, vocab] from each part's logits.
std::vector<float> joinLogits(const MicroBatches &batches,
                              const std::vector<std::vector<float>> &parts,
                              int64_t vocab);

} // namespace moert

#endif // MOEC_RUNTIME_MICROBATCH_H
