//===- CudaExecutor.cpp - Running an artifact's plan on a GPU -------------===//

#include "runtime/CudaExecutor.h"
#include "runtime/HostExecutor.h"

#ifdef MOEC_HAVE_CUDA
#include "runtime/CudaExecutorState.h"
#include "runtime/DecodeStep.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

using namespace moert;
using namespace moert::cuda;




CudaExecutor::~CudaExecutor() = default;

/// The chip name of a device: "sm_90a" for compute capability 9.0 (the
/// arch-specific features moec targets), else "sm_<major><minor>".
static std::string chipOf(int major, int minor) {
  std::string chip = "sm_" + std::to_string(major * 10 + minor);
  return major == 9 && minor == 0 ? chip + "a" : chip;
}

/// The capability number of a chip name ("sm_90a" -> 90), -1 if none.
static int chipNumber(const std::string &chip) {
  if (chip.rfind("sm_", 0) != 0)
    return -1;
  int number = 0;
  size_t i = 3;
  for (; i < chip.size() && isdigit(static_cast<unsigned char>(chip[i])); ++i)
    number = number * 10 + (chip[i] - '0');
  return i == 3 ? -1 : number;
}

std::unique_ptr<CudaExecutor>
CudaExecutor::create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
                     std::string &error, Communicator *communicator,
                     int device) {
  error = checkRequest(artifact, "cuda", rank, numBlocks, communicator);
  if (!error.empty())
    return nullptr;
  const StageInfo &stage = artifact.stageOfRank(rank);
  std::string status = deviceStatus(device);
  if (!status.empty()) {
    error = status;
    return nullptr;
  }
  std::unique_ptr<CudaExecutor> executor(new CudaExecutor());
  executor->state = std::make_unique<State>();
  State &s = *executor->state;
  s.plan = *stage.execution;
  s.blocks = numBlocks;
  s.vocab = artifact.model().vocabSize;
  s.device = device;
  if (!s.check(cudaSetDevice(device), "selecting the CUDA device", error) ||
      !s.check(cudaFree(nullptr), "creating the CUDA context", error) ||
      !s.driver.load(error))
    return nullptr;
  cudaDeviceProp properties;
  if (!s.check(cudaGetDeviceProperties(&properties, device),
               "querying the CUDA device", error))
    return nullptr;
  s.deviceName = properties.name;
  std::string chip = chipOf(properties.major, properties.minor);
  int capability = properties.major * 10 + properties.minor;

  // Each module: the cubin of this chip, else PTX the driver can compile
  // for it (an arch-specific "a" chip only on its own capability), the
  // newest such.
  bool allCubins = true;
  for (const CudaModuleInfo &module : artifact.cudaModules()) {
    const std::string *image = nullptr;
    auto cubin = module.cubin.find(chip);
    if (cubin != module.cubin.end()) {
      image = &cubin->second;
    } else {
      allCubins = false;
      int best = -1;
      for (const auto &[name, ptx] : module.ptx) {
        int number = chipNumber(name);
        bool specific = !name.empty() && name.back() == 'a';
        if (number < 0 || number > capability ||
            (specific && number != capability) || number <= best)
          continue;
        best = number;
        image = &ptx;
      }
    }
    if (!image) {
      std::string chips;
      for (const std::string &c : artifact.cudaChips())
        chips += (chips.empty() ? "" : ", ") + c;
      error = "the artifact's GPU code (" + chips + ") cannot run on " +
              s.deviceName + " (" + chip +
              "); compile it with moec "
              "--cuda-chip=" +
              chip;
      return nullptr;
    }
    CUmodule handle;
    // PTX is text: the driver wants it NUL-terminated (std::string is).
    if (!s.check(s.driver.moduleLoadData(&handle, image->c_str()),
                 ("loading GPU module " + module.module).c_str(), error))
      return nullptr;
    s.modules.push_back(handle);
    CUfunction function;
    if (!s.check(s.driver.moduleGetFunction(&function, handle,
                                            module.function.c_str()),
                 ("finding kernel " + module.function).c_str(), error))
      return nullptr;
    s.functions[module.module] = function;
  }
  s.code = chip + (allCubins ? " cubins" : " via PTX");
  for (const StepInfo &step : s.plan.steps)
    if (step.kind == StepInfo::Kind::Kernel && step.launches.empty()) {
      error = "kernel step '" + step.kernel + "' has no GPU launch";
      return nullptr;
    }
  error = checkKernelParameters(artifact);
  if (!error.empty())
    return nullptr;

  if (!s.check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking),
               "creating a stream", error) ||
      !s.check(cudaEventCreate(&s.start), "creating an event", error) ||
      !s.check(cudaEventCreate(&s.stop), "creating an event", error) ||
      !s.check(cublasCreate(&s.blas), "creating the cuBLAS handle", error) ||
      !s.check(cublasSetStream(s.blas, s.stream), "binding cuBLAS", error) ||
      // cuBLAS must not allocate while a graph is captured.
      !s.check(cudaMalloc(&s.blasWorkspace, kBlasWorkspace),
               "allocating the cuBLAS workspace", error) ||
      !s.check(cublasSetWorkspace(s.blas, s.blasWorkspace, kBlasWorkspace),
               "setting the cuBLAS workspace", error))
    return nullptr;
  s.maxBlocksPerSeq =
      (artifact.model().maxContext + s.plan.blockSize - 1) / s.plan.blockSize;
  if (const char *graphs = std::getenv("MOEC_CUDA_GRAPHS"))
    s.useGraphs = std::string(graphs) == "1";

  s.specs = artifact.weightsForRank(rank);
  s.place.comm = communicator;
  for (int64_t r = stage.firstRank; r < stage.firstRank + stage.ranks; ++r)
    s.place.group.push_back(r);
  s.place.rankInStage = artifact.rankInStage(rank);
  s.rankInStage = artifact.rankInStage(rank);
  s.groupSize = artifact.groupSize(rank);
  s.slots = BufferSlots::of(s.plan);
  s.buffers.resize(s.plan.buffers.size() + s.slots.count);
  for (size_t id = 0; id < s.plan.buffers.size(); ++id) {
    const BufferInfo &buffer = s.plan.buffers[id];
    if (buffer.kind == BufferInfo::Kind::Weight) {
      if (s.weights.count(buffer.name))
        continue;
      size_t elements = 1;
      for (const PlanDim &dim : buffer.shape)
        elements *= dim.factor;
      if (!s.reserve(s.weights[buffer.name], elements * dtypeSize(buffer.dtype),
                     error) ||
          !s.check(cudaMemset(s.weights[buffer.name].data, 0,
                              elements * dtypeSize(buffer.dtype)),
                   "clearing a weight", error))
        return nullptr;
    } else if (buffer.kind == BufferInfo::Kind::GroupRank) {
      // The rank's index in its stage / divisor, set once.
      int32_t index = static_cast<int32_t>(s.rankInStage / buffer.divisor);
      if (!s.reserve(s.buffers[id], sizeof index, error) ||
          !s.check(cudaMemcpy(s.buffers[id].data, &index, sizeof index,
                              cudaMemcpyHostToDevice),
                   "setting the group rank", error))
        return nullptr;
    } else if (buffer.kind == BufferInfo::Kind::KCache ||
               buffer.kind == BufferInfo::Kind::VCache) {
      size_t bytes = static_cast<size_t>(numBlocks) * s.plan.blockSize *
                     s.plan.kvWidth * dtypeSize(buffer.dtype);
      if (!s.reserve(s.buffers[id], bytes, error) ||
          !s.check(cudaMemset(s.buffers[id].data, 0, bytes),
                   "clearing the KV cache", error))
        return nullptr;
    }
  }
  return executor;
}

