//===- SchedulerTest.cpp - Continuous batching against a fake model -------===//
//
// The scheduler drives a small deterministic fake ModelRunner whose logits
// hash everything a real model's attention would see: each token's K/V
// entry (its id and position) is written to the slot the step names, and a
// logit row hashes the entries read back through the block table for
// positions 0..p of its sequence. A wrong slot, block table, position or
// token order changes the output (and reading a slot nobody wrote is
// counted), so comparing each request's output with the request run alone
// checks the bookkeeping of batching, chunking and preemption.
//
//===----------------------------------------------------------------------===//

#include "runtime/Scheduler.h"
#include "runtime/Generator.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

using namespace moert;

namespace {

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// A fake model with the input contract of HostExecutor.
class FakeRunner : public ModelRunner {
public:
  FakeRunner(int64_t blockSize, int64_t numBlocks, int64_t vocab = 97)
      : bs(blockSize), nb(numBlocks), vocab(vocab),
        cache(blockSize * numBlocks, 0) {}

  bool forward(const StepInputs &in, std::vector<float> &logits,
               std::string &error) override {
    if (++calls == failAtCall) {
      error = "injected failure";
      return false;
    }
    error = check(in);
    if (!error.empty())
      return false;
    history.push_back(in);
    for (size_t t = 0; t < in.tokens.size(); ++t) // K/V before attention.
      cache[in.slotMapping[t]] =
          mix(uint64_t(in.tokens[t]) * 1000003 + in.positions[t]) | 1;
    logits.assign(in.logitRows.size() * vocab, 0.0f);
    for (size_t r = 0; r < in.logitRows.size(); ++r) {
      int32_t row = in.logitRows[r];
      int64_t seq = in.tokenSeq[row];
      uint64_t state = 0x5eed;
      for (int64_t q = 0; q <= in.positions[row]; ++q) {
        int64_t block = in.blockTables[seq * in.blocksPerSeq + q / bs];
        uint64_t entry = cache[block * bs + q % bs];
        badReads += entry == 0;
        state = mix(state ^ entry);
      }
      for (int64_t v = 0; v < vocab; ++v)
        logits[r * vocab + v] = float(mix(state + v) % 4096) / 512.0f;
    }
    return true;
  }
  int64_t blockSize() const override { return bs; }
  int64_t numBlocks() const override { return nb; }
  int64_t vocabSize() const override { return vocab; }

