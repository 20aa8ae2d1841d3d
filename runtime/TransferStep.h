//===- TransferStep.h - Collective and pipeline steps -----------*- C++ -*-===//
//
// The steps of an execution plan that move data between ranks: all_reduce
// and all_gather over the rank's stage, send and recv to the same index of
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

/// Runs transfer `step` (AllReduce, AllGather, Send or Recv) on f32 host
/// buffers `a` (shape `shapeA`) and `c` (`shapeC`). Adds the bytes this
/// rank sends, counted as the planner predicts them (an all-reduce of B
/// bytes over g ranks: 2B(g-1)/g; an all-gather of a B-byte result:
/// B(g-1)/g; a send: B) with `elementBytes` per element, to `within` (its
/// stage) or `next` (the next stage). False with `error` set on failure.
bool runTransferStep(const StepInfo &step, const RankPlace &place,
                     const float *a, const std::vector<int64_t> &shapeA,
                     float *c, const std::vector<int64_t> &shapeC,
                     int64_t elementBytes, int64_t &within, int64_t &next,
                     std::string &error);

} // namespace moert

#endif // MOEC_RUNTIME_TRANSFERSTEP_H
