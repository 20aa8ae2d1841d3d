//===- DecodeTrafficTest.cpp - Bytes the ranks send per decode step -------===//
//
// What counts as a decode step, and the per-stage figures every report
// prints from the ranks' counts.
//
//===----------------------------------------------------------------------===//

#include "runtime/DecodeTraffic.h"

#include <gtest/gtest.h>

using moert::DecodeTraffic;
using moert::PlanInfo;
using moert::StageTraffic;
using moert::StepInputs;

namespace {

/// A step of `sequences` sequences of `perSequence` tokens each, with the
/// logits of `rowsPerSequence` tokens of each wanted.
StepInputs step(int sequences, int perSequence, int rowsPerSequence) {
  StepInputs in;
  in.sequences = sequences;
  for (int s = 0; s < sequences; ++s)
    for (int t = 0; t < perSequence; ++t) {
      if (t >= perSequence - rowsPerSequence)
        in.logitRows.push_back(static_cast<int32_t>(in.tokens.size()));
      in.tokens.push_back(1);
    }
  return in;
}

PlanInfo plan(int64_t stages, int64_t width) {
  PlanInfo p;
  p.pipelineStages = stages;
  p.tensorParallel = width;
  p.ranks = stages * width;
  return p;
}

} // namespace

TEST(DecodeTraffic, CountsTheStepsThatWantEveryTokensLogits) {
  EXPECT_TRUE(DecodeTraffic::counts(step(1, 1, 1)));
  EXPECT_TRUE(DecodeTraffic::counts(step(4, 1, 1)));
  // A speculative verification: every drafted token is checked.
  EXPECT_TRUE(DecodeTraffic::counts(step(2, 5, 5)));
  // Prefill wants the last token's logits only.
  EXPECT_FALSE(DecodeTraffic::counts(step(2, 7, 1)));
  EXPECT_FALSE(DecodeTraffic::counts(StepInputs{}));
}

TEST(DecodeTraffic, CountsAndDifferences) {
  DecodeTraffic count;
  count.add({100, 10});
  DecodeTraffic earlier = count;
  count.add({300, 30});
  count.add({500, 50});
  EXPECT_EQ(count.steps, 3);
  EXPECT_EQ(count.withinStage, 900);
  EXPECT_EQ(count.toNextStage, 90);
  DecodeTraffic later = count.since(earlier);
  EXPECT_EQ(later.steps, 2);
  EXPECT_EQ(later.withinStage, 800);
  EXPECT_EQ(later.toNextStage, 80);
}

TEST(DecodeTraffic, ByStageTheBusiestRankAndTheStageTotal) {
  // Two stages of two ranks, over two decode steps.
  std::vector<DecodeTraffic> ranks = {
      {2, 3000, 1000}, {2, 3200, 1000}, {2, 4000, 0}, {2, 4000, 0}};
  std::vector<StageTraffic> stages = moert::trafficByStage(plan(2, 2), ranks);
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_DOUBLE_EQ(stages[0].withinStage, 1600);
  EXPECT_DOUBLE_EQ(stages[0].toNextStage, 500);
  EXPECT_DOUBLE_EQ(stages[0].total, 1500 + 500 + 1600 + 500);
  EXPECT_DOUBLE_EQ(stages[1].withinStage, 2000);
  EXPECT_DOUBLE_EQ(stages[1].toNextStage, 0);
  EXPECT_DOUBLE_EQ(stages[1].total, 4000);
}

TEST(DecodeTraffic, NothingToReportWithoutDecodeStepsOrWithTheWrongRanks) {
  EXPECT_TRUE(moert::trafficByStage(plan(1, 2), {{}, {}}).empty());
  EXPECT_TRUE(
      moert::trafficByStage(plan(2, 2), {{1, 10, 0}, {1, 10, 0}}).empty());
}
