//===- MpiCommunicator.h - Ranks as MPI processes ---------------*- C++ -*-===//
//
// The Communicator of a job launched by `mpirun -np N moe-run ...` (or
// `srun`): one process per rank, MPI for the transfers (the host target;
// the cuda target adds NCCL, bootstrapped over this: rank 0 makes the NCCL
// id and broadcasts it). Built when CMake finds MPI (MOEC_HAVE_MPI).
//
// Sums are made in rank order from gathered parts, so every rank gets the
// same bits, as with the in-process world. No MPI call times out by itself,
// so a watchdog thread does: when one operation (the bootstrap included)
// has waited longer than the timeout, it prints which rank waited for what
// and stops the whole job (MPI_Abort), instead of letting it hang.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_MPICOMMUNICATOR_H
#define MOEC_RUNTIME_MPICOMMUNICATOR_H

#include "runtime/Communicator.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moert {

/// This process's rank as its launcher announces it in the environment
/// (OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK, SLURM_PROCID: the first that
/// holds a non-negative integer), read through `lookup` (std::getenv by
/// default); -1 when none does. Known before MPI is, so errors of the
/// bootstrap itself can name the rank.
int64_t
launcherRank(const std::function<const char *(const char *)> &lookup = nullptr);

/// The job's ranks as MPI processes.
class MpiCommunicator : public Communicator {
public:
  /// Whether this process was started by an MPI launcher (mpirun, srun).
  static bool launchedByMpi();
  /// Initialises MPI (once per process) under a watchdog of `timeout`.
  /// Null with `error` set when MPI is not available in this build.
  static std::unique_ptr<MpiCommunicator>
  create(std::chrono::milliseconds timeout, std::string &error);
  /// Finalises MPI.
  ~MpiCommunicator() override;

  int64_t rank() const override { return worldRank; }
  int64_t size() const override { return worldSize; }
  /// This process's index among the job's processes on its node (MPI's
  /// shared-memory split): which of the node's GPUs it takes.
  int64_t localRank() const { return nodeRank; }
  bool allReduceSum(float *data, int64_t count,
                    const std::vector<int64_t> &group,
                    std::string &error) override;
  bool allGather(const void *input, int64_t bytes, void *output,
                 const std::vector<int64_t> &group,
                 std::string &error) override;
  bool allToAll(const void *input, const std::vector<int64_t> &sendBytes,
                void *output, const std::vector<int64_t> &recvBytes,
                const std::vector<int64_t> &group,
                std::string &error) override;
  bool send(const void *data, int64_t bytes, int64_t peer,
            std::string &error) override;
  bool recv(void *data, int64_t bytes, int64_t peer,
            std::string &error) override;

  /// Copies `bytes` bytes at `data` from rank `root` to every rank.
  bool broadcast(void *data, int64_t bytes, int64_t root, std::string &error);
  /// Puts a wait that is not an MPI call (e.g. an NCCL bootstrap or
  /// collective) under the watchdog: past the timeout the job stops,
  /// naming `what`. Pair with endWait().
  void beginWait(const std::string &what);
  void endWait();

  /// Prints `message` (one line, prefixed "moe-run: error: rank R: ") and
  /// stops every process of the job.
  [[noreturn]] void abortJob(const std::string &message);

  struct Impl;

private:
  MpiCommunicator() = default;
  int64_t worldRank = 0, worldSize = 1, nodeRank = 0;
  std::unique_ptr<Impl> impl;
};

} // namespace moert

#endif // MOEC_RUNTIME_MPICOMMUNICATOR_H
