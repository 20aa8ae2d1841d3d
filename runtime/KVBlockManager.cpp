//===- KVBlockManager.cpp - Paged KV-cache block accounting ---------------===//

#include "runtime/KVBlockManager.h"

#include <algorithm>
#include <cassert>
#include <utility>

using namespace moert;

KVBlockManager::KVBlockManager(int32_t numBlocks, int32_t blockSize)
    : blockSize(std::max(1, blockSize)),
      refCounts(static_cast<size_t>(std::max(0, numBlocks)), 0) {
  // Hand out low block numbers first: keeps tables readable in tests/logs.
  for (int32_t block = getNumBlocks() - 1; block >= 0; --block)
    freeBlocks.push_back(block);
}

int32_t KVBlockManager::allocateBlock() {
  assert(!freeBlocks.empty() && "caller checks the free count");
  int32_t block = freeBlocks.back();
  freeBlocks.pop_back();
  refCounts[block] = 1;
  return block;
}

void KVBlockManager::releaseBlock(int32_t block) {
  if (--refCounts[block] == 0)
    freeBlocks.push_back(block);
}

bool KVBlockManager::addSequence(int64_t id, int64_t tokens,
                                 std::string &error) {
  if (sequences.count(id)) {
    error = "sequence " + std::to_string(id) + " already exists";
    return false;
  }
  if (tokens < 0) {
    error = "sequence " + std::to_string(id) + ": negative token count " +
            std::to_string(tokens);
    return false;
  }
  if (blocksFor(tokens) > getNumFreeBlocks()) {
    error = "sequence " + std::to_string(id) + " needs " +
            std::to_string(blocksFor(tokens)) + " blocks but " +
            std::to_string(getNumFreeBlocks()) + " are free";
    return false;
  }
  Sequence &sequence = sequences[id];
  sequence.tokens = tokens;
  for (int64_t i = 0; i < blocksFor(tokens); ++i)
    sequence.blocks.push_back(allocateBlock());
  return true;
}

bool KVBlockManager::appendTokens(int64_t id, int64_t tokens,
                                  std::string &error) {
  auto it = sequences.find(id);
  if (it == sequences.end()) {
    error = "unknown sequence " + std::to_string(id);
    return false;
  }
  if (tokens < 0) {
    error = "sequence " + std::to_string(id) + ": negative token count " +
            std::to_string(tokens);
    return false;
  }
  Sequence &sequence = it->second;
  bool lastPartial = sequence.tokens % blockSize != 0;
  bool copyLast = tokens > 0 && lastPartial &&
                  refCounts[sequence.blocks.back()] > 1;
  int64_t needed = blocksFor(sequence.tokens + tokens) -
                   static_cast<int64_t>(sequence.blocks.size()) +
                   (copyLast ? 1 : 0);
  if (needed > getNumFreeBlocks()) {
    error = "sequence " + std::to_string(id) + " needs " +
            std::to_string(needed) + " more blocks but " +
            std::to_string(getNumFreeBlocks()) + " are free";
    return false;
  }
  if (copyLast) {
    int32_t shared = sequence.blocks.back();
    int32_t copy = allocateBlock();
    pendingCopies.push_back({shared, copy});
    releaseBlock(shared);
    sequence.blocks.back() = copy;
  }
  sequence.tokens += tokens;
  while (static_cast<int64_t>(sequence.blocks.size()) <
         blocksFor(sequence.tokens))
    sequence.blocks.push_back(allocateBlock());
  return true;
}

bool KVBlockManager::truncate(int64_t id, int64_t tokens,
                              std::string &error) {
  auto it = sequences.find(id);
  if (it == sequences.end()) {
    error = "unknown sequence " + std::to_string(id);
    return false;
  }
  Sequence &sequence = it->second;
  if (tokens < 0 || tokens > sequence.tokens) {
    error = "sequence " + std::to_string(id) + " holds " +
            std::to_string(sequence.tokens) + " tokens, cannot keep " +
            std::to_string(tokens);
    return false;
  }
  sequence.tokens = tokens;
  // freeBlocks never holds more than its initial size: no reallocation.
  while (static_cast<int64_t>(sequence.blocks.size()) > blocksFor(tokens)) {
    releaseBlock(sequence.blocks.back());
    sequence.blocks.pop_back();
  }
  return true;
}

bool KVBlockManager::fork(int64_t parent, int64_t child, std::string &error) {
  auto it = sequences.find(parent);
  if (it == sequences.end()) {
    error = "unknown sequence " + std::to_string(parent);
    return false;
  }
  if (sequences.count(child)) {
    error = "sequence " + std::to_string(child) + " already exists";
    return false;
  }
  Sequence copy = it->second;
  for (int32_t block : copy.blocks)
    ++refCounts[block];
  sequences.emplace(child, std::move(copy));
  return true;
}

void KVBlockManager::freeSequence(int64_t id) {
  auto it = sequences.find(id);
  if (it == sequences.end())
    return;
  for (int32_t block : it->second.blocks)
    releaseBlock(block);
  sequences.erase(it);
}

int64_t KVBlockManager::getNumTokens(int64_t id) const {
  auto it = sequences.find(id);
  return it == sequences.end() ? 0 : it->second.tokens;
}

const std::vector<int32_t> &KVBlockManager::getBlockTable(int64_t id) const {
  static const std::vector<int32_t> empty;
  auto it = sequences.find(id);
  return it == sequences.end() ? empty : it->second.blocks;
}

std::vector<BlockCopy> KVBlockManager::takePendingCopies() {
  return std::exchange(pendingCopies, {});
}
