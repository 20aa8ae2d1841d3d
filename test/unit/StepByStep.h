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

/// The buffers step `index` writes, as (buffer in plan a, buffer in plan b,
/// name): a GEMM's c; a kernel's activation and cache arguments at the
/// positions both plans have (a grid kernel's extra scratch buffers are
/// left out).
inline std::vector<std::tuple<int64_t, int64_t, std::string>>
writtenBy(const ExecutionInfo &a, const ExecutionInfo &b, size_t index) {
  const StepInfo &sa = a.steps[index], &sb = b.steps[index];
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
  for (size_t i = 0; i < sa.args.size() && i < sb.args.size(); ++i) {
    BufferInfo::Kind kind = a.buffers[sa.args[i]].kind;
    if (kind == BufferInfo::Kind::Activation ||
        kind == BufferInfo::Kind::KCache || kind == BufferInfo::Kind::VCache)
      out.emplace_back(sa.args[i], sb.args[i],
                       sa.kernel + " arg " + std::to_string(i));
  }
  return out;
}

/// Runs `in` step by step on `checked` (plan `a`) and `reference` (plan
/// `b`), comparing every buffer each step writes. Empty with `error` set
/// when the plans' steps differ or a run fails.
inline std::vector<StepCheck>
compareStepByStep(RankExecutor &checked, const ExecutionInfo &a,
                  RankExecutor &reference, const ExecutionInfo &b,
                  const StepInputs &in, std::string &error) {
  std::vector<StepCheck> checks;
  if (a.steps.size() != b.steps.size()) {
    error = "the plans have " + std::to_string(a.steps.size()) + " and " +
            std::to_string(b.steps.size()) + " steps";
    return {};
  }
  int64_t tokens = static_cast<int64_t>(in.tokens.size());
  for (size_t index = 0; index < a.steps.size(); ++index) {
    if (a.steps[index].kind != b.steps[index].kind ||
        a.steps[index].kernel != b.steps[index].kernel) {
      error = "step " + std::to_string(index) + " differs: '" +
              a.steps[index].kernel + "' and '" + b.steps[index].kernel + "'";
      return {};
    }
    if (a.steps[index].runsAt(tokens) != b.steps[index].runsAt(tokens)) {
      error = "step " + std::to_string(index) + " runs at " +
              std::to_string(tokens) + " tokens in one plan only";
      return {};
    }
    if (!a.steps[index].runsAt(tokens))
      continue;
    for (auto [ida, idb, what] : writtenBy(a, b, index)) {
      std::vector<float> x, y;
      if (!checked.runPrefix(in, index + 1, ida, x, error) ||
          !reference.runPrefix(in, index + 1, idb, y, error))
        return {};
      if (x.size() != y.size()) {
        error = "step " + std::to_string(index) + " (" + what + "): " +
                std::to_string(x.size()) + " and " + std::to_string(y.size()) +
                " elements";
        return {};
      }
      StepCheck check{index, what, 0, 0};
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
