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

#include "ForkCheck.h"
#include "StepByStep.h"
#include "StepHelpers.h"

#include "runtime/CudaExecutor.h"
#include "runtime/Generator.h"
#include "runtime/HostExecutor.h"
#include "runtime/LocalRunner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <ostream>
#include <sstream>

using namespace moert;
using moert::test::compareStepByStep;
using moert::test::ForkErrors;
using moert::test::runFork;
using moert::test::keepUntil;
using moert::test::relativeError;
using moert::test::somePrompt;
using moert::test::StepCheck;
using moert::test::summarize;
using moert::test::testName;

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

/// A prefill of `tokens` in blocks numbered backwards (scattered in the
/// pool).
StepInputs prefill(const std::vector<int32_t> &tokens, int64_t blockSize) {
  int32_t blocks = static_cast<int32_t>((tokens.size() + blockSize - 1) /
                                        blockSize);
  std::vector<int32_t> table;
  for (int32_t b = 0; b < blocks; ++b)
    table.push_back(blocks - 1 - b);
  return test::prefill(tokens, table, blockSize);
}

/// A cuda artifact, the host artifact it is checked against, the logits'
/// tolerance and whether the greedy tokens must agree; CudaSteps compares
/// up to the first step of a kernel named with `until` (empty: all).
struct Case {
  const char *cuda, *host;
  double tolerance;
  bool sameTokens;
  const char *until = "";
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
  std::printf("%s vs %s: max relative logit error %.3g (%s)\n", c.cuda, c.host,
              rel, static_cast<CudaExecutor *>(gpu.get())->describe().c_str());
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
  ASSERT_TRUE(
      generate(*gpu, prompt, options, context, {}, gpuTokens, stats, error))
      << error;
  ASSERT_TRUE(
      generate(*host, prompt, options, context, {}, hostTokens, stats, error))
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
                      Case{"tiny-moe.cuda", "tiny-moe.host", 5e-2, false},
                      // The 19-token prefill through grouped cuBLAS GEMMs.
                      Case{"tiny-moe.expert-gemm.cuda-f32", "tiny-moe.host",
                           1e-4, true},
                      Case{"tiny-moe.expert-gemm.cuda", "tiny-moe.host", 5e-2,
                           false},
                      // The 19-token prefill's attention on the tensor
                      // cores (kernel_flash_attend).
                      Case{"tiny-moe.flash.cuda", "tiny-moe.host", 5e-2,
                           false}),
    [](const auto &info) { return testName(info.param.cuda); });

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
  EXPECT_TRUE(gpu->forward(prefill({1, 2, 3}, gpu->blockSize()), logits, error))
      << error;
  EXPECT_EQ(logits.size(), static_cast<size_t>(3 * gpu->vocabSize()));
}

