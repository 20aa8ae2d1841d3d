//===- StepShapes.h - A step's buffer shapes and descriptors ----*- C++ -*-===//
//
// What every executor computes before running a step of a plan: the size
// of each run-time symbol (T tokens, R logit rows, S cache slots, N
// sequences, M blocks per sequence), the shape of each buffer, and the
// memref descriptors the kernels take.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_STEPSHAPES_H
#define MOEC_RUNTIME_STEPSHAPES_H

#include "runtime/Artifact.h"
#include "runtime/ModelRunner.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace moert {

/// The scale of `in` that guarded plan steps run by: its token count and
/// the most tokens of one sequence in it.
inline StepScale scaleOf(const StepInputs &in) {
  std::vector<int64_t> perSequence(std::max<int64_t>(in.sequences, 0), 0);
  int64_t run = 0;
  for (int32_t seq : in.tokenSeq)
    if (seq >= 0 && seq < static_cast<int64_t>(perSequence.size()))
      run = std::max(run, ++perSequence[seq]);
  return {static_cast<int64_t>(in.tokens.size()), run};
}

/// The run-time sizes of one step.
struct StepSizes {
  int64_t tokens = 0, logitRows = 0, slots = 0, sequences = 0,
          blocksPerSeq = 0;

  /// The sizes of `in` over a cache of `slots` slots.
  static StepSizes of(const StepInputs &in, int64_t slots) {
    return {static_cast<int64_t>(in.tokens.size()),
            static_cast<int64_t>(in.logitRows.size()), slots, in.sequences,
            in.blocksPerSeq};
  }
  /// The extent of `dim` in this step.
  int64_t extent(const PlanDim &dim) const {
    return (dim.factor * symbol(dim.symbol) + dim.divisor - 1) / dim.divisor;
  }
  /// The size of plan symbol `name` in this step (1 for none).
  int64_t symbol(char name) const {
    switch (name) {
    case 'T':
      return tokens;
    case 'R':
      return logitRows;
    case 'S':
      return slots;
    case 'N':
      return sequences;
    case 'M':
      return blocksPerSeq;
    default:
      return 1;
    }
  }
  /// The shape of every buffer of `plan` in this step.
  std::vector<std::vector<int64_t>> shapes(const ExecutionInfo &plan) const {
    std::vector<std::vector<int64_t>> out(plan.buffers.size());
    for (size_t id = 0; id < plan.buffers.size(); ++id)
      for (const PlanDim &dim : plan.buffers[id].shape)
        out[id].push_back(extent(dim));
    return out;
  }
};

/// Elements of a buffer of `shape`.
inline int64_t elementCount(const std::vector<int64_t> &shape) {
  int64_t elements = 1;
  for (int64_t extent : shape)
    elements *= extent;
  return elements;
}

/// The memref descriptor of a contiguous row-major buffer at `data`:
/// {allocated, aligned, offset, sizes[rank], strides[rank]}, 64-bit each
/// (MLIR's C interface; codegen/README.md).
inline std::vector<int64_t> memrefDescriptor(const void *data,
                                             const std::vector<int64_t> &shape) {
  std::vector<int64_t> d(3 + 2 * shape.size(), 0);
  d[0] = d[1] = reinterpret_cast<int64_t>(data);
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    d[3 + i] = shape[i];
    d[3 + shape.size() + i] = stride;
    stride *= shape[i];
  }
  return d;
}

} // namespace moert

#endif // MOEC_RUNTIME_STEPSHAPES_H
