//===- TransferStep.h - Collective and pipeline steps -----------*- C++ -*-===//
//
// The steps of an execution plan that move data between ranks: all_reduce
// and all_gather over the rank's stage, the expert all-to-all
// (expert_exchange, all_gather_tokens), send and recv to the same index of
// another stage. Every executor runs them the same way on host f32 buffers
// (a device executor stages its buffers through the host).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_TRANSFERSTEP_H
#define MOEC_RUNTIME_TRANSFERSTEP_H

#include "runtime/Artifact.h"
#include "runtime/Communicator.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

/// Where a rank sits in the plan.
struct RankPlace {
  Communicator *comm = nullptr;
  /// The ranks of its stage (its tensor-parallel group), and its index.
  std::vector<int64_t> group;
  int64_t rankInStage = 0;
};

/// The host buffers of one transfer step: f32 `a` and `c` with their
/// shapes; for an expert exchange also the dispatch's i32 `offsets`
/// [experts + 1] and `permutation`.
struct TransferBuffers {
  const float *a = nullptr;
  std::vector<int64_t> shapeA;
  float *c = nullptr;
  std::vector<int64_t> shapeC;
  const int32_t *offsets = nullptr;
  int64_t experts = 0;
  const int32_t *permutation = nullptr;
};

/// Adds the bytes a rank of a `groupSize`-rank stage sends for all_reduce,
/// all_gather or send `step` (shapes and `elementBytes` of its buffers) to
/// `within` or `next`, as runTransferStep counts them. Other kinds add
/// nothing.
void countTransferBytes(const StepInfo &step, int64_t groupSize,
                        const std::vector<int64_t> &shapeA,
                        const std::vector<int64_t> &shapeC,
                        int64_t elementBytes, int64_t &within, int64_t &next);

/// Runs transfer `step` on `buffers`. Adds the bytes this rank sends, with
/// `elementBytes` per element, to `within` (its stage) or `next` (the next
/// stage): an all-reduce of B bytes over g ranks counts 2B(g-1)/g, an
/// all-gather of a B-byte result (tokens too) B(g-1)/g, a send B, as the
/// planner predicts them; an expert exchange counts the rows it actually
/// sends (the planner assumes uniform routing). False with `error` set on
/// failure.
bool runTransferStep(const StepInfo &step, const RankPlace &place,
                     const TransferBuffers &buffers, int64_t elementBytes,
                     int64_t &within, int64_t &next, std::string &error);

} // namespace moert

#endif // MOEC_RUNTIME_TRANSFERSTEP_H
