//===- moe-run.cpp - Run compiled moec artifacts --------------------------===//
//
// The serving front end. It reads the artifact moec writes (runtime/
// Artifact.h) and has no MLIR dependency. It describes an artifact, checks a
// checkpoint against it and generates tokens with a host artifact; bench and
// serve follow.
//
// Exit status: 0 on success, 1 for an error, 2 for a bad command line. Every
// error is one line `moe-run: error: <message>` on stderr.
//
//===----------------------------------------------------------------------===//

#include "runtime/BufferSlots.h"
#include "runtime/Artifact.h"
#include "runtime/Generator.h"
#include "runtime/HostExecutor.h"
#include "runtime/LocalRunner.h"
#include "runtime/MpiCommunicator.h"
#include "tools/moe-run/GenerateMpi.h"
#include "tools/moe-run/GenerateSpeculative.h"
#include "runtime/Safetensors.h"
#include "tools/moe-run/Bench.h"
#include "tools/moe-run/KernelBench.h"
#include "tools/moe-run/StepTime.h"
#include "tools/moe-run/TrafficReport.h"
#include "tools/moe-run/WeightLoad.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <set>
#include <string>
#include <vector>

using namespace moert;

namespace {

const char *kUsage =
    "usage: moe-run ARTIFACT COMMAND [options]\n"
    "\n"
    "Runs an artifact compiled by moec.\n"
    "\n"
    "commands:\n"
    "  inspect                 validate the artifact and describe its model,\n"
    "                          plan, stages and kernels, what a step runs\n"
    "                          by its size (library GEMMs for the FFNs and\n"
    "                          flash attention at prefill), and the memory\n"
    "                          its activations take at 4096 tokens\n"
    "  check-weights CHECKPOINT [--rank=R]\n"
    "                          load every weight of rank R (default: every\n"
    "                          rank) from CHECKPOINT (a .safetensors file, an\n"
    "                          index .json or a folder) as the plan shards it\n"
    "  generate (--prompt=IDS | --prompt-file=FILE) [--max-new-tokens=N]\n"
    "           [--temperature=T] [--top-k=K] [--top-p=P] [--seed=S]\n"
    "           [--weights=CHECKPOINT | --weights-seed=W] [--kv-blocks=B]\n"
    "           [--stop-token=ID] [--comm-timeout=SECONDS]\n"
    "           [--collectives=auto|nccl|host]\n"
    "           [--draft=DRAFT_ART [--draft-tokens=K] [--speculate=auto|always]\n"
    "            [--draft-weights=CHECKPOINT | --draft-weights-seed=W]]\n"
    "                          run a host or cuda artifact on the prompt token\n"
    "                          ids (comma or space separated) and stream the\n"
    "                          generated ids to stdout as they are sampled;\n"
    "                          time to first token and per output token go to\n"
    "                          stderr. Greedy unless --temperature > 0. The\n"
    "                          weights come from a safetensors CHECKPOINT, or\n"
    "                          are random from --weights-seed (default 0).\n"
    "                          --kv-blocks defaults to one max-context\n"
    "                          sequence. A partitioned plan runs its ranks\n"
    "                          as threads here, or one process per rank under\n"
    "                          mpirun -np RANKS (each loading its own shard;\n"
    "                          a rank waiting longer than --comm-timeout,\n"
    "                          default 60 s, for a peer stops the job; a\n"
    "                          cuda plan's collectives go through NCCL when\n"
    "                          this moe-run has it, else through the host).\n"
    "                          With --draft, the draft model proposes K tokens\n"
    "                          (default 4) that the target verifies in one\n"
    "                          step (speculative decoding; greedy output is\n"
    "                          unchanged); auto speculates while the cost\n"
    "                          model says it pays.\n"
    "  step-time [--batch=1,32] [--context=512] [--steps=20] [--warmup=3]\n"
    "            [--weights-seed=W]\n"
    "                          time decode steps of whole batches at a\n"
    "                          context length: the median step (wall clock)\n"
    "                          next to the bytes a step must read and, on a\n"
    "                          GPU, that floor at the measured copy rate\n"
    "  bench-kernels [--batch=64] [--context=2048] [--prefill=TOKENS]\n"
    "            [--repeats=20] [--weights-seed=W]\n"
    "                          (cuda) time every kernel and GEMM of a decode\n"
    "                          step (or a prefill chunk) with CUDA events:\n"
    "                          GB/s and share of the copy rate, TFLOP/s\n"
    "  bench [--requests=N] [--rate=R|inf] [--prompt-len=DIST]\n"
    "        [--output-len=DIST] [--seed=S] [--mode=continuous|static]\n"
    "        [--max-tokens-per-step=T] [--max-running=M] [--batch=B]\n"
    "        [--kv-blocks=K] [--weights=CHECKPOINT | --weights-seed=W]\n"
    "        [--temperature=T] [--top-k=K] [--top-p=P]\n"
    "        [--draft=DRAFT_ART [--draft-tokens=K] [--speculate=auto|always]\n"
    "         [--draft-weights=CHECKPOINT | --draft-weights-seed=W]]\n"
    "        [--json=FILE] [--plot=FILE.svg] [--comm-timeout=SECONDS]\n"
    "        [--collectives=auto|nccl|host]\n"
    "                          run a synthetic workload (seeded): N requests\n"
    "                          (default 100) arriving as a Poisson process of\n"
    "                          R requests/s or all at once (inf, the\n"
    "                          default), prompt and output lengths from\n"
    "                          DIST = fixed:N or uniform:MIN:MAX (defaults\n"
    "                          uniform:8:64 and uniform:16:128), random\n"
    "                          prompt tokens. Continuous batching (the\n"
    "                          scheduler: T tokens per step, default 256, M\n"
    "                          sequences, default 64) or static batches of B\n"
    "                          (default M). Reports throughput, TTFT, TPOT,\n"
    "                          latency, KV blocks, preemptions and steps\n"
    "                          (with --draft, continuous mode: speculative\n"
    "                          decoding and its acceptance per draft\n"
    "                          position); --json adds per-request records,\n"
    "                          --plot an SVG. Under mpirun -np RANKS, rank 0\n"
    "                          runs it and drives the plan's ranks (the last\n"
    "                          two options as for generate).\n"
    "                          --kv-blocks defaults to M (or B) sequences of\n"
    "                          the longest possible request.\n"
    "\n"
    "options:\n"
    "  --help     print this help\n"
    "  --version  print the runtime version\n";

const char *kCommands =
    "inspect, check-weights, generate, bench, step-time, bench-kernels";

/// A failure with the exit status it ends the program with.
struct Failure {
  std::string message;
  int status = 1;
};

[[noreturn]] void usageError(const std::string &message) {
  throw Failure{message, 2};
}

std::string plural(int64_t count, const char *noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

/// "layers 2-3", "layer 2" or "no layers".
std::string formatLayers(int64_t first, int64_t count) {
  if (count == 0)
    return "no layers";
  if (count == 1)
    return "layer " + std::to_string(first);
  return "layers " + std::to_string(first) + "-" +
         std::to_string(first + count - 1);
}

std::unique_ptr<Artifact> openArtifact(const std::string &path) {
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  if (!artifact)
    throw Failure{error};
  return artifact;
}

//===----------------------------------------------------------------------===//
// inspect
//===----------------------------------------------------------------------===//

/// What one step of scale `scale` runs, over every stage's plan.
struct StepWork {
  int64_t launches = 0, gemms = 0, groupedGemms = 0;
};
StepWork workAt(const Artifact &artifact, const StepScale &scale) {
  StepWork work;
  for (const StageInfo &stage : artifact.stages())
    if (stage.execution)
      for (const StepInfo &step : stage.execution->steps)
        if (step.runsAt(scale)) {
          work.launches += static_cast<int64_t>(step.launches.size());
          work.gemms += step.kind == StepInfo::Kind::Gemm;
          work.groupedGemms += step.kind == StepInfo::Kind::GroupedGemm;
        }
  return work;
}

int inspect(const std::string &path, const std::vector<std::string> &args) {
  if (!args.empty())
    usageError("inspect takes no arguments, got '" + args.front() + "'");
  std::unique_ptr<Artifact> artifact = openArtifact(path);
  const ModelInfo &model = artifact->model();
  const PlanInfo &plan = artifact->plan();
  std::printf("artifact: %s (%s)\n", path.c_str(),
              artifact->checksum().c_str());
  std::printf("model: %s, %s, d_model %lld, vocab %lld, max context %lld, "
              "%s\n",
              model.name.c_str(), plural(model.numLayers, "layer").c_str(),
              static_cast<long long>(model.dModel),
              static_cast<long long>(model.vocabSize),
              static_cast<long long>(model.maxContext),
              artifactDTypeName(model.dtype));
  std::printf("target: %s\n", artifact->target().c_str());
  std::printf("plan: %s x %lld tensor-parallel = %s; experts: %lld-way "
              "expert parallel, %s\n",
              plural(plan.pipelineStages, "stage").c_str(),
              static_cast<long long>(plan.tensorParallel),
              plural(plan.ranks, "rank").c_str(),
              static_cast<long long>(plan.expertParallel),
              plan.expertAllToAll ? "all-to-all" : "no all-to-all");
  for (const StageInfo &stage : artifact->stages()) {
    int64_t bytes = stage.weightBytes();
    std::string line =
        "stage " + std::to_string(stage.stage) + ": " +
        (stage.ranks == 1
             ? "rank " + std::to_string(stage.firstRank)
             : "ranks " + std::to_string(stage.firstRank) + "-" +
                   std::to_string(stage.firstRank + stage.ranks - 1)) +
        ", " + formatLayers(stage.firstLayer, stage.layers) + ", " +
        plural(static_cast<int64_t>(stage.weights.size()), "weight") + ", " +
        std::to_string(bytes) + " bytes per rank (" + formatBytes(bytes) + ")";
    if (stage.kvCache)
      line += ", KV cache " + plural(stage.kvCache->blocks, "block") + " of " +
              plural(stage.kvCache->blockSize, "token") + ", " +
              plural(stage.kvCache->sequences, "sequence") + " of " +
              plural(stage.kvCache->sequenceLength, "token");
    std::printf("%s\n", line.c_str());
  }
  std::printf("kernels: %zu\n", artifact->kernels().size());
  if (artifact->target() == "cuda") {
    if (artifact->cudaModules().empty()) {
      std::printf("gpu: no GPU code (moec found no CUDA toolkit)\n");
    } else {
      std::string chips;
      for (const std::string &chip : artifact->cudaChips())
        chips += (chips.empty() ? "" : ", ") + chip;
      size_t cubins = 0;
      for (const CudaModuleInfo &module : artifact->cudaModules())
        cubins += module.cubin.size();
      std::printf("gpu: %zu modules for %s (%zu cubins)\n",
                  artifact->cudaModules().size(), chips.c_str(), cubins);
    }
  }
  // What a step runs by its size: the FFNs turn into library GEMMs, and
  // attention into the flash kernel, from some prefill size on.
  std::set<int64_t> sizes = {1};
  for (const StageInfo &stage : artifact->stages())
    if (stage.execution)
      for (const StepInfo &step : stage.execution->steps)
        for (int64_t from : {step.fromTokens, step.fromRunTokens})
          if (from > 0)
            sizes.insert(from);
  for (int64_t size : sizes) {
    StepWork work = workAt(*artifact, StepScale{size, size});
    std::string which = size == 1 ? "a one-token step"
                                  : "a prefill of " + std::to_string(size) +
                                        " or more tokens";
    std::printf("%s: %lld GEMMs, %lld grouped GEMMs", which.c_str(),
                static_cast<long long>(work.gemms),
                static_cast<long long>(work.groupedGemms));
    if (artifact->target() == "cuda")
      std::printf(", %lld kernel launches",
                  static_cast<long long>(work.launches));
    std::printf("\n");
  }
  // Activation memory: buffers share slots by liveness.
  for (const StageInfo &stage : artifact->stages()) {
    if (!stage.execution)
      continue;
    const ExecutionInfo &plan = *stage.execution;
    BufferSlots slots = BufferSlots::of(plan);
    size_t activations =
        std::count_if(slots.slotOf.begin(), slots.slotOf.end(),
                      [](int64_t slot) { return slot >= 0; });
    int64_t tokens = std::min<int64_t>(4096, artifact->model().maxContext);
    BufferSlots::Footprint at = slots.footprint(plan, tokens);
    std::printf("stage %lld activations: %zu buffers in %lld slots, %.1f MB "
                "at %lld tokens (%.1f MB if each had its own)\n",
                static_cast<long long>(&stage - artifact->stages().data()),
                activations, static_cast<long long>(slots.count),
                at.shared / 1e6, static_cast<long long>(tokens),
                at.apart / 1e6);
  }
  return 0;
}

//===----------------------------------------------------------------------===//
// check-weights
//===----------------------------------------------------------------------===//

/// Parses the value of --rank=R.
int64_t parseRank(const std::string &text) {
  const char *begin = text.c_str();
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(begin, &end, 10);
  if (text.empty() || !(*begin >= '0' && *begin <= '9') || *end != '\0' ||
      errno == ERANGE)
    usageError("bad --rank value '" + text +
               "': expected a non-negative integer");
  return value;
}

/// Loads every weight of `rank`, reporting progress on stderr.
void checkRank(const Artifact &artifact, WeightLoader &loader, int64_t rank,
               std::vector<uint8_t> &scratch) {
  using Clock = std::chrono::steady_clock;
  std::vector<WeightSpec> specs = artifact.weightsForRank(rank);
  int64_t groupRank = artifact.rankInStage(rank);
  int64_t group = artifact.groupSize(rank);
  std::string prefix = "rank " + std::to_string(rank) + ": ";
  int64_t largest = 0;
  for (const WeightSpec &spec : specs) {
    int64_t bytes = WeightLoader::partBytes(spec);
    if (bytes < 0)
      throw Failure{prefix + "weight '" + spec.name +
                    "': its shard does not fit its shape"};
    largest = std::max(largest, bytes);
  }
  if (static_cast<uint64_t>(largest) > scratch.size())
    scratch.resize(static_cast<size_t>(largest));

  Clock::time_point lastReport = Clock::now();
  int64_t done = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::string error;
    if (!loader.load(specs[i], groupRank, group, scratch.data(), error))
      throw Failure{prefix + error};
    done += WeightLoader::partBytes(specs[i]);
    if (Clock::now() - lastReport >= std::chrono::milliseconds(500)) {
      lastReport = Clock::now();
      std::fprintf(stderr, "%s%zu/%zu weights, %s\n", prefix.c_str(), i + 1,
                   specs.size(), formatBytes(done).c_str());
      std::fflush(stderr);
    }
  }
  std::printf("%s%s, %lld bytes: ok\n", prefix.c_str(),
              plural(static_cast<int64_t>(specs.size()), "weight").c_str(),
              static_cast<long long>(done));
  std::fflush(stdout);
}

int checkWeights(const std::string &path,
                 const std::vector<std::string> &args) {
  std::string checkpoint;
  bool haveRank = false;
  int64_t rank = 0;
  for (const std::string &arg : args) {
    if (arg.compare(0, 7, "--rank=") == 0) {
      rank = parseRank(arg.substr(7));
      haveRank = true;
    } else if (arg == "--rank") {
      usageError("--rank needs a value (--rank=R)");
    } else if (arg.size() > 1 && arg[0] == '-') {
      usageError("unknown option '" + arg + "' for check-weights");
    } else if (checkpoint.empty()) {
      checkpoint = arg;
    } else {
      usageError("check-weights takes one CHECKPOINT, got '" + checkpoint +
                 "' and '" + arg + "'");
    }
  }
  if (checkpoint.empty())
    usageError("check-weights needs a CHECKPOINT (a .safetensors file, an "
               "index .json or a folder)");

  std::unique_ptr<Artifact> artifact = openArtifact(path);
  int64_t ranks = artifact->plan().ranks;
  if (haveRank && rank >= ranks)
    usageError("rank " + std::to_string(rank) +
               " is out of range for a plan of " + plural(ranks, "rank"));
  std::string error;
  std::unique_ptr<WeightLoader> loader = WeightLoader::open(checkpoint, error);
  if (!loader)
    throw Failure{error};
  std::vector<uint8_t> scratch;
  for (int64_t r = haveRank ? rank : 0; r < (haveRank ? rank + 1 : ranks); ++r)
    checkRank(*artifact, *loader, r, scratch);
  return 0;
}

//===----------------------------------------------------------------------===//
// generate
//===----------------------------------------------------------------------===//

/// The value of `--name=VALUE` as an integer in [min, max].
int64_t parseInteger(const std::string &option, const std::string &text,
                     int64_t min, int64_t max) {
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || value < min ||
      value > max)
    usageError("bad " + option + " value '" + text + "': expected an integer "
               "in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  return value;
}

double parseNumber(const std::string &option, const std::string &text) {
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0')
    usageError("bad " + option + " value '" + text + "': expected a number");
  return value;
}

/// Token ids separated by commas or white space.
std::vector<int32_t> parseTokenIds(const std::string &text,
                                   const std::string &source) {
  std::vector<int32_t> ids;
  std::string item;
  std::istringstream in(text);
  auto flush = [&] {
    if (!item.empty())
      ids.push_back(static_cast<int32_t>(
          parseInteger("token id in " + source, item, 0, INT32_MAX)));
    item.clear();
  };
  for (char c; in.get(c);) {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c)))
      flush();
    else
      item += c;
  }
  flush();
  return ids;
}

