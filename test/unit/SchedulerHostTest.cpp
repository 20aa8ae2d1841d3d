//===- SchedulerHostTest.cpp - Continuous batching on the host executor ---===//
//
// The scheduler over the real HostExecutor (tiny-moe compiled by moec at
// build time, random weights of seed 7): requests of different lengths run
// concurrently, with chunked prefill under a small token budget and a KV
// cache small enough to force preemption, and each output must equal what
// generate() produces for that request alone on a fresh executor.
//
//===----------------------------------------------------------------------===//

#include "HostLoad.h"

#include "runtime/Generator.h"
#include "runtime/HostExecutor.h"
#include "runtime/Scheduler.h"

#include <gtest/gtest.h>

#include <map>

using namespace moert;
using namespace moert::test;

namespace {

Loaded open(int64_t blocks) { return load("tiny-moe", blocks); }

TEST(SchedulerHost, ConcurrentRequestsMatchGenerateAlone) {
  // 8 blocks of 16 tokens: fewer than the requests below need together.
  Loaded batched = open(8);
  ASSERT_TRUE(batched.executor);
  int64_t vocab = batched.executor->vocabSize();
  int64_t maxContext = batched.artifact->model().maxContext;

  struct Shape {
    size_t prompt;
    int64_t newTokens;
    bool sampled;
  };
  std::vector<Shape> shapes = {{5, 12, false}, {21, 8, true},  {40, 20, false},
                               {3, 16, true},  {60, 6, false}, {12, 10, true}};
  std::vector<Request> requests;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Request r;
    r.id = 100 + i;
    for (size_t t = 0; t < shapes[i].prompt; ++t)
      r.prompt.push_back(static_cast<int32_t>((t * 37 + i * 101 + 11) % vocab));
    r.maxNewTokens = shapes[i].newTokens;
    if (shapes[i].sampled) {
      r.sampling.temperature = 0.8f;
      r.sampling.topK = 40;
      r.sampling.seed = 1234 + i;
    }
    requests.push_back(r);
  }

  SchedulerOptions options;
  options.maxContext = maxContext;
  options.maxTokensPerStep = 16;
  Scheduler scheduler(*batched.executor, options);
  std::string error;
  for (const Request &r : requests)
    ASSERT_TRUE(scheduler.submit(r, error)) << error;
  std::vector<SchedulerEvent> events;
  ASSERT_TRUE(scheduler.runUntilIdle(events, error, 1000)) << error;
  ASSERT_TRUE(scheduler.idle());

  std::map<int64_t, std::vector<int32_t>> outputs;
  std::map<int64_t, int> finishes;
  for (const SchedulerEvent &event : events) {
    if (event.kind == SchedulerEvent::Kind::Token)
      outputs[event.requestId].push_back(event.token);
    else
      ++finishes[event.requestId];
  }
  const SchedulerStats &stats = scheduler.stats();
  RecordProperty("steps", std::to_string(stats.steps));
  RecordProperty("preemptions", std::to_string(stats.preemptions));
  EXPECT_GT(stats.preemptions, 0);
  EXPECT_EQ(stats.finished, int64_t(requests.size()));
  EXPECT_EQ(stats.blocksUsed, 0);

  for (const Request &r : requests) {
    Loaded solo = open(32);
    ASSERT_TRUE(solo.executor);
    GenerateOptions g;
    g.maxNewTokens = r.maxNewTokens;
    g.sampling = r.sampling;
    std::vector<int32_t> expected;
    GenerateStats generateStats;
    ASSERT_TRUE(generate(*solo.executor, r.prompt, g, maxContext, nullptr,
                         expected, generateStats, error))
        << error;
    EXPECT_EQ(outputs[r.id], expected) << "request " << r.id;
    EXPECT_EQ(finishes[r.id], 1) << "request " << r.id;
  }
}

} // namespace
