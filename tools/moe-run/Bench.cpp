//===- Bench.cpp - moe-run ARTIFACT bench ---------------------------------===//
//
// A synthetic serving benchmark.
//
// Workload. --requests=N requests, generated from --seed alone (the same
// options give the same requests on every machine: a SplitMix64 generator,
// integer draws by rejection, no <random> distributions, whose results
// differ between standard libraries). Separate streams draw the arrivals,
// the prompt lengths, the output lengths and the prompt tokens, so that
// changing one option (say --rate) leaves the others' draws alone. Arrivals
// form a Poisson process of --rate requests per second (the first at 0,
// then exponential gaps), or all come at 0 with --rate=inf. Prompt and
// output lengths come from fixed:N or uniform:MIN:MAX (inclusive); prompt
// tokens are uniform in the vocabulary. Every request asks for exactly its
// output length (no stop token), greedy unless --temperature > 0.
//
// Run. Against the wall clock: a request is submitted once its arrival time
// has passed (its latencies count from that arrival time, so queueing is
// included), and steps run back to back as long as there is work; the loop
// sleeps only when nothing is queued or running.
//
//  - continuous (default): runtime/Scheduler.h, iteration-level batching
//    with chunked prefill and preemption by recompute (--max-tokens-per-step,
//    --max-running, --kv-blocks); with --draft=DRAFT_ART, speculative
//    decoding (SchedulerOptions::draft), reported per draft position.
//  - static: a separate simple loop over the ModelRunner, not a Scheduler
//    configuration. The scheduler cannot reproduce static batching
//    faithfully: it admits a waiting request as soon as a slot frees, lets
//    finished sequences leave the batch (shrinking it), allocates KV blocks
//    on demand and preempts. Static batching takes up to --batch requests
//    that have arrived (FIFO, as many as the KV cache holds when each
//    reserves its whole prompt + output), prefills them all (in forward
//    steps of at most --max-tokens-per-step tokens, the same budget as
//    continuous mode), then decodes the batch together until its longest
//    request finishes: the batch keeps its width, so a finished sequence
//    still occupies its row (a padding token that attends to its cache but
//    writes nothing, its logits computed and dropped), and nothing joins
//    mid-batch. Then the next batch. Prompts are not padded to a common
//    length: a paged runner prefills ragged prompts natively.
//
// The model runs as runtime/LocalRunner.h (every rank of a partitioned plan
// in this process), with random weights (--weights-seed) or a checkpoint,
// after one untimed warm-up step.
//
// Both modes reject the same requests (the checks of Scheduler::submit: too
// long for the context or for the whole KV cache, ...): they are counted and
// reported, never fatal. A failing forward step is fatal (the runner broke).
//
// Reports: generated and total (prompt + generated) tokens per second over
// the run's duration (start to the last finish), per request time to first
// token (arrival to first token), time per output token ((last - first
// token) / (output - 1), requests of two or more tokens) and latency
// (arrival to finish) as p50/p99 (nearest rank), KV blocks (peak, and the
// mean fraction held by the running sequences, weighted by the time the
// steps ran, over the run's duration), preemptions, steps.
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/Bench.h"

#include "runtime/Artifact.h"
#include "runtime/KVBlockManager.h"
#include "runtime/LocalRunner.h"
#include "runtime/Sampler.h"
#include "runtime/Scheduler.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace moert;

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

/// A failure with its exit status (2: bad command line).
struct BenchError {
  std::string message;
  int status = 1;
};

[[noreturn]] void usageError(const std::string &message) {
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

/// The generator of stream `stream` of `seed`.
Rng streamOf(uint64_t seed, uint64_t stream) {
  Rng mix(seed ^ (stream * 0xD1B54A32D192ED03ULL));
  return Rng(mix.next());
}

/// fixed:N or uniform:MIN:MAX (inclusive).
struct LengthDistribution {
  int64_t min = 1, max = 1;
  std::string text;
  int64_t draw(Rng &rng) const {
    return min + static_cast<int64_t>(
                     rng.below(static_cast<uint64_t>(max - min + 1)));
  }
};

constexpr int64_t kMaxLength = int64_t(1) << 24;

bool parseInt(const std::string &text, int64_t &value) {
  if (text.empty() ||
      !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-'))
    return false;
  char *end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE)
    return false;
  value = parsed;
  return true;
}

int64_t parseInteger(const std::string &option, const std::string &text,
                     int64_t min, int64_t max) {
  int64_t value = 0;
  if (!parseInt(text, value) || value < min || value > max)
    usageError("bad " + option + " value '" + text +
               "': expected an integer in [" + std::to_string(min) + ", " +
               std::to_string(max) + "]");
  return value;
}

double parseNumber(const std::string &option, const std::string &text) {
  char *end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value))
    usageError("bad " + option + " value '" + text + "': expected a number");
  return value;
}

LengthDistribution parseLength(const std::string &option,
                               const std::string &text) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, ':'))
    parts.push_back(part);
  if (!text.empty() && text.back() == ':')
    parts.push_back("");
  LengthDistribution d;
  d.text = text;
  bool ok = false;
  if (parts.size() == 1 || (parts.size() == 2 && parts[0] == "fixed")) {
    ok = parseInt(parts.back(), d.min);
    d.max = d.min;
  } else if (parts.size() == 3 && parts[0] == "uniform") {
    ok = parseInt(parts[1], d.min) && parseInt(parts[2], d.max);
  }
  if (!ok || d.min < 1 || d.max < d.min || d.max > kMaxLength)
    usageError("bad " + option + " value '" + text +
               "': expected fixed:N or uniform:MIN:MAX with 1 <= MIN <= MAX "
               "<= " +
               std::to_string(kMaxLength));
  if (parts.size() == 1)
    d.text = "fixed:" + text;
  return d;
}

enum class Mode { Continuous, Static };

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
};

