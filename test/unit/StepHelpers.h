//===- StepHelpers.h - Step inputs and comparisons for runtime tests ------===//
//
// Shared by the executor tests: one-sequence prefill steps, a fixed prompt
// and the relative error the logits are compared by.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TEST_UNIT_STEPHELPERS_H
#define MOEC_TEST_UNIT_STEPHELPERS_H

#include "runtime/ModelRunner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace moert::test {

/// Inputs of one step that puts `tokens` of one sequence at positions
/// 0..n-1 in the blocks `table` (of `blockSize` tokens), asking for every
/// row's logits.
inline StepInputs prefill(const std::vector<int32_t> &tokens,
                          const std::vector<int32_t> &table,
                          int64_t blockSize) {
  StepInputs in;
  in.sequences = 1;
  in.blocksPerSeq = table.size();
  in.blockTables = table;
  for (size_t i = 0; i < tokens.size(); ++i) {
    in.tokens.push_back(tokens[i]);
    in.positions.push_back(i);
    in.slotMapping.push_back(table[i / blockSize] * blockSize +
                             i % blockSize);
    in.tokenSeq.push_back(0);
    in.logitRows.push_back(i);
  }
  return in;
}

/// max |a - b| / max |b|.
inline double relativeError(const std::vector<float> &a,
                            const std::vector<float> &b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

/// A test's name from an artifact's: "tiny-moe.grid" -> "tiny_moe_grid".
inline std::string testName(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

/// A fixed prompt of `length` token ids below `vocab`.
inline std::vector<int32_t> somePrompt(int64_t vocab, size_t length) {
  std::vector<int32_t> prompt;
  for (size_t i = 0; i < length; ++i)
    prompt.push_back(static_cast<int32_t>((i * 37 + 11) % vocab));
  return prompt;
}

} // namespace moert::test

#endif // MOEC_TEST_UNIT_STEPHELPERS_H