bool CudaExecutor::initRandomWeights(uint64_t seed, std::string &error) {
  State &s = *state;
  if (!s.check(cudaSetDevice(s.device), "selecting the CUDA device", error))
    return false;
  std::vector<float> full, values;
  for (const WeightSpec &spec : s.specs) {
    values.resize(shardElements(spec));
    randomWeightShard(spec, seed, s.rankInStage, s.groupSize, full,
                      values.data());
    if (!s.upload(spec.name, values, error))
      return false;
  }
  return true;
}

bool CudaExecutor::loadWeights(
    const std::string &checkpoint, std::string &error,
    const std::function<void(int64_t, int64_t)> &progress) {
  State &s = *state;
  if (!s.check(cudaSetDevice(s.device), "selecting the CUDA device", error))
    return false;
  std::string uploadError;
  bool loaded = loadWeightShards(
      checkpoint, s.specs, s.rankInStage, s.groupSize, error,
      [&](const WeightSpec &spec, const std::vector<float> &values) {
        if (uploadError.empty())
          s.upload(spec.name, values, uploadError);
      },
      progress);
  if (loaded && !uploadError.empty()) {
    error = uploadError;
    return false;
  }
  return loaded;
}

std::string CudaExecutor::checkInputs(const StepInputs &in) const {
  return checkStepInputs(in, state->vocab, state->blocks,
                         state->plan.blockSize);
}

