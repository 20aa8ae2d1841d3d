//===- DecodeBatch.h - Synthetic batches for timing steps -------*- C++ -*-===//
//
// The step inputs moe-run step-time and bench-kernels time: `batch`
// sequences, sequence b owning KV blocks [b * perSeq, (b + 1) * perSeq),
// their caches filled by prefill chunks, then decode steps of one token
// per sequence.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_DECODEBATCH_H
#define MOEC_TOOLS_MOE_RUN_DECODEBATCH_H

#include "runtime/ModelRunner.h"

#include <algorithm>
#include <cstdint>
#include <vector>

struct DecodeBatch {
  int64_t batch, perSeq, blockSize, vocab;

  /// The cache slot of `position` of sequence `b`.
  int32_t slot(int64_t b, int64_t position) const {
    return static_cast<int32_t>((b * perSeq + position / blockSize) *
                                    blockSize +
                                position % blockSize);
  }
  std::vector<int32_t> tables() const {
    std::vector<int32_t> out;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < perSeq; ++i)
        out.push_back(static_cast<int32_t>(b * perSeq + i));
    return out;
  }
  /// The steps that fill positions [0, context) of every sequence: one
  /// sequence and up to `chunk` tokens per step, the last row's logits.
  std::vector<moert::StepInputs> prefill(int64_t context,
                                         int64_t chunk = 2048) const {
    std::vector<moert::StepInputs> steps;
    std::vector<int32_t> all = tables();
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t start = 0; start < context; start += chunk) {
        moert::StepInputs in;
        in.sequences = 1;
        in.blocksPerSeq = perSeq;
        in.blockTables.assign(all.begin() + b * perSeq,
                              all.begin() + (b + 1) * perSeq);
        int64_t end = std::min(context, start + chunk);
        for (int64_t p = start; p < end; ++p) {
          in.tokens.push_back(static_cast<int32_t>((p * 31 + b) % vocab));
          in.positions.push_back(static_cast<int32_t>(p));
          in.slotMapping.push_back(slot(b, p));
          in.tokenSeq.push_back(0);
        }
        in.logitRows = {static_cast<int32_t>(end - start - 1)};
        steps.push_back(std::move(in));
      }
    return steps;
  }
  /// One token per sequence at `position`, every row's logits.
  moert::StepInputs decode(int64_t position) const {
    moert::StepInputs in;
    in.sequences = batch;
    in.blocksPerSeq = perSeq;
    in.blockTables = tables();
    for (int64_t b = 0; b < batch; ++b) {
      in.tokens.push_back(static_cast<int32_t>((position * 7 + b) % vocab));
      in.positions.push_back(static_cast<int32_t>(position));
      in.slotMapping.push_back(slot(b, position));
      in.tokenSeq.push_back(static_cast<int32_t>(b));
      in.logitRows.push_back(static_cast<int32_t>(b));
    }
    return in;
  }
};

#endif // MOEC_TOOLS_MOE_RUN_DECODEBATCH_H
