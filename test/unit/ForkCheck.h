//===- ForkCheck.h - A forked sequence's copy-on-write, end to end -*- C++
//-*-===//
//
// A 21-token prompt prefilled, forked, and the fork decoding another next
// token than the original: the fork's first write copies the shared,
// partly filled block (KVBlockManager), which the runner must perform
// (ModelRunner::copyBlocks). Shared by the host tests and the GPU tests.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TEST_UNIT_FORKCHECK_H
#define MOEC_TEST_UNIT_FORKCHECK_H

#include "StepHelpers.h"

#include "runtime/KVBlockManager.h"
#include "runtime/ModelRunner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace moert::test {

constexpr int64_t kBlockSize = 16;

/// One decode step: `token` of one sequence at `position`, its blocks
/// `table`.
inline StepInputs decode(int32_t token, int64_t position,
                         const std::vector<int32_t> &table) {
  StepInputs in;
  in.sequences = 1;
  in.blocksPerSeq = static_cast<int64_t>(table.size());
  in.blockTables = table;
  in.tokens = {token};
  in.positions = {static_cast<int32_t>(position)};
  in.slotMapping = {static_cast<int32_t>(
      table[position / kBlockSize] * kBlockSize + position % kBlockSize)};
  in.tokenSeq = {0};
  in.logitRows = {0};
  return in;
}

/// What a fork scenario measured: the fork's and the original's decode
/// logits against their whole sequences run from scratch.
struct ForkErrors {
  double fork = -1, original = -1;
};

/// Prefills a 21-token prompt as sequence 1 in blocks of a KVBlockManager
/// over all but the last two blocks of `runner`, forks it as sequence 2,
/// decodes token 3 on the fork (which copies the shared, partly filled
/// second block on write; performed through the runner unless `skipCopy`)
/// and then token 4 on the original; compares each decode's logits with a
/// from-scratch prefill of its whole sequence in the last two blocks.
inline void runFork(ModelRunner &runner, bool skipCopy, ForkErrors &errors) {
  ASSERT_EQ(runner.blockSize(), kBlockSize);
  const int64_t blocks = runner.numBlocks();
  ASSERT_GE(blocks, 6);
  KVBlockManager manager(static_cast<int32_t>(blocks - 2), kBlockSize);
  const std::vector<int32_t> scratch = {static_cast<int32_t>(blocks - 2),
                                        static_cast<int32_t>(blocks - 1)};
  std::vector<int32_t> prompt = somePrompt(runner.vocabSize(), 21);
  std::string error;
  std::vector<float> logits;

  ASSERT_TRUE(manager.addSequence(1, 21, error)) << error;
  ASSERT_TRUE(runner.forward(
      prefill(prompt, manager.getBlockTable(1), kBlockSize), logits, error))
      << error;
  ASSERT_TRUE(manager.fork(1, 2, error)) << error;
  EXPECT_EQ(manager.getBlockTable(2), manager.getBlockTable(1));

  // The fork grows into the shared second block (5 of 16 slots filled).
  ASSERT_TRUE(manager.appendTokens(2, 1, error)) << error;
  const std::vector<int32_t> original = manager.getBlockTable(1),
                             fork = manager.getBlockTable(2);
  ASSERT_EQ(fork.size(), 2u);
  EXPECT_EQ(fork[0], original[0]);
  EXPECT_NE(fork[1], original[1]);
  std::vector<BlockCopy> copies = manager.takePendingCopies();
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].source, original[1]);
  EXPECT_EQ(copies[0].destination, fork[1]);
  if (!skipCopy)
    ASSERT_TRUE(runner.copyBlocks(copies, error)) << error;
  std::vector<float> forkLogits;
  ASSERT_TRUE(runner.forward(decode(3, 21, fork), forkLogits, error)) << error;

  // The original's block is its own again: it grows in place.
  ASSERT_TRUE(manager.appendTokens(1, 1, error)) << error;
  EXPECT_EQ(manager.getBlockTable(1), original);
  EXPECT_TRUE(manager.takePendingCopies().empty());
  std::vector<float> originalLogits;
  ASSERT_TRUE(runner.forward(decode(4, 21, original), originalLogits, error))
      << error;

  const int64_t vocab = runner.vocabSize();
  auto fromScratch = [&](int32_t next) {
    std::vector<int32_t> tokens = prompt;
    tokens.push_back(next);
    std::vector<float> all;
    EXPECT_TRUE(
        runner.forward(prefill(tokens, scratch, kBlockSize), all, error))
        << error;
    return std::vector<float>(all.end() - vocab, all.end());
  };
  ASSERT_EQ(forkLogits.size(), static_cast<size_t>(vocab));
  ASSERT_EQ(originalLogits.size(), static_cast<size_t>(vocab));
  errors.fork = relativeError(forkLogits, fromScratch(3));
  errors.original = relativeError(originalLogits, fromScratch(4));
}

} // namespace moert::test

#endif // MOEC_TEST_UNIT_FORKCHECK_H