BenchOptions parseOptions(const std::vector<std::string> &args) {
  BenchOptions o;
  bool haveBatch = false;
  std::string draftOption; // a draft option given, for the error without one
  for (const std::string &arg : args) {
    if (arg.empty() || arg[0] != '-')
      usageError("bench takes no positional arguments, got '" + arg + "'");
    size_t eq = arg.find('=');
    if (eq == std::string::npos)
      usageError("bench options take a value: " + arg + "=...");
    std::string name = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (name == "--mode") {
      if (value == "continuous")
        o.mode = Mode::Continuous;
      else if (value == "static")
        o.mode = Mode::Static;
      else
        usageError("bad --mode value '" + value +
                   "': expected continuous or static");
    } else if (name == "--requests") {
      o.requests = parseInteger(name, value, 1, 1000000);
    } else if (name == "--rate") {
      if (value == "inf") {
        o.rate = std::numeric_limits<double>::infinity();
      } else {
        char *end = nullptr;
        o.rate = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !(o.rate > 0) ||
            !std::isfinite(o.rate))
          usageError("bad --rate value '" + value +
                     "': expected requests per second (a positive number) "
                     "or inf");
      }
    } else if (name == "--prompt-len") {
      o.promptLength = parseLength(name, value);
    } else if (name == "--output-len") {
      o.outputLength = parseLength(name, value);
    } else if (name == "--seed") {
      o.seed = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--temperature") {
      o.sampling.temperature = static_cast<float>(parseNumber(name, value));
    } else if (name == "--top-k") {
      o.sampling.topK =
          static_cast<int32_t>(parseInteger(name, value, 0, INT32_MAX));
    } else if (name == "--top-p") {
      o.sampling.topP = static_cast<float>(parseNumber(name, value));
    } else if (name == "--max-tokens-per-step") {
      o.maxTokensPerStep = parseInteger(name, value, 1, INT32_MAX);
    } else if (name == "--max-running") {
      o.maxRunning = parseInteger(name, value, 1, INT32_MAX);
    } else if (name == "--batch") {
      o.batch = parseInteger(name, value, 1, INT32_MAX);
      haveBatch = true;
    } else if (name == "--kv-blocks") {
      o.kvBlocks = parseInteger(name, value, 1, INT32_MAX);
    } else if (name == "--weights-seed") {
      o.weightsSeed = parseInteger(name, value, 0, INT64_MAX);
    } else if (name == "--weights") {
      if (value.empty())
        usageError("--weights needs a CHECKPOINT");
      o.checkpoint = value;
    } else if (name == "--draft") {
      if (value.empty())
        usageError("--draft needs a DRAFT_ART");
      o.draft = value;
    } else if (name == "--draft-tokens") {
      o.draftTokens = parseInteger(name, value, 1, 64);
      draftOption = name;
    } else if (name == "--speculate") {
      if (value != "auto" && value != "always")
        usageError("--speculate must be auto or always, got '" + value + "'");
      o.speculateAlways = value == "always";
      draftOption = name;
    } else if (name == "--draft-weights") {
      if (value.empty())
        usageError("--draft-weights needs a CHECKPOINT");
      o.draftCheckpoint = value;
      draftOption = name;
    } else if (name == "--draft-weights-seed") {
      o.draftWeightsSeed = parseInteger(name, value, 0, INT64_MAX);
      draftOption = name;
    } else if (name == "--json") {
      if (value.empty())
        usageError("--json needs a FILE");
      o.jsonPath = value;
    } else if (name == "--plot") {
      if (value.empty())
        usageError("--plot needs a FILE");
      o.plotPath = value;
    } else {
      usageError("unknown option '" + name + "' for bench");
    }
  }
  if (haveBatch && o.mode != Mode::Static)
    usageError("--batch is the batch size of --mode=static (continuous "
               "batching takes --max-running)");
  if (!draftOption.empty() && o.draft.empty())
    usageError(draftOption + " needs --draft=DRAFT_ART");
  if (!o.draft.empty() && o.mode == Mode::Static)
    usageError("speculative decoding (--draft) runs with --mode=continuous");
  if (o.batch == 0)
    o.batch = o.maxRunning;
  return o;
}

//===----------------------------------------------------------------------===//
// Workload and records
//===----------------------------------------------------------------------===//

struct WorkItem {
  double arrival = 0;
  std::vector<int32_t> prompt;
  int64_t outputTokens = 0;
};

std::vector<WorkItem> makeWorkload(const BenchOptions &o, int64_t vocab) {
  Rng arrivals = streamOf(o.seed, 1), prompts = streamOf(o.seed, 2),
      outputs = streamOf(o.seed, 3), tokens = streamOf(o.seed, 4);
  std::vector<WorkItem> items(static_cast<size_t>(o.requests));
  double time = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    WorkItem &item = items[i];
    if (i > 0 && std::isfinite(o.rate))
      time += -std::log1p(-arrivals.uniform()) / o.rate;
    item.arrival = time;
    item.prompt.resize(static_cast<size_t>(o.promptLength.draw(prompts)));
    for (int32_t &token : item.prompt)
      token = static_cast<int32_t>(tokens.below(static_cast<uint64_t>(vocab)));
    item.outputTokens = o.outputLength.draw(outputs);
  }
  return items;
}

/// Per-request sampling: the options' parameters with a seed of its own.
SamplingParams samplingFor(const BenchOptions &o, int64_t id) {
  SamplingParams params = o.sampling;
  Rng mix(o.seed ^ (static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ULL) ^
          0x5EED5EED5EED5EEDULL);
  params.seed = mix.next();
  return params;
}

enum class Status { Pending, Rejected, Finished };

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
};

/// Progress on stderr, at most twice a second.
class Progress {
public:
  explicit Progress(int64_t total) : total(total), last(Clock::now()) {}
  void update(double elapsed, int64_t done, int64_t generated) {
    Clock::time_point now = Clock::now();
    if (now - last < std::chrono::milliseconds(500))
      return;
    last = now;
    std::fprintf(stderr,
                 "moe-run: bench: %lld/%lld requests done, %lld tokens "
                 "generated, %.1f tokens/s\n",
                 static_cast<long long>(done), static_cast<long long>(total),
                 static_cast<long long>(generated),
                 elapsed > 0 ? generated / elapsed : 0.0);
    std::fflush(stderr);
  }

private:
  int64_t total;
  Clock::time_point last;
};

/// The wall clock of a run.
class RunClock {
public:
  RunClock() : start(Clock::now()) {}
  double now() const {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }
  void sleepUntil(double seconds) const {
    std::this_thread::sleep_until(start +
                                  std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds)));
  }

private:
  Clock::time_point start;
};

int64_t blocksFor(int64_t tokens, int64_t blockSize) {
  return (tokens + blockSize - 1) / blockSize;
}

//===----------------------------------------------------------------------===//
// Continuous batching
//===----------------------------------------------------------------------===//