/// Decode steps of `batch` sequences after a prefill of `context` tokens
/// each, on `executor`; the logits of every decode step, concatenated.
std::vector<float> decodeSteps(RankExecutor &executor, int64_t batch,
                               int64_t context, int64_t steps) {
  int64_t blockSize = executor.blockSize();
  int64_t perSeq = (context + steps + blockSize - 1) / blockSize;
  std::vector<float> all, logits;
  std::string error;
  auto slot = [&](int64_t b, int64_t p) {
    return static_cast<int32_t>((b * perSeq + p / blockSize) * blockSize +
                                p % blockSize);
  };
  std::vector<int32_t> tables;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < perSeq; ++i)
      tables.push_back(static_cast<int32_t>(b * perSeq + i));
  for (int64_t b = 0; b < batch; ++b) {
    StepInputs in;
    in.sequences = 1;
    in.blocksPerSeq = perSeq;
    in.blockTables.assign(tables.begin() + b * perSeq,
                          tables.begin() + (b + 1) * perSeq);
    for (int64_t p = 0; p < context; ++p) {
      in.tokens.push_back(static_cast<int32_t>((p * 13 + b) % 100));
      in.positions.push_back(static_cast<int32_t>(p));
      in.slotMapping.push_back(slot(b, p));
      in.tokenSeq.push_back(0);
    }
    in.logitRows = {static_cast<int32_t>(context - 1)};
    EXPECT_TRUE(executor.forward(in, logits, error)) << error;
  }
  for (int64_t step = 0; step < steps; ++step) {
    StepInputs in;
    in.sequences = batch;
    in.blocksPerSeq = perSeq;
    in.blockTables = tables;
    for (int64_t b = 0; b < batch; ++b) {
      in.tokens.push_back(static_cast<int32_t>((step * 7 + b) % 100));
      in.positions.push_back(static_cast<int32_t>(context + step));
      in.slotMapping.push_back(slot(b, context + step));
      in.tokenSeq.push_back(static_cast<int32_t>(b));
      in.logitRows.push_back(static_cast<int32_t>(b));
    }
    EXPECT_TRUE(executor.forward(in, logits, error)) << error;
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

// Every kernel on the GPU against the host's loop kernels, step by step on
// activations poisoned with NaN first (StepByStep.h): the first step that
// differs, or leaves output unwritten, names the kernel at fault.
class CudaSteps : public ::testing::TestWithParam<Case> {};

TEST_P(CudaSteps, EveryStepWritesWhatTheHostKernelsWrite) {
  const Case &c = GetParam();
  REQUIRE_GPU_AND(c.cuda, c.host);
  std::unique_ptr<Artifact> cudaArtifact, hostArtifact;
  std::unique_ptr<RankExecutor> gpu = open(c.cuda, cudaArtifact);
  std::unique_ptr<RankExecutor> host = open(c.host, hostArtifact);
  ASSERT_TRUE(gpu && host);
  StepInputs in =
      prefill(somePrompt(gpu->vocabSize(), 19), gpu->blockSize());
  std::string error;
  std::vector<StepCheck> checks = compareStepByStep(
      *gpu, *cudaArtifact->stages()[0].execution, *host,
      *hostArtifact->stages()[0].execution, in, error);
  ASSERT_FALSE(checks.empty()) << error;
  if (*c.until)
    ASSERT_TRUE(keepUntil(checks, c.until)) << "no " << c.until << " step";
  for (const StepCheck &check : checks) {
    EXPECT_EQ(check.poisoned, 0u)
        << c.cuda << " step " << check.step << " (" << check.what
        << ") left " << check.poisoned << " elements unwritten";
    EXPECT_LT(check.error, c.tolerance)
        << c.cuda << " step " << check.step << " (" << check.what << ")";
  }
  std::printf("%s vs %s: %s\n", c.cuda, c.host, summarize(checks).c_str());
}

INSTANTIATE_TEST_SUITE_P(
    SmallModels, CudaSteps,
    ::testing::Values(Case{"tiny-moe.cuda-f32", "tiny-moe.host", 1e-4, true},
                      Case{"tiny-gqa.cuda-f32", "tiny-gqa.host", 1e-4, true},
                      Case{"tiny-draft.cuda-f32", "tiny-draft.host", 1e-4,
                           true},
                      // The 19-token prefill through the grouped GEMMs.
                      Case{"tiny-moe.expert-gemm.cuda-f32",
                           "tiny-moe.expert-gemm.host", 1e-4, true},
                      // The tensor-core attention (bf16) against its host
                      // form, up to its first launch: a wrong fragment
                      // layout shows as an error of order 1, bf16 rounding
                      // as about 1e-2.
                      Case{"tiny-moe.flash.cuda", "tiny-moe.flash.grid.host",
                           5e-2, false, "flash"}),
    [](const auto &info) { return testName(info.param.cuda); });

// A forked sequence's shared block, copied on the GPU (cudaMemcpyAsync on
// the executor's stream) before the fork's first decode: the fork and the
// original decode what their whole sequences give from scratch; without
// the copy the fork does not.
TEST(CudaExecution, AForkCopiesItsSharedBlockOnTheGpu) {
  REQUIRE_GPU_AND("tiny-moe.cuda-f32");
  for (bool skipCopy : {false, true}) {
    std::unique_ptr<Artifact> artifact;
    std::unique_ptr<RankExecutor> gpu = open("tiny-moe.cuda-f32", artifact, 16);
    ASSERT_TRUE(gpu);
    ForkErrors errors;
    runFork(*gpu, skipCopy, errors);
    std::printf("fork %s the copy: fork error %.3g, original %.3g\n",
                skipCopy ? "without" : "with", errors.fork, errors.original);
    if (skipCopy)
      EXPECT_GT(errors.fork, 1e-2);
    else
      EXPECT_LT(errors.fork, 1e-4);
    EXPECT_LT(errors.original, 1e-4);
  }
}

// Decode steps replayed from CUDA graphs (batch 3, padded to its bucket of
// 4) compute what the same steps compute launched one by one.
TEST(CudaExecution, GraphedDecodeStepsMatchLaunchedOnes) {
  REQUIRE_GPU_AND("tiny-moe.cuda-f32");
  std::unique_ptr<Artifact> artifact;
  std::unique_ptr<RankExecutor> launched = open("tiny-moe.cuda-f32", artifact);
  std::unique_ptr<RankExecutor> graphed = open("tiny-moe.cuda-f32", artifact);
  ASSERT_TRUE(launched && graphed);
  static_cast<CudaExecutor *>(graphed.get())->useGraphs(true);
  std::vector<float> a = decodeSteps(*launched, 3, 9, 5);
  std::vector<float> b = decodeSteps(*graphed, 3, 9, 5);
  ASSERT_EQ(a.size(), static_cast<size_t>(5 * 3 * launched->vocabSize()));
  ASSERT_EQ(a.size(), b.size());
  double rel = relativeError(b, a);
  std::printf("graphed vs launched decode steps: max relative error %.3g\n",
              rel);
  EXPECT_LT(rel, 1e-5);
}

// Partitioned cuda plans, every rank a thread on the one GPU (the in-process
// communicator, transfers staged through the host), compute what the whole
// host plan computes.
class CudaPartitioned : public ::testing::TestWithParam<Case> {};

TEST_P(CudaPartitioned, ComputeWhatTheWholeHostPlanComputes) {
  const Case &c = GetParam();
  REQUIRE_GPU_AND(c.cuda, c.host);
  std::string error;
  std::unique_ptr<Artifact> parts = Artifact::open(artifactPath(c.cuda), error);
  ASSERT_TRUE(parts) << error;
  std::unique_ptr<LocalRunner> gpu = LocalRunner::create(*parts, 32, error);
  ASSERT_TRUE(gpu) << error;
  ASSERT_TRUE(gpu->initRandomWeights(7, error)) << error;
  std::unique_ptr<Artifact> wholeArtifact;
  std::unique_ptr<RankExecutor> host = open(c.host, wholeArtifact);
  ASSERT_TRUE(host);
  std::vector<int32_t> prompt = somePrompt(host->vocabSize(), 19);
  StepInputs in = prefill(prompt, host->blockSize());
  std::vector<float> gpuLogits, hostLogits;
  ASSERT_TRUE(gpu->forward(in, gpuLogits, error)) << error;
  ASSERT_TRUE(host->forward(in, hostLogits, error)) << error;
  double rel = relativeError(gpuLogits, hostLogits);
  std::printf("%s (%lld ranks on one GPU) vs %s: max relative logit error "
              "%.3g\n",
              c.cuda, static_cast<long long>(gpu->ranks()), c.host, rel);
  EXPECT_LT(rel, c.tolerance);
}

INSTANTIATE_TEST_SUITE_P(SmallModels, CudaPartitioned,
                         ::testing::Values(Case{"tiny-moe.tp2-pp2.cuda-f32",
                                                "tiny-moe.host", 1e-4, true},
                                           Case{"tiny-gqa.tp2-ep2.cuda-f32",
                                                "tiny-gqa.host", 1e-4, true},
                                           Case{"tiny-gqa.tp2-a2a.cuda-f32",
                                                "tiny-gqa.host", 1e-4, true},
                                           Case{"tiny-gqa.tp2-ep2.expert-gemm."
                                                "cuda-f32",
                                                "tiny-gqa.host", 1e-4, true}),
                         [](const auto &info) {
                           return testName(info.param.cuda);
                         });

// The runtime's kernel parameters agree with what moec's PTX declares, for
// every launch of every cuda test artifact (no GPU needed).
TEST(CudaExecution, LaunchesPassWhatTheKernelsDeclare) {
  int checked = 0;
  for (const char *name :
       {"tiny-moe.cuda-f32", "tiny-gqa.cuda-f32", "tiny-draft.cuda-f32",
        "tiny-moe.cuda", "tiny-moe.tp2-pp2.cuda-f32",
        "tiny-gqa.tp2-ep2.cuda-f32", "tiny-gqa.tp2-a2a.cuda-f32",
        "tiny-moe.expert-gemm.cuda-f32", "tiny-moe.expert-gemm.cuda",
        "tiny-gqa.tp2-ep2.expert-gemm.cuda-f32"}) {
    if (!exists(artifactPath(name)))
      continue;
    std::string error;
    std::unique_ptr<Artifact> artifact =
        Artifact::open(artifactPath(name), error);
    ASSERT_TRUE(artifact) << error;
    EXPECT_FALSE(artifact->cudaModules().empty()) << name;
    EXPECT_EQ(CudaExecutor::checkKernelParameters(*artifact), "") << name;
    ++checked;
  }
  if (!checked)
    GTEST_SKIP() << "no cuda artifacts in " << artifactPath("");
}

// A plan whose launch passes a buffer the kernel does not declare is
// refused with the kernel's name.
TEST(CudaExecution, ParameterMismatchIsReported) {
  std::string path = artifactPath("tiny-moe.cuda-f32");
  if (!exists(path))
    GTEST_SKIP() << "no " << path;
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  // One more parameter for the router (x, w, indices, weights: four 2-d
  // buffers, 7 descriptor fields each): its first argument again.
  std::string edited = text.str();
  std::string from = "\"function\": \"kernel_router_kernel\",";
  size_t at = edited.find(from, edited.find("\"stages\":"));
  ASSERT_NE(at, std::string::npos);
  size_t params = edited.find("\"params\": [", at);
  ASSERT_NE(params, std::string::npos);
  edited.insert(params + 11, "\n              0,");
  // Re-sign: the reader checks the checksum.
  size_t sum = edited.find("\"checksum\": \"fnv1a64:") + 21;
  edited.replace(sum, 16, std::string(16, '0'));
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016llx",
                static_cast<unsigned long long>(fnv1a64(edited)));
  edited.replace(sum, 16, digits);
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::parse(edited, error);
  ASSERT_TRUE(artifact) << error;
  EXPECT_EQ(CudaExecutor::checkKernelParameters(*artifact),
            "kernel kernel_router_kernel (kernel_router_kernel, sm_90a) "
            "declares 28 parameters; the plan passes 35");
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