int64_t CudaExecutor::blockSize() const { return state->plan.blockSize; }
int64_t CudaExecutor::numBlocks() const { return state->blocks; }
int64_t CudaExecutor::vocabSize() const { return state->vocab; }
float CudaExecutor::lastStepMilliseconds() const { return state->lastMs; }
std::string CudaExecutor::describe() const {
  return state->deviceName + " (" + state->code + ")";
}
std::pair<int64_t, int64_t> CudaExecutor::lastStepBytesSent() const {
  return {state->bytesWithinStage, state->bytesToNextStage};
}


bool CudaExecutor::copyBlocks(const std::vector<BlockCopy> &copies,
                              std::string &error) {
  State &s = *state;
  error = checkBlockCopies(copies, s.blocks);
  if (!error.empty())
    return false;
  if (copies.empty())
    return true;
  if (!s.check(cudaSetDevice(s.device), "selecting the CUDA device", error))
    return false;
  // A cache is [slots, kvWidth], slot = block * blockSize + offset: a block
  // is one contiguous run. The stream orders the copies (and a later copy
  // that reads an earlier one's destination) before the next step.
  for (size_t id = 0; id < s.plan.buffers.size(); ++id) {
    const BufferInfo &buffer = s.plan.buffers[id];
    if (buffer.kind != BufferInfo::Kind::KCache &&
        buffer.kind != BufferInfo::Kind::VCache)
      continue;
    size_t blockBytes = static_cast<size_t>(s.plan.blockSize) *
                        s.plan.kvWidth * dtypeSize(buffer.dtype);
    char *cache = static_cast<char *>(s.buffers[id].data);
    for (const BlockCopy &copy : copies)
      if (!s.check(cudaMemcpyAsync(cache + copy.destination * blockBytes,
                                   cache + copy.source * blockBytes,
                                   blockBytes, cudaMemcpyDeviceToDevice,
                                   s.stream),
                   "copying a KV-cache block", error))
        return false;
  }
  return true;
}

bool CudaExecutor::forward(const StepInputs &request,
                           std::vector<float> &logits, std::string &error) {
  return run(request, logits, error, nullptr, 0);
}

bool CudaExecutor::profileStep(const StepInputs &inputs, int repeats,
                               std::vector<KernelTiming> &timings,
                               std::string &error) {
  std::vector<float> logits;
  timings.clear();
  return run(inputs, logits, error, &timings, std::max(repeats, 1));
}

bool CudaExecutor::runPrefix(const StepInputs &inputs, size_t steps,
                             int64_t buffer, std::vector<float> &out,
                             std::string &error) {
  const ExecutionInfo &plan = state->plan;
  error = checkPrefix(plan, steps, buffer, state->place.comm != nullptr);
  if (!error.empty())
    return false;
  std::vector<float> logits;
  Prefix prefix{steps, buffer, &out};
  return run(inputs, logits, error, nullptr, 0, &prefix);
}

