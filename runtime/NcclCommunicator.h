//===- NcclCommunicator.h - GPU collectives through NCCL --------*- C++ -*-===//
//
// The cuda target's transfers between GPUs under mpirun (DESIGN.md section
// 6): all_reduce and all_gather over a stage's tensor group and send/recv
// between stages run on the device buffers, on the executor's stream,
// through NCCL. NCCL is bootstrapped over MPI: rank 0 makes the NCCL id and
// broadcasts it, every rank joins on the GPU it was given (its node-local
// rank), and one collective split gives each stage its own communicator.
// The collectives are enqueued with the step's kernels; the step's one wait
// goes under the MPI watchdog, so a peer that never arrives stops the job
// with a message instead of hanging it. The expert all-to-all steps
// stay staged through the host (TransferStep).
//
// Built when CMake finds NCCL next to the CUDA toolkit (MOEC_HAVE_NCCL);
// otherwise create() says why not.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_NCCLCOMMUNICATOR_H
#define MOEC_RUNTIME_NCCLCOMMUNICATOR_H

#include "runtime/Artifact.h"
#include "runtime/TransferStep.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moert {

class MpiCommunicator;

/// NCCL communicators of one rank: the whole job, and its stage's group.
class NcclCommunicator {
public:
  /// Whether this build has NCCL.
  static bool available();
  /// Joins the job's NCCL communicator on CUDA device `device`, then splits
  /// it by stage: `stageGroup` (sorted, containing this rank) is the ranks
  /// of this rank's stage. Every rank of `mpi` must call it. Null with
  /// `error` set on failure (no NCCL, no device, NCCL's own error).
  static std::unique_ptr<NcclCommunicator>
  create(MpiCommunicator &mpi, int device,
         const std::vector<int64_t> &stageGroup, std::string &error);
  ~NcclCommunicator();

  /// Whether run() takes `step` (all_reduce, all_gather, send, recv).
  static bool handles(const StepInfo &step);
  /// Enqueues `step` on device buffers `a` and `c` (shapes as the plan
  /// sized them, elements of `dtype`) on CUDA stream `stream`, in order
  /// with the step's kernels. Counts the bytes as runTransferStep does.
  /// False with `error` set.
  bool run(const StepInfo &step, const RankPlace &place, const void *a,
           const std::vector<int64_t> &shapeA, void *c,
           const std::vector<int64_t> &shapeC, DType dtype, void *stream,
           int64_t &within, int64_t &next, std::string &error);
  /// Waits for `stream` (the end of a step) under the MPI watchdog, so a
  /// peer that never joins a collective stops the job, and reports an
  /// error NCCL met on the way.
  bool synchronize(void *stream, std::string &error);

  struct Impl;

private:
  NcclCommunicator() = default;
  std::unique_ptr<Impl> impl;
};

} // namespace moert

#endif // MOEC_RUNTIME_NCCLCOMMUNICATOR_H
