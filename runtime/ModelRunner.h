//===- ModelRunner.h - What serving needs from a device ---------*- C++ -*-===//
//
// The interface between the serving loops (generate, the scheduler,
// speculative decoding) and a device that runs one rank's execution plan:
// the host executor today, the CUDA executor and multi-rank drivers later.
// Tests implement it with small fake models.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_MODELRUNNER_H
#define MOEC_RUNTIME_MODELRUNNER_H

#include "runtime/KVBlockManager.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

struct DecodeTraffic;

/// The inputs of one forward step over a batch of sequences.
struct StepInputs {
  /// Per token: its id, its position in its sequence, the cache slot its
  /// K/V go to (block * blockSize + offset; negative: not cached) and its
  /// sequence's row in `blockTables`.
  std::vector<int32_t> tokens, positions, slotMapping, tokenSeq;
  /// [sequences, blocksPerSeq] row-major block ids; a token attends to the
  /// cached positions 0..its position of its sequence.
  std::vector<int32_t> blockTables;
  int64_t sequences = 0, blocksPerSeq = 0;
  /// The tokens whose logits are wanted (indices into `tokens`).
  std::vector<int32_t> logitRows;
};

/// "" when `inputs` are a well-formed step for a model of `vocab` tokens and
/// a cache of `blocks` blocks of `blockSize` tokens, else why not (one line,
/// e.g. "token id 600 is outside the vocabulary [0, 512)"). Every runner
/// refuses what this refuses, before touching its cache.
std::string checkStepInputs(const StepInputs &inputs, int64_t vocab,
                            int64_t blocks, int64_t blockSize);

/// "" when every copy of `copies` names a source and a destination inside a
/// cache of `blocks` blocks, the two distinct, else why not. Every runner
/// refuses what this refuses, before copying anything.
std::string checkBlockCopies(const std::vector<BlockCopy> &copies,
                             int64_t blocks);

/// Runs forward steps of one model over a paged KV cache it owns.
class ModelRunner {
public:
  virtual ~ModelRunner() = default;

  /// Runs one step; `logits` gets [logitRows.size(), vocabSize()] f32. False
  /// with `error` set for inconsistent or out-of-range inputs; the cache is
  /// then unchanged and the runner stays usable.
  virtual bool forward(const StepInputs &inputs, std::vector<float> &logits,
                       std::string &error) = 0;
  /// Tokens per KV-cache block.
  virtual int64_t blockSize() const = 0;
  /// Blocks in the KV cache.
  virtual int64_t numBlocks() const = 0;
  virtual int64_t vocabSize() const = 0;
  /// Per rank of a partitioned plan, in rank order, the bytes it sent over
  /// the decode steps run so far (runtime/DecodeTraffic.h); empty when this
  /// runner does not count them (one rank, test fakes). False with `error`
  /// set when the ranks cannot be asked.
  virtual bool decodeTraffic(std::vector<DecodeTraffic> &ranks,
                             std::string &error);
  /// Copies whole KV-cache blocks, in order: for each copy, every cached
  /// slot of block `source` of every layer's K and V cache (on every rank:
  /// each its own shard of the KV heads) goes to block `destination`. This
  /// performs the copy-on-write of a KVBlockManager
  /// (KVBlockManager::takePendingCopies), which must happen before the
  /// step that writes into the copied blocks. False with `error` set, the
  /// cache unchanged, for copies checkBlockCopies refuses; a device failure
  /// may leave some copies done (copying again is harmless: the sources
  /// are unchanged until the next step). The default copies nothing: it
  /// accepts no copies and fails on any.
  virtual bool copyBlocks(const std::vector<BlockCopy> &copies,
                          std::string &error);
};

} // namespace moert

#endif // MOEC_RUNTIME_MODELRUNNER_H