/// Continuous batching with the scheduler; with a `draft` model, it
/// speculates (SchedulerOptions::draft).
void runContinuous(ModelRunner &runner, ModelRunner *draft,
                   const std::vector<WorkItem> &work, const BenchOptions &o,
                   int64_t maxContext, RunResult &r) {
  SchedulerOptions options;
  options.maxContext = maxContext;
  options.maxTokensPerStep = o.maxTokensPerStep;
  options.maxRunning = o.maxRunning;
  options.draft = draft;
  options.draftTokens = o.draftTokens;
  options.adaptiveSpeculation = !o.speculateAlways;
  Scheduler scheduler(runner, options);
  int64_t total = static_cast<int64_t>(work.size()), done = 0;
  r.records.assign(work.size(), RequestRecord{});
  Progress progress(total);
  RunClock clock;
  std::vector<SchedulerEvent> events;
  std::string error;
  size_t next = 0;
  for (;;) {
    double now = clock.now();
    for (; next < work.size() && work[next].arrival <= now; ++next) {
      Request request;
      request.id = static_cast<int64_t>(next);
      request.prompt = work[next].prompt;
      request.maxNewTokens = work[next].outputTokens;
      request.sampling = samplingFor(o, request.id);
      RequestRecord &record = r.records[next];
      if (!scheduler.submit(request, record.reason)) {
        record.status = Status::Rejected;
        ++done;
      }
    }
    if (scheduler.idle()) {
      if (next == work.size())
        break;
      clock.sleepUntil(work[next].arrival);
      continue;
    }
    events.clear();
    const SchedulerStats &stats = scheduler.stats();
    auto targetTokens = [&] {
      return stats.prefillTokens + stats.decodeTokens +
             stats.verifiedDraftTokens;
    };
    int64_t tokensBefore = targetTokens();
    int64_t stepsBefore = stats.steps;
    double start = clock.now();
    if (!scheduler.step(events, error))
      throw BenchError{"step " + std::to_string(stats.steps + 1) + ": " +
                       error};
    now = clock.now();
    // The blocks the step ran with: what is left plus what the sequences
    // that finished in it freed (prompt + output - 1 tokens: the last token
    // is never fed back). Blocks of rejected drafts, rolled back after the
    // step, are not counted.
    int64_t freed = 0, finishedInStep = 0;
    for (const SchedulerEvent &event : events) {
      RequestRecord &record = r.records[static_cast<size_t>(event.requestId)];
      if (event.kind == SchedulerEvent::Kind::Token) {
        if (record.output.empty())
          record.firstToken = now;
        record.lastToken = now;
        record.output.push_back(event.token);
      } else {
        record.status = Status::Finished;
        record.finish = now;
        ++done;
        ++finishedInStep;
        int64_t cached = static_cast<int64_t>(
            work[event.requestId].prompt.size() + record.output.size() - 1);
        freed += blocksFor(cached, runner.blockSize());
      }
    }
    if (stats.steps > stepsBefore)
      r.timeline.push_back({start, now, targetTokens() - tokensBefore,
                            stats.generatedTokens, stats.blocksUsed + freed,
                            stats.running + finishedInStep});
    progress.update(now, done, stats.generatedTokens);
  }
  r.duration = clock.now();
  const SchedulerStats &stats = scheduler.stats();
  r.steps = stats.steps;
  r.prefillTokens = stats.prefillTokens;
  r.decodeTokens = stats.decodeTokens;
  r.recomputedTokens = stats.recomputedTokens;
  r.generatedTokens = stats.generatedTokens;
  r.preemptions = stats.preemptions;
  r.peakBlocks = stats.peakBlocksUsed;
  r.speculativeSteps = stats.speculativeSteps;
  r.verifiedDraftTokens = stats.verifiedDraftTokens;
  r.verifications = stats.verifications;
  r.draftForwards = stats.draftForwards;
  r.draftFedTokens = stats.draftFedTokens;
  r.draftEvictions = stats.draftEvictions;
  r.draftProposed = stats.draftProposed;
  r.draftAccepted = stats.draftAccepted;
  r.draftAccepted.resize(r.draftProposed.size());
}

//===----------------------------------------------------------------------===//
// Static batching
//===----------------------------------------------------------------------===//

/// One sequence of a static batch.
struct BatchSequence {
  int64_t id;
  int64_t promptLength, outputTokens;
  std::vector<int32_t> tokens; // prompt, then what was generated
  int64_t computed = 0;        // prefill tokens run
  std::vector<int32_t> table;
  bool done() const {
    return static_cast<int64_t>(tokens.size()) - promptLength >= outputTokens;
  }
};

/// Runs static batches over a ModelRunner.
class StaticRun {
public:
  StaticRun(ModelRunner &runner, const BenchOptions &o, RunResult &r,
            const RunClock &clock, Progress &progress, int64_t &done)
      : runner(runner), o(o), r(r), clock(clock), progress(progress),
        done(done) {}

  /// Runs `batch` to completion; its sequences' tables hold `blocksHeld`
  /// blocks, reserved for their whole prompt + output.
  void run(std::vector<BatchSequence> &batch, int64_t blocksHeld) {
    held = blocksHeld;
    running = static_cast<int64_t>(batch.size());
    // Prefill every prompt, in steps of at most maxTokensPerStep tokens; a
    // sequence samples its first token from the step that ends its prompt.
    size_t first = 0;
    while (first < batch.size()) {
      Step step;
      int64_t budget = o.maxTokensPerStep;
      for (size_t i = first; i < batch.size() && budget > 0; ++i) {
        BatchSequence &s = batch[i];
        int64_t count = std::min(s.promptLength - s.computed, budget);
        int32_t row = static_cast<int32_t>(step.rows.size());
        step.rows.push_back(&s);
        for (int64_t p = s.computed; p < s.computed + count; ++p)
          addToken(step.inputs, s, p, row, /*cached=*/true);
        s.computed += count;
        budget -= count;
        if (s.computed == s.promptLength)
          step.sample(&s);
      }
      // A step of only a middle chunk asks for one row, which it ignores.
      if (step.inputs.logitRows.empty())
        step.inputs.logitRows.push_back(
            static_cast<int32_t>(step.inputs.tokens.size()) - 1);
      forward(step, /*decode=*/false);
      while (first < batch.size() &&
             batch[first].computed == batch[first].promptLength)
        ++first;
    }
    // Decode the whole batch together until its longest request is done.
    auto unfinished = [&] {
      return std::any_of(batch.begin(), batch.end(),
                         [](const BatchSequence &s) { return !s.done(); });
    };
    while (unfinished()) {
      Step step;
      for (BatchSequence &s : batch) {
        int32_t row = static_cast<int32_t>(step.rows.size());
        step.rows.push_back(&s);
        int64_t length = static_cast<int64_t>(s.tokens.size());
        if (s.done()) {
          // Padding: a finished sequence keeps its row of the batch. It
          // feeds its last cached token again, attends to its cache and
          // writes nothing; its logits are computed and dropped.
          addToken(step.inputs, s, length - 2, row, /*cached=*/false);
          step.inputs.logitRows.push_back(
              static_cast<int32_t>(step.inputs.tokens.size()) - 1);
          ++r.paddingTokens;
        } else {
          addToken(step.inputs, s, length - 1, row, /*cached=*/true);
          step.sample(&s);
        }
      }
      forward(step, /*decode=*/true);
    }
  }

private:
  /// One forward step: its inputs, its sequences (one block-table row
  /// each), and the sequences that sample, with their logit rows.
  struct Step {
    StepInputs inputs;
    std::vector<BatchSequence *> rows;
    std::vector<std::pair<BatchSequence *, size_t>> sampled;
    /// `s` samples from the logits of the last token added.
    void sample(BatchSequence *s) {
      sampled.push_back({s, inputs.logitRows.size()});
      inputs.logitRows.push_back(static_cast<int32_t>(inputs.tokens.size()) -
                                 1);
    }
  };

