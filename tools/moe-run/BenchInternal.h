//===- BenchInternal.h - moe-run bench internals ----------------*- C++ -*-===//
//
// The declarations that the files of `moe-run ARTIFACT bench` share (see
// Bench.cpp): the options and the workload (BenchWorkload.cpp), the run
// loops and their records (BenchRuns.cpp), the report (BenchReport.cpp) and
// the SVG plot (BenchPlot.cpp). Private to tools/moe-run.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_BENCHINTERNAL_H
#define MOEC_TOOLS_MOE_RUN_BENCHINTERNAL_H

#include "runtime/DecodeTraffic.h"
#include "runtime/ModelRunner.h"
#include "runtime/Sampler.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace moert::bench {

/// The JSON document of the report, its keys in insertion order.
using Json = nlohmann::ordered_json;

/// A failure with its exit status (2: bad command line).
struct BenchError {
  std::string message;
  int status = 1;
};

/// Throws the BenchError of a bad command line (status 2).
[[noreturn]] inline void usageError(const std::string &message) {
  throw BenchError{message, 2};
}

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator with the same
/// output everywhere.
class Rng {
public:
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1) with 53 bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform in [0, n), n > 0, unbiased (draws below 2^64 mod n rejected).
  uint64_t below(uint64_t n) {
    uint64_t threshold = (0 - n) % n;
    for (;;) {
      uint64_t r = next();
      if (r >= threshold)
        return r % n;
    }
  }

private:
  uint64_t state;
};

/// fixed:N or uniform:MIN:MAX (inclusive).
struct LengthDistribution {
  int64_t min = 1, max = 1;
  std::string text;
  int64_t draw(Rng &rng) const {
    return min + static_cast<int64_t>(
                     rng.below(static_cast<uint64_t>(max - min + 1)));
  }
};

/// The execution modes: continuous batching (runtime/Scheduler.h) or static
/// batching.
enum class Mode { Continuous, Static };

/// The options of `moe-run ARTIFACT bench`.
struct BenchOptions {
  Mode mode = Mode::Continuous;
  int64_t requests = 100;
  /// Requests per second; infinity: all at once.
  double rate = std::numeric_limits<double>::infinity();
  LengthDistribution promptLength{8, 64, "uniform:8:64"};
  LengthDistribution outputLength{16, 128, "uniform:16:128"};
  uint64_t seed = 0;
  SamplingParams sampling;
  int64_t maxTokensPerStep = 256;
  int64_t maxRunning = 64;
  /// Static batch size; 0: --max-running.
  int64_t batch = 0;
  /// 0: enough for the batch's longest possible requests.
  int64_t kvBlocks = 0;
  uint64_t weightsSeed = 0;
  std::string checkpoint;
  /// Speculative decoding (continuous mode): the draft artifact ("": none),
  /// its tokens per step, whether it speculates in every step, its weights.
  std::string draft;
  int64_t draftTokens = 4;
  bool speculateAlways = false;
  std::string draftCheckpoint;
  uint64_t draftWeightsSeed = 1;
  std::string jsonPath, plotPath;
  /// Under mpirun: seconds a rank waits for a peer, and how a cuda plan's
  /// collectives travel (tools/moe-run/MpiJob.h).
  double commTimeout = 60;
  std::string collectives = "auto";
};

/// Parses the bench options (`--name=value` each); a bad one throws the
/// BenchError of usageError(). Fills in --batch from --max-running when not
/// given.
BenchOptions parseOptions(const std::vector<std::string> &args);

//===----------------------------------------------------------------------===//
// Workload and records
//===----------------------------------------------------------------------===//

/// One request of the workload: when it arrives (seconds since the start of
/// the run), its prompt, and the output tokens it asks for.
struct WorkItem {
  double arrival = 0;
  std::vector<int32_t> prompt;
  int64_t outputTokens = 0;
};

/// The workload of `o` (--requests, --rate, --prompt-len, --output-len,
/// --seed) over a vocabulary of `vocab` tokens: the same on every machine.
std::vector<WorkItem> makeWorkload(const BenchOptions &o, int64_t vocab);

/// Per-request sampling: the options' parameters with a seed of its own.
SamplingParams samplingFor(const BenchOptions &o, int64_t id);

/// Where a request stands: not done yet, rejected at submission, finished.
enum class Status { Pending, Rejected, Finished };

