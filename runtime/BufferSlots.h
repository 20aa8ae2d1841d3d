//===- BufferSlots.h - Activation buffers sharing memory --------*- C++ -*-===//
//
// A plan names one activation buffer per value it computes (gpt4-mini: 482,
// 27 GB at a 4096-token prefill if each had its own memory). Most live for
// a few steps: a buffer is live from the first step that names it (its
// writer, the plans being in destination-passing style) to the last one
// (its last reader); the logits to the end of the plan. Buffers whose live
// ranges do not meet share a slot, whose memory is the largest of theirs
// at the step's size. Both executors allocate slots, not buffers.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_BUFFERSLOTS_H
#define MOEC_RUNTIME_BUFFERSLOTS_H

#include "runtime/Artifact.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace moert {

/// The buffers `step` names (arguments, operands, offsets, ...).
std::vector<int64_t> buffersOf(const StepInfo &step);

/// Per buffer of `plan`: the first and the last step that names it (-1,
/// -1 for none); the logits' last is the end of the plan.
std::vector<std::pair<int64_t, int64_t>> liveRanges(const ExecutionInfo &plan);

struct BufferSlots {
  /// Per buffer of the plan: its slot, or -1 for one that is not an
  /// activation (weights, caches, inputs keep their own memory).
  std::vector<int64_t> slotOf;
  /// Number of slots.
  int64_t count = 0;

  /// The slots of `plan`'s activations: each buffer, in the order of its
  /// first step, takes the free slot (one whose buffers' live ranges have
  /// all ended before) whose size is closest to its own, sizes compared at
  /// 1024 tokens; a new slot when none is free.
  static BufferSlots of(const ExecutionInfo &plan);

  /// An executor keeps one storage entry per plan buffer, then one per
  /// slot. The entry buffer `id` uses: its slot's, or its own for buffers
  /// that are not activations, and for every buffer when `apart`
  /// (runPrefix, where an unwritten activation must show its poison).
  size_t storageOf(size_t id, bool apart) const {
    return slotOf[id] < 0 || apart ? id : slotOf.size() + slotOf[id];
  }
  /// The bytes each storage entry must hold for a step whose buffers have
  /// the shapes `sizes`: the largest of the inputs, group ranks and
  /// activations placed in it; 0 for the others (weights and KV caches,
  /// which the executor sizes once).
  std::vector<size_t>
  storageBytes(const ExecutionInfo &plan,
               const std::vector<std::vector<int64_t>> &sizes,
               bool apart) const;

  /// Bytes of `plan`'s activations at `tokens` tokens (and as many logit
  /// rows): in these slots, and each buffer apart.
  struct Footprint {
    double shared = 0, apart = 0;
  };
  Footprint footprint(const ExecutionInfo &plan, int64_t tokens) const;
};

} // namespace moert

#endif // MOEC_RUNTIME_BUFFERSLOTS_H
