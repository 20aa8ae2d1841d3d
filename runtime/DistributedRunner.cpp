//===- DistributedRunner.cpp - The head rank drives the others ------------===//

#include "runtime/DistributedRunner.h"
#include "runtime/MicroBatch.h"

#include <algorithm>
#include <cstring>

using namespace moert;

namespace {
/// The fixed-size message that announces a micro-batch of a step (or the
/// end). A step of P micro-batches (runtime/MicroBatch.h) is P headers,
/// each followed by its data.
struct StepHeader {
  // 1: a step follows; 2: send your DecodeTraffic (no step); 3: copy KV
  // blocks (`copies` source/destination pairs of int32 follow; no step);
  // 0: stop.
  int64_t command = 0;
  int64_t tokens = 0, sequences = 0, blocksPerSeq = 0, logitRows = 0;
  int64_t parts = 1;
  int64_t copies = 0;
};

static_assert(sizeof(BlockCopy) == 2 * sizeof(int32_t),
              "block copies travel as int32 pairs");

StepHeader headerOf(const StepInputs &in, int64_t parts) {
  return {1,
          static_cast<int64_t>(in.tokens.size()),
          in.sequences,
          in.blocksPerSeq,
          static_cast<int64_t>(in.logitRows.size()),
          parts};
}

/// The step's int32 arrays, back to back.
std::vector<int32_t> pack(const StepInputs &in) {
  std::vector<int32_t> out;
  for (const std::vector<int32_t> *part :
       {&in.tokens, &in.positions, &in.slotMapping, &in.tokenSeq,
        &in.blockTables, &in.logitRows})
    out.insert(out.end(), part->begin(), part->end());
  return out;
}

void unpack(const StepHeader &header, const std::vector<int32_t> &data,
            StepInputs &in) {
  const int32_t *at = data.data();
  auto take = [&](std::vector<int32_t> &part, int64_t count) {
    part.assign(at, at + count);
    at += count;
  };
  take(in.tokens, header.tokens);
  take(in.positions, header.tokens);
  take(in.slotMapping, header.tokens);
  take(in.tokenSeq, header.tokens);
  take(in.blockTables, header.sequences * header.blocksPerSeq);
  take(in.logitRows, header.logitRows);
  in.sequences = header.sequences;
  in.blocksPerSeq = header.blocksPerSeq;
}

int64_t logitsRankOf(const Artifact &artifact) {
  const PlanInfo &plan = artifact.plan();
  return (plan.pipelineStages - 1) * plan.tensorParallel;
}
} // namespace

DistributedRunner::DistributedRunner(const Artifact &artifact,
                                     RankExecutor &executor,
                                     Communicator &communicator)
    : executor(executor), comm(communicator),
      logitsRank(logitsRankOf(artifact)),
      stages(artifact.plan().pipelineStages) {}

DistributedRunner::~DistributedRunner() {
  std::string error;
  stop(error);
}

bool DistributedRunner::stop(std::string &error) {
  if (stopped)
    return true;
  stopped = true;
  StepHeader header;
  for (int64_t rank = 1; rank < comm.size(); ++rank)
    if (!comm.send(&header, sizeof header, rank, error))
      return false;
  return true;
}

bool DistributedRunner::forward(const StepInputs &inputs,
                                std::vector<float> &logits,
                                std::string &error) {
  if (stopped) {
    error = "the ranks were stopped";
    return false;
  }
  midStepFailure = false;
  error = executor.checkInputs(inputs);
  if (!error.empty())
    return false;
  // Pipeline stages take the step as micro-batches, so they overlap.
  MicroBatches batches;
  int64_t count = microBatchCount(inputs, stages);
  if (count > 1)
    batches = splitMicroBatches(inputs, count);
  const int64_t parts = count > 1 ? batches.parts.size() : 1;
  auto part = [&](int64_t p) -> const StepInputs & {
    return count > 1 ? batches.parts[p] : inputs;
  };
  midStepFailure = true; // until the step completes
  // Every follower gets the whole step before any rank computes.
  for (int64_t p = 0; p < parts; ++p) {
    StepHeader header = headerOf(part(p), parts);
    std::vector<int32_t> data = pack(part(p));
    for (int64_t rank = 1; rank < comm.size(); ++rank)
      if (!comm.send(&header, sizeof header, rank, error) ||
          !comm.send(data.data(), data.size() * sizeof(int32_t), rank, error))
        return false;
  }
  const int64_t vocab = executor.vocabSize();
  std::vector<std::vector<float>> partLogits(parts);
  std::pair<int64_t, int64_t> sent{0, 0};
  for (int64_t p = 0; p < parts; ++p) {
    if (!executor.forward(part(p), partLogits[p], error))
      return false;
    sent.first += executor.lastStepBytesSent().first;
    sent.second += executor.lastStepBytesSent().second;
  }
  if (logitsRank != 0) {
    // The first rank of the last stage sends every part's logits at once.
    std::vector<float> all(inputs.logitRows.size() * vocab);
    if (!comm.recv(all.data(), all.size() * sizeof(float), logitsRank, error))
      return false;
    size_t at = 0;
    for (int64_t p = 0; p < parts; ++p) {
      size_t size = part(p).logitRows.size() * vocab;
      partLogits[p].assign(all.begin() + at, all.begin() + at + size);
      at += size;
    }
  }
  logits = parts == 1 ? std::move(partLogits[0])
                      : joinLogits(batches, partLogits, vocab);
  if (DecodeTraffic::counts(inputs))
    traffic.add(sent);
  midStepFailure = false;
  return true;
}

