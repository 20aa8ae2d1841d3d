//===- CudaExecutionTest.cpp - The cuda target against the host target ----===//
//
// The small models compiled for the cuda target run in the CudaExecutor and
// are compared with the same models compiled for the host (the reference
// of the GPU code, itself checked against the plain C++ model): the logits
// of every prompt position in f32 (where bf16 rounding would flip routing
// ties), and the greedy tokens; bf16 artifacts within bf16 tolerance. On a
// machine without a GPU every case is skipped and says why.
//
// The artifacts come from MOEC_TEST_ARTIFACTS (the device machine: the
// folder scripts/gpu-artifacts.sh fills and carries over) or from the
// build, which compiles them when the CUDA toolkit is installed.
//
//===----------------------------------------------------------------------===//

#include "runtime/CudaExecutor.h"
#include "runtime/Generator.h"
#include "runtime/HostExecutor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ostream>

using namespace moert;

namespace {

std::string artifactPath(const std::string &name) {
  const char *dir = std::getenv("MOEC_TEST_ARTIFACTS");
  return std::string(dir ? dir : MOEC_TEST_ARTIFACTS_DIR) + "/" + name +
         ".moeart";
}

bool exists(const std::string &path) { return std::ifstream(path).good(); }

/// Skips the calling test when there is no GPU or no artifact, saying why.
#define REQUIRE_GPU_AND(...)                                                   \
  do {                                                                         \
    std::string status = CudaExecutor::deviceStatus();                         \
    if (!status.empty())                                                       \
      GTEST_SKIP() << "GPU check skipped: " << status;                         \
    for (const std::string &name : {__VA_ARGS__})                              \
      if (!exists(artifactPath(name)))                                         \
        GTEST_SKIP() << "GPU check skipped: no " << artifactPath(name)         \
                     << " (scripts/gpu-artifacts.sh compiles it)";             \
  } while (false)

std::unique_ptr<RankExecutor> open(const std::string &name,
                                   std::unique_ptr<Artifact> &artifact,
                                   int64_t blocks = 32) {
  std::string error;
  artifact = Artifact::open(artifactPath(name), error);
  EXPECT_TRUE(artifact) << error;
  if (!artifact)
    return nullptr;
  std::unique_ptr<RankExecutor> executor =
      RankExecutor::create(*artifact, 0, blocks, error);
  EXPECT_TRUE(executor) << name << ": " << error;
  if (executor)
    EXPECT_TRUE(executor->initRandomWeights(7, error)) << error;
  return executor;
}

StepInputs prefill(const std::vector<int32_t> &tokens, int64_t blockSize) {
  StepInputs in;
  in.sequences = 1;
  in.blocksPerSeq = (tokens.size() + blockSize - 1) / blockSize;
  for (int64_t b = 0; b < in.blocksPerSeq; ++b)
    in.blockTables.push_back(static_cast<int32_t>(in.blocksPerSeq - 1 - b));
  for (size_t i = 0; i < tokens.size(); ++i) {
    in.tokens.push_back(tokens[i]);
    in.positions.push_back(i);
    in.slotMapping.push_back(in.blockTables[i / blockSize] * blockSize +
                             i % blockSize);
    in.tokenSeq.push_back(0);
    in.logitRows.push_back(i);
  }
  return in;
}

std::vector<int32_t> somePrompt(int64_t vocab, size_t length) {
  std::vector<int32_t> prompt;
  for (size_t i = 0; i < length; ++i)
    prompt.push_back(static_cast<int32_t>((i * 37 + 11) % vocab));
  return prompt;
}

/// max |a - b| / max |b|.
double relativeError(const std::vector<float> &a, const std::vector<float> &b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

/// A cuda artifact, the host artifact it is checked against, the logits'
/// tolerance and whether the greedy tokens must agree.
struct Case {
  const char *cuda, *host;
  double tolerance;
  bool sameTokens;
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.cuda; }

class CudaModels : public ::testing::TestWithParam<Case> {};

TEST_P(CudaModels, LogitsAndTokensMatchTheHostTarget) {
  const Case &c = GetParam();
  REQUIRE_GPU_AND(c.cuda, c.host);
  std::unique_ptr<Artifact> cudaArtifact, hostArtifact;
  std::unique_ptr<RankExecutor> gpu = open(c.cuda, cudaArtifact);
  std::unique_ptr<RankExecutor> host = open(c.host, hostArtifact);
  ASSERT_TRUE(gpu && host);
  std::vector<int32_t> prompt = somePrompt(gpu->vocabSize(), 19);
  StepInputs in = prefill(prompt, gpu->blockSize());
  std::vector<float> gpuLogits, hostLogits;
  std::string error;
  ASSERT_TRUE(gpu->forward(in, gpuLogits, error)) << error;
  ASSERT_TRUE(host->forward(in, hostLogits, error)) << error;
  ASSERT_EQ(gpuLogits.size(), hostLogits.size());
  double rel = relativeError(gpuLogits, hostLogits);
  std::printf("%s vs %s: max relative logit error %.3g (%s)\n", c.cuda,
              c.host, rel,
              static_cast<CudaExecutor *>(gpu.get())->describe().c_str());
  EXPECT_LT(rel, c.tolerance);

  // Fresh executors: greedy generation from an empty cache.
  gpu = open(c.cuda, cudaArtifact);
  host = open(c.host, hostArtifact);
  ASSERT_TRUE(gpu && host);
  GenerateOptions options;
  options.maxNewTokens = 12;
  std::vector<int32_t> gpuTokens, hostTokens;
  GenerateStats stats;
  int64_t context = cudaArtifact->model().maxContext;
  ASSERT_TRUE(generate(*gpu, prompt, options, context, {}, gpuTokens, stats,
                       error))
      << error;
  ASSERT_TRUE(generate(*host, prompt, options, context, {}, hostTokens, stats,
                       error))
      << error;
  size_t same = 0;
  while (same < gpuTokens.size() && same < hostTokens.size() &&
         gpuTokens[same] == hostTokens[same])
    ++same;
  std::printf("%s: %zu of %zu greedy tokens as on the host\n", c.cuda, same,
              hostTokens.size());
  if (c.sameTokens)
    EXPECT_EQ(gpuTokens, hostTokens);
}

INSTANTIATE_TEST_SUITE_P(
    SmallModels, CudaModels,
    ::testing::Values(Case{"tiny-moe.cuda-f32", "tiny-moe.host", 1e-4, true},
                      Case{"tiny-gqa.cuda-f32", "tiny-gqa.host", 1e-4, true},
                      Case{"tiny-draft.cuda-f32", "tiny-draft.host", 1e-4,
                           true},
                      // bf16 weights and activations against the f32 host.
                      Case{"tiny-moe.cuda", "tiny-moe.host", 5e-2, false}),
    [](const auto &info) {
      std::string name = info.param.cuda;
      std::replace(name.begin(), name.end(), '-', '_');
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

// A bad request fails with a message and leaves the executor usable.
TEST(CudaExecution, BadRequestLeavesTheExecutorUsable) {
  REQUIRE_GPU_AND("tiny-moe.cuda-f32");
  std::unique_ptr<Artifact> artifact;
  std::unique_ptr<RankExecutor> gpu = open("tiny-moe.cuda-f32", artifact);
  ASSERT_TRUE(gpu);
  StepInputs bad = prefill({1, 2, 3}, gpu->blockSize());
  bad.tokens[1] = static_cast<int32_t>(gpu->vocabSize());
  std::vector<float> logits;
  std::string error;
  EXPECT_FALSE(gpu->forward(bad, logits, error));
  EXPECT_NE(error.find("outside the vocabulary"), std::string::npos) << error;
  EXPECT_TRUE(gpu->forward(prefill({1, 2, 3}, gpu->blockSize()), logits,
                           error))
      << error;
  EXPECT_EQ(logits.size(), static_cast<size_t>(3 * gpu->vocabSize()));
}

// What the CUDA executor refuses, with or without a GPU.
TEST(CudaExecution, RefusesAHostArtifact) {
  std::string path = artifactPath("tiny-moe.host");
  if (!exists(path))
    GTEST_SKIP() << "no " << path;
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  ASSERT_TRUE(artifact) << error;
  EXPECT_FALSE(CudaExecutor::create(*artifact, 0, 8, error));
  EXPECT_EQ(error, "the artifact was compiled for host; this moe-run runs "
                   "cuda");
}

// Without a GPU, creating an executor fails with the reason.
TEST(CudaExecution, WithoutAGPUCreationSaysWhy) {
  std::string status = CudaExecutor::deviceStatus();
  if (status.empty())
    GTEST_SKIP() << "a GPU is present";
  std::string path = artifactPath("tiny-moe.cuda-f32");
  if (!exists(path))
    GTEST_SKIP() << "no " << path;
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  ASSERT_TRUE(artifact) << error;
  EXPECT_FALSE(RankExecutor::create(*artifact, 0, 8, error));
  EXPECT_EQ(error, status);
  std::printf("GPU checks skipped here: %s\n", status.c_str());
}

} // namespace
