//===- DecodeStep.h - Decode steps padded to a graph bucket -----*- C++ -*-===//
//
// A CUDA graph replays fixed buffer sizes, so a decode step runs as the
// graph of its batch-size bucket (the next power of two), padded with dummy
// sequences that write no cache slot and whose logits are dropped
// (runtime/CudaExecutor.h, useGraphs).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_DECODESTEP_H
#define MOEC_RUNTIME_DECODESTEP_H

#include "runtime/ModelRunner.h"

#include <cstdint>

namespace moert {

/// Whether `in` is a pure decode step: one token per sequence, in sequence
/// order, every token's logits wanted.
bool isDecodeStep(const StepInputs &in);

/// The bucket of a decode batch of `batch` sequences: the least power of
/// two not below it (1 for an empty batch).
int64_t graphBucket(int64_t batch);

/// `in` padded to `batch` sequences of `blocksPerSeq` table entries: the
/// extra tokens are token 0 at position 0 of their own sequence, write no
/// cache slot, and read block 0; their logits are computed and dropped.
/// `in` must be a decode step of at most `batch` sequences of at most
/// `blocksPerSeq` table entries.
StepInputs padDecodeStep(const StepInputs &in, int64_t batch,
                         int64_t blocksPerSeq);

} // namespace moert

#endif // MOEC_RUNTIME_DECODESTEP_H
