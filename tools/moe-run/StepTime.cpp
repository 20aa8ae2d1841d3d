//===- StepTime.cpp - moe-run ARTIFACT step-time --------------------------===//

#include "tools/moe-run/StepTime.h"
#include "tools/moe-run/CommandLine.h"
#include "tools/moe-run/DecodeBatch.h"

#include "runtime/Artifact.h"
#include "runtime/CudaExecutor.h"
#include "runtime/LocalRunner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

using namespace moert;

namespace {

struct Options {
  std::vector<int64_t> batches = {1, 32};
  int64_t context = 512, steps = 20, warmup = 3;
  uint64_t weightsSeed = 0;
};

Options parse(const std::vector<std::string> &args) {
  Options o;
  for (const std::string &arg : args) {
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos)
      commandUsage("step-time options take a value: " + arg + "=...");
    std::string name = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (name == "--batch") {
      o.batches.clear();
      std::stringstream list(value);
      std::string item;
      while (std::getline(list, item, ','))
        o.batches.push_back(parseIntegerOption(name, item, 1, 4096));
      if (o.batches.empty())
        commandUsage("--batch needs at least one batch size");
    } else if (name == "--context") {
      o.context = parseIntegerOption(name, value, 1, 1 << 20);
    } else if (name == "--steps") {
      o.steps = parseIntegerOption(name, value, 1, 100000);
    } else if (name == "--warmup") {
      o.warmup = parseIntegerOption(name, value, 0, 100000);
    } else if (name == "--weights-seed") {
      o.weightsSeed = static_cast<uint64_t>(parseIntegerOption(name, value, 0, INT64_MAX));
    } else {
      commandUsage("unknown option '" + name + "' for step-time");
    }
  }
  return o;
}

/// Bytes one decode step of `batch` sequences at `context` must read on the
/// ranks' stages: every weight except the routed experts', the experts the
/// batch is expected to route to (E (1 - (1 - 1/E)^(batch k)) of E), and
/// the K and V cached so far.
double floorBytes(const Artifact &artifact, int64_t batch, int64_t context) {
  const ModelInfo &model = artifact.model();
  double dense = 0, experts = 0;
  for (const StageInfo &stage : artifact.stages())
    for (const WeightInfo &weight : stage.weights)
      (weight.name.find(".mlp.experts.") != std::string::npos ? experts
                                                              : dense) +=
          static_cast<double>(weight.localBytes()) * stage.ranks;
  double fraction = 1;
  if (model.experts > 0)
    fraction = 1 - std::pow(1 - 1.0 / model.experts,
                            static_cast<double>(batch * model.topK));
  double kv = 0;
  for (const StageInfo &stage : artifact.stages())
    if (stage.execution)
      kv += 2.0 * stage.execution->kvLayers * stage.execution->kvWidth *
            dtypeSize(stage.execution->kvDtype) * stage.ranks;
  return dense + experts * fraction +
         kv * static_cast<double>(batch) * static_cast<double>(context);
}

int run(const std::string &path, const std::vector<std::string> &args) {
  Options o = parse(args);
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  if (!artifact)
    throw CommandError{error};
  const StageInfo &first = artifact->stageOfRank(0);
  if (!first.execution)
    throw CommandError{"the artifact has no execution plan"};
  int64_t blockSize = first.execution->blockSize;
  int64_t maxBatch = *std::max_element(o.batches.begin(), o.batches.end());
  int64_t length = o.context + o.warmup + o.steps;
  if (length > artifact->model().maxContext)
    commandUsage("--context plus the steps (" + std::to_string(length) +
          ") exceed the model's context of " +
          std::to_string(artifact->model().maxContext));
  int64_t perSeq = (length + blockSize - 1) / blockSize;
  std::unique_ptr<LocalRunner> runner =
      LocalRunner::create(*artifact, maxBatch * perSeq, error);
  if (!runner || !runner->initRandomWeights(o.weightsSeed, error))
    throw CommandError{error};

  double bandwidth = 0;
  std::string device = artifact->target() == "cuda" ? "GPU" : "host";
  if (artifact->target() == "cuda") {
    bandwidth = CudaExecutor::measureCopyBandwidth(0, int64_t(1) << 30, error);
    if (bandwidth == 0)
      throw CommandError{"measuring the copy rate: " + error};
  }
  std::printf("step-time: %s (%s target), context %lld, %lld timed decode "
              "steps after %lld warm-up\n",
              artifact->model().name.c_str(), artifact->target().c_str(),
              static_cast<long long>(o.context),
              static_cast<long long>(o.steps),
              static_cast<long long>(o.warmup));
  if (bandwidth > 0)
    std::printf("step-time: device-to-device copy %.0f GB/s (read + write, "
                "median of 10 copies of 1 GiB)\n",
                bandwidth / 1e9);

  std::vector<float> logits;
  for (int64_t batch : o.batches) {
    DecodeBatch shape{batch, perSeq, blockSize, artifact->model().vocabSize};
    for (const StepInputs &in : shape.prefill(o.context))
      if (!runner->forward(in, logits, error))
        throw CommandError{"filling the cache: " + error};
    std::vector<double> times;
    for (int64_t step = 0; step < o.warmup + o.steps; ++step) {
      StepInputs in = shape.decode(o.context + step);
      auto start = std::chrono::steady_clock::now();
      if (!runner->forward(in, logits, error))
        throw CommandError{"decode step: " + error};
      double seconds = std::chrono::duration<double>(
                           std::chrono::steady_clock::now() - start)
                           .count();
      if (step >= o.warmup)
        times.push_back(seconds);
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    double bytes = floorBytes(*artifact, batch, o.context);
    std::printf("batch %lld: decode step median %.3f ms (min %.3f, max "
                "%.3f); reads >= %.3f %s",
                static_cast<long long>(batch), median * 1e3,
                times.front() * 1e3, times.back() * 1e3,
                bytes >= 1e9 ? bytes / 1e9 : bytes / 1e6,
                bytes >= 1e9 ? "GB" : "MB");
    if (bandwidth > 0)
      // A copy moves each byte twice (read and write); a step reads once.
      std::printf(" -> floor %.3f ms at the copy rate (%.0f%% of it)",
                  bytes / (bandwidth / 2) * 1e3,
                  100.0 * bytes / (bandwidth / 2) / median);
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}

} // namespace

int stepTimeCommand(const std::string &path,
                    const std::vector<std::string> &args) {
  return runCommand([&] { return run(path, args); });
}
