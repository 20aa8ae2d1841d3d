//===- KVBlockManager.h - Paged KV-cache block accounting -------*- C++ -*-===//
//
// Host-side bookkeeping of a paged KV cache: a pool of fixed-size blocks,
// one block table per sequence, reference counts so that sequences can share
// blocks (forks, prefix sharing) with copy-on-write of a shared, partly
// filled last block. It owns no device memory: the device side reads the
// block tables and performs the copies it is told about. Whoever owns the
// manager takes the pending copies (takePendingCopies) and has the runner
// perform them (ModelRunner::copyBlocks) before the step that writes into
// the copied blocks; the Scheduler does so before every step, for the
// target's and the draft's cache. Nothing in serving forks yet: prefix
// sharing (requests sharing a cached prompt prefix) and parallel sampling
// would.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_KVBLOCKMANAGER_H
#define MOEC_RUNTIME_KVBLOCKMANAGER_H

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace moert {

/// A block copy the device must perform before the next step (copy-on-write).
struct BlockCopy {
  int32_t source;
  int32_t destination;
};

class KVBlockManager {
public:
  /// A pool of `numBlocks` blocks of `blockSize` tokens each (both > 0).
  KVBlockManager(int32_t numBlocks, int32_t blockSize);

  int32_t getBlockSize() const { return blockSize; }
  int32_t getNumBlocks() const { return static_cast<int32_t>(refCounts.size()); }
  int32_t getNumFreeBlocks() const {
    return static_cast<int32_t>(freeBlocks.size());
  }
  /// Blocks needed for `tokens` tokens.
  int64_t blocksFor(int64_t tokens) const {
    return (tokens + blockSize - 1) / blockSize;
  }

  /// Registers sequence `id` holding `tokens` tokens. Fails, changing
  /// nothing, if `id` exists, `tokens` is negative or blocks are short.
  bool addSequence(int64_t id, int64_t tokens, std::string &error);
  /// Grows sequence `id` by `tokens` tokens; a shared, partly filled last
  /// block is first copied (see takePendingCopies). Fails, changing nothing,
  /// if blocks are short or `id` is unknown.
  bool appendTokens(int64_t id, int64_t tokens, std::string &error);
  /// Shrinks sequence `id` to its first `tokens` tokens and releases the
  /// blocks past them (the rollback of rejected speculative tokens; the
  /// stale entries left in the last block are overwritten when the sequence
  /// grows again). Fails, changing nothing, if `id` is unknown or `tokens`
  /// is negative or more than it holds. Never allocates.
  bool truncate(int64_t id, int64_t tokens, std::string &error);
  /// Makes `child` share every block of `parent`.
  bool fork(int64_t parent, int64_t child, std::string &error);
  /// Releases every block of `id` (no-op for an unknown id).
  void freeSequence(int64_t id);

  bool hasSequence(int64_t id) const { return sequences.count(id) != 0; }
  /// Tokens held by `id` (0 if unknown).
  int64_t getNumTokens(int64_t id) const;
  /// The block table of `id`: physical block of each logical block.
  const std::vector<int32_t> &getBlockTable(int64_t id) const;
  /// References to `block` (0 when free).
  int32_t getRefCount(int32_t block) const { return refCounts.at(block); }
  /// Copies made necessary by copy-on-write since the last call, in the
  /// order they must be performed (ModelRunner::copyBlocks), before the
  /// next step that writes into their destinations.
  std::vector<BlockCopy> takePendingCopies();

private:
  struct Sequence {
    int64_t tokens = 0;
    std::vector<int32_t> blocks;
  };
  int32_t allocateBlock();
  void releaseBlock(int32_t block);

  int32_t blockSize;
  std::vector<int32_t> refCounts;
  std::vector<int32_t> freeBlocks;
  std::unordered_map<int64_t, Sequence> sequences;
  std::vector<BlockCopy> pendingCopies;
};

} // namespace moert

#endif // MOEC_RUNTIME_KVBLOCKMANAGER_H
