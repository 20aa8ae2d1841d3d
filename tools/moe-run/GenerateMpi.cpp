//===- GenerateMpi.cpp - moe-run generate under mpirun --------------------===//

#include "tools/moe-run/GenerateMpi.h"

#include "runtime/CudaExecutor.h"
#include "runtime/DistributedRunner.h"
#include "runtime/MpiCommunicator.h"
#include "runtime/NcclCommunicator.h"

#include <cstdio>

using namespace moert;

int moert::generateUnderMpi(const std::string &path, const GenerateArgs &args) {
  std::string error;
  std::unique_ptr<MpiCommunicator> comm = MpiCommunicator::create(
      std::chrono::milliseconds(static_cast<int64_t>(args.commTimeout * 1000)),
      error);
  if (!comm) {
    std::fprintf(stderr, "moe-run: error: %s\n", error.c_str());
    return 1;
  }
  int64_t rank = comm->rank();
  std::unique_ptr<Artifact> artifact = Artifact::open(path, error);
  if (!artifact)
    comm->abortJob(error);
  int64_t kvBlocks = args.kvBlocks;
  if (kvBlocks == 0) {
    const StageInfo &stage = artifact->stageOfRank(rank);
    int64_t blockSize = stage.execution ? stage.execution->blockSize : 1;
    kvBlocks = (artifact->model().maxContext + blockSize - 1) / blockSize;
  }
  // A cuda rank takes the GPU of its index on its node (round robin when
  // the node has fewer GPUs than processes).
  int devices = CudaExecutor::deviceCount();
  int device = devices > 0 ? static_cast<int>(comm->localRank() % devices) : 0;
  Communicator *peers = comm->size() > 1 ? comm.get() : nullptr;
  // NCCL outlives the executor that uses it.
  std::unique_ptr<NcclCommunicator> nccl;
  std::unique_ptr<RankExecutor> executor;
  if (artifact->target() == "cuda") {
    std::unique_ptr<CudaExecutor> gpu =
        CudaExecutor::create(*artifact, rank, kvBlocks, error, peers, device);
    if (!gpu)
      comm->abortJob(error);
    if (args.collectives == "nccl" ||
        (args.collectives == "auto" && NcclCommunicator::available())) {
      const StageInfo &stage = artifact->stageOfRank(rank);
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
    executor = RankExecutor::create(*artifact, rank, kvBlocks, error, peers);
    if (!executor)
      comm->abortJob(error);
  }
  // Each rank reads only its own shard of the checkpoint.
  if (args.checkpoint.empty()
          ? !executor->initRandomWeights(args.weightsSeed, error)
          : !executor->loadWeights(args.checkpoint, error))
    comm->abortJob(error);

  if (rank != 0) {
    if (!serveFollower(*artifact, *executor, *comm, error))
      comm->abortJob(error);
    return 0;
  }
  DistributedRunner runner(*artifact, *executor, *comm);
  bool first = true;
  auto stream = [&](int32_t token) {
    std::printf(first ? "%d" : " %d", token);
    std::fflush(stdout);
    first = false;
  };
  std::vector<int32_t> output;
  GenerateStats stats;
  if (!generate(runner, args.prompt, args.options,
                artifact->model().maxContext, stream, output, stats, error)) {
    if (!first)
      std::printf("\n");
    // A refused request never left rank 0: stop the others and report it.
    if (runner.failedMidStep())
      comm->abortJob(error);
    std::string stopError;
    if (!runner.stop(stopError))
      comm->abortJob(stopError);
    std::fprintf(stderr, "moe-run: error: %s\n", error.c_str());
    return 1;
  }
  std::string stopError;
  if (!runner.stop(stopError))
    comm->abortJob(stopError);
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "moe-run: %lld ranks (MPI%s); %lld tokens in, %lld tokens "
               "out; time to first token %.3f ms, time per output token %.3f "
               "ms\n",
               static_cast<long long>(comm->size()), nccl ? ", NCCL" : "",
               static_cast<long long>(stats.promptTokens),
               static_cast<long long>(stats.outputTokens),
               stats.timeToFirstToken * 1e3, stats.timePerOutputToken * 1e3);
  return 0;
}