bool DistributedRunner::copyBlocks(const std::vector<BlockCopy> &copies,
                                   std::string &error) {
  if (stopped) {
    error = "the ranks were stopped";
    return false;
  }
  midStepFailure = false;
  error = checkBlockCopies(copies, executor.numBlocks());
  if (!error.empty() || copies.empty())
    return error.empty();
  midStepFailure = true; // until every rank has its copies
  StepHeader header;
  header.command = 3;
  header.copies = static_cast<int64_t>(copies.size());
  for (int64_t rank = 1; rank < comm.size(); ++rank)
    if (!comm.send(&header, sizeof header, rank, error) ||
        !comm.send(copies.data(), copies.size() * sizeof(BlockCopy), rank,
                   error))
      return false;
  if (!executor.copyBlocks(copies, error))
    return false;
  midStepFailure = false;
  return true;
}

bool DistributedRunner::decodeTraffic(std::vector<DecodeTraffic> &ranks,
                                      std::string &error) {
  if (stopped) {
    error = "the ranks were stopped";
    return false;
  }
  midStepFailure = true; // until every rank has answered
  ranks.assign(static_cast<size_t>(comm.size()), DecodeTraffic{});
  ranks[0] = traffic;
  StepHeader header;
  header.command = 2;
  for (int64_t rank = 1; rank < comm.size(); ++rank)
    if (!comm.send(&header, sizeof header, rank, error))
      return false;
  for (int64_t rank = 1; rank < comm.size(); ++rank)
    if (!comm.recv(&ranks[rank], sizeof(DecodeTraffic), rank, error))
      return false;
  midStepFailure = false;
  return true;
}

bool moert::serveFollower(const Artifact &artifact, RankExecutor &executor,
                          Communicator &comm, std::string &error) {
  int64_t logitsRank = logitsRankOf(artifact);
  std::vector<int32_t> data;
  std::vector<float> logits, all;
  DecodeTraffic traffic;
  while (true) {
    // A step: its micro-batches, all received before any is run.
    std::vector<StepInputs> parts;
    int64_t count = 1;
    for (int64_t p = 0; p < count; ++p) {
      StepHeader header;
      if (!comm.recv(&header, sizeof header, 0, error))
        return false;
      if (header.command == 0)
        return true;
      if (header.command == 2) {
        // Not a step: the head asks for this rank's decode traffic.
        if (p > 0) {
          error = "rank 0 asked for the decode traffic in the middle of a step";
          return false;
        }
        if (!comm.send(&traffic, sizeof traffic, 0, error))
          return false;
        break;
      }
      if (header.command == 3) {
        // Not a step: copy-on-write of KV blocks, before the next step.
        if (p > 0 || header.copies < 0) {
          error = p > 0 ? "rank 0 sent block copies in the middle of a step"
                        : "rank 0 announced " + std::to_string(header.copies) +
                              " block copies";
          return false;
        }
        std::vector<BlockCopy> copies(static_cast<size_t>(header.copies));
        if (!comm.recv(copies.data(), copies.size() * sizeof(BlockCopy), 0,
                       error) ||
            !executor.copyBlocks(copies, error))
          return false;
        break;
      }
      count = header.parts;
      if (count < 1) {
        error = "rank 0 announced a step of " + std::to_string(count) +
                " micro-batches";
        return false;
      }
      data.resize(header.tokens * 4 + header.sequences * header.blocksPerSeq +
                  header.logitRows);
      if (!comm.recv(data.data(), data.size() * sizeof(int32_t), 0, error))
        return false;
      parts.emplace_back();
      unpack(header, data, parts.back());
    }
    if (parts.empty())
      continue;
    all.clear();
    std::pair<int64_t, int64_t> sent{0, 0};
    for (const StepInputs &part : parts) {
      if (!executor.forward(part, logits, error))
        return false;
      all.insert(all.end(), logits.begin(), logits.end());
      sent.first += executor.lastStepBytesSent().first;
      sent.second += executor.lastStepBytesSent().second;
    }
    // The micro-batches split the step's sequences: the step counts when
    // each of them does.
    if (std::all_of(parts.begin(), parts.end(), DecodeTraffic::counts))
      traffic.add(sent);
    if (comm.rank() == logitsRank &&
        !comm.send(all.data(), all.size() * sizeof(float), 0, error))
      return false;
  }
}
