//===- DecodeStep.cpp - Decode steps padded to a graph bucket -------------===//

#include "runtime/DecodeStep.h"

using namespace moert;

bool moert::isDecodeStep(const StepInputs &in) {
  size_t n = in.tokens.size();
  if (static_cast<size_t>(in.sequences) != n || in.logitRows.size() != n)
    return false;
  for (size_t i = 0; i < n; ++i)
    if (in.tokenSeq[i] != static_cast<int32_t>(i) ||
        in.logitRows[i] != static_cast<int32_t>(i))
      return false;
  return true;
}

int64_t moert::graphBucket(int64_t batch) {
  int64_t bucket = 1;
  while (bucket < batch)
    bucket *= 2;
  return bucket;
}

StepInputs moert::padDecodeStep(const StepInputs &in, int64_t batch,
                                int64_t blocksPerSeq) {
  StepInputs out;
  out.sequences = batch;
  out.blocksPerSeq = blocksPerSeq;
  out.tokens = in.tokens;
  out.positions = in.positions;
  out.slotMapping = in.slotMapping;
  out.blockTables.assign(batch * blocksPerSeq, 0);
  for (int64_t i = 0; i < in.sequences; ++i)
    for (int64_t j = 0; j < in.blocksPerSeq; ++j)
      out.blockTables[i * blocksPerSeq + j] =
          in.blockTables[i * in.blocksPerSeq + j];
  for (int64_t i = static_cast<int64_t>(in.tokens.size()); i < batch; ++i) {
    out.tokens.push_back(0);
    out.positions.push_back(0);
    out.slotMapping.push_back(-1);
  }
  for (int64_t i = 0; i < batch; ++i) {
    out.tokenSeq.push_back(static_cast<int32_t>(i));
    out.logitRows.push_back(static_cast<int32_t>(i));
  }
  return out;
}
