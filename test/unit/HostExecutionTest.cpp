//===- HostExecutionTest.cpp - Host artifacts against the reference -------===//
//
// The small models compiled by moec for the host (at build time) run in the
// runtime's HostExecutor and are compared with the independent reference of
// the model math (ReferenceModel.h): logits of every prompt position, greedy
// tokens, a batch of two sequences with scattered KV blocks, and the errors
// of bad requests (after which the executor must still work).
//
//===----------------------------------------------------------------------===//

#include "ReferenceModel.h"
#include "StepByStep.h"
#include "HostLoad.h"
#include "StepHelpers.h"

#include "runtime/Generator.h"
#include "runtime/HostExecutor.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <fstream>
#include <sstream>

using namespace moert;
using namespace moert::test;

namespace {

class HostModels : public ::testing::TestWithParam<const char *> {};

TEST_P(HostModels, PrefillLogitsMatchTheReference) {
  Loaded m = load(GetParam());
  ASSERT_TRUE(m.executor);
  double err = prefillError(m);
  EXPECT_GE(err, 0);
  EXPECT_LT(err, 1e-4) << GetParam();
}

TEST_P(HostModels, GreedyTokensMatchTheReference) {
  Loaded m = load(GetParam());
  ASSERT_TRUE(m.executor);
  std::vector<int32_t> prompt = somePrompt(m.config.vocabSize, 6);
  GenerateOptions options;
  options.maxNewTokens = 12;
  std::vector<int32_t> output, streamed;
  GenerateStats stats;
  std::string error;
  ASSERT_TRUE(generate(*m.executor, prompt, options, m.config.maxContext,
                       [&](int32_t t) { streamed.push_back(t); }, output,
                       stats, error))
      << error;
  EXPECT_EQ(output, moec::reference::greedyGenerate(m.config, m.weights(),
                                                    prompt, 12));
  EXPECT_EQ(streamed, output);
  EXPECT_EQ(stats.outputTokens, 12);
  EXPECT_GT(stats.timeToFirstToken, 0);
}

INSTANTIATE_TEST_SUITE_P(SmallModels, HostModels,
                         ::testing::Values("tiny-moe", "tiny-gqa",
                                           "tiny-draft", "tiny-moe.grid",
                                           "tiny-gqa.grid", "tiny-draft.grid",
                                           "tiny-moe.grid-scratch",
                                           // The 21-token prefill through
                                           // the dense FFN kernel, not GEMMs.
                                           "tiny-draft.ffn-kernel",
                                           "tiny-draft.ffn-kernel.grid"),
                         [](const auto &info) { return testName(info.param); });

// The GPU kernels' code (grid form, one thread per block) against the loop
// kernels, step by step: every buffer each step writes, on activations
// poisoned with NaN first (StepByStep.h). The 21-token prefill takes the
// grouped expert GEMMs in the expert-gemm plans, and the tensor-core
// attention in the flash plans. Its bf16 operands (as on the GPU) set the
// tolerance of the flash plans, which are compared up to their first flash
// step only: past it, a bf16 difference can flip a routing choice.
struct GridPair {
  const char *grid, *loops;
  double tolerance = 1e-5;
  /// Compare up to the first kernel whose name has this (empty: all).
  const char *until = "";
};

class GridSteps : public ::testing::TestWithParam<GridPair> {};

TEST_P(GridSteps, EveryStepWritesWhatTheLoopKernelsWrite) {
  Loaded grid = load(GetParam().grid), loops = load(GetParam().loops);
  ASSERT_TRUE(grid.executor && loops.executor);
  std::vector<int32_t> prompt = somePrompt(grid.config.vocabSize, 21);
  StepInputs in = prefill(prompt, {5, 2}, 16);
  std::string error;
  std::vector<StepCheck> checks = compareStepByStep(
      *grid.executor, *grid.artifact->stages()[0].execution, *loops.executor,
      *loops.artifact->stages()[0].execution, in, error);
  ASSERT_FALSE(checks.empty()) << error;
  std::string until = GetParam().until;
  if (!until.empty())
    ASSERT_TRUE(keepUntil(checks, until)) << "no " << until << " step";
  size_t kernels = 0;
  for (const StepCheck &check : checks) {
    EXPECT_EQ(check.poisoned, 0u)
        << "step " << check.step << " (" << check.what << ") left "
        << check.poisoned << " elements unwritten";
    EXPECT_LT(check.error, GetParam().tolerance)
        << "step " << check.step << " (" << check.what << ")";
    kernels += check.what.rfind("kernel", 0) == 0;
  }
  EXPECT_GT(kernels, until.empty() ? 10u : 3u);
  std::printf("%s\n", summarize(checks).c_str());
}

INSTANTIATE_TEST_SUITE_P(
    SmallModels, GridSteps,
    ::testing::Values(GridPair{"tiny-moe.grid", "tiny-moe"},
                      GridPair{"tiny-gqa.grid", "tiny-gqa"},
                      GridPair{"tiny-moe.grid-scratch", "tiny-moe"},
                      GridPair{"tiny-moe.expert-gemm.grid",
                               "tiny-moe.expert-gemm"},
                      GridPair{"tiny-draft.ffn-gemm.grid",
                               "tiny-draft.ffn-gemm"},
                      GridPair{"tiny-moe.flash.grid", "tiny-moe", 1e-2,
                               "flash"},
                      GridPair{"tiny-gqa.flash.grid", "tiny-gqa", 1e-2,
                               "flash"},
                      GridPair{"tiny-draft.flash.grid", "tiny-draft", 1e-2,
                               "flash"}),
    [](const auto &info) { return testName(info.param.grid); });

// The activations of the small models' plans share slots
// (runtime/BufferSlots.h) only when no step needs two of them at once; the
// logits and every other test of this file run through those slots.
TEST(HostExecution, ActivationSlotsNeverHoldTwoLiveBuffers) {
  for (const char *name :
       {"tiny-moe", "tiny-gqa.grid", "tiny-moe.expert-gemm.grid",
        "tiny-moe.flash.grid", "tiny-draft.ffn-gemm.grid",
        "tiny-moe.tp2-pp2"}) {
    std::string error;
    auto artifact = Artifact::open(artifactPath(name), error);
    ASSERT_TRUE(artifact) << error;
    for (const StageInfo &stage : artifact->stages()) {
      const ExecutionInfo &plan = *stage.execution;
      BufferSlots slots = BufferSlots::of(plan);
      auto live = liveRanges(plan);
      EXPECT_LT(slots.count, static_cast<int64_t>(plan.buffers.size()) / 3)
          << name;
      for (size_t x = 0; x < plan.buffers.size(); ++x) {
        bool activation = plan.buffers[x].kind == BufferInfo::Kind::Activation;
        EXPECT_EQ(slots.slotOf[x] >= 0, activation) << name << " " << x;
        for (size_t y = x + 1; y < plan.buffers.size(); ++y)
          if (slots.slotOf[x] >= 0 && slots.slotOf[x] == slots.slotOf[y])
            EXPECT_TRUE(live[x].second < live[y].first ||
                        live[y].second < live[x].first)
                << name << ": buffers " << x << " and " << y;
      }
    }
  }
}

// runPrefix poisons the activations, so output a step leaves unwritten
// shows: read before the step that writes it has run, a buffer is all NaN;
// after, all finite.
TEST(StepByStep, AnUnwrittenOutputShowsAsPoison) {
  Loaded m = load("tiny-moe");
  ASSERT_TRUE(m.executor);
  const ExecutionInfo &plan = *m.artifact->stages()[0].execution;
  StepInputs in = prefill(somePrompt(m.config.vocabSize, 5), {0}, 16);
  // Step 0 (the embedding) writes its last argument; read it after 0 steps.
  int64_t out = plan.steps[0].args.back();
  std::vector<float> values;
  std::string error;
  ASSERT_TRUE(m.executor->runPrefix(in, 0, out, values, error)) << error;
  ASSERT_FALSE(values.empty());
  EXPECT_TRUE(std::all_of(values.begin(), values.end(),
                          [](float v) { return std::isnan(v); }));
  ASSERT_TRUE(m.executor->runPrefix(in, 1, out, values, error)) << error;
  EXPECT_TRUE(std::all_of(values.begin(), values.end(),
                          [](float v) { return std::isfinite(v); }));
  EXPECT_FALSE(m.executor->runPrefix(in, plan.steps.size() + 1, out, values,
                                     error));
  EXPECT_NE(error.find("at most"), std::string::npos) << error;
  for (int64_t bad : {int64_t(-1), static_cast<int64_t>(plan.buffers.size())}) {
    EXPECT_FALSE(m.executor->runPrefix(in, 1, bad, values, error)) << bad;
    EXPECT_NE(error.find("a buffer below"), std::string::npos) << error;
  }
}

// Two sequences of different lengths in one step, their blocks interleaved
// in the pool: each gets the logits it gets alone.
TEST(HostExecution, MixedBatchMatchesEachSequenceAlone) {
  Loaded m = load("tiny-moe");
  ASSERT_TRUE(m.executor);
  std::vector<int32_t> a = somePrompt(m.config.vocabSize, 19);
  std::vector<int32_t> b = {3, 1, 4, 1, 5};
  StepInputs in;
  in.sequences = 2;
  in.blocksPerSeq = 2;
  in.blockTables = {4, 1, 3, 0}; // a: blocks 4, 1; b: blocks 3, 0
  auto add = [&](const std::vector<int32_t> &tokens, int32_t seq) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      int32_t block = in.blockTables[seq * 2 + i / 16];
      in.tokens.push_back(tokens[i]);
      in.positions.push_back(i);
      in.slotMapping.push_back(block * 16 + i % 16);
      in.tokenSeq.push_back(seq);
    }
  };
  add(a, 0);
  add(b, 1);
  in.logitRows = {static_cast<int32_t>(a.size()) - 1,
                  static_cast<int32_t>(a.size() + b.size()) - 1};
  std::vector<float> logits;
  std::string error;
  ASSERT_TRUE(m.executor->forward(in, logits, error)) << error;
  int64_t vocab = m.config.vocabSize;
  std::vector<float> refA =
      moec::reference::forward(m.config, m.weights(), a);
  std::vector<float> refB =
      moec::reference::forward(m.config, m.weights(), b);
  std::vector<float> lastA(refA.end() - vocab, refA.end());
  std::vector<float> lastB(refB.end() - vocab, refB.end());
  EXPECT_LT(relativeError({logits.begin(), logits.begin() + vocab}, lastA),
            1e-4);
  EXPECT_LT(relativeError({logits.begin() + vocab, logits.end()}, lastB),
            1e-4);
}

