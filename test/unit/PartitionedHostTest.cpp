//===- PartitionedHostTest.cpp - Partitioned plans against whole ones -----===//
//
// moec compiles the small models for the host partitioned every way the
// planner can (tensor parallel 2 and 4, experts spread over ranks or cut
// across them, pipeline 2 and 3 stages, tensor x pipeline) at build time.
// Their ranks run in this process (LocalRunner: threads and an in-process
// communicator) and must compute what the unpartitioned plan computes: the
// same logits within f32 rounding (sums run in another order) and the same
// greedy tokens.
//
//===----------------------------------------------------------------------===//

#include "StepHelpers.h"
#include "runtime/DistributedRunner.h"
#include "runtime/Generator.h"
#include "runtime/HostExecutor.h"
#include "runtime/LocalRunner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

using namespace moert;
using moert::test::relativeError;
using moert::test::testName;

namespace {

std::string artifactPath(const std::string &name) {
  return std::string(MOEC_HOST_ARTIFACTS_DIR) + "/" + name + ".host.moeart";
}

std::unique_ptr<Artifact> openArtifact(const std::string &name) {
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(artifactPath(name), error);
  EXPECT_TRUE(artifact) << error;
  return artifact;
}

/// One prefill of `tokens` of one sequence in the blocks `table` (of 16
/// tokens), every row's logits wanted.
StepInputs prefill(const std::vector<int32_t> &tokens,
                   const std::vector<int32_t> &table) {
  return test::prefill(tokens, table, 16);
}

struct Plan {
  const char *name;
  const char *model;
  int64_t ranks;
};

class PartitionedPlans : public ::testing::TestWithParam<Plan> {};

TEST_P(PartitionedPlans, ComputeWhatTheWholePlanComputes) {
  const Plan &plan = GetParam();
  auto whole = openArtifact(plan.model);
  auto parts = openArtifact(plan.name);
  ASSERT_TRUE(whole && parts);
  EXPECT_EQ(parts->plan().ranks, plan.ranks);
  // The expert-gemm (ffn-gemm) plans run the prefill below with grouped
  // GEMMs (GEMMs) and the 4-token prompt and the decodes with the kernel.
  std::string name = plan.name;
  bool experts = name.find("expert-gemm") != std::string::npos,
       dense = name.find("ffn-gemm") != std::string::npos;
  if (experts || dense) {
    const std::vector<StepInfo> &steps = parts->stages()[0].execution->steps;
    StepInfo::Kind kind =
        experts ? StepInfo::Kind::GroupedGemm : StepInfo::Kind::Gemm;
    EXPECT_TRUE(std::any_of(steps.begin(), steps.end(), [&](const StepInfo &s) {
      return s.kind == kind && s.runsAt({21, 21}) && !s.runsAt({4, 4});
    })) << plan.name;
  }
  std::string error;
  auto reference = LocalRunner::create(*whole, 16, error);
  ASSERT_TRUE(reference) << error;
  auto runner = LocalRunner::create(*parts, 16, error);
  ASSERT_TRUE(runner) << error;
  EXPECT_EQ(runner->ranks(), plan.ranks);
  reference->initRandomWeights(11);
  runner->initRandomWeights(11);

  std::vector<int32_t> prompt;
  for (int i = 0; i < 21; ++i)
    prompt.push_back((i * 53 + 7) % 512);
  std::vector<float> expected, got;
  ASSERT_TRUE(reference->forward(prefill(prompt, {3, 1}), expected, error))
      << error;
  ASSERT_TRUE(runner->forward(prefill(prompt, {3, 1}), got, error)) << error;
  ASSERT_EQ(got.size(), expected.size());
  double err = relativeError(got, expected);
  char text[32];
  std::snprintf(text, sizeof text, "%.2e", err);
  RecordProperty("max_relative_error", text);
  EXPECT_LT(err, 1e-5) << plan.name;

  GenerateOptions options;
  options.maxNewTokens = 10;
  std::vector<int32_t> wholeTokens, partTokens;
  GenerateStats stats;
  ASSERT_TRUE(generate(*reference, {1, 2, 3, 4}, options, 256, nullptr,
                       wholeTokens, stats, error))
      << error;
  ASSERT_TRUE(generate(*runner, {1, 2, 3, 4}, options, 256, nullptr,
                       partTokens, stats, error))
      << error;
  EXPECT_EQ(partTokens, wholeTokens) << plan.name;
}

INSTANTIATE_TEST_SUITE_P(
    SmallModels, PartitionedPlans,
    ::testing::Values(Plan{"tiny-moe.tp2", "tiny-moe", 2},
                      Plan{"tiny-moe.tp4", "tiny-moe", 4},
                      Plan{"tiny-moe.tp2-etp2", "tiny-moe", 2},
                      Plan{"tiny-moe.pp2", "tiny-moe", 2},
                      Plan{"tiny-gqa.pp3", "tiny-gqa", 3},
                      Plan{"tiny-gqa.tp2-ep2", "tiny-gqa", 2},
                      Plan{"tiny-gqa.tp4-ep2", "tiny-gqa", 4},
                      Plan{"tiny-moe.tp2-pp2", "tiny-moe", 4},
                      // Experts exchanging tokens by all-to-all.
                      Plan{"tiny-moe.tp2-a2a", "tiny-moe", 2},
                      Plan{"tiny-moe.tp4-a2a", "tiny-moe", 4},
                      Plan{"tiny-gqa.tp4-a2a", "tiny-gqa", 4},
                      Plan{"tiny-gqa.tp2-pp2-a2a.grid", "tiny-gqa", 4},
                      // The GPU kernels' code with placed experts.
                      Plan{"tiny-gqa.tp4-ep2.grid", "tiny-gqa", 4},
                      // Grouped expert GEMMs at the 21-token prefill, the
                      // expert kernel at the decodes.
                      Plan{"tiny-moe.expert-gemm", "tiny-moe", 1},
                      Plan{"tiny-moe.expert-gemm.grid", "tiny-moe", 1},
                      Plan{"tiny-gqa.tp2-ep2.expert-gemm", "tiny-gqa", 2},
                      Plan{"tiny-gqa.tp4-a2a.expert-gemm", "tiny-gqa", 4},
                      Plan{"tiny-moe.tp2-etp2.expert-gemm", "tiny-moe", 2},
                      Plan{"tiny-gqa.tp4-ep2.expert-gemm", "tiny-gqa", 4},
                      // Dense FFNs as GEMMs at the prefill.
                      Plan{"tiny-draft.ffn-gemm", "tiny-draft", 1},
                      Plan{"tiny-draft.ffn-gemm.grid", "tiny-draft", 1},
                      Plan{"tiny-draft.tp2.ffn-gemm", "tiny-draft", 2}),
    [](const auto &info) { return testName(info.param.name); });

// A bad request is refused before any rank starts; the ranks stay usable.
// A step of several sequences runs through pipeline stages as micro-batches
// (runtime/MicroBatch.h); the logits are the whole plan's, in the step's
// order, and the cache the micro-batches wrote serves the next step.
TEST(PartitionedHost, MicroBatchedStepsComputeWhatTheWholePlanComputes) {
  for (Plan plan : {Plan{"tiny-moe.pp2", "tiny-moe", 2},
                    Plan{"tiny-gqa.pp3", "tiny-gqa", 3},
                    Plan{"tiny-moe.tp2-pp2", "tiny-moe", 4}}) {
    auto whole = openArtifact(plan.model);
    auto parts = openArtifact(plan.name);
    ASSERT_TRUE(whole && parts);
    std::string error;
    auto reference = LocalRunner::create(*whole, 16, error);
    ASSERT_TRUE(reference) << error;
    auto runner = LocalRunner::create(*parts, 16, error);
    ASSERT_TRUE(runner) << error;
    reference->initRandomWeights(5);
    runner->initRandomWeights(5);
    // Three sequences of 9, 1 and 4 tokens, their tokens interleaved, in
    // blocks 2s and 2s + 1; the last token's logits of each, in the order
    // 2, 0, 1.
    const int64_t lengths[3] = {9, 1, 4};
    StepInputs in;
    in.sequences = 3;
    in.blocksPerSeq = 2;
    in.blockTables = {0, 1, 2, 3, 4, 5};
    int32_t last[3] = {};
    for (int64_t i = 0; i < 9; ++i)
      for (int32_t s = 0; s < 3; ++s)
        if (i < lengths[s]) {
          last[s] = static_cast<int32_t>(in.tokens.size());
          in.tokens.push_back(static_cast<int32_t>((s * 97 + i * 13) % 512));
          in.positions.push_back(static_cast<int32_t>(i));
          in.slotMapping.push_back(static_cast<int32_t>(2 * s * 16 + i));
          in.tokenSeq.push_back(s);
        }
    in.logitRows = {last[2], last[0], last[1]};
    std::vector<float> expected, got;
    ASSERT_TRUE(reference->forward(in, expected, error)) << error;
    ASSERT_TRUE(runner->forward(in, got, error)) << plan.name << ": " << error;
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_LT(relativeError(got, expected), 1e-5) << plan.name;
    // A decode step of all three reads what the micro-batches cached.
    StepInputs decode;
    decode.sequences = 3;
    decode.blocksPerSeq = 2;
    decode.blockTables = in.blockTables;
    for (int32_t s = 0; s < 3; ++s) {
      decode.tokens.push_back(7 + s);
      decode.positions.push_back(static_cast<int32_t>(lengths[s]));
      decode.slotMapping.push_back(
          static_cast<int32_t>(2 * s * 16 + lengths[s]));
      decode.tokenSeq.push_back(s);
      decode.logitRows.push_back(s);
    }
    ASSERT_TRUE(reference->forward(decode, expected, error)) << error;
    ASSERT_TRUE(runner->forward(decode, got, error)) << error;
    EXPECT_LT(relativeError(got, expected), 1e-5) << plan.name;
  }
}

TEST(PartitionedHost, BadRequestsLeaveTheRanksUsable) {
  auto parts = openArtifact("tiny-moe.tp2-pp2");
  ASSERT_TRUE(parts);
  std::string error;
  auto runner = LocalRunner::create(*parts, 4, error);
  ASSERT_TRUE(runner) << error;
  runner->initRandomWeights(1);
  std::vector<float> logits;
  StepInputs bad = prefill({1, 600}, {0});
  EXPECT_FALSE(runner->forward(bad, logits, error));
  EXPECT_EQ(error, "token id 600 is outside the vocabulary [0, 512)");
  EXPECT_TRUE(runner->forward(prefill({1, 2}, {0}), logits, error)) << error;
  EXPECT_EQ(logits.size(), 2u * 512);
}

// A rank whose peer never comes stops with a message naming the peer
// instead of hanging.
TEST(PartitionedHost, AMissingRankIsNamedNotWaitedForever) {
  auto parts = openArtifact("tiny-moe.tp2");
  ASSERT_TRUE(parts);
  LocalWorld world(2, std::chrono::milliseconds(200));
  std::unique_ptr<Communicator> comm0 = world.communicator(0);
  std::string error;
  auto rank0 = HostExecutor::create(*parts, 0, 4, error, comm0.get());
  ASSERT_TRUE(rank0) << error;
  rank0->initRandomWeights(1);
  std::vector<float> logits;
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(rank0->forward(prefill({1, 2}, {0}), logits, error));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(error.find("rank 1 did not arrive"), std::string::npos) << error;
}

// One process per rank (here: threads with their own executors over an
// in-process world, as under mpirun with MPI): rank 0 drives the others
// through DistributedRunner, and a refused request stops nobody.
TEST(PartitionedHost, TheHeadRankDrivesTheFollowers) {
  auto whole = openArtifact("tiny-moe");
  auto parts = openArtifact("tiny-moe.tp2-pp2");
  ASSERT_TRUE(whole && parts);
  std::string error;
  auto reference = LocalRunner::create(*whole, 16, error);
  ASSERT_TRUE(reference) << error;
  reference->initRandomWeights(5);
  GenerateOptions options;
  options.maxNewTokens = 8;
  std::vector<int32_t> expected, got;
  GenerateStats stats;
  ASSERT_TRUE(generate(*reference, {9, 8, 7}, options, 256, nullptr, expected,
                       stats, error));

  LocalWorld world(4, std::chrono::seconds(10));
  std::vector<std::string> errors(4);
  std::vector<char> ok(4, 0);
  std::vector<std::thread> followers;
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int64_t rank = 0; rank < 4; ++rank)
    comms.push_back(world.communicator(rank));
  for (int64_t rank = 1; rank < 4; ++rank)
    followers.emplace_back([&, rank] {
      auto executor =
          HostExecutor::create(*parts, rank, 16, errors[rank], comms[rank].get());
      if (!executor)
        return;
      executor->initRandomWeights(5);
      ok[rank] = serveFollower(*parts, *executor, *comms[rank], errors[rank]);
    });
  auto head = HostExecutor::create(*parts, 0, 16, error, comms[0].get());
  ASSERT_TRUE(head) << error;
  head->initRandomWeights(5);
  {
    DistributedRunner runner(*parts, *head, *comms[0]);
    EXPECT_FALSE(generate(runner, {9, 512}, options, 256, nullptr, got, stats,
                          error));
    EXPECT_EQ(error, "token id 512 is outside the vocabulary [0, 512)");
    EXPECT_FALSE(runner.failedMidStep());
    ASSERT_TRUE(generate(runner, {9, 8, 7}, options, 256, nullptr, got, stats,
                         error))
        << error;
    EXPECT_TRUE(runner.stop(error)) << error;
  }
  for (std::thread &follower : followers)
    follower.join();
  for (int64_t rank = 1; rank < 4; ++rank)
    EXPECT_TRUE(ok[rank]) << "rank " << rank << ": " << errors[rank];
  EXPECT_EQ(got, expected);
}

TEST(PartitionedHost, ThePlanNeedsItsRanks) {
  auto parts = openArtifact("tiny-moe.tp2");
  ASSERT_TRUE(parts);
  std::string error;
  EXPECT_FALSE(HostExecutor::create(*parts, 0, 4, error));
  EXPECT_EQ(error, "the plan needs 2 ranks but 1 was started");
  LocalWorld world(3);
  auto comm = world.communicator(0);
  EXPECT_FALSE(HostExecutor::create(*parts, 0, 4, error, comm.get()));
  EXPECT_EQ(error, "the plan needs 2 ranks but 3 were started");
}

} // namespace
