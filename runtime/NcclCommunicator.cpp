//===- NcclCommunicator.cpp - GPU collectives through NCCL ----------------===//

#include "runtime/NcclCommunicator.h"
#include "runtime/MpiCommunicator.h"
#include "runtime/StepShapes.h"

#ifdef MOEC_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

using namespace moert;

bool NcclCommunicator::handles(const StepInfo &step) {
  switch (step.kind) {
  case StepInfo::Kind::AllReduce:
  case StepInfo::Kind::AllGather:
  case StepInfo::Kind::Send:
  case StepInfo::Kind::Recv:
    return true;
  default:
    return false;
  }
}

#ifndef MOEC_HAVE_NCCL

struct NcclCommunicator::Impl {};
bool NcclCommunicator::available() { return false; }
std::unique_ptr<NcclCommunicator>
NcclCommunicator::create(MpiCommunicator &, int, const std::vector<int64_t> &,
                         std::string &error) {
  error = "this moe-run was built without NCCL (it is looked for next to "
          "the CUDA toolkit); run with --collectives=host";
  return nullptr;
}
NcclCommunicator::~NcclCommunicator() = default;
bool NcclCommunicator::run(const StepInfo &, const RankPlace &, const void *,
                           const std::vector<int64_t> &, void *,
                           const std::vector<int64_t> &, DType, void *,
                           int64_t &, int64_t &, std::string &error) {
  error = "no NCCL";
  return false;
}

bool NcclCommunicator::synchronize(void *, std::string &error) {
  error = "no NCCL";
  return false;
}

#else

struct NcclCommunicator::Impl {
  MpiCommunicator *mpi = nullptr;
  int device = 0;
  ncclComm_t world = nullptr, stage = nullptr;

  bool check(ncclResult_t result, const std::string &what,
             std::string &error) {
    if (result == ncclSuccess)
      return true;
    error = "NCCL " + what + ": " + ncclGetErrorString(result);
    if (const char *detail = ncclGetLastError(nullptr); detail && *detail)
      error += std::string(" (") + detail + ")";
    return false;
  }
  bool check(cudaError_t result, const std::string &what, std::string &error) {
    if (result == cudaSuccess)
      return true;
    error = what + ": " + cudaGetErrorString(result);
    return false;
  }
};

bool NcclCommunicator::available() { return true; }

std::unique_ptr<NcclCommunicator>
NcclCommunicator::create(MpiCommunicator &mpi, int device,
                         const std::vector<int64_t> &stageGroup,
                         std::string &error) {
  std::unique_ptr<NcclCommunicator> comm(new NcclCommunicator());
  comm->impl = std::make_unique<Impl>();
  Impl &s = *comm->impl;
  s.mpi = &mpi;
  s.device = device;
  if (stageGroup.empty()) {
    error = "NCCL: empty stage group";
    return nullptr;
  }
  if (!s.check(cudaSetDevice(device), "selecting the CUDA device for NCCL",
               error))
    return nullptr;
  // Rank 0 makes the id; everyone gets it over MPI, then joins.
  ncclUniqueId id{};
  if (mpi.rank() == 0 && !s.check(ncclGetUniqueId(&id), "making the id", error))
    return nullptr;
  if (!mpi.broadcast(&id, sizeof id, 0, error))
    return nullptr;
  mpi.beginWait("the NCCL bootstrap (ncclCommInitRank)");
  ncclResult_t joined = ncclCommInitRank(&s.world, static_cast<int>(mpi.size()),
                                         id, static_cast<int>(mpi.rank()));
  mpi.endWait();
  if (!s.check(joined, "joining the job (ncclCommInitRank)", error))
    return nullptr;
  // One communicator per stage: the stage's first rank is its colour.
  mpi.beginWait("the NCCL stage split (ncclCommSplit)");
  ncclResult_t split =
      ncclCommSplit(s.world, static_cast<int>(stageGroup.front()),
                    static_cast<int>(mpi.rank()), &s.stage, nullptr);
  mpi.endWait();
  if (!s.check(split, "splitting the stages (ncclCommSplit)", error))
    return nullptr;
  return comm;
}

