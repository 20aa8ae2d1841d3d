//===- KernelBench.cpp - moe-run ARTIFACT bench-kernels -------------------===//

#include "tools/moe-run/KernelBench.h"
#include "tools/moe-run/CommandLine.h"
#include "tools/moe-run/DecodeBatch.h"

#include "runtime/Artifact.h"
#include "runtime/CudaExecutor.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>

using namespace moert;

namespace {

int run(const std::string &path, const std::vector<std::string> &args) {
  int64_t batch = 64, context = 2048, prefill = 0, repeats = 20;
  uint64_t seed = 0;
  for (const std::string &arg : args) {
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos)
      commandUsage("bench-kernels options take a value: " + arg + "=...");
    std::string name = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (name == "--batch")
      batch = parseIntegerOption(name, value, 1, 4096);
    else if (name == "--context")
      context = parseIntegerOption(name, value, 1, 1 << 20);
    else if (name == "--prefill")
      prefill = parseIntegerOption(name, value, 0, 1 << 20);
    else if (name == "--repeats")
      repeats = parseIntegerOption(name, value, 1, 10000);
    else if (name == "--weights-seed")
      seed = static_cast<uint64_t>(parseIntegerOption(name, value, 0, INT64_MAX));
    else
      commandUsage("unknown option '" + name + "' for bench-kernels");
  }
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  if (!artifact)
    throw CommandError{error};
  if (artifact->target() != "cuda")
    throw CommandError{"bench-kernels times GPU kernels: compile the "
                           "model with moec --target=cuda"};
  const StageInfo &stage = artifact->stageOfRank(0);
  if (!stage.execution || artifact->plan().ranks != 1)
    throw CommandError{"bench-kernels runs one-rank cuda plans"};
  int64_t blockSize = stage.execution->blockSize;
  int64_t length = prefill ? prefill : context + 1;
  if (length > artifact->model().maxContext)
    commandUsage("the step needs " + std::to_string(length) +
          " positions; the model's context is " +
          std::to_string(artifact->model().maxContext));
  int64_t sequences = prefill ? 1 : batch;
  int64_t perSeq = (length + blockSize - 1) / blockSize;
  std::unique_ptr<CudaExecutor> gpu =
      CudaExecutor::create(*artifact, 0, sequences * perSeq, error);
  if (!gpu || !gpu->initRandomWeights(seed, error))
    throw CommandError{error};
  double copy =
      CudaExecutor::measureCopyBandwidth(0, int64_t(1) << 30, error);
  if (copy == 0)
    throw CommandError{"measuring the copy rate: " + error};

  DecodeBatch shape{sequences, perSeq, blockSize, artifact->model().vocabSize};
  StepInputs step;
  std::vector<float> logits;
  if (prefill) {
    step = shape.prefill(prefill, prefill).front();
  } else {
    for (const StepInputs &in : shape.prefill(context))
      if (!gpu->forward(in, logits, error))
        throw CommandError{"filling the cache: " + error};
    step = shape.decode(context);
  }
  std::vector<KernelTiming> timings;
  if (!gpu->profileStep(step, static_cast<int>(repeats), timings, error))
    throw CommandError{error};

  std::printf("bench-kernels: %s on %s; %s; median of %lld runs after a "
              "warm-up (CUDA events); copy rate %.0f GB/s (device to "
              "device, read + write)\n",
              artifact->model().name.c_str(), gpu->describe().c_str(),
              prefill ? ("prefill of " + std::to_string(prefill) + " tokens")
                            .c_str()
                      : ("decode, batch " + std::to_string(batch) +
                         " at context " + std::to_string(context))
                            .c_str(),
              static_cast<long long>(repeats), copy / 1e9);
  // Each kernel runs once per layer: one line per kernel, summed.
  struct Row {
    int64_t calls = 0;
    double ms = 0, bytes = 0, flops = 0;
  };
  std::vector<std::string> order;
  std::map<std::string, Row> rows;
  double total = 0;
  for (const KernelTiming &t : timings) {
    if (!rows.count(t.name))
      order.push_back(t.name);
    Row &row = rows[t.name];
    ++row.calls;
    row.ms += t.milliseconds;
    row.bytes += t.bytes;
    row.flops += t.flops;
    total += t.milliseconds;
  }
  std::printf("%-48s %6s %10s %10s %9s %7s %9s\n", "kernel", "calls",
              "ms/call", "MB/call", "GB/s", "%copy", "TFLOP/s");
  for (const std::string &name : order) {
    const Row &row = rows[name];
    double ms = row.ms / row.calls, bytes = row.bytes / row.calls;
    double rate = bytes / (ms * 1e-3);
    // A copy reads and writes each byte: a kernel is held to half its
    // read+write rate per byte it moves.
    std::printf("%-48s %6lld %10.4f %10.3f %9.1f %6.1f%% ", name.c_str(),
                static_cast<long long>(row.calls), ms, bytes / 1e6,
                rate / 1e9, 100.0 * rate / (copy / 2));
    if (row.flops > 0)
      std::printf("%9.1f\n", row.flops / row.calls / (ms * 1e-3) / 1e12);
    else
      std::printf("%9s\n", "-");
  }
  std::printf("total: %.3f ms over %zu kernel and GEMM steps (the step's "
              "kernels, run one by one)\n",
              total, timings.size());
  return 0;
}

} // namespace

int benchKernelsCommand(const std::string &path,
                        const std::vector<std::string> &args) {
  return runCommand([&] { return run(path, args); });
}
