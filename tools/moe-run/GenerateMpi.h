//===- GenerateMpi.h - moe-run generate under mpirun ------------*- C++ -*-===//
//
// `mpirun -np N moe-run ART generate ...` (or srun): one process per rank
// (tools/moe-run/MpiJob.h), each loading only its own weight shard; rank 0
// runs the generation loop, speculative with --draft, and drives the others
// (runtime/DistributedRunner.h). A rank that fails stops the job with a
// message naming it; a rank that waits longer than --comm-timeout for a
// peer stops it too.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TOOLS_MOE_RUN_GENERATEMPI_H
#define MOEC_TOOLS_MOE_RUN_GENERATEMPI_H

#include "runtime/Generator.h"

#include <string>
#include <vector>

namespace moert {

/// What `moe-run generate` was asked to do.
struct GenerateArgs {
  std::vector<int32_t> prompt;
  GenerateOptions options;
  uint64_t weightsSeed = 0;
  /// Safetensors checkpoint; empty: random weights from weightsSeed.
  std::string checkpoint;
  /// KV-cache blocks per layer and rank; 0: one max-context sequence.
  int64_t kvBlocks = 0;
  /// Seconds a rank waits for a peer before stopping the job.
  double commTimeout = 60;
  /// How a cuda plan's collectives travel under mpirun: "nccl" (between
  /// the GPUs), "host" (staged through the host over MPI) or "auto" (NCCL
  /// when this moe-run has it).
  std::string collectives = "auto";
};

/// How to speculate (`generate --draft`).
struct DraftArgs {
  /// The draft artifact; empty: no speculation.
  std::string artifact;
  int64_t tokens = 4;
  uint64_t weightsSeed = 1;
  std::string checkpoint;
  /// Speculate at every step instead of when the cost model says it pays.
  bool always = false;
};

/// Runs `generate` as one rank of an MPI job; returns the exit status
/// (errors that stop the job do not return). With a draft, the head runs
/// the draft model in its own process and the scheduler drives the ranks.
int generateUnderMpi(const std::string &artifactPath, const GenerateArgs &args,
                     const DraftArgs &draft);

} // namespace moert

#endif // MOEC_TOOLS_MOE_RUN_GENERATEMPI_H