  int64_t bs, nb, vocab;
  std::vector<uint64_t> cache;
  std::vector<StepInputs> history;
  int64_t calls = 0, failAtCall = -1, badReads = 0;

private:
  /// The runtime's checks, plus: this fake caches every token.
  std::string check(const StepInputs &in) const {
    std::string error = checkStepInputs(in, vocab, nb, bs);
    if (error.empty())
      for (int32_t slot : in.slotMapping)
        if (slot < 0)
          return "slot " + std::to_string(slot) + " is not cached";
    return error;
  }
};

/// What the events said about one request.
struct Outcome {
  std::vector<int32_t> tokens;
  int finishes = 0;
  bool tokenAfterFinish = false;
  FinishReason reason = FinishReason::Length;
};

void record(const std::vector<SchedulerEvent> &events,
            std::map<int64_t, Outcome> &outcomes) {
  for (const SchedulerEvent &event : events) {
    Outcome &outcome = outcomes[event.requestId];
    if (event.kind == SchedulerEvent::Kind::Token) {
      outcome.tokenAfterFinish |= outcome.finishes > 0;
      outcome.tokens.push_back(event.token);
    } else {
      ++outcome.finishes;
      outcome.reason = event.reason;
    }
  }
}

SchedulerOptions options(int64_t budget = 256, int64_t maxRunning = 64,
                         int64_t maxContext = 4096) {
  SchedulerOptions o;
  o.maxContext = maxContext;
  o.maxTokensPerStep = budget;
  o.maxRunning = maxRunning;
  return o;
}

Request request(int64_t id, std::vector<int32_t> prompt, int64_t maxNew,
                int32_t priority = 0) {
  Request r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.maxNewTokens = maxNew;
  r.priority = priority;
  return r;
}

/// `r` alone through a fresh scheduler over a fresh fake of this geometry.
Outcome alone(const Request &r, int64_t blockSize, int64_t numBlocks,
              const SchedulerOptions &o) {
  FakeRunner runner(blockSize, numBlocks);
  Scheduler scheduler(runner, o);
  std::string error;
  EXPECT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  EXPECT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  return outcomes[r.id];
}

/// `r` through generate(), the one-sequence loop.
std::vector<int32_t> generated(const Request &r) {
  FakeRunner runner(16, 64);
  GenerateOptions g;
  g.maxNewTokens = r.maxNewTokens;
  g.sampling = r.sampling;
  g.stopToken = r.stopToken;
  std::vector<int32_t> output;
  GenerateStats stats;
  std::string error;
  EXPECT_TRUE(
      generate(runner, r.prompt, g, 4096, nullptr, output, stats, error))
      << error;
  return output;
}

/// Steps whose rows start a prefill of a prompt beginning with `first`.
int prefillStarts(const FakeRunner &runner, int32_t first) {
  int starts = 0;
  for (const StepInputs &in : runner.history)
    for (size_t t = 0; t < in.tokens.size(); ++t)
      starts += in.positions[t] == 0 && in.tokens[t] == first;
  return starts;
}

//===----------------------------------------------------------------------===//
// Random arrivals: nothing lost, every output as if run alone
//===----------------------------------------------------------------------===//

struct Workload {
  const char *name;
  int64_t blockSize, numBlocks, budget, maxRunning;
  bool sampled, priorities, expectPreemption;
  uint32_t seed;
};

class SchedulerRandom : public ::testing::TestWithParam<Workload> {};

TEST_P(SchedulerRandom, NoRequestIsLostAndOutputsMatchRunningAlone) {
  const Workload &w = GetParam();
  std::mt19937 rng(w.seed);
  auto uniform = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  SchedulerOptions o = options(w.budget, w.maxRunning);
  FakeRunner runner(w.blockSize, w.numBlocks);
  Scheduler scheduler(runner, o);

  std::vector<Request> requests;
  for (int i = 0; i < 40; ++i) {
    Request r = request(1000 + 7 * i, {}, uniform(1, 16),
                        w.priorities ? uniform(0, 2) : 0);
    for (int n = uniform(1, 20); n > 0; --n)
      r.prompt.push_back(uniform(0, 96));
    if (w.sampled && uniform(0, 3) != 0) {
      r.sampling.temperature = uniform(0, 1) ? 0.7f : 1.0f;
      r.sampling.topK = uniform(0, 20);
      r.sampling.topP = uniform(0, 1) ? 0.9f : 1.0f;
      r.sampling.seed = rng();
    }
    if (uniform(0, 2) == 0)
      r.stopToken = uniform(0, 96);
    requests.push_back(r);
  }

  std::map<int64_t, Outcome> outcomes;
  std::vector<SchedulerEvent> events;
  std::string error;
  size_t next = 0;
  int64_t steps = 0;
  while (next < requests.size() || !scheduler.idle()) {
    for (int k = uniform(0, 2); k > 0 && next < requests.size(); --k) {
      ASSERT_TRUE(scheduler.submit(requests[next++], error)) << error;
    }
    events.clear();
    ASSERT_TRUE(scheduler.step(events, error)) << error;
    record(events, outcomes);
    ASSERT_LT(++steps, 5000) << "no progress";
    const SchedulerStats &stats = scheduler.stats();
    ASSERT_LE(stats.blocksUsed, w.numBlocks);
    ASSERT_LE(stats.running, w.maxRunning);
    if (!runner.history.empty()) {
      const StepInputs &last = runner.history.back();
      ASSERT_LE(int64_t(last.tokens.size()), w.budget);
      ASSERT_LE(last.sequences, w.maxRunning);
    }
  }
  EXPECT_EQ(runner.badReads, 0);
  const SchedulerStats &stats = scheduler.stats();
  EXPECT_EQ(stats.submitted, 40);
  EXPECT_EQ(stats.finished, 40);
  EXPECT_EQ(stats.blocksUsed, 0);
  EXPECT_EQ(stats.running + stats.waiting, 0);
  if (w.expectPreemption) {
    EXPECT_GT(stats.preemptions, 0);
    EXPECT_GT(stats.recomputedTokens, 0);
  }
  RecordProperty("preemptions", std::to_string(stats.preemptions));
  RecordProperty("steps", std::to_string(stats.steps));

  ASSERT_EQ(outcomes.size(), requests.size());
  for (const Request &r : requests) {
    const Outcome &got = outcomes[r.id];
    EXPECT_EQ(got.finishes, 1) << r.id;
    EXPECT_FALSE(got.tokenAfterFinish) << r.id;
    Outcome solo = alone(r, w.blockSize, w.numBlocks, o);
    EXPECT_EQ(got.tokens, solo.tokens) << "request " << r.id;
    EXPECT_EQ(got.tokens, generated(r)) << "request " << r.id;
    bool stopped = !got.tokens.empty() && got.tokens.back() == r.stopToken;
    EXPECT_EQ(got.reason,
              stopped ? FinishReason::StopToken : FinishReason::Length);
    if (!stopped)
      EXPECT_EQ(int64_t(got.tokens.size()), r.maxNewTokens);
  }
}

INSTANTIATE_TEST_SUITE_P(
    SchedulerWorkloads, SchedulerRandom,
    ::testing::Values(
        // name, block size, blocks, budget, max running, sampled,
        // priorities, expect preemption, seed
        Workload{"large_pool_greedy", 4, 256, 256, 64, false, false, false, 1},
        Workload{"large_pool_sampled", 4, 256, 256, 64, true, false, false, 2},
        Workload{"tiny_pool", 4, 10, 256, 64, true, false, true, 3},
        Workload{"tiny_pool_blocks_of_one", 1, 36, 64, 64, true, false, true,
                 4},
        Workload{"tiny_budget", 4, 64, 3, 64, true, false, false, 5},
        Workload{"tiny_everything", 2, 18, 5, 3, true, true, true, 6},
        Workload{"priorities", 4, 12, 16, 8, true, true, true, 7},
        Workload{"max_running_one", 8, 16, 8, 1, true, false, false, 8}),
    [](const auto &info) { return std::string(info.param.name); });

//===----------------------------------------------------------------------===//
// One mechanism at a time
//===----------------------------------------------------------------------===//

TEST(Scheduler, ChunksAPrefillUnderTheTokenBudget) {
  FakeRunner runner(4, 16);
  Scheduler scheduler(runner, options(/*budget=*/4));
  Request r = request(1, {5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, 3);
  std::string error;
  ASSERT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  for (int s = 0; s < 3; ++s) {
    ASSERT_TRUE(scheduler.step(events, error)) << error;
    EXPECT_EQ(events.size(), s < 2 ? 0u : 1u) << "step " << s;
  }
  ASSERT_EQ(runner.history.size(), 3u);
  std::vector<int32_t> table(runner.history[0].blockTables);
  ASSERT_EQ(table.size(), 3u); // The whole prefill's blocks at admission.
  std::vector<std::vector<int32_t>> positions = {
      {0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}};
  for (size_t s = 0; s < 3; ++s) {
    const StepInputs &in = runner.history[s];
    EXPECT_EQ(in.positions, positions[s]);
    EXPECT_EQ(in.blockTables, table);
    for (size_t t = 0; t < in.tokens.size(); ++t) {
      int32_t p = in.positions[t];
      EXPECT_EQ(in.tokens[t], r.prompt[p]);
      EXPECT_EQ(in.slotMapping[t], table[p / 4] * 4 + p % 4);
    }
    // The runner wants a row every step; only the last chunk's is sampled.
    EXPECT_EQ(in.logitRows,
              std::vector<int32_t>{int32_t(in.tokens.size()) - 1});
  }
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  EXPECT_EQ(outcomes[1].tokens, generated(r));
  EXPECT_EQ(scheduler.stats().prefillTokens, 10);
  EXPECT_EQ(scheduler.stats().decodeTokens, 2);
}

TEST(Scheduler, MixesDecodesAndPrefillChunksInOneStep) {
  FakeRunner runner(4, 16);
  Scheduler scheduler(runner, options(/*budget=*/6));
  Request a = request(1, {1, 2, 3}, 10);
  Request b = request(2, {20, 21, 22, 23, 24, 25, 26, 27, 28}, 4);
  std::string error;
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.submit(a, error)) << error;
  ASSERT_TRUE(scheduler.step(events, error)) << error; // a's prefill
  ASSERT_EQ(events.size(), 1u);
  int32_t first = events[0].token;
  ASSERT_TRUE(scheduler.submit(b, error)) << error;
  ASSERT_TRUE(scheduler.step(events, error)) << error;

  // a decodes its first token, b prefills a chunk of the 5 left.
  const StepInputs &in = runner.history.at(1);
  EXPECT_EQ(in.sequences, 2);
  EXPECT_EQ(in.tokens, (std::vector<int32_t>{first, 20, 21, 22, 23, 24}));
  EXPECT_EQ(in.positions, (std::vector<int32_t>{3, 0, 1, 2, 3, 4}));
  EXPECT_EQ(in.tokenSeq, (std::vector<int32_t>{0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(in.logitRows, std::vector<int32_t>{0}); // b is not done
  ASSERT_EQ(in.blocksPerSeq, 3);
  for (size_t t = 0; t < in.tokens.size(); ++t) {
    int32_t p = in.positions[t], seq = in.tokenSeq[t];
    EXPECT_EQ(in.slotMapping[t], in.blockTables[seq * 3 + p / 4] * 4 + p % 4);
  }
  EXPECT_EQ(scheduler.stats().decodeTokens, 1);
  EXPECT_EQ(scheduler.stats().prefillTokens, 3 + 5);

  ASSERT_TRUE(scheduler.step(events, error)) << error;
  const StepInputs &next = runner.history.at(2);
  EXPECT_EQ(next.positions, (std::vector<int32_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(next.logitRows, (std::vector<int32_t>{0, 4})); // both sample

  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  EXPECT_EQ(outcomes[1].tokens, generated(a));
  EXPECT_EQ(outcomes[2].tokens, generated(b));
  EXPECT_EQ(runner.badReads, 0);
}

TEST(Scheduler, PreemptsTheNewestAndRecomputesIt) {
  // 6 blocks of 2 tokens; each request needs up to 5 blocks alone.
  FakeRunner runner(2, 6);
  Scheduler scheduler(runner, options());
  Request a = request(1, {1, 2, 3}, 8), b = request(2, {4, 5, 6}, 8);
  b.sampling.temperature = 1.0f;
  b.sampling.seed = 99;
  std::string error;
  ASSERT_TRUE(scheduler.submit(a, error)) << error;
  ASSERT_TRUE(scheduler.submit(b, error)) << error;
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);

  EXPECT_GT(scheduler.stats().preemptions, 0);
  EXPECT_EQ(scheduler.stats().peakBlocksUsed, 6);
  EXPECT_EQ(prefillStarts(runner, 1), 1); // a, admitted first, kept going
  EXPECT_GT(prefillStarts(runner, 4), 1); // b was recomputed
  // b's recompute feeds its prompt and the tokens it had generated.
  bool sawRecompute = false;
  for (const StepInputs &in : runner.history)
    for (size_t t = 0; t + 3 < in.tokens.size(); ++t)
      if (in.positions[t] == 0 && in.tokens[t] == 4 &&
          in.positions[t + 3] == 3 && in.tokenSeq[t + 3] == in.tokenSeq[t])
        sawRecompute |= in.tokens[t + 3] == outcomes[2].tokens[0];
  EXPECT_TRUE(sawRecompute);
  EXPECT_EQ(outcomes[1].tokens, generated(a));
  EXPECT_EQ(outcomes[2].tokens, generated(b));
  EXPECT_EQ(runner.badReads, 0);
}

TEST(Scheduler, PreemptsTheLowerPriorityBeforeTheNewer) {
  FakeRunner runner(2, 6);
  Scheduler scheduler(runner, options());
  Request low = request(1, {1, 2, 3}, 8, /*priority=*/0);
  Request high = request(2, {4, 5, 6}, 8, /*priority=*/1);
  std::string error;
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.submit(low, error)) << error;
  ASSERT_TRUE(scheduler.step(events, error)) << error; // low runs first
  ASSERT_TRUE(scheduler.submit(high, error)) << error;
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  EXPECT_GT(scheduler.stats().preemptions, 0);
  EXPECT_GT(prefillStarts(runner, 1), 1);
  EXPECT_EQ(prefillStarts(runner, 4), 1);
  EXPECT_EQ(outcomes[1].tokens, generated(low));
  EXPECT_EQ(outcomes[2].tokens, generated(high));
}

/// Ids in the order their Finished events came.
std::vector<int64_t> finishOrder(const std::vector<SchedulerEvent> &events) {
  std::vector<int64_t> order;
  for (const SchedulerEvent &event : events)
    if (event.kind == SchedulerEvent::Kind::Finished)
      order.push_back(event.requestId);
  return order;
}

TEST(Scheduler, AdmitsByPriorityThenArrival) {
  FakeRunner runner(4, 64);
  Scheduler scheduler(runner, options(256, /*maxRunning=*/1));
  std::string error;
  std::vector<SchedulerEvent> events;
  // Equal priorities: first come, first served.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(scheduler.submit(request(10 - i, {i + 1}, 3), error));
    ASSERT_TRUE(scheduler.step(events, error)) << error;
  }
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  EXPECT_EQ(finishOrder(events), (std::vector<int64_t>{10, 9, 8, 7}));
  // Queued together: priority, then arrival.
  int32_t priorities[] = {0, 0, 2, 1, 2};
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(scheduler.submit(request(i, {i + 1}, 2, priorities[i]), error));
  events.clear();
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  EXPECT_EQ(finishOrder(events), (std::vector<int64_t>{2, 4, 3, 0, 1}));
  // A higher priority arriving later waits for the running one (admission
  // never preempts) but overtakes the queue.
  ASSERT_TRUE(scheduler.submit(request(1, {1}, 3), error));
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  ASSERT_TRUE(scheduler.submit(request(2, {2}, 3), error));
  ASSERT_TRUE(scheduler.submit(request(3, {3}, 3, /*priority=*/5), error));
  events.clear();
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  EXPECT_EQ(finishOrder(events), (std::vector<int64_t>{1, 3, 2}));
}

TEST(Scheduler, NothingOvertakesAQueueHeadThatWaitsForBlocks) {
  FakeRunner runner(4, 8);
  Scheduler scheduler(runner, options());
  std::string error;
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(
      scheduler.submit(request(1, std::vector<int32_t>(8, 1), 10), error));
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  // 2 needs 7 of the 8 blocks: it waits for 1 to finish, and so does 3,
  // although its single block is free.
  ASSERT_TRUE(
      scheduler.submit(request(2, std::vector<int32_t>(28, 2), 1), error));
  ASSERT_TRUE(scheduler.submit(request(3, {3}, 2), error));
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  EXPECT_EQ(scheduler.stats().running, 1);
  EXPECT_EQ(scheduler.stats().waiting, 2);
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  EXPECT_EQ(finishOrder(events), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(scheduler.stats().preemptions, 0);
}

TEST(Scheduler, RejectsRequestsThatCanNeverRun) {
  FakeRunner runner(4, 8); // 32 slots, vocabulary 97
  Scheduler scheduler(runner, options(256, 64, /*maxContext=*/40));
  std::string reason;
  auto rejected = [&](const Request &r) {
    bool accepted = scheduler.submit(r, reason);
    EXPECT_TRUE(scheduler.idle());
    return !accepted ? reason : std::string("accepted");
  };
  EXPECT_EQ(rejected(request(1, {}, 4)), "request 1: the prompt is empty");
  EXPECT_EQ(rejected(request(1, {1}, 0)),
            "request 1: max new tokens must be at least 1, got 0");
  EXPECT_EQ(rejected(request(1, {1, 97}, 4)),
            "request 1: prompt token 1 (id 97) is outside the vocabulary "
            "[0, 97)");
  EXPECT_EQ(rejected(request(1, {-3}, 4)),
            "request 1: prompt token 0 (id -3) is outside the vocabulary "
            "[0, 97)");
  Request stop = request(1, {1}, 4);
  stop.stopToken = 200;
  EXPECT_EQ(rejected(stop), "request 1: stop token 200 is outside the "
                            "vocabulary [0, 97) (-1: none)");
  Request topP = request(1, {1}, 4);
  topP.sampling.topP = 1.5f;
  EXPECT_EQ(rejected(topP), "request 1: top_p must be in (0, 1], got 1.5");
  EXPECT_EQ(rejected(request(1, std::vector<int32_t>(30, 1), 11)),
            "request 1: prompt (30) + new tokens (11) exceed the model's "
            "context of 40");
  EXPECT_EQ(rejected(request(1, std::vector<int32_t>(30, 1), 4)),
            "request 1 needs up to 9 KV blocks (33 tokens) but the whole "
            "cache has 8 blocks of 4 tokens");
  EXPECT_EQ(scheduler.stats().rejected, 8);
  EXPECT_EQ(scheduler.stats().submitted, 0);

  // 29 + 4 - 1 = 32 cached tokens fit exactly; the id is free again.
  EXPECT_TRUE(
      scheduler.submit(request(1, std::vector<int32_t>(29, 1), 4), reason))
      << reason;
  EXPECT_FALSE(scheduler.submit(request(1, {2}, 1), reason));
  EXPECT_EQ(reason, "request 1 is already queued or running");
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.step(events, reason)) << reason; // now running
  EXPECT_FALSE(scheduler.submit(request(1, {2}, 1), reason));
  EXPECT_EQ(reason, "request 1 is already queued or running");
  EXPECT_EQ(scheduler.stats().waiting + scheduler.stats().running, 1);
  ASSERT_TRUE(scheduler.runUntilIdle(events, reason)) << reason;
  EXPECT_TRUE(scheduler.submit(request(1, {2}, 1), reason)) << reason;
}

TEST(Scheduler, ForwardFailuresLoseNothing) {
  FakeRunner runner(2, 10);
  SchedulerOptions o = options(/*budget=*/5);
  Scheduler scheduler(runner, o);
  std::vector<Request> requests;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(request(i, {i + 1, i + 2, i + 3, i + 4}, 6));
    requests.back().sampling.temperature = 0.8f;
    requests.back().sampling.seed = i;
  }
  std::string error;
  for (const Request &r : requests)
    ASSERT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  for (int64_t failAt : {2, 5, 6, 11}) {
    runner.failAtCall = failAt;
    while (runner.calls + 1 < failAt) {
      ASSERT_FALSE(scheduler.idle());
      ASSERT_TRUE(scheduler.step(events, error)) << error;
    }
    SchedulerStats before = scheduler.stats();
    size_t eventCount = events.size();
    EXPECT_FALSE(scheduler.step(events, error));
    EXPECT_EQ(error, "forward step failed: injected failure");
    EXPECT_EQ(events.size(), eventCount);
    EXPECT_EQ(scheduler.stats().steps, before.steps);
    EXPECT_EQ(scheduler.stats().running + scheduler.stats().waiting,
              before.running + before.waiting);
  }
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  EXPECT_GT(scheduler.stats().preemptions, 0);
  for (const Request &r : requests) {
    EXPECT_EQ(outcomes[r.id].finishes, 1);
    EXPECT_EQ(outcomes[r.id].tokens, alone(r, 2, 10, o).tokens) << r.id;
  }
  EXPECT_EQ(runner.badReads, 0);
}

TEST(Scheduler, CountsTokensBlocksAndStops) {
  FakeRunner runner(4, 64);
  Scheduler scheduler(runner, options(/*budget=*/8));
  Request a = request(1, {1, 2, 3, 4, 5}, 6), b = request(2, {9, 8}, 9);
  std::vector<int32_t> bAlone = generated(b);
  b.stopToken = bAlone[3]; // b stops at its 4th token (or earlier)
  std::string error;
  ASSERT_TRUE(scheduler.submit(a, error)) << error;
  ASSERT_TRUE(scheduler.submit(b, error)) << error;
  EXPECT_EQ(scheduler.stats().waiting, 2);
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  EXPECT_EQ(scheduler.stats().running, 2);
  EXPECT_EQ(scheduler.stats().blocksUsed, 2 + 1);
  EXPECT_EQ(*scheduler.outputOf(1), std::vector<int32_t>{events[0].token});
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  EXPECT_EQ(outcomes[1].reason, FinishReason::Length);
  EXPECT_EQ(outcomes[2].reason, FinishReason::StopToken);
  EXPECT_EQ(outcomes[2].tokens.back(), b.stopToken);
  EXPECT_LE(outcomes[2].tokens.size(), 4u);
  size_t outputs = outcomes[1].tokens.size() + outcomes[2].tokens.size();
  const SchedulerStats &stats = scheduler.stats();
  EXPECT_EQ(stats.steps, int64_t(runner.history.size()));
  EXPECT_EQ(stats.prefillTokens, 7);
  EXPECT_EQ(stats.decodeTokens, int64_t(outputs) - 2);
  EXPECT_EQ(stats.generatedTokens, int64_t(outputs));
  EXPECT_EQ(stats.preemptions, 0);
  EXPECT_EQ(stats.recomputedTokens, 0);
  EXPECT_EQ(stats.finished, 2);
  EXPECT_EQ(stats.blocksUsed, 0);
  // a ends with 10 tokens cached (3 blocks), b with at most 5 (2 blocks).
  EXPECT_TRUE(stats.peakBlocksUsed >= 3 && stats.peakBlocksUsed <= 5);
  EXPECT_TRUE(scheduler.idle());
  EXPECT_EQ(scheduler.outputOf(1), nullptr);
}

TEST(Scheduler, CancelFreesEverything) {
  FakeRunner runner(4, 16);
  Scheduler scheduler(runner, options());
  Request a = request(1, {1, 2, 3}, 20), b = request(2, {4, 5}, 5),
          c = request(3, {6}, 5);
  std::string error;
  for (const Request &r : {a, b, c})
    ASSERT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  EXPECT_TRUE(scheduler.cancel(1));  // running
  EXPECT_FALSE(scheduler.cancel(1)); // gone
  EXPECT_FALSE(scheduler.contains(1));
  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  EXPECT_EQ(outcomes[1].tokens.size(), 1u); // from the first step only
  EXPECT_EQ(outcomes[1].finishes, 0);
  EXPECT_EQ(outcomes[2].tokens, generated(b));
  EXPECT_EQ(outcomes[3].tokens, generated(c));
  EXPECT_EQ(scheduler.stats().cancelled, 1);
  EXPECT_EQ(scheduler.stats().blocksUsed, 0);
}

} // namespace