// A decode step after a prefill reads the cache the prefill wrote.
TEST(HostExecution, DecodeStepReadsTheCache) {
  Loaded m = load("tiny-gqa");
  ASSERT_TRUE(m.executor);
  std::vector<int32_t> prompt = somePrompt(m.config.vocabSize, 16);
  std::vector<float> logits;
  std::string error;
  std::vector<int32_t> table = {7, 9};
  ASSERT_TRUE(m.executor->forward(prefill(prompt, table, 16), logits, error));
  StepInputs next;
  next.sequences = 1;
  next.blocksPerSeq = 2;
  next.blockTables = table;
  next.tokens = {42};
  next.positions = {16};
  next.slotMapping = {9 * 16};
  next.tokenSeq = {0};
  next.logitRows = {0};
  ASSERT_TRUE(m.executor->forward(next, logits, error)) << error;
  prompt.push_back(42);
  std::vector<float> ref = moec::reference::forward(m.config, m.weights(),
                                                    prompt);
  EXPECT_LT(relativeError(logits, {ref.end() - m.config.vocabSize, ref.end()}),
            1e-4);
}

TEST(HostExecution, BadRequestsAreRefusedAndTheExecutorStillWorks) {
  Loaded m = load("tiny-moe", 4);
  ASSERT_TRUE(m.executor);
  std::vector<float> logits;
  std::string error;
  StepInputs good = prefill({1, 2, 3}, {0}, 16);

  StepInputs badToken = good;
  badToken.tokens[1] = 512;
  EXPECT_FALSE(m.executor->forward(badToken, logits, error));
  EXPECT_EQ(error, "token id 512 is outside the vocabulary [0, 512)");

  StepInputs badBlock = good;
  badBlock.blockTables = {4};
  EXPECT_FALSE(m.executor->forward(badBlock, logits, error));
  EXPECT_EQ(error, "block 4 is outside the cache's 4 blocks");

  StepInputs badRow = good;
  badRow.logitRows = {3};
  EXPECT_FALSE(m.executor->forward(badRow, logits, error));
  EXPECT_EQ(error, "logit row 3 is not a token of the step");

  StepInputs empty;
  EXPECT_FALSE(m.executor->forward(empty, logits, error));
  EXPECT_EQ(error, "a step needs at least one token");

  GenerateOptions options;
  std::vector<int32_t> output;
  GenerateStats stats;
  EXPECT_FALSE(generate(*m.executor, {}, options, 256, nullptr, output, stats,
                        error));
  EXPECT_EQ(error, "the prompt is empty");
  options.maxNewTokens = 250;
  EXPECT_FALSE(generate(*m.executor, {1, 2, 3, 4, 5, 6, 7}, options, 256,
                        nullptr, output, stats, error));
  EXPECT_EQ(error,
            "prompt (7) + new tokens (250) exceed the model's context of 256");
  options.maxNewTokens = 100; // 4 blocks of 16 hold 64 tokens
  EXPECT_FALSE(generate(*m.executor, {1, 2, 3}, options, 256, nullptr, output,
                        stats, error));
  EXPECT_NE(error.find("the KV cache is too small"), std::string::npos)
      << error;
  options.sampling.topP = 1.5f;
  options.maxNewTokens = 4;
  EXPECT_FALSE(generate(*m.executor, {1, 2, 3}, options, 256, nullptr, output,
                        stats, error));

  // Nothing above broke the executor.
  ASSERT_TRUE(m.executor->forward(good, logits, error)) << error;
  std::vector<float> ref =
      moec::reference::forward(m.config, m.weights(), {1, 2, 3});
  EXPECT_LT(relativeError(logits, ref), 1e-4);
}

