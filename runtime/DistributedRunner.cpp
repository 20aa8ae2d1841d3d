//===- DistributedRunner.cpp - The head rank drives the others ------------===//

#include "runtime/DistributedRunner.h"

#include <cstring>

using namespace moert;

namespace {
/// The fixed-size message that announces a step (or the end).
struct StepHeader {
  int64_t command = 0; // 1: a step follows; 0: stop
  int64_t tokens = 0, sequences = 0, blocksPerSeq = 0, logitRows = 0;
};

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
      logitsRank(logitsRankOf(artifact)) {}

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
  StepHeader header{1, static_cast<int64_t>(inputs.tokens.size()),
                    inputs.sequences, inputs.blocksPerSeq,
                    static_cast<int64_t>(inputs.logitRows.size())};
  std::vector<int32_t> data = pack(inputs);
  midStepFailure = true; // until the step completes
  for (int64_t rank = 1; rank < comm.size(); ++rank)
    if (!comm.send(&header, sizeof header, rank, error) ||
        !comm.send(data.data(), data.size() * sizeof(int32_t), rank, error))
      return false;
  if (!executor.forward(inputs, logits, error))
    return false;
  if (logitsRank != 0) {
    logits.resize(inputs.logitRows.size() * executor.vocabSize());
    if (!comm.recv(logits.data(), logits.size() * sizeof(float), logitsRank,
                   error))
      return false;
  }
  midStepFailure = false;
  return true;
}

bool moert::serveFollower(const Artifact &artifact, RankExecutor &executor,
                          Communicator &comm, std::string &error) {
  int64_t logitsRank = logitsRankOf(artifact);
  StepInputs inputs;
  std::vector<int32_t> data;
  std::vector<float> logits;
  while (true) {
    StepHeader header;
    if (!comm.recv(&header, sizeof header, 0, error))
      return false;
    if (header.command == 0)
      return true;
    data.resize(header.tokens * 4 + header.sequences * header.blocksPerSeq +
                header.logitRows);
    if (!comm.recv(data.data(), data.size() * sizeof(int32_t), 0, error))
      return false;
    unpack(header, data, inputs);
    if (!executor.forward(inputs, logits, error))
      return false;
    if (comm.rank() == logitsRank &&
        !comm.send(logits.data(), logits.size() * sizeof(float), 0, error))
      return false;
  }
}