/// What happened to one request.
struct RequestRecord {
  Status status = Status::Pending;
  std::string reason;
  /// Seconds since the start: first and last token, finish.
  double firstToken = -1, lastToken = -1, finish = -1;
  std::vector<int32_t> output;
  /// Static mode: the batch it ran in.
  int64_t batch = -1;
};

/// One forward step as the timeline records it.
struct StepSample {
  double start, end; // seconds since the start of the run
  int64_t tokens;    // tokens the model ran in the step
  int64_t generated; // generated tokens so far
  int64_t blocks;    // KV blocks the step's sequences held
  int64_t running;   // sequences in the step's batch
};

/// What a run recorded: every request, every step, and the counters.
struct RunResult {
  std::vector<RequestRecord> records;
  std::vector<StepSample> timeline;
  double duration = 0;
  int64_t steps = 0, prefillTokens = 0, decodeTokens = 0, recomputedTokens = 0,
          paddingTokens = 0, generatedTokens = 0, preemptions = 0,
          peakBlocks = 0, batches = 0;
  /// Speculative decoding (SchedulerStats): steps that speculated, draft
  /// tokens the target verified, and per draft position j (index j - 1)
  /// the verifications that proposed a j-th draft and those that accepted
  /// it (and every draft before it).
  int64_t speculativeSteps = 0, verifiedDraftTokens = 0, verifications = 0,
          draftForwards = 0, draftFedTokens = 0, draftEvictions = 0;
  std::vector<int64_t> draftProposed, draftAccepted;
  /// Per rank of a partitioned plan, its bytes over the run's decode steps
  /// (the warm-up left out); empty for one rank.
  std::vector<DecodeTraffic> traffic;
};

/// The KV blocks of `blockSize` tokens that hold `tokens` tokens.
int64_t blocksFor(int64_t tokens, int64_t blockSize);

//===----------------------------------------------------------------------===//
// Runs
//===----------------------------------------------------------------------===//

/// Continuous batching with the scheduler; with a `draft` model, it
/// speculates (SchedulerOptions::draft).
void runContinuous(ModelRunner &runner, ModelRunner *draft,
                   const std::vector<WorkItem> &work, const BenchOptions &o,
                   int64_t maxContext, RunResult &r);

/// Static batching over `runner` (see BenchRuns.cpp); rejects the requests
/// that Scheduler::submit would.
void runStatic(ModelRunner &runner, const std::vector<WorkItem> &work,
               const BenchOptions &o, int64_t maxContext, RunResult &r);

//===----------------------------------------------------------------------===//
// Report
//===----------------------------------------------------------------------===//

/// What the report says about the model and the cache it ran with.
struct RunInfo {
  std::string artifactPath, modelName, target;
  int64_t vocab = 0, maxContext = 0, numBlocks = 0, blockSize = 0;
  PlanInfo plan;
  /// Where the ranks ran: "4 ranks in this process", "4 ranks (MPI)".
  std::string ranks;
};

/// The per-request measurements of a run, and the rates and means over it.
struct Summary {
  int64_t finished = 0, rejected = 0, promptTokens = 0, generatedTokens = 0;
  std::string firstRejection;
  std::vector<double> ttft, tpot, latency; // sorted, seconds
  double meanBlockFraction = 0;
  double generatedPerSecond = 0, totalPerSecond = 0;
};

/// The summary of run `r` of `work`, with a KV cache of `numBlocks` blocks.
Summary summarize(const std::vector<WorkItem> &work, const RunResult &r,
                  int64_t numBlocks);

/// Prints the text report on stdout.
void printReport(const BenchOptions &o, const RunInfo &info, const RunResult &r,
                 const Summary &s);

/// The JSON report: the configuration, the summary, every request and the
/// timeline of steps.
Json toJson(const BenchOptions &o, const RunInfo &info,
            const std::vector<WorkItem> &work, const RunResult &r,
            const Summary &s);

/// `j` with its objects indented and one request or step per line of its
/// arrays: readable, and a long run's file stays a few lines per request.
std::string formatJson(const Json &j);

/// The SVG plot of a run.
/// Left: generated tokens over time. Right: the CDFs of time to first token
/// and request latency.
std::string plotSvg(const BenchOptions &o, const RunInfo &info,
                    const RunResult &r, const Summary &s);

} // namespace moert::bench

#endif // MOEC_TOOLS_MOE_RUN_BENCHINTERNAL_H
