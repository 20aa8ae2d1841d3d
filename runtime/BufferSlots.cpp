//===- BufferSlots.cpp - Activation buffers sharing memory ----------------===//

#include "runtime/BufferSlots.h"
#include "runtime/StepShapes.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <utility>

using namespace moert;

std::vector<int64_t> moert::buffersOf(const StepInfo &step) {
  std::vector<int64_t> ids(step.args.begin(), step.args.end());
  for (int64_t id :
       {step.a, step.b, step.c, step.offsets, step.permutation, step.group})
    if (id >= 0)
      ids.push_back(id);
  return ids;
}

/// Bytes of buffer `id` of `plan` at `sizes`.
static double bytesOf(const ExecutionInfo &plan, int64_t id,
                      const StepSizes &sizes) {
  double bytes = dtypeSize(plan.buffers[id].dtype);
  for (const PlanDim &dim : plan.buffers[id].shape)
    bytes *= static_cast<double>(sizes.extent(dim));
  return bytes;
}

BufferSlots::Footprint BufferSlots::footprint(const ExecutionInfo &plan,
                                              int64_t tokens) const {
  StepSizes sizes{tokens, tokens, 0, 1, 1};
  std::vector<double> slot(count, 0);
  Footprint out;
  for (size_t id = 0; id < slotOf.size(); ++id) {
    if (slotOf[id] < 0)
      continue;
    double bytes = bytesOf(plan, static_cast<int64_t>(id), sizes);
    out.apart += bytes;
    slot[slotOf[id]] = std::max(slot[slotOf[id]], bytes);
  }
  for (double bytes : slot)
    out.shared += bytes;
  return out;
}

std::vector<std::pair<int64_t, int64_t>>
moert::liveRanges(const ExecutionInfo &plan) {
  size_t buffers = plan.buffers.size();
  std::vector<std::pair<int64_t, int64_t>> live(buffers, {-1, -1});
  for (size_t index = 0; index < plan.steps.size(); ++index)
    for (int64_t id : buffersOf(plan.steps[index])) {
      if (id < 0 || static_cast<size_t>(id) >= buffers)
        continue;
      if (live[id].first < 0)
        live[id].first = static_cast<int64_t>(index);
      live[id].second = static_cast<int64_t>(index);
    }
  if (plan.logits >= 0 && static_cast<size_t>(plan.logits) < buffers)
    live[plan.logits].second = static_cast<int64_t>(plan.steps.size());
  return live;
}

std::vector<size_t>
BufferSlots::storageBytes(const ExecutionInfo &plan,
                          const std::vector<std::vector<int64_t>> &sizes,
                          bool apart) const {
  std::vector<size_t> bytes(plan.buffers.size() + count, 0);
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    BufferInfo::Kind kind = plan.buffers[id].kind;
    if (kind != BufferInfo::Kind::Activation &&
        kind != BufferInfo::Kind::Input && kind != BufferInfo::Kind::GroupRank)
      continue;
    size_t &at = bytes[storageOf(id, apart)];
    at = std::max<size_t>(at, elementCount(sizes[id]) *
                                  dtypeSize(plan.buffers[id].dtype));
  }
  return bytes;
}

BufferSlots BufferSlots::of(const ExecutionInfo &plan) {
  size_t buffers = plan.buffers.size();
  std::vector<std::pair<int64_t, int64_t>> live = liveRanges(plan);
  // A buffer no step names (none in a valid plan) is taken as live from
  // the end of the plan on, forever: it still gets memory of its own.
  constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  for (auto &range : live)
    if (range.first < 0)
      range = {kForever, kForever};

  // Sizes at a typical prefill chunk, to pair buffers of like size.
  StepSizes typical{1024, 1024, 0, 1, 1};
  std::vector<int64_t> order;
  for (size_t id = 0; id < buffers; ++id)
    if (plan.buffers[id].kind == BufferInfo::Kind::Activation)
      order.push_back(static_cast<int64_t>(id));
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
    return std::make_pair(live[x].first, x) < std::make_pair(live[y].first, y);
  });

  BufferSlots slots;
  slots.slotOf.assign(buffers, -1);
  // Per slot: the step its buffers are free after, and its largest size.
  std::vector<int64_t> busyUntil;
  std::vector<double> size;
  for (int64_t id : order) {
    double bytes = bytesOf(plan, id, typical);
    int64_t best = -1;
    for (int64_t s = 0; s < slots.count; ++s) {
      if (busyUntil[s] >= live[id].first)
        continue;
      if (best < 0 || std::abs(size[s] - bytes) < std::abs(size[best] - bytes))
        best = s;
    }
    if (best < 0) {
      best = slots.count++;
      busyUntil.push_back(0);
      size.push_back(0);
    }
    slots.slotOf[id] = best;
    busyUntil[best] = live[id].second;
    size[best] = std::max(size[best], bytes);
  }
  return slots;
}