int generateCommand(const std::string &path,
                    const std::vector<std::string> &args) {
  std::vector<int32_t> prompt;
  bool havePrompt = false;
  GenerateOptions options;
  uint64_t weightsSeed = 0;
  std::string checkpoint;
  int64_t kvBlocks = 0;
  double commTimeout = 60;
  std::string collectives = "auto";
  DraftArgs draft;
  for (const std::string &arg : args) {
    size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    if (eq == std::string::npos)
      usageError("generate options take a value: " + arg + "=...");
    std::string value = arg.substr(eq + 1);
    if (name == "--prompt") {
      prompt = parseTokenIds(value, "--prompt");
      havePrompt = true;
    } else if (name == "--prompt-file") {
      std::ifstream file(value);
      if (!file)
        throw Failure{"cannot read prompt file '" + value + "': " +
                      std::strerror(errno)};
      std::stringstream text;
      text << file.rdbuf();
      prompt = parseTokenIds(text.str(), "'" + value + "'");
      havePrompt = true;
    } else if (name == "--max-new-tokens") {
      options.maxNewTokens = parseInteger(name, value, 0, 1 << 24);
    } else if (name == "--temperature") {
      options.sampling.temperature = parseNumber(name, value);
    } else if (name == "--top-k") {
      options.sampling.topK = parseInteger(name, value, 0, INT32_MAX);
    } else if (name == "--top-p") {
      options.sampling.topP = parseNumber(name, value);
    } else if (name == "--seed") {
      options.sampling.seed = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--weights") {
      checkpoint = value;
    } else if (name == "--weights-seed") {
      weightsSeed = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--kv-blocks") {
      kvBlocks = parseInteger(name, value, 1, INT32_MAX);
    } else if (name == "--draft") {
      draft.artifact = value;
    } else if (name == "--draft-tokens") {
      draft.tokens = parseInteger(name, value, 1, 64);
    } else if (name == "--draft-weights") {
      draft.checkpoint = value;
    } else if (name == "--draft-weights-seed") {
      draft.weightsSeed = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--speculate") {
      if (value != "auto" && value != "always")
        usageError("--speculate must be auto or always, got '" + value + "'");
      draft.always = value == "always";
    } else if (name == "--comm-timeout") {
      commTimeout = parseNumber(name, value);
      if (!(commTimeout > 0))
        usageError("--comm-timeout must be a positive number of seconds");
    } else if (name == "--collectives") {
      if (value != "auto" && value != "nccl" && value != "host")
        usageError("--collectives must be auto, nccl or host, got '" + value +
                   "'");
      collectives = value;
    } else if (name == "--stop-token") {
      options.stopToken = parseInteger(name, value, 0, INT32_MAX);
    } else {
      usageError("unknown option '" + name + "' for generate");
    }
  }
  if (!havePrompt)
    usageError("generate needs --prompt=IDS or --prompt-file=FILE");
  if (MpiCommunicator::launchedByMpi())
    return generateUnderMpi(path,
                            GenerateArgs{prompt, options, weightsSeed,
                                         checkpoint, kvBlocks, commTimeout,
                                         collectives},
                            draft);
  std::unique_ptr<Artifact> artifact = openArtifact(path);
  std::string error;
  if (kvBlocks == 0) {
    const StageInfo &stage = artifact->stageOfRank(0);
    int64_t blockSize = stage.execution ? stage.execution->blockSize : 1;
    kvBlocks = (artifact->model().maxContext + blockSize - 1) / blockSize;
  }
  // Every rank of the plan, in this process (one thread per rank).
  std::unique_ptr<LocalRunner> executor =
      LocalRunner::create(*artifact, kvBlocks, error);
  if (!executor)
    throw Failure{error};
  if (!fillWeights(*executor, checkpoint, weightsSeed, "", error))
    throw Failure{error};
  if (!draft.artifact.empty())
    return generateSpeculative(*artifact,
                               *executor,
                               GenerateArgs{prompt, options, weightsSeed,
                                            checkpoint, kvBlocks, commTimeout},
                               draft);
  std::vector<int32_t> output;
  GenerateStats stats;
  bool first = true;
  auto stream = [&](int32_t token) {
    std::printf(first ? "%d" : " %d", token);
    std::fflush(stdout);
    first = false;
  };
  if (!generate(*executor, prompt, options, artifact->model().maxContext,
                stream, output, stats, error)) {
    if (!first)
      std::printf("\n");
    throw Failure{error};
  }
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "moe-run: %s in, %s out; time to first token %.3f ms, time "
               "per output token %.3f ms (median of %lld decode steps)\n",
               plural(stats.promptTokens, "token").c_str(),
               plural(stats.outputTokens, "token").c_str(),
               stats.timeToFirstToken * 1e3, stats.timePerOutputToken * 1e3,
               static_cast<long long>(std::max<int64_t>(
                   0, stats.outputTokens - 1)));
  if (!printDecodeTraffic(*executor, artifact->plan(),
                          "moe-run: " + std::to_string(executor->ranks()) +
                              " ranks in this process; ",
                          error))
    throw Failure{error};
  return 0;
}

