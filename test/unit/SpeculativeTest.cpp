//===- SpeculativeTest.cpp - Speculative decoding in continuous batching --===//
//
// The scheduler with a draft model, against small deterministic fakes that
// keep a paged cache like a real model: each token's entry (id, position)
// is written to the slot the step names, and a logit row is computed from
// the entries read back through the block table for positions 0..p of its
// sequence (a read of an entry written for another position is counted).
//
//  - HashModel: the logits hash the whole context (like SchedulerTest's
//    fake). As a draft it computes the same logits from its own cache and
//    then, by its Mode, moves the argmax away at chosen positions: a draft
//    that "always agrees" agrees only if its cache holds exactly the
//    sequence, so acceptance 1.0 checks its catch-up and rollback.
//  - MarkovModel: the next-token distribution depends on the last token
//    only, for the statistical test of speculative sampling.
//
//===----------------------------------------------------------------------===//

#include "runtime/Generator.h"
#include "runtime/Scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

using namespace moert;

namespace {

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Entry {
  int32_t token = -1, position = -1;
};

/// A ModelRunner with a paged cache of (token, position) entries; the
/// logits of a row are a function of the context read back for it.
class FakeModel : public ModelRunner {
public:
  FakeModel(int64_t blockSize, int64_t numBlocks, int64_t vocab)
      : bs(blockSize), nb(numBlocks), vocab(vocab),
        cache(blockSize * numBlocks) {}

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
      cache[in.slotMapping[t]] = {in.tokens[t], in.positions[t]};
    logits.assign(in.logitRows.size() * vocab, 0.0f);
    std::vector<Entry> context;
    for (size_t r = 0; r < in.logitRows.size(); ++r) {
      int32_t row = in.logitRows[r];
      int64_t seq = in.tokenSeq[row];
      context.clear();
      for (int64_t q = 0; q <= in.positions[row]; ++q) {
        int64_t block = in.blockTables[seq * in.blocksPerSeq + q / bs];
        Entry entry = cache[block * bs + q % bs];
        badReads += entry.position != q;
        context.push_back(entry);
      }
      fill(context, logits.data() + r * vocab);
    }
    return true;
  }
  int64_t blockSize() const override { return bs; }
  int64_t numBlocks() const override { return nb; }
  int64_t vocabSize() const override { return vocab; }

  int64_t bs, nb, vocab;
  std::vector<Entry> cache;
  std::vector<StepInputs> history;
  int64_t calls = 0, failAtCall = -1, badReads = 0;

protected:
  virtual void fill(const std::vector<Entry> &context, float *row) const = 0;

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

/// Logits hashing the whole context; as a draft, see the file comment.
class HashModel : public FakeModel {
public:
  enum class Mode { Target, Agree, Never, Random, AtPositions };
  HashModel(int64_t blockSize, int64_t numBlocks, Mode mode = Mode::Target,
            int64_t vocab = 97)
      : FakeModel(blockSize, numBlocks, vocab), mode(mode) {}

  Mode mode;
  /// Random: the percentage of rows that disagree; AtPositions: the
  /// positions of the tokens the draft gets wrong.
  int disagreePercent = 30;
  std::set<int64_t> wrongAt;

protected:
  void fill(const std::vector<Entry> &context, float *row) const override {
    uint64_t state = 0x5eed;
    for (const Entry &e : context)
      state = mix(state ^ (mix(uint64_t(e.token) * 1000003 + e.position) | 1));
    for (int64_t v = 0; v < vocab; ++v)
      row[v] = float(mix(state + v) % 4096) / 512.0f;
    int64_t next = int64_t(context.size()); // The position predicted.
    bool wrong = mode == Mode::Never ||
                 (mode == Mode::Random &&
                  int(mix(state ^ 0xd1ff) % 100) < disagreePercent) ||
                 (mode == Mode::AtPositions && wrongAt.count(next));
    if (wrong) {
      int64_t best = std::max_element(row, row + vocab) - row;
      row[(best + 1) % vocab] += 100.0f;
    }
  }
};

/// P(next | last token) = table[last][next], as logits log(p).
class MarkovModel : public FakeModel {
public:
  MarkovModel(int64_t blockSize, int64_t numBlocks,
              std::vector<std::vector<double>> table)
      : FakeModel(blockSize, numBlocks, int64_t(table.size())),
        table(std::move(table)) {}
  std::vector<std::vector<double>> table;

protected:
  void fill(const std::vector<Entry> &context, float *row) const override {
    const std::vector<double> &p = table[context.back().token];
    for (int64_t v = 0; v < vocab; ++v)
      row[v] = float(std::log(p[v]));
  }
};

struct Outcome {
  std::vector<int32_t> tokens;
  int finishes = 0;
  bool tokenAfterFinish = false;
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
    }
  }
}

