//===- DecodeStepTest.cpp - Decode steps padded to a graph bucket ---------===//

#include "runtime/DecodeStep.h"

#include <gtest/gtest.h>

using namespace moert;

namespace {
/// Three sequences decoding one token each; tables of 2 blocks.
StepInputs threeDecodes() {
  StepInputs in;
  in.tokens = {7, 8, 9};
  in.positions = {20, 3, 17};
  in.slotMapping = {36, 51, 81};
  in.tokenSeq = {0, 1, 2};
  in.logitRows = {0, 1, 2};
  in.sequences = 3;
  in.blocksPerSeq = 2;
  in.blockTables = {1, 2, 3, 0, 4, 5};
  return in;
}
} // namespace

TEST(DecodeStep, BucketsArePowersOfTwo) {
  EXPECT_EQ(graphBucket(0), 1);
  EXPECT_EQ(graphBucket(1), 1);
  EXPECT_EQ(graphBucket(3), 4);
  EXPECT_EQ(graphBucket(64), 64);
  EXPECT_EQ(graphBucket(65), 128);
}

TEST(DecodeStep, OnlyOneTokenPerSequenceInOrderIsADecodeStep) {
  StepInputs in = threeDecodes();
  EXPECT_TRUE(isDecodeStep(in));
  StepInputs shuffled = in;
  shuffled.tokenSeq = {1, 0, 2};
  EXPECT_FALSE(isDecodeStep(shuffled));
  StepInputs fewerLogits = in;
  fewerLogits.logitRows = {2};
  EXPECT_FALSE(isDecodeStep(fewerLogits));
  StepInputs prefill = in;
  prefill.sequences = 1;
  prefill.tokenSeq = {0, 0, 0};
  EXPECT_FALSE(isDecodeStep(prefill));
}

TEST(DecodeStep, PaddingAddsSequencesThatWriteNothing) {
  StepInputs padded = padDecodeStep(threeDecodes(), 4, 3);
  EXPECT_EQ(padded.sequences, 4);
  EXPECT_EQ(padded.blocksPerSeq, 3);
  // The real tokens are unchanged; the dummy is token 0 at position 0 with
  // no cache slot, in its own sequence.
  EXPECT_EQ(padded.tokens, (std::vector<int32_t>{7, 8, 9, 0}));
  EXPECT_EQ(padded.positions, (std::vector<int32_t>{20, 3, 17, 0}));
  EXPECT_EQ(padded.slotMapping, (std::vector<int32_t>{36, 51, 81, -1}));
  EXPECT_EQ(padded.tokenSeq, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(padded.logitRows, (std::vector<int32_t>{0, 1, 2, 3}));
  // Each table row widened to 3 entries, the rest block 0.
  EXPECT_EQ(padded.blockTables,
            (std::vector<int32_t>{1, 2, 0, 3, 0, 0, 4, 5, 0, 0, 0, 0}));
  EXPECT_TRUE(isDecodeStep(padded));
}
