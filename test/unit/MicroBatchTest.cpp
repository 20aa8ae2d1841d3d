//===- MicroBatchTest.cpp - Pipeline micro-batches of a step --------------===//

#include "runtime/MicroBatch.h"

#include <gtest/gtest.h>

using namespace moert;

namespace {
/// Sequence 0 prefills 3 tokens, 1 decodes 1, 2 prefills 2 (its tokens
/// interleaved with the others'); tables of 2 blocks; logits wanted for
/// the last token of each sequence, in the order 2, 0, 1.
StepInputs mixedStep() {
  StepInputs in;
  in.tokens = {10, 11, 20, 30, 12, 31};
  in.positions = {0, 1, 7, 0, 2, 1};
  in.slotMapping = {0, 1, 23, 32, 2, 33};
  in.tokenSeq = {0, 0, 1, 2, 0, 2};
  in.sequences = 3;
  in.blocksPerSeq = 2;
  in.blockTables = {0, 5, 1, 6, 2, 7};
  in.logitRows = {5, 4, 2};
  return in;
}
} // namespace

TEST(MicroBatch, OnePartIsTheStep) {
  StepInputs in = mixedStep();
  MicroBatches batches = splitMicroBatches(in, 1);
  ASSERT_EQ(batches.parts.size(), 1u);
  EXPECT_EQ(batches.parts[0].tokens, in.tokens);
  EXPECT_EQ(batches.parts[0].tokenSeq, in.tokenSeq);
  EXPECT_EQ(batches.parts[0].blockTables, in.blockTables);
  EXPECT_EQ(batches.parts[0].logitRows, in.logitRows);
  EXPECT_EQ(batches.logitRowsOf[0], (std::vector<int64_t>{0, 1, 2}));
}

TEST(MicroBatch, PartsAreStepsOfWholeSequences) {
  StepInputs in = mixedStep();
  MicroBatches batches = splitMicroBatches(in, 2);
  ASSERT_EQ(batches.parts.size(), 2u);
  // 6 tokens: sequence 0 (3 tokens) fills the first half.
  const StepInputs &a = batches.parts[0], &b = batches.parts[1];
  EXPECT_EQ(a.sequences, 1);
  EXPECT_EQ(a.tokens, (std::vector<int32_t>{10, 11, 12}));
  EXPECT_EQ(a.positions, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(a.slotMapping, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(a.tokenSeq, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(a.blockTables, (std::vector<int32_t>{0, 5}));
  EXPECT_EQ(a.logitRows, (std::vector<int32_t>{2}));
  EXPECT_EQ(b.sequences, 2);
  EXPECT_EQ(b.tokens, (std::vector<int32_t>{20, 30, 31}));
  EXPECT_EQ(b.tokenSeq, (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(b.blockTables, (std::vector<int32_t>{1, 6, 2, 7}));
  EXPECT_EQ(b.logitRows, (std::vector<int32_t>{2, 0}));
  // Step logit row 0 (token 5) is part 1's row 0, and so on.
  EXPECT_EQ(batches.logitRowsOf[0], (std::vector<int64_t>{1}));
  EXPECT_EQ(batches.logitRowsOf[1], (std::vector<int64_t>{0, 2}));
  for (const StepInputs &part : batches.parts)
    EXPECT_EQ(checkStepInputs(part, 100, 8, 16), "");
}

TEST(MicroBatch, NeverMorePartsThanSequences) {
  StepInputs in = mixedStep();
  MicroBatches batches = splitMicroBatches(in, 8);
  ASSERT_EQ(batches.parts.size(), 3u);
  for (const StepInputs &part : batches.parts)
    EXPECT_EQ(part.sequences, 1);
}

TEST(MicroBatch, JoinPutsEveryRowBack) {
  StepInputs in = mixedStep();
  MicroBatches batches = splitMicroBatches(in, 2);
  // Vocabulary 2: part rows hold their step row number twice.
  std::vector<std::vector<float>> parts(2);
  for (size_t p = 0; p < 2; ++p)
    for (int64_t row : batches.logitRowsOf[p])
      parts[p].insert(parts[p].end(), {float(row), float(row)});
  EXPECT_EQ(joinLogits(batches, parts, 2),
            (std::vector<float>{0, 0, 1, 1, 2, 2}));
}
