//===- BenchRuns.cpp - moe-run bench run loops ----------------------------===//
//
// The run loops of `moe-run ARTIFACT bench`, their progress lines and their
// clock.
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
// Both modes reject the same requests (the checks of Scheduler::submit: too
// long for the context or for the whole KV cache, ...): they are counted and
// reported, never fatal. A failing forward step is fatal (the runner broke).
//
//===----------------------------------------------------------------------===//

#include "tools/moe-run/BenchInternal.h"

#include "runtime/KVBlockManager.h"
#include "runtime/Sampler.h"
#include "runtime/Scheduler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace moert::bench {

namespace {

/// Request `index` of the workload, as the scheduler takes it.
Request requestOf(const BenchOptions &o, const std::vector<WorkItem> &work,
                  size_t index) {
  Request request;
  request.id = static_cast<int64_t>(index);
  request.prompt = work[index].prompt;
  request.maxNewTokens = work[index].outputTokens;
  request.sampling = samplingFor(o, request.id);
  return request;
}

using Clock = std::chrono::steady_clock;

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

} // namespace

int64_t blocksFor(int64_t tokens, int64_t blockSize) {
  return (tokens + blockSize - 1) / blockSize;
}

//===----------------------------------------------------------------------===//
// Continuous batching
//===----------------------------------------------------------------------===//

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
      Request request = requestOf(o, work, next);
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

namespace {

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

} // namespace

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
      Request request = requestOf(o, work, next);
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

} // namespace moert::bench