bool CudaExecutor::run(const StepInputs &request, std::vector<float> &logits,
                       std::string &error, std::vector<KernelTiming> *profile,
                       int repeats, const Prefix *prefix) {
  State &s = *state;
  const ExecutionInfo &plan = s.plan;
  error = checkInputs(request);
  if (!error.empty())
    return false;
  if (!s.check(cudaSetDevice(s.device), "selecting the CUDA device", error))
    return false;
  // Decode steps of one-rank plans replay a CUDA graph of their batch-size
  // bucket (a power of two), captured on first use.
  int64_t bucket = 0;
  StepInputs padded;
  if (s.useGraphs && !profile && !prefix && !s.place.comm &&
      isDecodeStep(request) &&
      static_cast<int64_t>(request.tokens.size()) <= kMaxGraphBatch) {
    bucket = graphBucket(static_cast<int64_t>(request.tokens.size()));
    // A bucket whose steps include grouped GEMMs (host-side sizes) runs
    // without a graph.
    if (std::any_of(plan.steps.begin(), plan.steps.end(),
                    [&](const StepInfo &step) {
                      return step.kind == StepInfo::Kind::GroupedGemm &&
                             step.runsAt(StepScale{bucket, 1});
                    }))
      bucket = 0;
    else
      padded = padDecodeStep(request, bucket, s.maxBlocksPerSeq);
  }
  const StepInputs &in = bucket ? padded : request;
  StepSizes stepSizes = StepSizes::of(in, s.blocks * plan.blockSize);
  auto extent = [&](const PlanDim &dim) { return stepSizes.extent(dim); };
  std::vector<std::vector<int64_t>> sizes = stepSizes.shapes(plan);
  std::vector<void *> data(plan.buffers.size());
  bool moved = false;
  // Every storage entry sized first (runtime/BufferSlots.h; runPrefix
  // keeps activations apart, so an unwritten one shows its poison), then
  // addressed: growing moves it.
  bool apart = prefix != nullptr;
  std::vector<size_t> bytes = s.slots.storageBytes(plan, sizes, apart);
  for (size_t at = 0; at < s.buffers.size(); ++at) {
    if (!bytes[at])
      continue;
    void *before = s.buffers[at].data;
    if (!s.reserve(s.buffers[at], bytes[at], error))
      return false;
    moved |= before && before != s.buffers[at].data;
  }
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    const BufferInfo &buffer = plan.buffers[id];
    int64_t elements = elementCount(sizes[id]);
    if (buffer.kind == BufferInfo::Kind::Weight) {
      data[id] = s.weights[buffer.name].data;
      continue;
    }
    data[id] = s.buffers[s.slots.storageOf(id, apart)].data;
    if (prefix && buffer.kind == BufferInfo::Kind::Activation &&
        !s.check(cudaMemsetAsync(data[id], 0xff,
                                 elements * dtypeSize(buffer.dtype), s.stream),
                 "poisoning the activations with NaN", error))
      return false;
  }
  // A graph holds the buffers' addresses: one that moved invalidates them.
  if (moved)
    s.dropGraphs();
  s.bytesWithinStage = s.bytesToNextStage = 0;

  // The host side of the step's copies: the request's vectors, or (graphs)
  // pinned staging buffers at fixed addresses.
  const std::vector<int32_t> *sources[6] = {&in.tokens,      &in.positions,
                                            &in.slotMapping, &in.tokenSeq,
                                            &in.blockTables, &in.logitRows};
  const int64_t targets[6] = {plan.tokens,   plan.positions,   plan.slotMapping,
                              plan.tokenSeq, plan.blockTables, plan.logitRows};
  size_t logitCount = plan.logits >= 0 ? in.logitRows.size() * s.vocab : 0;
  const void *hostInputs[6];
  float *hostLogits = nullptr;
  if (bucket) {
    if (!s.stageGraphInputs(sources, logitCount, error))
      return false;
    for (int i = 0; i < 6; ++i)
      hostInputs[i] = s.staging[i].data;
    hostLogits = static_cast<float *>(s.stagedLogits.data);
  } else {
    for (int i = 0; i < 6; ++i)
      hostInputs[i] = sources[i]->data();
    logits.resize(logitCount);
    hostLogits = logits.data();
  }

  // Everything one step puts on the stream.
  std::vector<void *> params;
  // One step of the plan on the stream (collectives: through the host).
  auto runStep = [&](const StepInfo &step) -> bool {
    if (step.kind == StepInfo::Kind::Kernel) {
      for (const LaunchInfo &launch : step.launches) {
        int64_t grid[3];
        for (int i = 0; i < 3; ++i)
          grid[i] = extent(launch.grid[i]);
        if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0)
          continue; // nothing to compute (no logit rows, ...)
        params.clear();
        for (int64_t p : launch.params)
          for (int64_t &field : s.descriptors[step.args[p]])
            params.push_back(&field);
        if (!s.check(
                s.driver.launchKernel(s.functions.at(launch.module),
                                      static_cast<unsigned>(grid[0]),
                                      static_cast<unsigned>(grid[1]),
                                      static_cast<unsigned>(grid[2]),
                                      static_cast<unsigned>(launch.block[0]),
                                      static_cast<unsigned>(launch.block[1]),
                                      static_cast<unsigned>(launch.block[2]), 0,
                                      reinterpret_cast<CUstream>(s.stream),
                                      params.data(), nullptr),
                ("launching " + launch.function).c_str(), error))
          return false;
      }
      return true;
    }
    if (step.kind == StepInfo::Kind::Gemm)
      return s.check(rowMajorGemm(s.blas, data[step.a],
                                  plan.buffers[step.a].dtype, data[step.b],
                                  plan.buffers[step.b].dtype, data[step.c],
                                  plan.buffers[step.c].dtype, sizes[step.a][0],
                                  sizes[step.b][0], sizes[step.a][1]),
                     "a GEMM (cublasGemmEx)", error);
    if (step.kind == StepInfo::Kind::GroupedGemm)
      return groupedGemm(s.blas, s.stream, plan, step, sizes, data,
                         s.rankInStage, error);
    // Collectives and pipeline transfers (never in a graph): through NCCL
    // on the device, or staged through the host in f32.
    if (s.nccl && NcclCommunicator::handles(step)) {
      int64_t id = step.a >= 0 ? step.a : step.c;
      static const std::vector<int64_t> none;
      return s.nccl->run(step, s.place, step.a >= 0 ? data[step.a] : nullptr,
                         step.a >= 0 ? sizes[step.a] : none,
                         step.c >= 0 ? data[step.c] : nullptr,
                         step.c >= 0 ? sizes[step.c] : none,
                         plan.buffers[id].dtype, s.stream, s.bytesWithinStage,
                         s.bytesToNextStage, error);
    }
    if (!s.check(cudaStreamSynchronize(s.stream), "running the step", error))
      return false;
    std::vector<float> a, c;
    TransferBuffers buffers;
    if (step.a >= 0) {
      if (!s.toHost(data[step.a], plan.buffers[step.a].dtype, sizes[step.a],
                    a, error))
        return false;
      buffers.a = a.data();
      buffers.shapeA = sizes[step.a];
    }
    if (step.c >= 0) {
      c.assign(elementCount(sizes[step.c]), 0.0f);
      buffers.c = c.data();
      buffers.shapeC = sizes[step.c];
    }
    // An expert exchange also reads the dispatch's routing (i32, as is).
    std::vector<int32_t> offsets, permutation;
    if (step.kind == StepInfo::Kind::ExpertExchange) {
      offsets.resize(elementCount(sizes[step.offsets]));
      permutation.resize(elementCount(sizes[step.permutation]));
      for (auto [id, host] : {std::pair{step.offsets, &offsets},
                              std::pair{step.permutation, &permutation}})
        if (!s.check(cudaMemcpy(host->data(), data[id],
                                host->size() * sizeof(int32_t),
                                cudaMemcpyDeviceToHost),
                     "copying the expert routing to the host", error))
          return false;
      buffers.offsets = offsets.data();
      buffers.experts = static_cast<int64_t>(offsets.size()) - 1;
      buffers.permutation = permutation.data();
    }
    int64_t elementBytes =
        dtypeSize(plan.buffers[step.a >= 0 ? step.a : step.c].dtype);
    if (!runTransferStep(step, s.place, buffers, elementBytes,
                         s.bytesWithinStage, s.bytesToNextStage, error))
      return false;
    if (step.c >= 0 &&
        !s.toDevice(c, plan.buffers[step.c].dtype, data[step.c], error))
      return false;
    return true;
  };

  auto enqueue = [&]() -> bool {
    for (int i = 0; i < 6; ++i)
      if (!sources[i]->empty() &&
          !s.check(cudaMemcpyAsync(data[targets[i]], hostInputs[i],
                                   sources[i]->size() * sizeof(int32_t),
                                   cudaMemcpyHostToDevice, s.stream),
                   "copying the step's inputs", error))
        return false;
    // One memref descriptor per buffer, as the kernels' parameters.
    s.descriptors.clear();
    for (size_t id = 0; id < plan.buffers.size(); ++id)
      s.descriptors.push_back(memrefDescriptor(data[id], sizes[id]));
    StepScale scale = scaleOf(in);
    size_t steps = prefix ? prefix->steps : plan.steps.size();
    for (size_t index = 0; index < steps; ++index)
      if (plan.steps[index].runsAt(scale) && !runStep(plan.steps[index]))
        return false;
    if (logitCount &&
        !s.check(cudaMemcpyAsync(hostLogits, data[plan.logits],
                                 logitCount * sizeof(float),
                                 cudaMemcpyDeviceToHost, s.stream),
                 "copying the logits", error))
      return false;
    return true;
  };

  cudaGraphExec_t graph = nullptr;
  if (bucket) {
    auto it = s.graphs.find(bucket);
    if (it == s.graphs.end()) {
      cudaGraph_t captured = nullptr;
      if (!s.check(cudaStreamBeginCapture(s.stream,
                                          cudaStreamCaptureModeThreadLocal),
                   "capturing a decode step", error))
        return false;
      bool enqueued = enqueue();
      cudaError_t ended = cudaStreamEndCapture(s.stream, &captured);
      if (!enqueued || !s.check(ended, "capturing a decode step", error) ||
          !s.check(cudaGraphInstantiate(&graph, captured, 0),
                   "instantiating a decode-step graph", error)) {
        if (captured)
          cudaGraphDestroy(captured);
        return false;
      }
      cudaGraphDestroy(captured);
      s.graphs[bucket] = graph;
    } else {
      graph = it->second;
    }
  }
  if (!s.check(cudaEventRecord(s.start, s.stream), "recording an event", error))
    return false;
  if (graph ? !s.check(cudaGraphLaunch(graph, s.stream),
                       "replaying a decode-step graph", error)
            : !enqueue())
    return false;
  if (!s.check(cudaEventRecord(s.stop, s.stream), "recording an event",
               error) ||
      !(s.nccl ? s.nccl->synchronize(s.stream, error)
               : s.check(cudaStreamSynchronize(s.stream), "running the step",
                         error)) ||
      !s.check(cudaEventElapsedTime(&s.lastMs, s.start, s.stop),
               "timing the step", error))
    return false;
  if (bucket) // the real rows of the padded batch
    logits.assign(hostLogits, hostLogits + request.logitRows.size() * s.vocab);
  if (prefix) {
    const BufferInfo &buffer = plan.buffers[prefix->buffer];
    if (buffer.dtype != DType::I32)
      return s.toHost(data[prefix->buffer], buffer.dtype,
                      sizes[prefix->buffer], *prefix->out, error);
    std::vector<int32_t> values(elementCount(sizes[prefix->buffer]));
    if (!s.check(cudaMemcpy(values.data(), data[prefix->buffer],
                            values.size() * sizeof(int32_t),
                            cudaMemcpyDeviceToHost),
                 "copying a buffer to the host", error))
      return false;
    prefix->out->assign(values.begin(), values.end());
  }
  if (profile && !profileSteps(s, plan, in, sizes, data, runStep, *profile,
                               repeats, error))
    return false;
  return true;
}

void CudaExecutor::useGraphs(bool enabled) { state->useGraphs = enabled; }
void CudaExecutor::useNccl(NcclCommunicator *nccl) { state->nccl = nccl; }


#endif // MOEC_HAVE_CUDA

using namespace moert;


std::unique_ptr<RankExecutor>
RankExecutor::create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
                     std::string &error, Communicator *communicator,
                     int device) {
  if (artifact.target() == "cuda")
    return CudaExecutor::create(artifact, rank, numBlocks, error, communicator,
                                device);
  return HostExecutor::create(artifact, rank, numBlocks, error, communicator);
}
