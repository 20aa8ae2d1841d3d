//===- SpeculativeHostTest.cpp - Speculative decoding on the host ---------===//
//
// Speculative decoding inside continuous batching over the real
// HostExecutor: target tiny-moe (random weights of seed 7) with draft
// tiny-draft (seed 11), both compiled by moec at build time. Greedy
// requests, batched with chunked prefill, a target cache small enough to
// force preemption and a small draft cache, must produce exactly what
// generate() produces for each alone without speculation. A second run
// uses tiny-moe as its own draft, where every draft should be accepted.
//
//===----------------------------------------------------------------------===//

#include "HostLoad.h"

#include "runtime/Generator.h"
#include "runtime/HostExecutor.h"
#include "runtime/Scheduler.h"

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <sstream>

using namespace moert;
using namespace moert::test;

namespace {

Loaded open(const std::string &model, int64_t blocks, uint64_t seed) {
  return load(model, blocks, seed);
}

std::vector<Request> greedyRequests(int64_t vocab) {
  struct Shape {
    size_t prompt;
    int64_t newTokens;
  };
  std::vector<Shape> shapes = {{5, 24}, {21, 12}, {40, 30},
                               {3, 20}, {60, 8},  {12, 16}};
  std::vector<Request> requests;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Request r;
    r.id = 100 + i;
    for (size_t t = 0; t < shapes[i].prompt; ++t)
      r.prompt.push_back(static_cast<int32_t>((t * 37 + i * 101 + 11) % vocab));
    r.maxNewTokens = shapes[i].newTokens;
    requests.push_back(r);
  }
  return requests;
}

/// Runs `requests` with `draft` and checks each output against generate()
/// alone on a fresh tiny-moe; returns the scheduler's statistics.
SchedulerStats runAndCompare(Loaded &target, Loaded &draft,
                             const std::vector<Request> &requests) {
  SchedulerOptions options;
  options.maxContext = target.artifact->model().maxContext;
  options.maxTokensPerStep = 24;
  options.draft = draft.executor.get();
  options.draftTokens = 4;
  options.adaptiveSpeculation = false; // Measured, it would not pay here.
  Scheduler scheduler(*target.executor, options);
  EXPECT_EQ(scheduler.options().draft, draft.executor.get());
  std::string error;
  for (const Request &r : requests)
    EXPECT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  EXPECT_TRUE(scheduler.runUntilIdle(events, error, 2000)) << error;
  EXPECT_TRUE(scheduler.idle());

  std::map<int64_t, std::vector<int32_t>> outputs;
  for (const SchedulerEvent &event : events)
    if (event.kind == SchedulerEvent::Kind::Token)
      outputs[event.requestId].push_back(event.token);
  for (const Request &r : requests) {
    Loaded solo = open("tiny-moe", 32, 7);
    if (!solo.executor)
      break;
    GenerateOptions g;
    g.maxNewTokens = r.maxNewTokens;
    std::vector<int32_t> expected;
    GenerateStats generateStats;
    EXPECT_TRUE(generate(*solo.executor, r.prompt, g, options.maxContext,
                         nullptr, expected, generateStats, error))
        << error;
    EXPECT_EQ(outputs[r.id], expected) << "request " << r.id;
  }
  return scheduler.stats();
}

std::string acceptance(const SchedulerStats &stats) {
  std::ostringstream os;
  for (size_t j = 0; j < stats.draftProposed.size(); ++j)
    os << (j ? " " : "") << stats.draftAccepted[j] << "/"
       << stats.draftProposed[j];
  return os.str();
}

TEST(SpeculativeHost, GreedyWithTinyDraftMatchesGenerate) {
  // 10 blocks of 16 tokens: fewer than the requests need together.
  Loaded target = open("tiny-moe", 10, 7);
  Loaded draft = open("tiny-draft", 8, 11);
  ASSERT_TRUE(target.executor && draft.executor);
  ASSERT_EQ(draft.executor->vocabSize(), target.executor->vocabSize());
  std::vector<Request> requests = greedyRequests(target.executor->vocabSize());
  SchedulerStats stats = runAndCompare(target, draft, requests);
  EXPECT_GT(stats.preemptions, 0);
  EXPECT_GT(stats.verifications, 0);
  EXPECT_EQ(stats.finished, int64_t(requests.size()));
  EXPECT_EQ(stats.blocksUsed + stats.draftBlocksUsed, 0);
  RecordProperty("acceptedPerPosition", acceptance(stats));
  std::cout << "tiny-draft for tiny-moe: accepted/proposed per position "
            << acceptance(stats) << ", " << stats.steps << " steps, "
            << stats.preemptions << " preemptions, " << stats.draftEvictions
            << " draft evictions\n";
}

TEST(SpeculativeHost, GreedyWithItselfAsDraftAcceptsAll) {
  Loaded target = open("tiny-moe", 10, 7);
  Loaded draft = open("tiny-moe", 16, 7);
  ASSERT_TRUE(target.executor && draft.executor);
  std::vector<Request> requests = greedyRequests(target.executor->vocabSize());
  SchedulerStats stats = runAndCompare(target, draft, requests);
  int64_t proposed = 0, accepted = 0;
  for (size_t j = 0; j < stats.draftProposed.size(); ++j) {
    proposed += stats.draftProposed[j];
    accepted += stats.draftAccepted[j];
  }
  EXPECT_GT(proposed, 0);
  // The same model batched differently: only near-ties could disagree.
  EXPECT_GE(accepted, proposed * 95 / 100);
  RecordProperty("acceptedPerPosition", acceptance(stats));
  std::cout << "tiny-moe for itself: accepted/proposed per position "
            << acceptance(stats) << ", " << stats.steps << " steps\n";
}

} // namespace