int run(int argc, char **argv) {
  std::vector<std::string> positional(argv + 1, argv + argc);
  if (positional.size() < 2)
    usageError("missing COMMAND after ARTIFACT (commands: " +
               std::string(kCommands) + ")");
  std::string path = positional[0], command = positional[1];
  std::vector<std::string> args(positional.begin() + 2, positional.end());
  if (command == "inspect")
    return inspect(path, args);
  if (command == "check-weights")
    return checkWeights(path, args);
  if (command == "generate")
    return generateCommand(path, args);
  if (command == "bench")
    return benchCommand(path, args);
  if (command == "step-time")
    return stepTimeCommand(path, args);
  if (command == "bench-kernels")
    return benchKernelsCommand(path, args);
  usageError("unknown command '" + command +
             "' (commands: " + std::string(kCommands) + ")");
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (!std::strcmp(argv[i], "--version")) {
      std::printf("moe-run 0.1 (artifact format version %lld)\n",
                  static_cast<long long>(kArtifactVersion));
      return 0;
    }
  }
  try {
    return run(argc, argv);
  } catch (const Failure &failure) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe-run: error: %s\n", failure.message.c_str());
    return failure.status;
  } catch (const std::bad_alloc &) {
    std::fflush(stdout);
    std::fputs("moe-run: error: out of memory\n", stderr);
  } catch (const std::exception &e) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe-run: error: %s\n", e.what());
  } catch (...) {
    std::fflush(stdout);
    std::fputs("moe-run: error: unknown failure\n", stderr);
  }
  return 1;
}