  void addToken(StepInputs &inputs, const BatchSequence &s, int64_t position,
                int32_t row, bool cached) {
    int64_t blockSize = runner.blockSize();
    size_t block = static_cast<size_t>(position / blockSize);
    inputs.tokens.push_back(s.tokens[static_cast<size_t>(position)]);
    inputs.positions.push_back(static_cast<int32_t>(position));
    inputs.slotMapping.push_back(
        cached ? static_cast<int32_t>(s.table[block] * blockSize +
                                      position % blockSize)
               : -1);
    inputs.tokenSeq.push_back(row);
  }

  void forward(Step &step, bool decode) {
    StepInputs &inputs = step.inputs;
    inputs.sequences = static_cast<int64_t>(step.rows.size());
    inputs.blocksPerSeq = 1;
    for (const BatchSequence *s : step.rows)
      inputs.blocksPerSeq = std::max<int64_t>(
          inputs.blocksPerSeq, static_cast<int64_t>(s->table.size()));
    // Shorter rows are padded with block 0, which their tokens never reach.
    inputs.blockTables.assign(
        static_cast<size_t>(inputs.sequences * inputs.blocksPerSeq), 0);
    for (size_t i = 0; i < step.rows.size(); ++i)
      std::copy(step.rows[i]->table.begin(), step.rows[i]->table.end(),
                inputs.blockTables.begin() +
                    static_cast<std::ptrdiff_t>(i * inputs.blocksPerSeq));
    std::string error;
    double start = clock.now();
    if (!runner.forward(inputs, logits, error))
      throw BenchError{"step " + std::to_string(r.steps + 1) +
                       ": forward step failed: " + error};
    ++r.steps;
    int64_t tokens = static_cast<int64_t>(inputs.tokens.size());
    (decode ? r.decodeTokens : r.prefillTokens) += tokens;
    double now = clock.now();
    int64_t vocab = runner.vocabSize();
    for (const auto &[sequence, logitRow] : step.sampled) {
      BatchSequence &s = *sequence;
      RequestRecord &record = r.records[static_cast<size_t>(s.id)];
      int32_t token = sample(logits.data() + logitRow * vocab, vocab,
                             samplingFor(o, s.id), record.output.size());
      s.tokens.push_back(token);
      if (record.output.empty())
        record.firstToken = now;
      record.lastToken = now;
      record.output.push_back(token);
      ++r.generatedTokens;
      if (s.done()) {
        record.status = Status::Finished;
        record.finish = now;
        ++done;
      }
    }
    r.timeline.push_back(
        {start, now, tokens, r.generatedTokens, held, running});
    progress.update(now, done, r.generatedTokens);
  }

  ModelRunner &runner;
  const BenchOptions &o;
  RunResult &r;
  const RunClock &clock;
  Progress &progress;
  int64_t &done;
  int64_t held = 0, running = 0;
  std::vector<float> logits;
};

void runStatic(ModelRunner &runner, const std::vector<WorkItem> &work,
               const BenchOptions &o, int64_t maxContext, RunResult &r) {
  // The scheduler's submit() checks decide which requests are rejected, so
  // that both modes reject the same ones. This scheduler never steps: it
  // does not touch the runner's cache.
  SchedulerOptions options;
  options.maxContext = maxContext;
  Scheduler validator(runner, options);
  int64_t total = static_cast<int64_t>(work.size()), done = 0;
  r.records.assign(work.size(), RequestRecord{});
  Progress progress(total);
  RunClock clock;
  StaticRun batchRunner(runner, o, r, clock, progress, done);
  int64_t blockSize = runner.blockSize();
  std::deque<int64_t> pending;
  size_t next = 0;
  for (;;) {
    double now = clock.now();
    for (; next < work.size() && work[next].arrival <= now; ++next) {
      Request request;
      request.id = static_cast<int64_t>(next);
      request.prompt = work[next].prompt;
      request.maxNewTokens = work[next].outputTokens;
      request.sampling = samplingFor(o, request.id);
      RequestRecord &record = r.records[next];
      if (validator.submit(request, record.reason)) {
        validator.cancel(request.id);
        pending.push_back(request.id);
      } else {
        record.status = Status::Rejected;
        ++done;
      }
    }
    if (pending.empty()) {
      if (next == work.size())
        break;
      clock.sleepUntil(work[next].arrival);
      continue;
    }
    // Up to --batch arrived requests, first come first served, while the
    // cache holds each one's whole prompt + output (the last output token
    // is never fed back). submit() made sure the head fits alone.
    KVBlockManager blocks(static_cast<int32_t>(runner.numBlocks()),
                          static_cast<int32_t>(blockSize));
    std::vector<BatchSequence> batch;
    std::string ignored;
    while (!pending.empty() && static_cast<int64_t>(batch.size()) < o.batch) {
      int64_t id = pending.front();
      const WorkItem &item = work[static_cast<size_t>(id)];
      int64_t promptLength = static_cast<int64_t>(item.prompt.size());
      if (!blocks.addSequence(id, promptLength + item.outputTokens - 1,
                              ignored))
        break;
      BatchSequence s;
      s.id = id;
      s.promptLength = promptLength;
      s.outputTokens = item.outputTokens;
      s.tokens = item.prompt;
      s.table = blocks.getBlockTable(id);
      batch.push_back(std::move(s));
      r.records[static_cast<size_t>(id)].batch = r.batches;
      pending.pop_front();
    }
    int64_t held = blocks.getNumBlocks() - blocks.getNumFreeBlocks();
    r.peakBlocks = std::max(r.peakBlocks, held);
    ++r.batches;
    batchRunner.run(batch, held);
  }
  r.duration = clock.now();
}

//===----------------------------------------------------------------------===//
// Report
//===----------------------------------------------------------------------===//

