//===- KVCopyOnWriteTest.cpp - Copy-on-write of KV blocks, executed -------===//
//
// KVBlockManager::fork shares a sequence's blocks; the first sharer to grow
// into the shared, partly filled last block gets a copy of it, which the
// runner must perform (ModelRunner::copyBlocks) before the step that writes
// it. Here on real host artifacts (moec, build time; random weights): the
// executor's block copy itself, then a 21-token prompt prefilled, forked,
// and the fork decoding another next token than the original: the fork's
// logits must be those of its whole token sequence run from scratch, and
// the original's next decode must be unaffected. The same through the
// partitioned runners (every rank copies its shard of the KV heads, its
// stage's layers), with rank 0 driving the others as under mpirun. A
// control run without the copy shows that the test can fail.
//
//===----------------------------------------------------------------------===//

#include "ForkCheck.h"
#include "HostLoad.h"
#include "StepHelpers.h"

#include "runtime/DistributedRunner.h"
#include "runtime/HostExecutor.h"
#include "runtime/KVBlockManager.h"
#include "runtime/LocalRunner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

using namespace moert;
using namespace moert::test;

namespace {

/// The K and V cache buffers of a plan.
std::vector<int64_t> cacheBuffers(const ExecutionInfo &plan) {
  std::vector<int64_t> ids;
  for (size_t id = 0; id < plan.buffers.size(); ++id)
    if (plan.buffers[id].kind == BufferInfo::Kind::KCache ||
        plan.buffers[id].kind == BufferInfo::Kind::VCache)
      ids.push_back(static_cast<int64_t>(id));
  return ids;
}

/// Every K/V cache of a one-rank executor, as it is (runPrefix of no step
/// reads a buffer without running anything).
std::vector<std::vector<float>> readCaches(HostExecutor &executor,
                                           const ExecutionInfo &plan) {
  std::vector<std::vector<float>> caches;
  std::string error;
  for (int64_t id : cacheBuffers(plan)) {
    caches.emplace_back();
    EXPECT_TRUE(executor.runPrefix(prefill({1}, {0}, kBlockSize), 0, id,
                                   caches.back(), error))
        << error;
  }
  return caches;
}

std::vector<float> blockOf(const std::vector<float> &cache, int64_t block,
                           int64_t width) {
  auto first = cache.begin() + block * kBlockSize * width;
  return std::vector<float>(first, first + kBlockSize * width);
}

TEST(KVCopyOnWrite, TheHostExecutorCopiesWholeBlocksOfEveryCache) {
  Loaded m = load("tiny-gqa", 12);
  ASSERT_TRUE(m.executor);
  const ExecutionInfo &plan = *m.artifact->stages()[0].execution;
  ASSERT_EQ(plan.blockSize, kBlockSize);
  ASSERT_EQ(cacheBuffers(plan).size(), 2u * plan.kvLayers);
  // 21 tokens fill block 5 and 5 slots of block 2, in every layer.
  std::vector<int32_t> prompt = somePrompt(m.config.vocabSize, 21);
  std::vector<float> logits;
  std::string error;
  ASSERT_TRUE(
      m.executor->forward(prefill(prompt, {5, 2}, kBlockSize), logits, error))
      << error;
  std::vector<std::vector<float>> before = readCaches(*m.executor, plan);

  // Refused copies change nothing.
  EXPECT_FALSE(m.executor->copyBlocks({{5, 12}}, error));
  EXPECT_EQ(error, "block 12 is outside the cache's 12 blocks");
  EXPECT_FALSE(m.executor->copyBlocks({{2, 7}, {-1, 3}}, error));
  EXPECT_EQ(error, "block -1 is outside the cache's 12 blocks");
  EXPECT_FALSE(m.executor->copyBlocks({{4, 4}}, error));
  EXPECT_EQ(error, "block 4 cannot be copied onto itself");
  EXPECT_TRUE(readCaches(*m.executor, plan) == before);

  // In order: 5 -> 9, then 9 -> 10 (the copy of the copy), and 2 -> 0.
  ASSERT_TRUE(m.executor->copyBlocks({{5, 9}, {9, 10}, {2, 0}}, error))
      << error;
  std::vector<std::vector<float>> after = readCaches(*m.executor, plan);
  ASSERT_EQ(after.size(), before.size());
  // Compared as booleans: a failure names the cache and block only.
  for (size_t c = 0; c < after.size(); ++c) {
    int64_t width = plan.kvWidth;
    ASSERT_EQ(after[c].size(), static_cast<size_t>(12 * kBlockSize * width));
    auto was = [&](int64_t block) { return blockOf(before[c], block, width); };
    auto is = [&](int64_t block) { return blockOf(after[c], block, width); };
    // The prefill wrote something non-zero into the source blocks.
    EXPECT_TRUE(was(5) != std::vector<float>(kBlockSize * width, 0.0f))
        << "cache " << c;
    EXPECT_TRUE(is(9) == was(5)) << "cache " << c << ": block 5 -> 9";
    EXPECT_TRUE(is(10) == was(5)) << "cache " << c << ": block 9 -> 10";
    EXPECT_TRUE(is(0) == was(2)) << "cache " << c << ": block 2 -> 0";
    for (int64_t block : {1, 2, 3, 4, 5, 6, 7, 8, 11})
      EXPECT_TRUE(is(block) == was(block))
          << "cache " << c << ": block " << block << " changed";
  }
  // No copies: nothing to do.
  EXPECT_TRUE(m.executor->copyBlocks({}, error)) << error;
}

class HostFork : public ::testing::TestWithParam<const char *> {};

TEST_P(HostFork, TheForkDecodesWhatItsWholeSequenceGives) {
  Loaded m = load(GetParam(), 16);
  ASSERT_TRUE(m.executor);
  ForkErrors errors;
  runFork(*m.executor, /*skipCopy=*/false, errors);
  EXPECT_LT(errors.fork, 1e-4) << GetParam();
  EXPECT_LT(errors.original, 1e-4) << GetParam();
}

// The control: without the copy the fork attends to an empty block for its
// first 5 cached positions of the second block, and its logits show it.
TEST_P(HostFork, WithoutTheCopyTheForkIsWrong) {
  Loaded m = load(GetParam(), 16);
  ASSERT_TRUE(m.executor);
  ForkErrors errors;
  runFork(*m.executor, /*skipCopy=*/true, errors);
  EXPECT_GT(errors.fork, 1e-2) << GetParam();
  EXPECT_LT(errors.original, 1e-4) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(SmallModels, HostFork,
                         ::testing::Values("tiny-moe", "tiny-gqa",
                                           "tiny-gqa.grid"),
                         [](const auto &info) { return testName(info.param); });

std::unique_ptr<Artifact> openArtifact(const std::string &name) {
  std::string error;
  std::unique_ptr<Artifact> artifact =
      Artifact::open(artifactPath(name), error);
  EXPECT_TRUE(artifact) << error;
  return artifact;
}

// Partitioned plans: the KV heads split over tensor-parallel ranks, the
// layers over pipeline stages; every rank copies its own part.
TEST(KVCopyOnWrite, EveryRankOfAPartitionedPlanCopiesItsShard) {
  for (const char *name : {"tiny-gqa.tp2-ep2", "tiny-moe.tp2-pp2"}) {
    SCOPED_TRACE(name);
    auto parts = openArtifact(name);
    ASSERT_TRUE(parts);
    std::string error;
    auto runner = LocalRunner::create(*parts, 8, error);
    ASSERT_TRUE(runner) << error;
    runner->initRandomWeights(5);
    EXPECT_FALSE(runner->copyBlocks({{1, 8}}, error));
    EXPECT_EQ(error, "block 8 is outside the cache's 8 blocks");
    ForkErrors errors;
    runFork(*runner, /*skipCopy=*/false, errors);
    EXPECT_LT(errors.fork, 1e-4);
    EXPECT_LT(errors.original, 1e-4);
  }
}

// One process per rank (threads with an in-process world here): rank 0
// sends the copies to the followers before the step that needs them.
TEST(KVCopyOnWrite, TheHeadRankSendsTheCopiesToTheFollowers) {
  auto parts = openArtifact("tiny-moe.tp2-pp2");
  ASSERT_TRUE(parts);
  const int64_t ranks = 4;
  LocalWorld world(ranks, std::chrono::seconds(10));
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int64_t rank = 0; rank < ranks; ++rank)
    comms.push_back(world.communicator(rank));
  std::vector<std::string> errors(ranks);
  std::vector<char> ok(ranks, 0);
  std::vector<std::thread> followers;
  for (int64_t rank = 1; rank < ranks; ++rank)
    followers.emplace_back([&, rank] {
      auto executor = HostExecutor::create(*parts, rank, 8, errors[rank],
                                           comms[rank].get());
      if (!executor)
        return;
      executor->initRandomWeights(5);
      ok[rank] = serveFollower(*parts, *executor, *comms[rank], errors[rank]);
    });
  std::string error;
  auto head = HostExecutor::create(*parts, 0, 8, error, comms[0].get());
  ASSERT_TRUE(head) << error;
  head->initRandomWeights(5);
  ForkErrors forkErrors;
  {
    DistributedRunner runner(*parts, *head, *comms[0]);
    // Refused copies never leave rank 0.
    EXPECT_FALSE(runner.copyBlocks({{3, 3}}, error));
    EXPECT_FALSE(runner.failedMidStep());
    runFork(runner, /*skipCopy=*/false, forkErrors);
    EXPECT_FALSE(runner.failedMidStep());
    EXPECT_TRUE(runner.stop(error)) << error;
  }
  for (std::thread &follower : followers)
    follower.join();
  for (int64_t rank = 1; rank < ranks; ++rank)
    EXPECT_TRUE(ok[rank]) << "rank " << rank << ": " << errors[rank];
  EXPECT_LT(forkErrors.fork, 1e-4);
  EXPECT_LT(forkErrors.original, 1e-4);
}

// A runner that cannot copy (the default, e.g. a test fake) accepts an
// empty list and refuses any copy.
TEST(KVCopyOnWrite, TheDefaultRunnerRefusesCopies) {
  struct NoCopies : ModelRunner {
    bool forward(const StepInputs &, std::vector<float> &,
                 std::string &) override {
      return false;
    }
    int64_t blockSize() const override { return kBlockSize; }
    int64_t numBlocks() const override { return 4; }
    int64_t vocabSize() const override { return 8; }
  } runner;
  std::string error;
  EXPECT_TRUE(runner.copyBlocks({}, error));
  EXPECT_FALSE(runner.copyBlocks({{0, 1}}, error));
  EXPECT_EQ(error, "this runner cannot copy KV-cache blocks");
}

} // namespace
