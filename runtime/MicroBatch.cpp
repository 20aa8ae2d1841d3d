//===- MicroBatch.cpp - Pipeline micro-batches of a step ------------------===//

#include "runtime/MicroBatch.h"

#include <algorithm>

using namespace moert;

int64_t moert::microBatchCount(const StepInputs &in, int64_t stages) {
  return std::max<int64_t>(1, std::min(stages, in.sequences));
}

MicroBatches moert::splitMicroBatches(const StepInputs &in, int64_t count) {
  MicroBatches out;
  const int64_t sequences = in.sequences;
  const int64_t tokens = static_cast<int64_t>(in.tokens.size());
  count = std::max<int64_t>(1, std::min(count, sequences));
  // Tokens per sequence, then cuts where the running count passes each
  // k/count of the tokens (at least one sequence per part).
  std::vector<int64_t> perSequence(sequences, 0);
  for (int32_t s : in.tokenSeq)
    ++perSequence[s];
  std::vector<int64_t> firstSequence{0};
  int64_t seen = 0;
  for (int64_t s = 0; s < sequences; ++s) {
    seen += perSequence[s];
    int64_t parts = static_cast<int64_t>(firstSequence.size());
    int64_t left = sequences - 1 - s; // sequences after this one
    bool due = seen * count >= parts * std::max<int64_t>(tokens, 1);
    if (parts < count && s + 1 < sequences &&
        (due || left <= count - parts))
      firstSequence.push_back(s + 1);
  }
  firstSequence.push_back(sequences);
  const int64_t parts = static_cast<int64_t>(firstSequence.size()) - 1;

  // Each token's part and its index there.
  std::vector<int64_t> partOf(tokens), indexIn(tokens);
  out.parts.resize(parts);
  out.logitRowsOf.resize(parts);
  for (int64_t p = 0; p < parts; ++p) {
    StepInputs &part = out.parts[p];
    int64_t first = firstSequence[p], end = firstSequence[p + 1];
    part.sequences = end - first;
    part.blocksPerSeq = in.blocksPerSeq;
    part.blockTables.assign(in.blockTables.begin() + first * in.blocksPerSeq,
                            in.blockTables.begin() + end * in.blocksPerSeq);
  }
  for (int64_t t = 0; t < tokens; ++t) {
    int32_t s = in.tokenSeq[t];
    int64_t p = std::upper_bound(firstSequence.begin(), firstSequence.end(),
                                 s) -
                firstSequence.begin() - 1;
    StepInputs &part = out.parts[p];
    partOf[t] = p;
    indexIn[t] = static_cast<int64_t>(part.tokens.size());
    part.tokens.push_back(in.tokens[t]);
    part.positions.push_back(in.positions[t]);
    part.slotMapping.push_back(in.slotMapping[t]);
    part.tokenSeq.push_back(static_cast<int32_t>(s - firstSequence[p]));
  }
  for (size_t r = 0; r < in.logitRows.size(); ++r) {
    int32_t t = in.logitRows[r];
    out.parts[partOf[t]].logitRows.push_back(
        static_cast<int32_t>(indexIn[t]));
    out.logitRowsOf[partOf[t]].push_back(static_cast<int64_t>(r));
  }
  return out;
}

std::vector<float>
moert::joinLogits(const MicroBatches &batches,
                  const std::vector<std::vector<float>> &parts,
                  int64_t vocab) {
  size_t rows = 0;
  for (const std::vector<int64_t> &of : batches.logitRowsOf)
    rows += of.size();
  std::vector<float> logits(rows * vocab);
  for (size_t p = 0; p < parts.size(); ++p)
    for (size_t i = 0; i < batches.logitRowsOf[p].size(); ++i)
      std::copy(parts[p].begin() + i * vocab,
                parts[p].begin() + (i + 1) * vocab,
                logits.begin() + batches.logitRowsOf[p][i] * vocab);
  return logits;
}