NcclCommunicator::~NcclCommunicator() {
  if (!impl)
    return;
  cudaSetDevice(impl->device);
  for (ncclComm_t comm : {impl->stage, impl->world})
    if (comm)
      ncclCommDestroy(comm);
}

bool NcclCommunicator::synchronize(void *streamHandle, std::string &error) {
  Impl &s = *impl;
  const std::string what = "a step with NCCL collectives";
  s.mpi->beginWait(what);
  cudaError_t result =
      cudaStreamSynchronize(static_cast<cudaStream_t>(streamHandle));
  s.mpi->endWait();
  if (!s.check(result, "running " + what, error))
    return false;
  ncclResult_t async = ncclSuccess;
  for (ncclComm_t comm : {s.world, s.stage})
    if (comm && ncclCommGetAsyncError(comm, &async) == ncclSuccess &&
        async != ncclSuccess)
      return s.check(async, "running " + what, error);
  return true;
}

static ncclDataType_t ncclType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
    return ncclBfloat16;
  case DType::F16:
    return ncclFloat16;
  case DType::I32:
    return ncclInt32;
  default:
    return ncclFloat32;
  }
}

bool NcclCommunicator::run(const StepInfo &step, const RankPlace &place,
                           const void *a, const std::vector<int64_t> &shapeA,
                           void *c, const std::vector<int64_t> &shapeC,
                           DType dtype, void *streamHandle, int64_t &within,
                           int64_t &next, std::string &error) {
  Impl &s = *impl;
  cudaStream_t stream = static_cast<cudaStream_t>(streamHandle);
  const int64_t tp = static_cast<int64_t>(place.group.size());
  const ncclDataType_t type = ncclType(dtype);
  const int64_t elementBytes = dtypeSize(dtype);
  countTransferBytes(step, tp, shapeA, shapeC, elementBytes, within, next);
  const int64_t peer = step.stage * tp + place.rankInStage;
  switch (step.kind) {
  case StepInfo::Kind::AllReduce: {
    size_t count = elementCount(shapeC);
    return s.check(ncclAllReduce(a, c, count, type, ncclSum, s.stage, stream),
                   "all-reduce", error);
  }
  case StepInfo::Kind::AllGather: {
    // NCCL places the members' blocks one after the other; the plan wants
    // them interleaved along `dim` (every member's [outer, inner] slab side
    // by side), so gather into scratch and copy the slabs into place.
    int64_t outer = 1, inner = elementBytes;
    for (int64_t d = 0; d < static_cast<int64_t>(shapeA.size()); ++d)
      (d < step.dim ? outer : inner) *= shapeA[d];
    size_t count = elementCount(shapeA);
    size_t blockBytes = count * elementBytes;
    if (outer == 1)
      return s.check(ncclAllGather(a, c, count, type, s.stage, stream),
                     "all-gather", error);
    void *blocks = nullptr;
    if (!s.check(cudaMallocAsync(&blocks, blockBytes * tp, stream),
                 "allocating the all-gather scratch", error))
      return false;
    bool ok =
        s.check(ncclAllGather(a, blocks, count, type, s.stage, stream),
                "all-gather", error);
    for (int64_t g = 0; ok && g < tp; ++g)
      ok = s.check(cudaMemcpy2DAsync(
                       static_cast<char *>(c) + g * inner, tp * inner,
                       static_cast<char *>(blocks) + g * blockBytes, inner,
                       inner, outer, cudaMemcpyDeviceToDevice, stream),
                   "placing the gathered blocks", error);
    cudaFreeAsync(blocks, stream);
    return ok;
  }
  case StepInfo::Kind::Send:
    return s.check(ncclSend(a, elementCount(shapeA), type,
                            static_cast<int>(peer), s.world, stream),
                   "send to rank " + std::to_string(peer), error);
  case StepInfo::Kind::Recv:
    return s.check(ncclRecv(c, elementCount(shapeC), type,
                            static_cast<int>(peer), s.world, stream),
                   "receive from rank " + std::to_string(peer), error);
  default:
    error = "NCCL does not run this step";
    return false;
  }
}

#endif // MOEC_HAVE_NCCL
