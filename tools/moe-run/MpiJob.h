//===- MpiJob.h - One rank of moe-run under mpirun --------------*- C++ -*-===//
//
// What every moe-run command that serves requests does under `mpirun -np N`
// (or srun): start MPI, open the artifact, make this rank's executor (a
// cuda rank on the GPU of its node-local rank, its collectives through NCCL
// per --collectives), load its own weight shard. Then the head (rank 0) runs
// the command against a DistributedRunner over every rank, and the others
// follow its steps (runtime/DistributedRunner.h). Setup failures stop the
// whole job with a message naming the rank.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_MPIJOB_H
#define MOEC_TOOLS_MOE_RUN_MPIJOB_H

#include "runtime/DistributedRunner.h"
#include "runtime/MpiCommunicator.h"
#include "runtime/NcclCommunicator.h"

#include <cstdint>
#include <memory>
#include <string>

namespace moert {

/// One rank of an MPI job serving an artifact.
class MpiJob {
public:
  struct Options {
    /// Safetensors checkpoint; empty: random weights from weightsSeed.
    std::string checkpoint;
    uint64_t weightsSeed = 0;
    /// KV-cache blocks per layer and rank; 0: one max-context sequence.
    int64_t kvBlocks = 0;
    /// Seconds a rank waits for a peer before stopping the job.
    double commTimeout = 60;
    /// A cuda plan's collectives: "nccl", "host" or "auto".
    std::string collectives = "auto";
  };

  /// Sets this rank up; on failure stops the job (does not return).
  MpiJob(const std::string &artifactPath, const Options &options);
  ~MpiJob();

  /// Whether this is rank 0, which runs the command.
  bool isHead() const { return comm->rank() == 0; }
  /// A follower: serves the head's steps until it says stop; returns the
  /// exit status (a failure stops the job instead).
  int follow();
  /// The head's model: every rank of the plan, driven from here.
  DistributedRunner &runner() { return *head; }
  const Artifact &artifact() const { return *opened; }
  MpiCommunicator &communicator() { return *comm; }
  /// "MPI" or "MPI, NCCL", for reports.
  std::string transport() const { return nccl ? "MPI, NCCL" : "MPI"; }
  /// The head: tells the followers to stop, or stops the job when the last
  /// step failed after it left rank 0 (the ranks are out of step).
  /// `failure`, when the command failed and has not said so yet, is
  /// reported. Returns the exit status.
  int finish(const std::string &failure = "");

private:
  std::unique_ptr<MpiCommunicator> comm;
  std::unique_ptr<Artifact> opened;
  // NCCL outlives the executor that uses it.
  std::unique_ptr<NcclCommunicator> nccl;
  std::unique_ptr<RankExecutor> executor;
  std::unique_ptr<DistributedRunner> head;
};

} // namespace moert

#endif // MOEC_TOOLS_MOE_RUN_MPIJOB_H
