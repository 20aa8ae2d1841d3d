//===- BufferSlotsTest.cpp - Activation buffers sharing memory ------------===//
//
// runtime/BufferSlots.h: buffers share a slot only when no step needs both,
// the logits stay to the end, weights, caches and inputs keep their own
// memory. (Every executor test runs its plans through the slots too.)
//
//===----------------------------------------------------------------------===//

#include "runtime/BufferSlots.h"

#include <gtest/gtest.h>

using namespace moert;

namespace {

BufferInfo buffer(BufferInfo::Kind kind, int64_t columns) {
  BufferInfo info;
  info.kind = kind;
  info.dtype = DType::F32;
  info.shape = {{'T', 1}, {0, columns}};
  return info;
}

StepInfo kernel(std::vector<int64_t> args) {
  StepInfo step;
  step.kernel = "k";
  step.args = std::move(args);
  return step;
}

StepInfo gemm(int64_t a, int64_t b, int64_t c) {
  StepInfo step;
  step.kind = StepInfo::Kind::Gemm;
  step.a = a;
  step.b = b;
  step.c = c;
  return step;
}

} // namespace

// A chain x -> a -> b -> c -> logits with a weight: a and c can share, b
// and the logits cannot share with what is live beside them.
TEST(BufferSlots, BuffersShareOnlyWhenNoStepNeedsBoth) {
  using K = BufferInfo::Kind;
  ExecutionInfo plan;
  plan.buffers = {buffer(K::Input, 1),       buffer(K::Weight, 8),
                  buffer(K::Activation, 8),  buffer(K::Activation, 8),
                  buffer(K::Activation, 8),  buffer(K::Activation, 8),
                  buffer(K::Activation, 16)};
  // 0: x -> a (2); 1: a -> b (3); 2: b x w -> c (4); 3: c -> d (5);
  // 4: d -> logits (6).
  plan.steps = {kernel({0, 2}), kernel({2, 3}), gemm(3, 1, 4), kernel({4, 5}),
                kernel({5, 6})};
  plan.logits = 6;
  BufferSlots slots = BufferSlots::of(plan);
  EXPECT_EQ(slots.slotOf[0], -1);
  EXPECT_EQ(slots.slotOf[1], -1);
  // Two slots take turns: a, c, logits / b, d.
  EXPECT_EQ(slots.count, 2);
  EXPECT_EQ(slots.slotOf[2], slots.slotOf[4]);
  EXPECT_EQ(slots.slotOf[3], slots.slotOf[5]);
  EXPECT_NE(slots.slotOf[2], slots.slotOf[3]);
  EXPECT_EQ(slots.slotOf[6], slots.slotOf[4]);
  // At T = 10: two slots of 10 x 16 and 10 x 8 floats, five buffers apart.
  BufferSlots::Footprint at = slots.footprint(plan, 10);
  EXPECT_DOUBLE_EQ(at.shared, (160 + 80) * 4.0);
  EXPECT_DOUBLE_EQ(at.apart, (4 * 80 + 160) * 4.0);

  // The logits live to the end: a buffer first named after their writer
  // does not take their slot.
  plan.buffers.push_back(buffer(K::Activation, 8));
  plan.steps.push_back(kernel({0, 7}));
  slots = BufferSlots::of(plan);
  EXPECT_NE(slots.slotOf[7], slots.slotOf[6]);
  std::vector<std::pair<int64_t, int64_t>> live = liveRanges(plan);
  EXPECT_EQ(live[6], std::make_pair(int64_t(4), int64_t(6)));
  for (size_t x = 0; x < plan.buffers.size(); ++x)
    for (size_t y = x + 1; y < plan.buffers.size(); ++y)
      if (slots.slotOf[x] >= 0 && slots.slotOf[x] == slots.slotOf[y])
        EXPECT_TRUE(live[x].second < live[y].first ||
                    live[y].second < live[x].first)
            << x << " and " << y;
}
