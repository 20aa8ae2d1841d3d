//===- ExpertRunsTest.cpp - Rows of a grouped GEMM, expert by expert ------===//

#include "runtime/ExpertRuns.h"

#include <gtest/gtest.h>

using namespace moert;

namespace moert {
static bool operator==(const ExpertRun &a, const ExpertRun &b) {
  return a.firstRow == b.firstRow && a.rows == b.rows && a.local == b.local;
}
} // namespace moert

TEST(ExpertRuns, EveryExpertHeld) {
  // 4 experts, rows [0,3) [3,3) [3,7) [7,8): expert 1 routed nothing.
  const int32_t offsets[] = {0, 3, 3, 7, 8};
  std::vector<ExpertRun> runs;
  bool covered = false;
  std::string error;
  ASSERT_TRUE(expertRuns(offsets, 4, 4, 0, 8, runs, covered, error)) << error;
  EXPECT_TRUE(covered);
  EXPECT_EQ(runs, (std::vector<ExpertRun>{{0, 3, 0}, {3, 4, 2}, {7, 1, 3}}));
}

TEST(ExpertRuns, ARankHoldingSomeExpertsLeavesTheOtherRows) {
  const int32_t offsets[] = {0, 3, 3, 7, 8};
  std::vector<ExpertRun> runs;
  bool covered = true;
  std::string error;
  // The second group of two experts: global experts 2 and 3 are its 0, 1.
  ASSERT_TRUE(expertRuns(offsets, 4, 2, 2, 8, runs, covered, error)) << error;
  EXPECT_FALSE(covered);
  EXPECT_EQ(runs, (std::vector<ExpertRun>{{3, 4, 0}, {7, 1, 1}}));
  // The first group: expert 1 routed nothing, so only expert 0's rows.
  ASSERT_TRUE(expertRuns(offsets, 4, 2, 0, 8, runs, covered, error)) << error;
  EXPECT_FALSE(covered);
  EXPECT_EQ(runs, (std::vector<ExpertRun>{{0, 3, 0}}));
  // No rows at all: nothing to do, and nothing left uncovered.
  const int32_t none[] = {0, 0, 0};
  ASSERT_TRUE(expertRuns(none, 2, 1, 1, 0, runs, covered, error)) << error;
  EXPECT_TRUE(runs.empty());
  EXPECT_TRUE(covered);
}

TEST(ExpertRuns, RejectsOffsetsThatDoNotDescribeTheRows) {
  std::vector<ExpertRun> runs;
  bool covered = false;
  std::string error;
  const int32_t shortOfRows[] = {0, 3, 7};
  EXPECT_FALSE(expertRuns(shortOfRows, 2, 2, 0, 8, runs, covered, error));
  EXPECT_EQ(error, "the expert offsets run from 0 to 7, not from 0 to 8 (the "
                   "routed rows)");
  const int32_t falling[] = {0, 5, 2, 8};
  EXPECT_FALSE(expertRuns(falling, 3, 3, 0, 8, runs, covered, error));
  EXPECT_EQ(error, "the expert offsets fall at expert 1 (5 then 2)");
}

TEST(ExpertRuns, AStepsRankHoldsItsGroupsExperts) {
  // Buffers: rows a [8, 4], experts b [2, 3, 4], offsets [5], c [8, 3] and
  // the group index (rank in stage / 2).
  ExecutionInfo plan;
  plan.buffers.resize(5);
  plan.buffers[4].kind = BufferInfo::Kind::GroupRank;
  plan.buffers[4].divisor = 2;
  StepInfo step;
  step.kind = StepInfo::Kind::GroupedGemm;
  step.a = 0, step.b = 1, step.offsets = 2, step.c = 3, step.group = 4;
  std::vector<std::vector<int64_t>> sizes = {{8, 4}, {2, 3, 4}, {5}, {8, 3},
                                             {1}};
  const int32_t offsets[] = {0, 3, 3, 7, 8};
  std::vector<ExpertRun> runs;
  bool covered = true;
  std::string error;
  // Ranks 2 and 3 of the stage are group 1: global experts 2 and 3.
  ASSERT_TRUE(expertRuns(plan, step, sizes, 3, offsets, runs, covered, error))
      << error;
  EXPECT_FALSE(covered);
  EXPECT_EQ(runs, (std::vector<ExpertRun>{{3, 4, 0}, {7, 1, 1}}));
  // Ranks 0 and 1: experts 0 and 1.
  ASSERT_TRUE(expertRuns(plan, step, sizes, 1, offsets, runs, covered, error))
      << error;
  EXPECT_EQ(runs, (std::vector<ExpertRun>{{0, 3, 0}}));
}
