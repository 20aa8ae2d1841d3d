//===- StepByStep.h - Two plans of one model compared step by step -------===//
//
// Shared by the host and GPU executor tests: runs the same step on two
// executors whose plans have the same steps (the host plan and the grid or
// cuda plan of one model) one step more at a time, with the activations
// poisoned with NaN first, and compares what each step wrote. So a kernel
// that computes wrongly, or leaves part of its output unwritten, is named
// by the first step where the two differ.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TEST_UNIT_STEPBYSTEP_H
#define MOEC_TEST_UNIT_STEPBYSTEP_H

#include "runtime/Artifact.h"
#include "runtime/RankExecutor.h"
#include "runtime/StepShapes.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

namespace moert::test {

/// One buffer one step wrote, compared.
struct StepCheck {
  size_t step = 0;
  /// "kernel_router arg 2", "gemm c", ...
  std::string what;
  /// max |a - b| / max |b| over the elements both have finite.
  double error = 0;
  /// Elements finite in `reference` but NaN in `checked` (unwritten).
  size_t poisoned = 0;
};

/// The buffers step `ia` of plan a and step `ib` of plan b write, as
/// (buffer in plan a, buffer in plan b, name): a GEMM's c; a kernel's
/// activation and cache arguments at the positions both steps have (a grid
/// kernel's extra scratch buffers are left out).
inline std::vector<std::tuple<int64_t, int64_t, std::string>>
writtenBy(const ExecutionInfo &a, size_t ia, const ExecutionInfo &b,
          size_t ib) {
  const StepInfo &sa = a.steps[ia], &sb = b.steps[ib];
  std::vector<std::tuple<int64_t, int64_t, std::string>> out;
  if (sa.kind == StepInfo::Kind::Gemm ||
      sa.kind == StepInfo::Kind::GroupedGemm) {
    out.emplace_back(sa.c, sb.c,
                     sa.kind == StepInfo::Kind::Gemm ? "gemm c"
                                                     : "grouped_gemm c");
    return out;
  }
  if (sa.kind != StepInfo::Kind::Kernel)
    return out;
  std::string name =
      sa.kernel == sb.kernel ? sa.kernel : sa.kernel + " / " + sb.kernel;
  for (size_t i = 0; i < sa.args.size() && i < sb.args.size(); ++i) {
    BufferInfo::Kind kind = a.buffers[sa.args[i]].kind;
    if (kind == BufferInfo::Kind::Activation ||
        kind == BufferInfo::Kind::KCache || kind == BufferInfo::Kind::VCache)
      out.emplace_back(sa.args[i], sb.args[i],
                       name + " arg " + std::to_string(i));
  }
  return out;
}

/// Runs `in` step by step on `checked` (plan `a`) and `reference` (plan
/// `b`), comparing every buffer each step writes. The steps that run at
/// the step's size are paired in order; paired kernels may differ in name
/// (the flash and the split-K attention), not in kind. `check.step` is the
/// step's index in plan a. Empty with `error` set when the plans' steps
/// differ or a run fails.
inline std::vector<StepCheck>
compareStepByStep(RankExecutor &checked, const ExecutionInfo &a,
                  RankExecutor &reference, const ExecutionInfo &b,
                  const StepInputs &in, std::string &error) {
  StepScale scale = scaleOf(in);
  int64_t tokens = scale.tokens;
  auto running = [&](const ExecutionInfo &plan) {
    std::vector<size_t> indices;
    for (size_t i = 0; i < plan.steps.size(); ++i)
      if (plan.steps[i].runsAt(scale))
        indices.push_back(i);
    return indices;
  };
  std::vector<size_t> ra = running(a), rb = running(b);
  std::vector<StepCheck> checks;
  if (ra.size() != rb.size()) {
    error = "the plans run " + std::to_string(ra.size()) + " and " +
            std::to_string(rb.size()) + " steps at " + std::to_string(tokens) +
            " tokens";
    return {};
  }
  for (size_t n = 0; n < ra.size(); ++n) {
    size_t ia = ra[n], ib = rb[n];
    if (a.steps[ia].kind != b.steps[ib].kind) {
      error = "steps " + std::to_string(ia) + " and " + std::to_string(ib) +
              " differ: '" + a.steps[ia].kernel + "' and '" +
              b.steps[ib].kernel + "'";
      return {};
    }
    for (auto [ida, idb, what] : writtenBy(a, ia, b, ib)) {
      std::vector<float> x, y;
      if (!checked.runPrefix(in, ia + 1, ida, x, error) ||
          !reference.runPrefix(in, ib + 1, idb, y, error))
        return {};
      if (x.size() != y.size()) {
        error = "step " + std::to_string(ia) + " (" + what + "): " +
                std::to_string(x.size()) + " and " + std::to_string(y.size()) +
                " elements";
        return {};
      }
      StepCheck check{ia, what, 0, 0};
      double diff = 0, scale = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        bool xFinite = std::isfinite(x[i]), yFinite = std::isfinite(y[i]);
        if (yFinite && !xFinite)
          ++check.poisoned;
        if (xFinite && yFinite) {
          diff = std::max(diff, std::fabs(double(x[i]) - y[i]));
          scale = std::max(scale, std::fabs(double(y[i])));
        }
      }
      check.error = scale > 0 ? diff / scale : diff;
      checks.push_back(check);
    }
  }
  return checks;
}

/// Drops the checks after the first step whose check names `what` (the
/// step's own checks stay); false when no check names it.
inline bool keepUntil(std::vector<StepCheck> &checks, const std::string &what) {
  auto first = std::find_if(checks.begin(), checks.end(), [&](auto &c) {
    return c.what.find(what) != std::string::npos;
  });
  if (first == checks.end())
    return false;
  size_t step = first->step;
  checks.erase(std::find_if(first, checks.end(),
                            [&](auto &c) { return c.step != step; }),
               checks.end());
  return true;
}

/// "N buffers of M steps compared; worst relative error E at step S
/// (WHAT)".
inline std::string summarize(const std::vector<StepCheck> &checks) {
  const StepCheck *worst = nullptr;
  size_t steps = 0, last = SIZE_MAX;
  for (const StepCheck &check : checks) {
    if (!worst || check.error > worst->error)
      worst = &check;
    steps += check.step != last;
    last = check.step;
  }
  if (!worst)
    return "nothing compared";
  char text[64];
  std::snprintf(text, sizeof text, "%.3g", worst->error);
  return std::to_string(checks.size()) + " buffers of " +
         std::to_string(steps) + " steps compared; worst relative error " +
         text + " at step " + std::to_string(worst->step) + " (" +
         worst->what + ")";
}

} // namespace moert::test

#endif // MOEC_TEST_UNIT_STEPBYSTEP_H