TEST(HostExecution, ArtifactsWithoutAHostPlanAreRefused) {
  std::ifstream file(artifactPath("tiny-moe"));
  std::stringstream text;
  text << file.rdbuf();
  std::string error;
  std::unique_ptr<Artifact> artifact =
      Artifact::parse(text.str(), error, "tiny-moe");
  ASSERT_TRUE(artifact) << error;
  EXPECT_FALSE(HostExecutor::create(*artifact, 0, 0, error));
  EXPECT_EQ(error, "the KV cache needs at least one block, got 0");
  EXPECT_FALSE(HostExecutor::create(*artifact, 1, 4, error));
  EXPECT_EQ(error, "rank 1 is out of range for a plan of 1 rank");
}

TEST(HostExecution, RandomWeightsAreDeterministic) {
  Loaded a = load("tiny-draft"), b = load("tiny-draft");
  ASSERT_TRUE(a.executor && b.executor);
  const char *name = "model.layers.0.mlp.up_proj.weight";
  ASSERT_TRUE(a.executor->weight(name));
  EXPECT_EQ(*a.executor->weight(name), *b.executor->weight(name));
  b.executor->initRandomWeights(8);
  EXPECT_NE(*a.executor->weight(name), *b.executor->weight(name));
  EXPECT_EQ(a.executor->weight("model.norm.weight")->front(), 1.0f);
}

} // namespace

