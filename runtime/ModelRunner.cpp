//===- ModelRunner.cpp - What serving needs from a device -----------------===//

#include "runtime/ModelRunner.h"
#include "runtime/DecodeTraffic.h"

using namespace moert;

bool ModelRunner::decodeTraffic(std::vector<DecodeTraffic> &ranks,
                                std::string &) {
  ranks.clear();
  return true;
}

bool ModelRunner::copyBlocks(const std::vector<BlockCopy> &copies,
                             std::string &error) {
  if (copies.empty())
    return true;
  error = "this runner cannot copy KV-cache blocks";
  return false;
}

std::string moert::checkBlockCopies(const std::vector<BlockCopy> &copies,
                                    int64_t blocks) {
  for (const BlockCopy &copy : copies) {
    for (int32_t block : {copy.source, copy.destination})
      if (block < 0 || block >= blocks)
        return "block " + std::to_string(block) + " is outside the cache's " +
               std::to_string(blocks) + " blocks";
    if (copy.source == copy.destination)
      return "block " + std::to_string(copy.source) +
             " cannot be copied onto itself";
  }
  return "";
}

std::string moert::checkStepInputs(const StepInputs &in, int64_t vocab,
                                   int64_t blocks, int64_t blockSize) {
  size_t tokens = in.tokens.size();
  if (tokens == 0)
    return "a step needs at least one token";
  if (in.positions.size() != tokens || in.slotMapping.size() != tokens ||
      in.tokenSeq.size() != tokens)
    return "tokens, positions, slot mapping and sequence ids must have one "
           "entry per token";
  if (in.sequences < 1 || in.blocksPerSeq < 1 ||
      static_cast<int64_t>(in.blockTables.size()) !=
          in.sequences * in.blocksPerSeq)
    return "the block tables must be sequences x blocks-per-sequence";
  for (int32_t block : in.blockTables)
    if (block < 0 || block >= blocks)
      return "block " + std::to_string(block) + " is outside the cache's " +
             std::to_string(blocks) + " blocks";
  int64_t slots = blocks * blockSize;
  for (size_t t = 0; t < tokens; ++t) {
    if (in.tokens[t] < 0 || in.tokens[t] >= vocab)
      return "token id " + std::to_string(in.tokens[t]) +
             " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
    if (in.tokenSeq[t] < 0 || in.tokenSeq[t] >= in.sequences)
      return "token " + std::to_string(t) + " names sequence " +
             std::to_string(in.tokenSeq[t]) + " of " +
             std::to_string(in.sequences);
    if (in.positions[t] < 0 ||
        in.positions[t] / blockSize >= in.blocksPerSeq)
      return "position " + std::to_string(in.positions[t]) +
             " is outside its sequence's blocks";
    if (in.slotMapping[t] >= slots)
      return "slot " + std::to_string(in.slotMapping[t]) +
             " is outside the cache";
  }
  if (in.logitRows.empty())
    return "a step must ask for at least one row of logits";
  for (int32_t row : in.logitRows)
    if (row < 0 || static_cast<size_t>(row) >= tokens)
      return "logit row " + std::to_string(row) + " is not a token of the step";
  return "";
}