/// Nearest-rank percentile of `values` (sorted); NaN when empty.
double percentile(const std::vector<double> &sorted, double p) {
  if (sorted.empty())
    return std::nan("");
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

struct Summary {
  int64_t finished = 0, rejected = 0, promptTokens = 0, generatedTokens = 0;
  std::string firstRejection;
  std::vector<double> ttft, tpot, latency; // sorted, seconds
  double meanBlockFraction = 0;
  double generatedPerSecond = 0, totalPerSecond = 0;
};

Summary summarize(const std::vector<WorkItem> &work, const RunResult &r,
                  int64_t numBlocks) {
  Summary s;
  for (size_t i = 0; i < work.size(); ++i) {
    const RequestRecord &record = r.records[i];
    if (record.status == Status::Rejected) {
      if (s.rejected++ == 0)
        s.firstRejection = record.reason;
      continue;
    }
    if (record.status != Status::Finished)
      continue;
    ++s.finished;
    s.promptTokens += static_cast<int64_t>(work[i].prompt.size());
    s.generatedTokens += static_cast<int64_t>(record.output.size());
    s.ttft.push_back(record.firstToken - work[i].arrival);
    s.latency.push_back(record.finish - work[i].arrival);
    if (record.output.size() >= 2)
      s.tpot.push_back((record.lastToken - record.firstToken) /
                       static_cast<double>(record.output.size() - 1));
  }
  for (std::vector<double> *v : {&s.ttft, &s.tpot, &s.latency})
    std::sort(v->begin(), v->end());
  // Weighted by time: the blocks a step's sequences held, for as long as it
  // ran; none while the run waited for arrivals (or sampled between steps).
  for (const StepSample &step : r.timeline)
    s.meanBlockFraction +=
        static_cast<double>(step.blocks) / numBlocks * (step.end - step.start);
  if (r.duration > 0)
    s.meanBlockFraction = std::min(1.0, s.meanBlockFraction / r.duration);
  if (r.duration > 0) {
    s.generatedPerSecond = s.generatedTokens / r.duration;
    s.totalPerSecond = (s.promptTokens + s.generatedTokens) / r.duration;
  }
  return s;
}

std::string formatMs(double seconds) {
  if (std::isnan(seconds))
    return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f ms", seconds * 1e3);
  return text;
}

std::string rateText(double rate) {
  if (!std::isfinite(rate))
    return "all at once (--rate=inf)";
  char text[64];
  std::snprintf(text, sizeof text, "Poisson arrivals at %g requests/s", rate);
  return text;
}

std::string samplingText(const SamplingParams &p) {
  if (!(p.temperature > 0))
    return "greedy";
  char text[96];
  std::snprintf(text, sizeof text, "temperature %g, top-k %d, top-p %g",
                p.temperature, p.topK, p.topP);
  return text;
}

struct RunInfo {
  std::string artifactPath, modelName, target;
  int64_t vocab = 0, maxContext = 0, numBlocks = 0, blockSize = 0;
};

void printReport(const BenchOptions &o, const RunInfo &info, const RunResult &r,
                 const Summary &s) {
  bool isStatic = o.mode == Mode::Static;
  std::printf("moe-run bench: %s (%s), %s\n", info.modelName.c_str(),
              info.target.c_str(),
              isStatic ? "static batching" : "continuous batching");
  std::printf("workload: %lld requests, %s, prompt %s, output %s, seed "
              "%llu, %s\n",
              static_cast<long long>(o.requests), rateText(o.rate).c_str(),
              o.promptLength.text.c_str(), o.outputLength.text.c_str(),
              static_cast<unsigned long long>(o.seed),
              samplingText(o.sampling).c_str());
  if (isStatic)
    std::printf("limits: batches of %lld, %lld tokens per prefill step, %lld "
                "KV blocks of %lld tokens\n",
                static_cast<long long>(o.batch),
                static_cast<long long>(o.maxTokensPerStep),
                static_cast<long long>(info.numBlocks),
                static_cast<long long>(info.blockSize));
  else
    std::printf("limits: %lld tokens per step, %lld running, %lld KV blocks "
                "of %lld tokens\n",
                static_cast<long long>(o.maxTokensPerStep),
                static_cast<long long>(o.maxRunning),
                static_cast<long long>(info.numBlocks),
                static_cast<long long>(info.blockSize));
  std::printf("requests: %lld finished, %lld rejected",
              static_cast<long long>(s.finished),
              static_cast<long long>(s.rejected));
  if (s.rejected)
    std::printf(" (first: %s)", s.firstRejection.c_str());
  std::printf("\n");
  std::printf("duration: %.4f s\n", r.duration);
  std::printf("throughput: %.1f generated tokens/s, %.1f total tokens/s "
              "(prompt + generated)\n",
              s.generatedPerSecond, s.totalPerSecond);
  std::printf("tokens: %lld prompt, %lld generated; the model ran %lld "
              "(%lld prefill, %lld decode; %lld recomputed, %lld padding)\n",
              static_cast<long long>(s.promptTokens),
              static_cast<long long>(s.generatedTokens),
              static_cast<long long>(r.prefillTokens + r.decodeTokens),
              static_cast<long long>(r.prefillTokens),
              static_cast<long long>(r.decodeTokens),
              static_cast<long long>(r.recomputedTokens),
              static_cast<long long>(r.paddingTokens));
  int64_t modelTokens =
      r.prefillTokens + r.decodeTokens + r.verifiedDraftTokens;
  std::printf("steps: %lld (%.1f tokens per step)",
              static_cast<long long>(r.steps),
              r.steps ? static_cast<double>(modelTokens) / r.steps : 0.0);
  if (isStatic)
    std::printf(" in %lld batches", static_cast<long long>(r.batches));
  std::printf("\n");
  std::printf("time to first token: p50 %s, p99 %s\n",
              formatMs(percentile(s.ttft, 50)).c_str(),
              formatMs(percentile(s.ttft, 99)).c_str());
  std::printf("time per output token: p50 %s, p99 %s\n",
              formatMs(percentile(s.tpot, 50)).c_str(),
              formatMs(percentile(s.tpot, 99)).c_str());
  std::printf("request latency: p50 %s, p99 %s\n",
              formatMs(percentile(s.latency, 50)).c_str(),
              formatMs(percentile(s.latency, 99)).c_str());
  std::printf("KV blocks: peak %lld of %lld (%.1f%%), mean %.1f%% of the "
              "time\n",
              static_cast<long long>(r.peakBlocks),
              static_cast<long long>(info.numBlocks),
              100.0 * r.peakBlocks / info.numBlocks,
              100.0 * s.meanBlockFraction);
  std::printf("preemptions: %lld\n", static_cast<long long>(r.preemptions));
  if (!o.draft.empty()) {
    std::printf("speculation: %lld draft tokens (%s), %lld of %lld steps "
                "speculated, %lld draft tokens verified\n",
                static_cast<long long>(o.draftTokens),
                o.speculateAlways ? "always" : "auto",
                static_cast<long long>(r.speculativeSteps),
                static_cast<long long>(r.steps),
                static_cast<long long>(r.verifiedDraftTokens));
    // Position j: verifications whose first j drafts were all accepted,
    // of those that proposed a j-th draft.
    std::printf("draft acceptance by position:");
    for (size_t j = 0; j < r.draftProposed.size(); ++j) {
      std::printf(" %zu: %lld/%lld", j + 1,
                  static_cast<long long>(r.draftAccepted[j]),
                  static_cast<long long>(r.draftProposed[j]));
      if (r.draftProposed[j])
        std::printf(" (%.1f%%)",
                    100.0 * r.draftAccepted[j] / r.draftProposed[j]);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
}

Json number(double value) {
  return std::isfinite(value) ? Json(value) : Json(nullptr);
}

Json distribution(const std::vector<double> &sorted) {
  Json j;
  j["count"] = sorted.size();
  double sum = 0;
  for (double v : sorted)
    sum += v;
  j["mean"] = sorted.empty() ? Json(nullptr) : Json(sum / sorted.size());
  j["p50"] = number(percentile(sorted, 50));
  j["p90"] = number(percentile(sorted, 90));
  j["p99"] = number(percentile(sorted, 99));
  j["max"] = sorted.empty() ? Json(nullptr) : Json(sorted.back());
  return j;
}

Json toJson(const BenchOptions &o, const RunInfo &info,
            const std::vector<WorkItem> &work, const RunResult &r,
            const Summary &s) {
  bool isStatic = o.mode == Mode::Static;
  Json j;
  Json &config = j["config"];
  config["artifact"] = info.artifactPath;
  config["model"] = info.modelName;
  config["target"] = info.target;
  config["mode"] = isStatic ? "static" : "continuous";
  config["requests"] = o.requests;
  config["rate"] = std::isfinite(o.rate) ? Json(o.rate) : Json("inf");
  config["prompt_len"] = o.promptLength.text;
  config["output_len"] = o.outputLength.text;
  config["seed"] = o.seed;
  config["temperature"] = o.sampling.temperature;
  config["top_k"] = o.sampling.topK;
  config["top_p"] = o.sampling.topP;
  config["max_tokens_per_step"] = o.maxTokensPerStep;
  if (isStatic)
    config["batch"] = o.batch;
  else
    config["max_running"] = o.maxRunning;
  config["kv_blocks"] = info.numBlocks;
  config["block_size"] = info.blockSize;
  config["max_context"] = info.maxContext;
  config["vocab_size"] = info.vocab;
  if (o.checkpoint.empty())
    config["weights_seed"] = o.weightsSeed;
  else
    config["weights"] = o.checkpoint;
  if (!o.draft.empty()) {
    config["draft"] = o.draft;
    config["draft_tokens"] = o.draftTokens;
    config["speculate"] = o.speculateAlways ? "always" : "auto";
    if (o.draftCheckpoint.empty())
      config["draft_weights_seed"] = o.draftWeightsSeed;
    else
      config["draft_weights"] = o.draftCheckpoint;
  }

  Json &summary = j["summary"];
  summary["duration_s"] = r.duration;
  summary["requests"] = {{"total", o.requests},
                         {"finished", s.finished},
                         {"rejected", s.rejected}};
  summary["tokens"] = {{"prompt", s.promptTokens},
                       {"generated", s.generatedTokens},
                       {"model_prefill", r.prefillTokens},
                       {"model_decode", r.decodeTokens},
                       {"draft_verified", r.verifiedDraftTokens},
                       {"recomputed", r.recomputedTokens},
                       {"padding", r.paddingTokens}};
  summary["throughput"] = {{"generated_tokens_per_s", s.generatedPerSecond},
                           {"total_tokens_per_s", s.totalPerSecond}};
  summary["steps"] = r.steps;
  if (isStatic)
    summary["batches"] = r.batches;
  summary["ttft_s"] = distribution(s.ttft);
  summary["tpot_s"] = distribution(s.tpot);
  summary["latency_s"] = distribution(s.latency);
  summary["kv_blocks"] = {{"total", info.numBlocks},
                          {"peak", r.peakBlocks},
                          {"mean_fraction", s.meanBlockFraction}};
  summary["preemptions"] = r.preemptions;
  // Speculative decoding: per draft position j, the verifications that
  // proposed a j-th draft and those that accepted the first j; null
  // without --draft.
  if (o.draft.empty()) {
    summary["speculative"] = nullptr;
  } else {
    Json positions = Json::array();
    for (size_t j = 0; j < r.draftProposed.size(); ++j)
      positions.push_back(
          {{"position", j + 1},
           {"proposed", r.draftProposed[j]},
           {"accepted", r.draftAccepted[j]},
           {"rate", r.draftProposed[j]
                        ? Json(static_cast<double>(r.draftAccepted[j]) /
                               r.draftProposed[j])
                        : Json(nullptr)}});
    summary["speculative"] = {
        {"draft", o.draft},
        {"draft_tokens", o.draftTokens},
        {"speculate", o.speculateAlways ? "always" : "auto"},
        {"speculative_steps", r.speculativeSteps},
        {"verifications", r.verifications},
        {"verified_draft_tokens", r.verifiedDraftTokens},
        {"draft_forwards", r.draftForwards},
        {"draft_fed_tokens", r.draftFedTokens},
        {"draft_evictions", r.draftEvictions},
        {"positions", positions}};
  }

  Json requests = Json::array();
  for (size_t i = 0; i < work.size(); ++i) {
    const RequestRecord &record = r.records[i];
    Json q;
    q["id"] = i;
    q["arrival_s"] = work[i].arrival;
    q["prompt_tokens"] = work[i].prompt.size();
    q["requested_output_tokens"] = work[i].outputTokens;
    q["status"] = record.status == Status::Finished   ? "finished"
                  : record.status == Status::Rejected ? "rejected"
                                                      : "unfinished";
    if (record.status == Status::Rejected) {
      q["reason"] = record.reason;
    } else {
      q["output_tokens"] = record.output.size();
      q["first_token_s"] = record.firstToken;
      q["finish_s"] = record.finish;
      q["ttft_s"] = record.firstToken - work[i].arrival;
      q["tpot_s"] = record.output.size() >= 2
                        ? Json((record.lastToken - record.firstToken) /
                               (record.output.size() - 1))
                        : Json(nullptr);
      q["latency_s"] = record.finish - work[i].arrival;
      if (isStatic)
        q["batch"] = record.batch;
      q["output"] = record.output;
    }
    requests.push_back(std::move(q));
  }
  j["requests"] = std::move(requests);

  Json timeline = Json::array();
  for (const StepSample &step : r.timeline)
    timeline.push_back({step.start, step.end, step.tokens, step.generated,
                        step.blocks, step.running});
  j["timeline_columns"] = {"start_s",   "end_s",     "tokens",
                           "generated", "kv_blocks", "running"};
  j["timeline"] = std::move(timeline);
  return j;
}

/// `j` with its objects indented and one request or step per line of its
/// arrays: readable, and a long run's file stays a few lines per request.
std::string formatJson(const Json &j) {
  std::string out = "{";
  bool firstKey = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out += firstKey ? "\n" : ",\n";
    firstKey = false;
    out += "  " + Json(it.key()).dump() + ": ";
    if (it->is_array() && !it->empty() && it->front().is_structured()) {
      out += "[";
      for (size_t i = 0; i < it->size(); ++i)
        out += (i ? ",\n    " : "\n    ") + (*it)[i].dump();
      out += "\n  ]";
    } else if (it->is_object()) {
      // Indented by two more spaces than dump() would.
      std::string text = it->dump(2), indented;
      for (char c : text) {
        indented += c;
        if (c == '\n')
          indented += "  ";
      }
      out += indented;
    } else {
      out += it->dump();
    }
  }
  return out + "\n}\n";
}

//===----------------------------------------------------------------------===//
// SVG plot
//===----------------------------------------------------------------------===//

/// Round tick steps (1, 2, 5 x 10^k) that cut [0, max] into about 5 parts.
double tickStep(double max) {
  if (!(max > 0))
    return 1;
  double raw = max / 5, power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw)
      return m * power;
  return 10 * power;
}

std::string fmt(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

std::string xmlEscape(const std::string &text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

/// A panel of a line chart: axes from 0 to xMax / yMax with ticks and labels.
struct Panel {
  double left, top, width, height, xMax, yMax;
  double x(double v) const { return left + width * v / xMax; }
  double y(double v) const { return top + height * (1 - v / yMax); }

  void axes(std::ostringstream &out, const std::string &title,
            const std::string &xLabel, const std::string &yLabel) const {
    out << "<text x=\"" << fmt(left + width / 2) << "\" y=\"" << fmt(top - 10)
        << "\" text-anchor=\"middle\" font-weight=\"bold\">" << xmlEscape(title)
        << "</text>\n";
    out << "<rect x=\"" << fmt(left) << "\" y=\"" << fmt(top) << "\" width=\""
        << fmt(width) << "\" height=\"" << fmt(height)
        << "\" fill=\"none\" stroke=\"#444\"/>\n";
    double xs = tickStep(xMax), ys = tickStep(yMax);
    for (double v = 0; v <= xMax * (1 + 1e-9); v += xs)
      out << "<line x1=\"" << fmt(x(v)) << "\" y1=\"" << fmt(top + height)
          << "\" x2=\"" << fmt(x(v)) << "\" y2=\"" << fmt(top)
          << "\" stroke=\"#ddd\"/>\n<text x=\"" << fmt(x(v)) << "\" y=\""
          << fmt(top + height + 14) << "\" text-anchor=\"middle\">" << fmt(v)
          << "</text>\n";
    for (double v = 0; v <= yMax * (1 + 1e-9); v += ys)
      out << "<line x1=\"" << fmt(left) << "\" y1=\"" << fmt(y(v)) << "\" x2=\""
          << fmt(left + width) << "\" y2=\"" << fmt(y(v))
          << "\" stroke=\"#ddd\"/>\n<text x=\"" << fmt(left - 5) << "\" y=\""
          << fmt(y(v) + 4) << "\" text-anchor=\"end\">" << fmt(v)
          << "</text>\n";
    out << "<text x=\"" << fmt(left + width / 2) << "\" y=\""
        << fmt(top + height + 32) << "\" text-anchor=\"middle\">"
        << xmlEscape(xLabel) << "</text>\n";
    out << "<text transform=\"translate(" << fmt(left - 42) << ","
        << fmt(top + height / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
        << xmlEscape(yLabel) << "</text>\n";
  }

  /// A polyline through (xs[i], ys[i]), at most ~2000 points.
  void line(std::ostringstream &out, const std::vector<double> &xs,
            const std::vector<double> &ys, const char *color) const {
    if (xs.empty())
      return;
    size_t stride = std::max<size_t>(1, xs.size() / 2000);
    out << "<polyline fill=\"none\" stroke=\"" << color
        << "\" stroke-width=\"1.5\" points=\"";
    for (size_t i = 0; i < xs.size(); i += stride)
      out << fmt(x(xs[i])) << "," << fmt(y(ys[i])) << " ";
    out << fmt(x(xs.back())) << "," << fmt(y(ys.back())) << "\"/>\n";
  }
};

/// Left: generated tokens over time. Right: the CDFs of time to first token
/// and request latency.
std::string plotSvg(const BenchOptions &o, const RunInfo &info,
                    const RunResult &r, const Summary &s) {
  std::ostringstream out;
  const double w = 900, h = 360;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w
      << "\" height=\"" << h << "\" viewBox=\"0 0 " << w << " " << h
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  out << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  char title[256];
  std::snprintf(title, sizeof title,
                "moe-run bench: %s, %s batching, %lld requests: %.1f "
                "generated tokens/s, %lld steps",
                info.modelName.c_str(),
                o.mode == Mode::Static ? "static" : "continuous",
                static_cast<long long>(o.requests), s.generatedPerSecond,
                static_cast<long long>(r.steps));
  out << "<text x=\"" << w / 2 << "\" y=\"18\" text-anchor=\"middle\" "
      << "font-size=\"13\">" << xmlEscape(title) << "</text>\n";

  // Generated tokens over time, from (0, 0).
  std::vector<double> times{0}, tokens{0};
  for (const StepSample &step : r.timeline) {
    times.push_back(step.end);
    tokens.push_back(static_cast<double>(step.generated));
  }
  Panel left{70,
             50,
             340,
             250,
             r.duration > 0 ? r.duration : 1,
             std::max(1.0, tokens.back())};
  left.axes(out, "generated tokens over time", "time (s)", "tokens generated");
  left.line(out, times, tokens, "#1f77b4");

  // CDFs, in milliseconds.
  auto cdf = [](const std::vector<double> &sorted, std::vector<double> &xs,
                std::vector<double> &ys) {
    xs = {0};
    ys = {0};
    for (size_t i = 0; i < sorted.size(); ++i) {
      xs.push_back(sorted[i] * 1e3);
      ys.push_back(static_cast<double>(i) / sorted.size());
      xs.push_back(sorted[i] * 1e3);
      ys.push_back(static_cast<double>(i + 1) / sorted.size());
    }
  };
  std::vector<double> ttftX, ttftY, latX, latY;
  cdf(s.ttft, ttftX, ttftY);
  cdf(s.latency, latX, latY);
  double xMax = s.latency.empty() ? 1 : s.latency.back() * 1e3;
  Panel right{520, 50, 340, 250, xMax > 0 ? xMax : 1, 1};
  right.axes(out, "request CDFs", "milliseconds since arrival",
             "fraction of requests");
  right.line(out, ttftX, ttftY, "#d62728");
  right.line(out, latX, latY, "#2ca02c");
  out << "<text x=\"" << fmt(right.left + right.width - 6) << "\" y=\""
      << fmt(right.top + right.height - 26) << "\" text-anchor=\"end\" "
      << "fill=\"#d62728\">time to first token</text>\n";
  out << "<text x=\"" << fmt(right.left + right.width - 6) << "\" y=\""
      << fmt(right.top + right.height - 12) << "\" text-anchor=\"end\" "
      << "fill=\"#2ca02c\">request latency</text>\n";
  out << "</svg>\n";
  return out.str();
}

//===----------------------------------------------------------------------===//
// The command
//===----------------------------------------------------------------------===//

/// One untimed forward step of `tokens` one-token sequences before the
/// clock starts: the first step pays for thread pools and first touches of
/// the activation buffers (10-30 ms on the host), which would otherwise be
/// charged to the first requests. It writes nothing to the cache (slots -1).
void warmUp(ModelRunner &runner, int64_t tokens) {
  StepInputs inputs;
  inputs.sequences = tokens;
  inputs.blocksPerSeq = 1;
  inputs.blockTables.assign(static_cast<size_t>(tokens), 0);
  for (int64_t i = 0; i < tokens; ++i) {
    inputs.tokens.push_back(0);
    inputs.positions.push_back(0);
    inputs.slotMapping.push_back(-1);
    inputs.tokenSeq.push_back(static_cast<int32_t>(i));
    inputs.logitRows.push_back(static_cast<int32_t>(i));
  }
  std::vector<float> logits;
  std::string error;
  if (!runner.forward(inputs, logits, error))
    throw BenchError{"warm-up step failed: " + error};
}

std::ofstream openOutput(const std::string &path) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file)
    throw BenchError{"cannot write '" + path + "': " + std::strerror(errno)};
  return file;
}

void writeOutput(std::ofstream &file, const std::string &path,
                 const std::string &text) {
  file << text;
  file.close();
  if (!file)
    throw BenchError{"cannot write '" + path + "'"};
}

int bench(const std::string &path, const std::vector<std::string> &args) {
  BenchOptions o = parseOptions(args);

  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  if (!artifact)
    throw BenchError{error};
  RunInfo info;
  info.artifactPath = path;
  info.modelName = artifact->model().name;
  info.target = artifact->target();
  info.vocab = artifact->model().vocabSize;
  info.maxContext = artifact->model().maxContext;
  std::string invalid = validate(o.sampling, info.vocab);
  if (!invalid.empty())
    usageError(invalid);

  const StageInfo &stage = artifact->stageOfRank(0);
  int64_t blockSize = stage.execution && stage.execution->blockSize > 0
                          ? stage.execution->blockSize
                          : 1;
  if (o.kvBlocks == 0) {
    // Enough for a full batch of the longest requests the workload can
    // draw: no preemption unless asked for with a smaller --kv-blocks.
    int64_t longest = std::min(o.promptLength.max + o.outputLength.max - 1,
                               std::max<int64_t>(info.maxContext, 1));
    int64_t width = o.mode == Mode::Static ? o.batch : o.maxRunning;
    int64_t perSequence = blocksFor(longest, blockSize);
    o.kvBlocks = std::min<int64_t>(
        perSequence * std::min<int64_t>(width, o.requests), INT32_MAX);
  }

  // Open the outputs first: a bad path fails before the run, not after.
  std::ofstream jsonFile, plotFile;
  if (!o.jsonPath.empty())
    jsonFile = openOutput(o.jsonPath);
  if (!o.plotPath.empty())
    plotFile = openOutput(o.plotPath);

  // Every rank of the plan, in this process (runtime/LocalRunner.h).
  std::unique_ptr<LocalRunner> executor =
      LocalRunner::create(*artifact, o.kvBlocks, error);
  if (!executor)
    throw BenchError{error};
  if (o.checkpoint.empty())
    executor->initRandomWeights(o.weightsSeed);
  else if (!executor->loadWeights(o.checkpoint, error))
    throw BenchError{error};
  info.numBlocks = executor->numBlocks();
  info.blockSize = executor->blockSize();

  // The draft model of speculative decoding, with as many blocks.
  std::unique_ptr<Artifact> draftArtifact;
  std::unique_ptr<LocalRunner> draft;
  if (!o.draft.empty()) {
    draftArtifact = Artifact::open(o.draft, error);
    if (!draftArtifact)
      throw BenchError{error};
    if (draftArtifact->model().vocabSize != info.vocab)
      throw BenchError{"the draft's vocabulary (" +
                       std::to_string(draftArtifact->model().vocabSize) +
                       ") is not the target's (" + std::to_string(info.vocab) +
                       ")"};
    draft = LocalRunner::create(*draftArtifact, executor->numBlocks(), error);
    if (!draft)
      throw BenchError{"draft: " + error};
    if (o.draftCheckpoint.empty())
      draft->initRandomWeights(o.draftWeightsSeed);
    else if (!draft->loadWeights(o.draftCheckpoint, error))
      throw BenchError{"draft: " + error};
    info.maxContext =
        std::min(info.maxContext, draftArtifact->model().maxContext);
  }

  warmUp(*executor, std::min<int64_t>(o.maxTokensPerStep, 4096));
  if (draft)
    warmUp(*draft, std::min<int64_t>(o.maxTokensPerStep, 4096));
  std::vector<WorkItem> work = makeWorkload(o, info.vocab);
  RunResult result;
  if (o.mode == Mode::Static)
    runStatic(*executor, work, o, info.maxContext, result);
  else
    runContinuous(*executor, draft.get(), work, o, info.maxContext, result);

  Summary summary = summarize(work, result, info.numBlocks);
  printReport(o, info, result, summary);
  if (!o.jsonPath.empty())
    writeOutput(jsonFile, o.jsonPath,
                formatJson(toJson(o, info, work, result, summary)));
  if (!o.plotPath.empty())
    writeOutput(plotFile, o.plotPath, plotSvg(o, info, result, summary));
  return 0;
}

} // namespace

int benchCommand(const std::string &artifactPath,
                 const std::vector<std::string> &args) {
  try {
    return bench(artifactPath, args);
  } catch (const BenchError &failure) {
    std::fflush(stdout);
    std::fprintf(stderr, "moe-run: error: %s\n", failure.message.c_str());
    return failure.status;
  }
}