SchedulerOptions options(ModelRunner *draft, int64_t k = 4,
                         int64_t budget = 256, int64_t maxRunning = 64) {
  SchedulerOptions o;
  o.maxContext = 4096;
  o.maxTokensPerStep = budget;
  o.maxRunning = maxRunning;
  o.draft = draft;
  o.draftTokens = k;
  o.adaptiveSpeculation = false;
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

/// `r` through generate() on a fresh target (no speculation).
std::vector<int32_t> generated(const Request &r) {
  HashModel target(16, 64);
  GenerateOptions g;
  g.maxNewTokens = r.maxNewTokens;
  g.sampling = r.sampling;
  g.stopToken = r.stopToken;
  std::vector<int32_t> output;
  GenerateStats stats;
  std::string error;
  EXPECT_TRUE(
      generate(target, r.prompt, g, 4096, nullptr, output, stats, error))
      << error;
  return output;
}

/// Runs `requests` (all submitted first) to the end.
std::map<int64_t, Outcome> runAll(Scheduler &scheduler,
                                  const std::vector<Request> &requests) {
  std::string error;
  for (const Request &r : requests)
    EXPECT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  EXPECT_TRUE(scheduler.runUntilIdle(events, error, 100000)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  return outcomes;
}

//===----------------------------------------------------------------------===//
// The policy
//===----------------------------------------------------------------------===//

TEST(SpeculationPolicy, ExpectedSpeedup) {
  EXPECT_DOUBLE_EQ(expectedSpeedup(0.0, 4, 0.1), 1.0 / 1.4);
  EXPECT_DOUBLE_EQ(expectedSpeedup(1.0, 4, 0.1), 5.0 / 1.4);
  EXPECT_NEAR(expectedSpeedup(0.5, 4, 0.1), (1 - 1.0 / 32) / 0.5 / 1.4, 1e-12);
  EXPECT_NEAR(expectedSpeedup(0.8, 3, 0.0), 1 + 0.8 + 0.64 + 0.512, 1e-12);
  EXPECT_DOUBLE_EQ(expectedSpeedup(1.5, 4, -1.0), 5.0); // Clamped.
}

TEST(SpeculationPolicy, BatchLimitWithAnInjectedCostRatio) {
  SpeculationPolicy policy(4, 0.5, [](int64_t b) { return 0.05 * b; });
  EXPECT_DOUBLE_EQ(policy.acceptance(), 0.5);
  EXPECT_DOUBLE_EQ(policy.costRatio(10), 0.5);
  // (1 - 0.5^5) / (0.5 (0.2 b + 1)) > 1 for b < 4.6875.
  EXPECT_EQ(policy.batchLimit(64), 4);
  EXPECT_EQ(policy.batchLimit(3), 3);
  for (int i = 0; i < 2000; ++i)
    policy.recordVerification(4, 4);
  EXPECT_GT(policy.acceptance(), 0.99);
  EXPECT_EQ(policy.batchLimit(64), 19); // 5 / (0.2 b + 1) > 1: b < 20.
  for (int i = 0; i < 2000; ++i)
    policy.recordVerification(0, 1);
  EXPECT_LT(policy.acceptance(), 0.01);
  EXPECT_EQ(policy.batchLimit(64), 0);
}

TEST(SpeculationPolicy, MeasuredCostRatio) {
  SpeculationPolicy policy(4, 1.0, nullptr);
  EXPECT_LT(policy.costRatio(1), 0);    // Nothing measured.
  EXPECT_EQ(policy.batchLimit(64), 64); // Speculate to measure.
  // Target 1 ms + 0.1 ms per token, draft 0.105 ms + 0.01 ms per token.
  for (int i = 0; i < 200; ++i) {
    int64_t n = 1 + i % 40;
    policy.recordTargetForward(n, 1e-3 + 1e-4 * n);
    policy.recordDraftForward(n, 1.05e-4 + 1e-5 * n);
  }
  for (int64_t b : {1, 4, 16}) {
    double expected = (0.42 + 0.44 * b) / (4 + 0.4 * b);
    EXPECT_NEAR(policy.costRatio(b), expected, 1e-6) << b;
  }
  // α = 1: 5 / (4 c(b) + 1) > 1 while c(b) < 1, i.e. b < 89.5.
  EXPECT_EQ(policy.batchLimit(200), 89);
  EXPECT_EQ(policy.batchLimit(64), 64);
  // Constant step times (memory-bound): c = D / T.
  StepCostModel flat;
  for (int i = 0; i < 10; ++i)
    flat.record(8, 2e-3);
  EXPECT_NEAR(flat.predict(100), 2e-3, 1e-12);
}

TEST(KVBlockManagerTruncate, ReleasesTrailingBlocks) {
  KVBlockManager blocks(8, 4);
  std::string error;
  ASSERT_TRUE(blocks.addSequence(1, 10, error)) << error; // 3 blocks
  std::vector<int32_t> table = blocks.getBlockTable(1);
  ASSERT_TRUE(blocks.truncate(1, 5, error)) << error;
  EXPECT_EQ(blocks.getNumTokens(1), 5);
  EXPECT_EQ(blocks.getBlockTable(1),
            std::vector<int32_t>(table.begin(), table.begin() + 2));
  EXPECT_EQ(blocks.getNumFreeBlocks(), 6);
  ASSERT_TRUE(blocks.appendTokens(1, 4, error)) << error; // The same block.
  EXPECT_EQ(blocks.getBlockTable(1), table);
  EXPECT_FALSE(blocks.truncate(1, 10, error));
  EXPECT_FALSE(blocks.truncate(1, -1, error));
  EXPECT_FALSE(blocks.truncate(2, 0, error));
  ASSERT_TRUE(blocks.truncate(1, 0, error)) << error;
  EXPECT_EQ(blocks.getNumFreeBlocks(), 8);
  EXPECT_TRUE(blocks.hasSequence(1));
}

//===----------------------------------------------------------------------===//
// Greedy: the output of speculation is the output without it
//===----------------------------------------------------------------------===//

struct Workload {
  const char *name;
  int64_t blockSize, numBlocks, draftBlockSize, draftBlocks, budget, maxRunning,
      k;
  HashModel::Mode mode;
  bool priorities, expectPreemption, expectDraftEviction;
  uint32_t seed;
};

class SpeculativeRandom : public ::testing::TestWithParam<Workload> {};

TEST_P(SpeculativeRandom, GreedyOutputIsThePlainOutput) {
  const Workload &w = GetParam();
  std::mt19937 rng(w.seed);
  auto uniform = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  HashModel target(w.blockSize, w.numBlocks);
  HashModel draft(w.draftBlockSize, w.draftBlocks, w.mode);
  Scheduler scheduler(target, options(&draft, w.k, w.budget, w.maxRunning));

  std::vector<Request> requests;
  for (int i = 0; i < 40; ++i) {
    Request r = request(500 + 3 * i, {}, uniform(1, 24),
                        w.priorities ? uniform(0, 2) : 0);
    for (int n = uniform(1, 20); n > 0; --n)
      r.prompt.push_back(uniform(0, 96));
    if (uniform(0, 2) == 0)
      r.stopToken = uniform(0, 96);
    requests.push_back(r);
  }

  std::map<int64_t, Outcome> outcomes;
  std::vector<SchedulerEvent> events;
  std::string error;
  size_t next = 0, targetSeen = 0, draftSeen = 0;
  int64_t steps = 0;
  while (next < requests.size() || !scheduler.idle()) {
    for (int n = uniform(0, 2); n > 0 && next < requests.size(); --n) {
      ASSERT_TRUE(scheduler.submit(requests[next++], error)) << error;
    }
    events.clear();
    ASSERT_TRUE(scheduler.step(events, error)) << error;
    record(events, outcomes);
    ASSERT_LT(++steps, 5000) << "no progress";
    ASSERT_LE(scheduler.stats().blocksUsed, w.numBlocks);
    ASSERT_LE(scheduler.stats().draftBlocksUsed, w.draftBlocks);
    for (; targetSeen < target.history.size(); ++targetSeen)
      ASSERT_LE(int64_t(target.history[targetSeen].tokens.size()), w.budget);
    // The first draft forward of a step carries the catch-up: budgeted.
    for (bool first = true; draftSeen < draft.history.size(); ++draftSeen) {
      if (first)
        ASSERT_LE(int64_t(draft.history[draftSeen].tokens.size()), w.budget);
      first = false;
    }
  }
  EXPECT_EQ(target.badReads, 0);
  EXPECT_EQ(draft.badReads, 0);
  const SchedulerStats &stats = scheduler.stats();
  EXPECT_EQ(stats.finished, 40);
  EXPECT_EQ(stats.blocksUsed, 0);
  EXPECT_EQ(stats.draftBlocksUsed, 0);
  EXPECT_GT(stats.verifications, 0);
  if (w.expectPreemption)
    EXPECT_GT(stats.preemptions, 0);
  if (w.expectDraftEviction)
    EXPECT_GT(stats.draftEvictions, 0);
  int64_t proposed = 0, accepted = 0;
  for (size_t j = 0; j < stats.draftProposed.size(); ++j) {
    proposed += stats.draftProposed[j];
    accepted += stats.draftAccepted[j];
    if (j > 0) { // Position j+1 needs position j proposed and accepted.
      EXPECT_LE(stats.draftProposed[j], stats.draftProposed[j - 1]);
      EXPECT_LE(stats.draftAccepted[j], stats.draftAccepted[j - 1]);
    }
  }
  EXPECT_EQ(proposed, stats.verifiedDraftTokens);
  if (w.mode == HashModel::Mode::Agree)
    EXPECT_EQ(stats.draftAccepted, stats.draftProposed);
  if (w.mode == HashModel::Mode::Never)
    EXPECT_EQ(accepted, 0);
  if (w.mode == HashModel::Mode::Random) {
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, proposed);
  }
  RecordProperty("preemptions", std::to_string(stats.preemptions));
  RecordProperty("draftEvictions", std::to_string(stats.draftEvictions));
  RecordProperty("accepted", std::to_string(accepted));
  RecordProperty("proposed", std::to_string(proposed));

  ASSERT_EQ(outcomes.size(), requests.size());
  for (const Request &r : requests) {
    const Outcome &got = outcomes[r.id];
    EXPECT_EQ(got.finishes, 1) << r.id;
    EXPECT_FALSE(got.tokenAfterFinish) << r.id;
    EXPECT_EQ(got.tokens, generated(r)) << "request " << r.id;
  }
}

INSTANTIATE_TEST_SUITE_P(
    SpeculativeWorkloads, SpeculativeRandom,
    ::testing::Values(
        // name, block size, blocks, draft block size, draft blocks, budget,
        // max running, k, draft, priorities, expect preemption, expect
        // draft eviction, seed
        Workload{"large_pools", 4, 256, 4, 256, 256, 64, 4,
                 HashModel::Mode::Random, false, false, false, 1},
        Workload{"tiny_pool", 4, 12, 4, 256, 256, 64, 4,
                 HashModel::Mode::Random, false, true, false, 2},
        Workload{"tiny_draft_pool", 4, 256, 2, 24, 256, 64, 3,
                 HashModel::Mode::Random, false, false, true, 3},
        Workload{"tiny_pools_blocks_of_one", 1, 48, 1, 40, 64, 64, 5,
                 HashModel::Mode::Random, true, true, true, 4},
        Workload{"tiny_budget", 4, 64, 4, 64, 6, 64, 4, HashModel::Mode::Random,
                 false, false, false, 5},
        Workload{"priorities", 4, 14, 8, 6, 16, 8, 2, HashModel::Mode::Random,
                 true, true, true, 6},
        Workload{"always_agrees", 4, 16, 4, 12, 32, 64, 4,
                 HashModel::Mode::Agree, false, true, true, 7},
        Workload{"never_agrees", 4, 16, 4, 12, 32, 64, 4,
                 HashModel::Mode::Never, true, true, true, 8},
        Workload{"k_one", 2, 30, 2, 30, 16, 4, 1, HashModel::Mode::Random,
                 false, true, false, 9}),
    [](const auto &info) { return std::string(info.param.name); });

//===----------------------------------------------------------------------===//
// Acceptance at the extremes
//===----------------------------------------------------------------------===//

std::vector<Request> someRequests(bool sampled) {
  std::vector<Request> requests;
  for (int i = 0; i < 8; ++i) {
    Request r = request(i, {i + 1, 2 * i + 3, 7}, 10 + 3 * i);
    if (sampled && i % 2) {
      r.sampling.temperature = 0.9f;
      r.sampling.topK = 20;
      r.sampling.seed = 100 + i;
    }
    requests.push_back(r);
  }
  return requests;
}

TEST(SpeculativeScheduler, AlwaysAgreeingDraftAcceptsEverything) {
  HashModel target(4, 256), draft(4, 256, HashModel::Mode::Agree);
  Scheduler scheduler(target, options(&draft, 4));
  std::vector<Request> requests = someRequests(/*sampled=*/true);
  std::map<int64_t, Outcome> outcomes = runAll(scheduler, requests);
  const SchedulerStats &stats = scheduler.stats();
  ASSERT_EQ(stats.draftProposed.size(), 4u);
  for (size_t j = 0; j < 4; ++j) {
    EXPECT_GT(stats.draftProposed[j], 0) << j;
    EXPECT_EQ(stats.draftAccepted[j], stats.draftProposed[j]) << j;
  }
  EXPECT_GT(stats.acceptanceEstimate, 0.5);
  EXPECT_EQ(target.badReads + draft.badReads, 0);
  // The longest request (31 tokens): 1 prefill step, then 5 tokens a step.
  EXPECT_EQ(stats.steps, 1 + (31 - 1 + 4) / 5);
  for (const Request &r : requests)
    if (r.sampling.temperature == 0)
      EXPECT_EQ(outcomes[r.id].tokens, generated(r)) << r.id;
    else
      EXPECT_EQ(int64_t(outcomes[r.id].tokens.size()), r.maxNewTokens);
}

TEST(SpeculativeScheduler, NeverAgreeingDraftAcceptsNothing) {
  HashModel target(4, 256), draft(4, 256, HashModel::Mode::Never);
  Scheduler scheduler(target, options(&draft, 3));
  std::vector<Request> requests = someRequests(/*sampled=*/false);
  std::map<int64_t, Outcome> outcomes = runAll(scheduler, requests);
  const SchedulerStats &stats = scheduler.stats();
  EXPECT_GT(stats.draftProposed[0], 0);
  EXPECT_EQ(stats.draftAccepted, std::vector<int64_t>(3, 0));
  // One token per step and sequence.
  EXPECT_EQ(stats.generatedTokens,
            stats.decodeTokens + int64_t(requests.size()));
  for (const Request &r : requests)
    EXPECT_EQ(outcomes[r.id].tokens, generated(r)) << r.id;
}

//===----------------------------------------------------------------------===//
// Speculative sampling follows the target distribution
//===----------------------------------------------------------------------===//

TEST(SpeculativeScheduler, SamplingFollowsTheTargetDistribution) {
  // Next-token distributions given the last token: the draft is far from
  // the target, so accepting its tokens as they are would show.
  std::vector<std::vector<double>> p = {{0.10, 0.20, 0.30, 0.40},
                                        {0.55, 0.15, 0.20, 0.10},
                                        {0.05, 0.60, 0.05, 0.30},
                                        {0.25, 0.25, 0.40, 0.10}};
  std::vector<std::vector<double>> q = {{0.40, 0.30, 0.20, 0.10},
                                        {0.10, 0.50, 0.10, 0.30},
                                        {0.30, 0.10, 0.50, 0.10},
                                        {0.05, 0.05, 0.10, 0.80}};
  MarkovModel target(2, 600, p), draft(2, 400, q);
  SchedulerOptions o = options(&draft, 3, /*budget=*/128, /*maxRunning=*/32);
  Scheduler scheduler(target, o);
  std::vector<Request> requests;
  for (int i = 0; i < 2500; ++i) {
    Request r = request(i, {i % 4}, 8);
    r.sampling.temperature = 1.0f;
    r.sampling.seed = 0x9e3779b97f4a7c15ULL * (i + 1);
    requests.push_back(r);
  }
  std::map<int64_t, Outcome> outcomes = runAll(scheduler, requests);
  EXPECT_GT(scheduler.stats().verifications, 5000);

  // Transition counts (last token -> next) over every generated token.
  double counts[4][4] = {};
  for (const Request &r : requests) {
    int32_t last = r.prompt[0];
    ASSERT_EQ(outcomes[r.id].tokens.size(), 8u);
    for (int32_t token : outcomes[r.id].tokens) {
      counts[last][token] += 1;
      last = token;
    }
  }
  auto chiSquare = [&](const std::vector<std::vector<double>> &expected) {
    double chi = 0;
    for (int s = 0; s < 4; ++s) {
      double n = counts[s][0] + counts[s][1] + counts[s][2] + counts[s][3];
      for (int t = 0; t < 4; ++t) {
        double e = n * expected[s][t];
        chi += (counts[s][t] - e) * (counts[s][t] - e) / e;
      }
    }
    return chi;
  };
  // 12 degrees of freedom: P(chi2 > 36) = 3e-4.
  double chi = chiSquare(p);
  RecordProperty("chiSquare", std::to_string(chi));
  EXPECT_LT(chi, 36.0);
  EXPECT_GT(chiSquare(q), 1000.0); // The test can tell them apart.

  // The acceptance of the first draft: sum_x min(p, q) given the state;
  // averaged over the states it is between the extremes.
  const SchedulerStats &stats = scheduler.stats();
  double first = double(stats.draftAccepted[0]) / stats.draftProposed[0];
  EXPECT_GT(first, 0.3);
  EXPECT_LT(first, 0.6);
}

//===----------------------------------------------------------------------===//
// Rollback, statistics, failures
//===----------------------------------------------------------------------===//

TEST(SpeculativeScheduler, RollsBackTheRejectedPositions) {
  // Blocks of 2: rejected drafts free whole blocks.
  HashModel target(2, 64), draft(2, 64, HashModel::Mode::AtPositions);
  draft.wrongAt = {6};
  Scheduler scheduler(target, options(&draft, 4));
  Request r = request(1, {1, 2, 3}, 20);
  std::string error;
  ASSERT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.step(events, error)) << error; // Prefill: token 3.
  EXPECT_EQ(draft.calls, 0);
  EXPECT_EQ(scheduler.stats().blocksUsed, 2);

  // Drafts for positions 4..7; the one for 6 is wrong: 2 accepted, and the
  // target's token at 6.
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  ASSERT_EQ(draft.history.size(), 4u);
  EXPECT_EQ(draft.history[0].positions, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(draft.history[3].positions, std::vector<int32_t>{6});
  const StepInputs &verify = target.history.back();
  EXPECT_EQ(verify.positions, (std::vector<int32_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(verify.logitRows, (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(scheduler.outputOf(1)->size(), 4u);
  EXPECT_EQ(scheduler.stats().draftAccepted,
            (std::vector<int64_t>{1, 1, 0, 0}));
  // Target: 6 tokens cached (3 blocks, was 4); draft: 6 (3 blocks, was 4).
  EXPECT_EQ(scheduler.stats().blocksUsed, 3);
  EXPECT_EQ(scheduler.stats().draftBlocksUsed, 3);

  // Next: the draft is fed only the new token at 6, into the slot of the
  // rejected draft, and so is the target; all 4 drafts are right.
  int32_t rejectedDraftSlot = draft.history[3].slotMapping[0];
  int32_t rejectedTargetSlot = verify.slotMapping[3];
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  ASSERT_EQ(draft.history.size(), 8u);
  EXPECT_EQ(draft.history[4].positions, std::vector<int32_t>{6});
  EXPECT_EQ(draft.history[4].slotMapping,
            std::vector<int32_t>{rejectedDraftSlot});
  EXPECT_EQ(draft.history[4].tokens[0], scheduler.outputOf(1)->at(3));
  EXPECT_EQ(target.history.back().positions,
            (std::vector<int32_t>{6, 7, 8, 9, 10}));
  EXPECT_EQ(target.history.back().slotMapping[0], rejectedTargetSlot);
  EXPECT_EQ(scheduler.outputOf(1)->size(), 9u);
  // All accepted plus the bonus: the draft caught up to 10 of 11 tokens
  // and first feeds the last draft and the bonus token.
  ASSERT_TRUE(scheduler.step(events, error)) << error;
  EXPECT_EQ(draft.history[8].positions, (std::vector<int32_t>{10, 11}));
  EXPECT_EQ(scheduler.stats().draftAccepted,
            (std::vector<int64_t>{3, 3, 2, 2}));

  ASSERT_TRUE(scheduler.runUntilIdle(events, error)) << error;
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  EXPECT_EQ(outcomes[1].tokens, generated(r));
  EXPECT_EQ(target.badReads + draft.badReads, 0);
  EXPECT_EQ(scheduler.stats().blocksUsed + scheduler.stats().draftBlocksUsed,
            0);
}

TEST(SpeculativeScheduler, CountsAcceptancePerDraftPosition) {
  const int64_t k = 4, prompt = 3, maxNew = 30;
  std::set<int64_t> wrong = {6, 9, 10, 17, 18, 19, 20, 25, 31};
  HashModel target(4, 64), draft(4, 64, HashModel::Mode::AtPositions);
  draft.wrongAt = wrong;
  Scheduler scheduler(target, options(&draft, k));
  Request r = request(1, {4, 5, 6}, maxNew);
  std::map<int64_t, Outcome> outcomes = runAll(scheduler, {r});
  EXPECT_EQ(outcomes[1].tokens, generated(r));

  // The same by hand: a step at length L proposes k_s drafts for positions
  // L.., accepts them up to the first wrong one and emits one more.
  std::vector<int64_t> proposed(k, 0), accepted(k, 0);
  int64_t length = prompt + 1, steps = 1, verifications = 0;
  while (length - prompt < maxNew) {
    int64_t drafts = std::min(k, maxNew - (length - prompt) - 1);
    int64_t a = 0;
    while (a < drafts && !wrong.count(length + a))
      ++a;
    for (int64_t j = 0; j < drafts; ++j) {
      ++proposed[j];
      accepted[j] += j < a;
    }
    verifications += drafts > 0;
    length += a + 1;
    ++steps;
  }
  const SchedulerStats &stats = scheduler.stats();
  EXPECT_EQ(stats.draftProposed, proposed);
  EXPECT_EQ(stats.draftAccepted, accepted);
  EXPECT_EQ(stats.verifications, verifications);
  EXPECT_EQ(stats.steps, steps);
  EXPECT_EQ(stats.generatedTokens, maxNew);
}

TEST(SpeculativeScheduler, FailedForwardsLoseNothing) {
  HashModel target(2, 20), draft(2, 30, HashModel::Mode::Random);
  SchedulerOptions o = options(&draft, 3, /*budget=*/12);
  Scheduler scheduler(target, o);
  std::vector<Request> requests;
  for (int i = 0; i < 5; ++i)
    requests.push_back(request(i, {i + 1, i + 2, i + 3, i + 4}, 12));
  std::string error;
  for (const Request &r : requests)
    ASSERT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  // Draft failures in round 1 and later rounds, target failures after
  // drafts were proposed.
  int failures = 0;
  for (int64_t n = 0; n < 1000 && !scheduler.idle(); ++n) {
    if (n % 3 == 1)
      draft.failAtCall = draft.calls + 1 + n % 4;
    else if (n % 3 == 2)
      target.failAtCall = target.calls + 1;
    SchedulerStats before = scheduler.stats();
    size_t eventCount = events.size();
    if (!scheduler.step(events, error)) {
      ++failures;
      EXPECT_TRUE(error == "forward step failed: injected failure" ||
                  error == "draft forward step failed: injected failure")
          << error;
      EXPECT_EQ(events.size(), eventCount);
      EXPECT_EQ(scheduler.stats().steps, before.steps);
      EXPECT_EQ(scheduler.stats().verifications, before.verifications);
    }
    draft.failAtCall = target.failAtCall = -1;
  }
  ASSERT_TRUE(scheduler.idle());
  EXPECT_GT(failures, 5);
  EXPECT_GT(scheduler.stats().preemptions, 0);
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  for (const Request &r : requests) {
    EXPECT_EQ(outcomes[r.id].finishes, 1);
    EXPECT_EQ(outcomes[r.id].tokens, generated(r)) << r.id;
  }
  EXPECT_EQ(target.badReads + draft.badReads, 0);
  EXPECT_EQ(scheduler.stats().blocksUsed + scheduler.stats().draftBlocksUsed,
            0);
}

TEST(SpeculativeScheduler, IgnoresADraftOfAnotherVocabulary) {
  HashModel target(4, 64), draft(4, 64, HashModel::Mode::Agree, 50);
  Scheduler scheduler(target, options(&draft));
  EXPECT_EQ(scheduler.options().draft, nullptr);
  Request r = request(1, {1, 2}, 6);
  EXPECT_EQ(runAll(scheduler, {r})[1].tokens, generated(r));
  EXPECT_EQ(draft.calls, 0);
  EXPECT_TRUE(scheduler.stats().draftProposed.empty());
}

//===----------------------------------------------------------------------===//
// The on/off policy
//===----------------------------------------------------------------------===//

TEST(SpeculativeScheduler, SwitchesOffAboveTheBatchLimitAndBackOn) {
  HashModel target(4, 1024), draft(4, 1024, HashModel::Mode::Agree);
  SchedulerOptions o = options(&draft, 4);
  o.adaptiveSpeculation = true;
  o.priorAcceptance = 1.0; // α stays 1 with this draft.
  o.draftCostRatio = [](int64_t b) { return 0.05 * b; };
  // 5 / (0.2 b + 1) > 1 for b < 20.
  Scheduler scheduler(target, o);
  std::vector<Request> requests;
  for (int i = 0; i < 30; ++i)
    requests.push_back(request(i, {i % 97, 3}, 10 + 4 * i));
  std::string error;
  for (const Request &r : requests)
    ASSERT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  int stepsOff = 0, stepsOn = 0;
  while (!scheduler.idle()) {
    int64_t batch = scheduler.stats().running, drafts = draft.calls;
    bool canSpeculate = false; // A running sequence has 2 tokens to go.
    for (const Request &r : requests) {
      const std::vector<int32_t> *output = scheduler.outputOf(r.id);
      canSpeculate |= output && !output->empty() &&
                      r.maxNewTokens - int64_t(output->size()) >= 2;
    }
    ASSERT_TRUE(scheduler.step(events, error)) << error;
    EXPECT_EQ(scheduler.stats().speculationBatchLimit, 19);
    if (batch > 19) {
      EXPECT_EQ(draft.calls, drafts) << "batch " << batch;
      ++stepsOff;
    } else if (canSpeculate) {
      EXPECT_GT(draft.calls, drafts) << "batch " << batch;
      ++stepsOn;
    }
  }
  EXPECT_GT(stepsOff, 5);
  EXPECT_GT(stepsOn, 5);
  std::map<int64_t, Outcome> outcomes;
  record(events, outcomes);
  for (const Request &r : requests)
    EXPECT_EQ(outcomes[r.id].tokens, generated(r)) << r.id;
}

TEST(SpeculativeScheduler, ADraftThatNeverPaysIsOnlyProbed) {
  HashModel target(4, 512), draft(4, 512, HashModel::Mode::Never);
  SchedulerOptions o = options(&draft, 4);
  o.adaptiveSpeculation = true;
  o.draftCostRatio = [](int64_t) { return 0.1; };
  o.speculationProbeInterval = 10;
  Scheduler scheduler(target, o);
  std::vector<Request> requests;
  for (int i = 0; i < 4; ++i)
    requests.push_back(request(i, {i + 5}, 100));
  std::map<int64_t, Outcome> outcomes = runAll(scheduler, requests);
  const SchedulerStats &stats = scheduler.stats();
  // α = 2 / (evaluated + 4) falls below ~0.3 after 3 verifications; from
  // then on one step in 10 speculates.
  EXPECT_EQ(stats.speculationBatchLimit, 0);
  EXPECT_LT(stats.acceptanceEstimate, 0.1);
  EXPECT_GE(stats.speculativeSteps, 8);
  EXPECT_LE(stats.speculativeSteps, 2 + stats.steps / 10);
  for (const Request &r : requests)
    EXPECT_EQ(outcomes[r.id].tokens, generated(r)) << r.id;
}

} // namespace