namespace {
/// Writes `tensors` (name -> shape, f32 values) as a safetensors file, in
/// f32 or (rounded to nearest even) bf16.
void writeSafetensors(const std::string &path,
                      const std::map<std::string, std::pair<std::vector<int64_t>,
                                                            std::vector<float>>>
                          &tensors,
                      bool bf16) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto &[name, tensor] : tensors) {
    size_t begin = data.size();
    for (float value : tensor.second) {
      uint32_t bits;
      std::memcpy(&bits, &value, 4);
      if (bf16) {
        uint16_t half = static_cast<uint16_t>(
            (bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
        data.append(reinterpret_cast<const char *>(&half), 2);
      } else {
        data.append(reinterpret_cast<const char *>(&bits), 4);
      }
    }
    header[name] = {{"dtype", bf16 ? "BF16" : "F32"},
                    {"shape", tensor.first},
                    {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  uint64_t size = text.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(&size), 8);
  out << text << data;
}

float roundToBF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  bits = ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) << 16;
  std::memcpy(&value, &bits, 4);
  return value;
}
} // namespace

// Weights saved to safetensors (f32, then bf16) and loaded back give the
// same logits (bf16: the same as weights rounded to bf16); a checkpoint
// missing a weight or with a wrong shape is refused, naming the tensor.
TEST(HostExecution, LoadsSafetensorsCheckpoints) {
  Loaded m = load("tiny-moe");
  ASSERT_TRUE(m.executor);
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>
      tensors;
  for (const WeightInfo &w : m.artifact->stages()[0].weights)
    tensors[w.name] = {w.shape, *m.executor->weight(w.name)};
  std::string dir = ::testing::TempDir();
  writeSafetensors(dir + "/f32.safetensors", tensors, false);
  writeSafetensors(dir + "/bf16.safetensors", tensors, true);

  Loaded other = load("tiny-moe");
  other.executor->initRandomWeights(99);
  std::string error;
  int64_t calls = 0, lastDone = 0, lastTotal = 0;
  ASSERT_TRUE(other.executor->loadWeights(
      dir + "/f32.safetensors", error, [&](int64_t done, int64_t total) {
        ++calls;
        lastDone = done;
        lastTotal = total;
      }))
      << error;
  EXPECT_EQ(calls, static_cast<int64_t>(tensors.size()));
  EXPECT_EQ(lastDone, lastTotal);
  std::vector<float> expected, got;
  StepInputs in = prefill({5, 6, 7, 8}, {0}, 16);
  ASSERT_TRUE(m.executor->forward(in, expected, error));
  ASSERT_TRUE(other.executor->forward(in, got, error));
  EXPECT_EQ(got, expected);

  ASSERT_TRUE(other.executor->loadWeights(dir + "/bf16.safetensors", error))
      << error;
  const char *name = "model.layers.1.self_attn.q_proj.weight";
  const std::vector<float> &original = *m.executor->weight(name);
  const std::vector<float> &loaded = *other.executor->weight(name);
  ASSERT_EQ(original.size(), loaded.size());
  for (size_t i = 0; i < original.size(); ++i)
    ASSERT_EQ(loaded[i], roundToBF16(original[i])) << i;

  auto missing = tensors;
  missing.erase("lm_head.weight");
  writeSafetensors(dir + "/missing.safetensors", missing, false);
  EXPECT_FALSE(other.executor->loadWeights(dir + "/missing.safetensors", error));
  EXPECT_NE(error.find("'lm_head.weight'"), std::string::npos) << error;

  auto wrong = tensors;
  wrong["model.norm.weight"].first = {64, 2};
  writeSafetensors(dir + "/wrong.safetensors", wrong, false);
  EXPECT_FALSE(other.executor->loadWeights(dir + "/wrong.safetensors", error));
  EXPECT_NE(error.find("model.norm.weight"), std::string::npos) << error;
}
