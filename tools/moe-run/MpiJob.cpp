//===- MpiJob.cpp - One rank of moe-run under mpirun ----------------------===//

#include "tools/moe-run/MpiJob.h"

#include "runtime/CudaExecutor.h"
#include "tools/moe-run/WeightLoad.h"

#include <cstdio>
#include <cstdlib>

using namespace moert;

MpiJob::MpiJob(const std::string &path, const Options &options) {
  std::string error;
  comm = MpiCommunicator::create(
      std::chrono::milliseconds(
          static_cast<int64_t>(options.commTimeout * 1000)),
      error);
  if (!comm) {
    std::fprintf(stderr, "moe-run: error: %s\n", error.c_str());
    std::exit(1);
  }
  int64_t rank = comm->rank();
  opened = Artifact::open(path, error);
  if (!opened)
    comm->abortJob(error);
  int64_t kvBlocks = options.kvBlocks;
  if (kvBlocks == 0) {
    const StageInfo &stage = opened->stageOfRank(rank);
    int64_t blockSize = stage.execution ? stage.execution->blockSize : 1;
    kvBlocks = (opened->model().maxContext + blockSize - 1) / blockSize;
  }
  // A cuda rank takes the GPU of its index on its node (round robin when
  // the node has fewer GPUs than processes).
  int devices = CudaExecutor::deviceCount();
  int device = devices > 0 ? static_cast<int>(comm->localRank() % devices) : 0;
  Communicator *peers = comm->size() > 1 ? comm.get() : nullptr;
  if (opened->target() == "cuda") {
    std::unique_ptr<CudaExecutor> gpu =
        CudaExecutor::create(*opened, rank, kvBlocks, error, peers, device);
    if (!gpu)
      comm->abortJob(error);
    if (options.collectives == "nccl" ||
        (options.collectives == "auto" && NcclCommunicator::available())) {
      const StageInfo &stage = opened->stageOfRank(rank);
      std::vector<int64_t> group;
      for (int64_t r = stage.firstRank; r < stage.firstRank + stage.ranks; ++r)
        group.push_back(r);
      nccl = NcclCommunicator::create(*comm, device, group, error);
      if (!nccl)
        comm->abortJob(error);
      gpu->useNccl(nccl.get());
    }
    executor = std::move(gpu);
  } else {
    executor = RankExecutor::create(*opened, rank, kvBlocks, error, peers);
    if (!executor)
      comm->abortJob(error);
  }
  // Each rank reads only its own shard of the checkpoint.
  if (!fillWeights(*executor, options.checkpoint, options.weightsSeed,
                   "rank " + std::to_string(rank), error))
    comm->abortJob(error);
  if (isHead())
    head = std::make_unique<DistributedRunner>(*opened, *executor, *comm);
}

MpiJob::~MpiJob() = default;

int MpiJob::follow() {
  std::string error;
  if (!serveFollower(*opened, *executor, *comm, error))
    comm->abortJob(error);
  return 0;
}

int MpiJob::finish(const std::string &failure) {
  // A step that failed after leaving rank 0 leaves the ranks out of step.
  if (head->failedMidStep())
    comm->abortJob(failure.empty() ? "a step failed after it left rank 0"
                                   : failure);
  std::string error;
  if (!head->stop(error))
    comm->abortJob(error);
  if (failure.empty())
    return 0;
  std::fflush(stdout);
  std::fprintf(stderr, "moe-run: error: %s\n", failure.c_str());
  return 1;
}
