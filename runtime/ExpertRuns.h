//===- ExpertRuns.h - Rows of a grouped GEMM, expert by expert --*- C++ -*-===//
//
// A dispatch sorts the routed copies of the tokens by expert: rows
// offsets[e] ..< offsets[e + 1] are expert e's. A grouped GEMM multiplies
// each such run by its expert's weights (library calls with host-side
// sizes, so for prefill steps, outside CUDA graphs); a rank holding only
// some experts leaves the other rows zero.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_EXPERTRUNS_H
#define MOERT_EXPERTRUNS_H

#include "runtime/Artifact.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moert {

/// The rows of one expert the rank holds.
struct ExpertRun {
  int64_t firstRow = 0, rows = 0;
  /// The expert's index in the rank's weights.
  int64_t local = 0;
};

/// The non-empty runs of `offsets` [experts + 1] whose experts the rank
/// holds: `localExperts` of them from global expert `firstExpert` on.
/// `covered` says whether the runs cover every one of `rows` rows (else
/// the others must be zeroed). False, with `error` set, when the offsets
/// do not rise from 0 to `rows`.
bool expertRuns(const int32_t *offsets, int64_t experts, int64_t localExperts,
                int64_t firstExpert, int64_t rows,
                std::vector<ExpertRun> &runs, bool &covered,
                std::string &error);

/// The runs of grouped-GEMM step `step` of `plan` on rank `rankInStage`
/// of its stage, `sizes` being the step's buffer shapes and `offsets` the
/// contents of its offsets buffer: the rank holds b's experts of its group
/// (all of them without a group).
bool expertRuns(const ExecutionInfo &plan, const StepInfo &step,
                const std::vector<std::vector<int64_t>> &sizes,
                int64_t rankInStage, const int32_t *offsets,
                std::vector<ExpertRun> &runs, bool &covered,
                std::string &error);

} // namespace moert

#endif // MOERT_EXPERTRUNS_H
