//===- CudaExecutor.cpp - Running an artifact's plan on a GPU -------------===//

#include "runtime/CudaExecutor.h"
#include "runtime/HostExecutor.h"
#include "runtime/WeightInit.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <type_traits>

#ifdef MOEC_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime.h>
#endif

using namespace moert;

#ifndef MOEC_HAVE_CUDA

struct CudaExecutor::State {};
CudaExecutor::~CudaExecutor() = default;
std::string CudaExecutor::deviceStatus(int) {
  return "this moe-run was built without CUDA (no CUDA toolkit was found "
         "when it was configured)";
}
std::unique_ptr<CudaExecutor> CudaExecutor::create(const Artifact &, int64_t,
                                                   int64_t, std::string &error,
                                                   Communicator *, int) {
  error = deviceStatus();
  return nullptr;
}
bool CudaExecutor::initRandomWeights(uint64_t, std::string &) { return false; }
bool CudaExecutor::loadWeights(const std::string &, std::string &,
                               const std::function<void(int64_t, int64_t)> &) {
  return false;
}
bool CudaExecutor::forward(const StepInputs &, std::vector<float> &,
                           std::string &) {
  return false;
}
std::string CudaExecutor::checkInputs(const StepInputs &) const { return ""; }
int64_t CudaExecutor::blockSize() const { return 0; }
int64_t CudaExecutor::numBlocks() const { return 0; }
int64_t CudaExecutor::vocabSize() const { return 0; }
float CudaExecutor::lastStepMilliseconds() const { return 0; }
std::string CudaExecutor::describe() const { return ""; }
double CudaExecutor::measureCopyBandwidth(int, int64_t, std::string &error) {
  error = deviceStatus();
  return 0;
}

#else

namespace {
/// The driver functions the executor calls, reached through the runtime.
struct Driver {
  CUresult (*moduleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*moduleGetFunction)(CUfunction *, CUmodule, const char *) =
      nullptr;
  CUresult (*moduleUnload)(CUmodule) = nullptr;
  CUresult (*launchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, unsigned, CUstream, void **,
                           void **) = nullptr;
  CUresult (*getErrorString)(CUresult, const char **) = nullptr;

  bool load(std::string &error) {
    auto get = [&](const char *symbol, auto &function) {
      void *pointer = nullptr;
      cudaDriverEntryPointQueryResult status;
      cudaError_t result = cudaGetDriverEntryPointByVersion(
          symbol, &pointer, 12000, cudaEnableDefault, &status);
      if (result != cudaSuccess || status != cudaDriverEntryPointSuccess ||
          !pointer) {
        error = std::string("the CUDA driver lacks ") + symbol;
        return false;
      }
      function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(
          pointer);
      return true;
    };
    return get("cuModuleLoadData", moduleLoadData) &&
           get("cuModuleGetFunction", moduleGetFunction) &&
           get("cuModuleUnload", moduleUnload) &&
           get("cuLaunchKernel", launchKernel) &&
           get("cuGetErrorString", getErrorString);
  }
  std::string message(CUresult result) const {
    const char *text = nullptr;
    if (getErrorString)
      getErrorString(result, &text);
    return text ? text : "CUDA driver error " + std::to_string(result);
  }
};

const char *blasStatus(cublasStatus_t status) {
  switch (status) {
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "cuBLAS not initialised";
  case CUBLAS_STATUS_ALLOC_FAILED:
    return "cuBLAS allocation failed";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "cuBLAS invalid value";
  case CUBLAS_STATUS_ARCH_MISMATCH:
    return "cuBLAS architecture mismatch";
  case CUBLAS_STATUS_EXECUTION_FAILED:
    return "cuBLAS execution failed";
  case CUBLAS_STATUS_NOT_SUPPORTED:
    return "cuBLAS operation not supported";
  default:
    return "cuBLAS error";
  }
}

/// f32 to bf16, rounding to nearest even (NaN stays NaN).
uint16_t toBF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

/// f32 to IEEE half, rounding to nearest even.
uint16_t toF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t rawExponent = (bits >> 23) & 0xffu, mantissa = bits & 0x7fffffu;
  if (rawExponent == 0xff)
    return static_cast<uint16_t>(sign | 0x7c00u | (mantissa ? 0x200u : 0));
  int32_t exponent = static_cast<int32_t>(rawExponent) - 127 + 15;
  if (exponent >= 31)
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (exponent <= 0) {
    if (exponent < -10)
      return static_cast<uint16_t>(sign);
    mantissa |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - exponent);
    uint32_t half = mantissa >> shift, rest = mantissa & ((1u << shift) - 1);
    uint32_t middle = 1u << (shift - 1);
    if (rest > middle || (rest == middle && (half & 1u)))
      ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exponent) << 10) |
                  (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u)))
    ++half; // a carry into the exponent is the correct rounding
  return static_cast<uint16_t>(half);
}

cudaDataType blasType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
    return CUDA_R_16BF;
  case DType::F16:
    return CUDA_R_16F;
  default:
    return CUDA_R_32F;
  }
}

/// A device allocation that grows on demand.
struct DeviceBuffer {
  void *data = nullptr;
  size_t bytes = 0;
};
} // namespace

struct CudaExecutor::State {
  ExecutionInfo plan;
  int64_t blocks = 0, vocab = 0;
  int device = 0;
  std::string deviceName, code;
  Driver driver;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  float lastMs = 0;
  std::vector<CUmodule> modules;
  /// GPU module name -> its kernel.
  std::map<std::string, CUfunction> functions;
  /// Per plan buffer: activations, inputs and caches; weights by name.
  std::vector<DeviceBuffer> buffers;
  std::map<std::string, DeviceBuffer> weights;
  std::vector<WeightSpec> specs;
  int64_t rankInStage = 0, groupSize = 1;

  ~State() {
    cudaSetDevice(device);
    if (stream)
      cudaStreamSynchronize(stream);
    for (DeviceBuffer &buffer : buffers)
      cudaFree(buffer.data);
    for (auto &[name, buffer] : weights)
      cudaFree(buffer.data);
    for (CUmodule module : modules)
      driver.moduleUnload(module);
    if (blas)
      cublasDestroy(blas);
    if (start)
      cudaEventDestroy(start);
    if (stop)
      cudaEventDestroy(stop);
    if (stream)
      cudaStreamDestroy(stream);
  }

  bool check(cudaError_t result, const char *what, std::string &error) {
    if (result == cudaSuccess)
      return true;
    error = std::string(what) + ": " + cudaGetErrorString(result);
    return false;
  }
  bool check(CUresult result, const char *what, std::string &error) {
    if (result == CUDA_SUCCESS)
      return true;
    error = std::string(what) + ": " + driver.message(result);
    return false;
  }
  bool check(cublasStatus_t status, const char *what, std::string &error) {
    if (status == CUBLAS_STATUS_SUCCESS)
      return true;
    error = std::string(what) + ": " + blasStatus(status);
    return false;
  }

  /// Makes `buffer` hold at least `bytes`.
  bool reserve(DeviceBuffer &buffer, size_t bytes, std::string &error) {
    if (buffer.bytes >= bytes && buffer.data)
      return true;
    if (buffer.data && !check(cudaStreamSynchronize(stream), "synchronising",
                              error))
      return false;
    cudaFree(buffer.data);
    buffer = {};
    size_t size = std::max<size_t>(bytes, 256);
    if (!check(cudaMalloc(&buffer.data, size), "allocating device memory",
               error))
      return false;
    buffer.bytes = size;
    return true;
  }

  /// Converts `values` to the weight's plan dtype and copies them to the
  /// device.
  bool upload(const std::string &name, const std::vector<float> &values,
              std::string &error) {
    auto it = weights.find(name);
    if (it == weights.end()) {
      error = "the plan has no weight '" + name + "'";
      return false;
    }
    DType dtype = DType::F32;
    for (const BufferInfo &buffer : plan.buffers)
      if (buffer.kind == BufferInfo::Kind::Weight && buffer.name == name)
        dtype = buffer.dtype;
    std::vector<char> bytes(values.size() * dtypeSize(dtype));
    for (size_t i = 0; i < values.size(); ++i) {
      if (dtype == DType::F32) {
        std::memcpy(bytes.data() + 4 * i, &values[i], 4);
      } else {
        uint16_t half = dtype == DType::BF16 ? toBF16(values[i])
                                             : toF16(values[i]);
        std::memcpy(bytes.data() + 2 * i, &half, 2);
      }
    }
    if (bytes.size() > it->second.bytes) {
      error = "weight '" + name + "': its shard does not match the plan";
      return false;
    }
    return check(cudaMemcpy(it->second.data, bytes.data(), bytes.size(),
                            cudaMemcpyHostToDevice),
                 "copying a weight to the device", error);
  }
};

std::string CudaExecutor::deviceStatus(int device) {
  int count = 0;
  cudaError_t result = cudaGetDeviceCount(&count);
  if (result != cudaSuccess)
    return std::string("no usable CUDA device (") + cudaGetErrorString(result) +
           ")";
  if (device < 0 || device >= count)
    return "no CUDA device " + std::to_string(device) + " (" +
           std::to_string(count) + " present)";
  return "";
}

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
  std::string launch = artifact.checkLaunch(
      "cuda", rank, communicator ? communicator->size() : 1);
  if (!launch.empty()) {
    error = launch;
    return nullptr;
  }
  if (artifact.plan().ranks > 1) {
    error = "the CUDA executor runs one-rank plans for now; this plan has " +
            std::to_string(artifact.plan().ranks) +
            " ranks (run it on the host target)";
    return nullptr;
  }
  const StageInfo &stage = artifact.stageOfRank(rank);
  if (!stage.execution || artifact.cudaModules().empty()) {
    error = "the artifact has no GPU kernels (moec found no CUDA toolkit "
            "when it compiled it; see its warning)";
    return nullptr;
  }
  if (numBlocks < 1) {
    error = "the KV cache needs at least one block, got " +
            std::to_string(numBlocks);
    return nullptr;
  }
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
              s.deviceName + " (" + chip + "); compile it with moec "
              "--cuda-chip=" + chip;
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

  if (!s.check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking),
               "creating a stream", error) ||
      !s.check(cudaEventCreate(&s.start), "creating an event", error) ||
      !s.check(cudaEventCreate(&s.stop), "creating an event", error) ||
      !s.check(cublasCreate(&s.blas), "creating the cuBLAS handle", error) ||
      !s.check(cublasSetStream(s.blas, s.stream), "binding cuBLAS", error))
    return nullptr;

  s.specs = artifact.weightsForRank(rank);
  s.rankInStage = artifact.rankInStage(rank);
  s.groupSize = artifact.groupSize(rank);
  s.buffers.resize(s.plan.buffers.size());
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

bool CudaExecutor::forward(const StepInputs &in, std::vector<float> &logits,
                           std::string &error) {
  State &s = *state;
  const ExecutionInfo &plan = s.plan;
  error = checkInputs(in);
  if (!error.empty())
    return false;
  if (!s.check(cudaSetDevice(s.device), "selecting the CUDA device", error))
    return false;
  auto size = [&](char symbol) -> int64_t {
    switch (symbol) {
    case 'T':
      return in.tokens.size();
    case 'R':
      return in.logitRows.size();
    case 'S':
      return s.blocks * plan.blockSize;
    case 'N':
      return in.sequences;
    case 'M':
      return in.blocksPerSeq;
    default:
      return 1;
    }
  };
  auto extent = [&](const PlanDim &dim) {
    return dim.symbol ? dim.factor * size(dim.symbol) : dim.factor;
  };
  std::vector<std::vector<int64_t>> sizes(plan.buffers.size());
  std::vector<void *> data(plan.buffers.size());
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    const BufferInfo &buffer = plan.buffers[id];
    int64_t elements = 1;
    for (const PlanDim &dim : buffer.shape) {
      sizes[id].push_back(extent(dim));
      elements *= sizes[id].back();
    }
    if (buffer.kind == BufferInfo::Kind::Weight) {
      data[id] = s.weights[buffer.name].data;
      continue;
    }
    if (buffer.kind != BufferInfo::Kind::KCache &&
        buffer.kind != BufferInfo::Kind::VCache &&
        !s.reserve(s.buffers[id], elements * dtypeSize(buffer.dtype), error))
      return false;
    data[id] = s.buffers[id].data;
  }
  if (!s.check(cudaEventRecord(s.start, s.stream), "recording an event",
               error))
    return false;
  auto fill = [&](int64_t id, const void *values, size_t bytes) {
    return s.check(cudaMemcpyAsync(data[id], values, bytes,
                                   cudaMemcpyHostToDevice, s.stream),
                   "copying the step's inputs", error);
  };
  auto fillInts = [&](int64_t id, const std::vector<int32_t> &values) {
    return values.empty() ||
           fill(id, values.data(), values.size() * sizeof(int32_t));
  };
  if (!fillInts(plan.tokens, in.tokens) ||
      !fillInts(plan.positions, in.positions) ||
      !fillInts(plan.slotMapping, in.slotMapping) ||
      !fillInts(plan.tokenSeq, in.tokenSeq) ||
      !fillInts(plan.blockTables, in.blockTables) ||
      !fillInts(plan.logitRows, in.logitRows))
    return false;
  std::vector<int32_t> groupRanks(plan.buffers.size(), 0);
  for (size_t id = 0; id < plan.buffers.size(); ++id)
    if (plan.buffers[id].kind == BufferInfo::Kind::GroupRank) {
      groupRanks[id] =
          static_cast<int32_t>(s.rankInStage / plan.buffers[id].divisor);
      if (!fill(id, &groupRanks[id], sizeof(int32_t)))
        return false;
    }

  // One memref descriptor per buffer, as the kernels' parameters:
  // {allocated, aligned, offset, sizes..., strides...}, 64-bit each.
  std::vector<std::vector<int64_t>> descriptors(plan.buffers.size());
  for (size_t id = 0; id < plan.buffers.size(); ++id) {
    const std::vector<int64_t> &shape = sizes[id];
    std::vector<int64_t> &d = descriptors[id];
    d.assign(3 + 2 * shape.size(), 0);
    d[0] = d[1] = reinterpret_cast<int64_t>(data[id]);
    int64_t stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      d[3 + i] = shape[i];
      d[3 + shape.size() + i] = stride;
      stride *= shape[i];
    }
  }
  std::vector<void *> params;
  for (const StepInfo &step : plan.steps) {
    if (step.kind == StepInfo::Kind::Kernel) {
      for (const LaunchInfo &launch : step.launches) {
        int64_t grid[3];
        for (int i = 0; i < 3; ++i)
          grid[i] = extent(launch.grid[i]);
        if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0)
          continue; // nothing to compute (no logit rows, ...)
        params.clear();
        for (int64_t p : launch.params)
          for (int64_t &field : descriptors[step.args[p]])
            params.push_back(&field);
        if (!s.check(s.driver.launchKernel(
                         s.functions.at(launch.module),
                         static_cast<unsigned>(grid[0]),
                         static_cast<unsigned>(grid[1]),
                         static_cast<unsigned>(grid[2]),
                         static_cast<unsigned>(launch.block[0]),
                         static_cast<unsigned>(launch.block[1]),
                         static_cast<unsigned>(launch.block[2]), 0,
                         reinterpret_cast<CUstream>(s.stream), params.data(),
                         nullptr),
                     ("launching " + launch.function).c_str(), error))
          return false;
      }
      continue;
    }
    if (step.kind == StepInfo::Kind::Gemm) {
      // c [m, n] = a [m, k] b [n, k]^T, row-major: in cuBLAS's column-major
      // terms c^T [n, m] = b^T' a^T, i.e. op(b) = T, op(a) = N.
      int64_t m = sizes[step.a][0], k = sizes[step.a][1],
              n = sizes[step.b][0];
      if (m == 0)
        continue;
      const float one = 1.0f, zero = 0.0f;
      if (!s.check(cublasGemmEx(s.blas, CUBLAS_OP_T, CUBLAS_OP_N,
                                static_cast<int>(n), static_cast<int>(m),
                                static_cast<int>(k), &one, data[step.b],
                                blasType(plan.buffers[step.b].dtype),
                                static_cast<int>(k), data[step.a],
                                blasType(plan.buffers[step.a].dtype),
                                static_cast<int>(k), &zero, data[step.c],
                                blasType(plan.buffers[step.c].dtype),
                                static_cast<int>(n), CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT),
                   "a GEMM (cublasGemmEx)", error))
        return false;
      continue;
    }
    error = "the CUDA executor cannot run collective or pipeline steps yet";
    return false;
  }
  if (!s.check(cudaEventRecord(s.stop, s.stream), "recording an event",
               error))
    return false;
  logits.clear();
  if (plan.logits >= 0) {
    logits.resize(static_cast<size_t>(in.logitRows.size()) * s.vocab);
    if (!logits.empty() &&
        !s.check(cudaMemcpyAsync(logits.data(), data[plan.logits],
                                 logits.size() * sizeof(float),
                                 cudaMemcpyDeviceToHost, s.stream),
                 "copying the logits", error))
      return false;
  }
  if (!s.check(cudaStreamSynchronize(s.stream), "running the step", error) ||
      !s.check(cudaEventElapsedTime(&s.lastMs, s.start, s.stop),
               "timing the step", error))
    return false;
  return true;
}

double CudaExecutor::measureCopyBandwidth(int device, int64_t bytes,
                                          std::string &error) {
  error = deviceStatus(device);
  if (!error.empty())
    return 0;
  void *from = nullptr, *to = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  std::vector<float> times;
  auto check = [&](cudaError_t result, const char *what) {
    if (result == cudaSuccess)
      return true;
    error = std::string(what) + ": " + cudaGetErrorString(result);
    return false;
  };
  bool ok = check(cudaSetDevice(device), "selecting the CUDA device") &&
            check(cudaMalloc(&from, bytes), "allocating the copy source") &&
            check(cudaMalloc(&to, bytes), "allocating the copy target") &&
            check(cudaMemset(from, 1, bytes), "filling the copy source") &&
            check(cudaEventCreate(&start), "creating an event") &&
            check(cudaEventCreate(&stop), "creating an event");
  for (int i = 0; ok && i < 11; ++i) {
    float ms = 0;
    ok = check(cudaEventRecord(start), "recording an event") &&
         check(cudaMemcpy(to, from, bytes, cudaMemcpyDeviceToDevice),
               "copying") &&
         check(cudaEventRecord(stop), "recording an event") &&
         check(cudaEventSynchronize(stop), "waiting for the copy") &&
         check(cudaEventElapsedTime(&ms, start, stop), "timing the copy");
    if (ok && i > 0) // the first copy warms up
      times.push_back(ms);
  }
  cudaFree(from);
  cudaFree(to);
  if (start)
    cudaEventDestroy(start);
  if (stop)
    cudaEventDestroy(stop);
  if (!ok || times.empty())
    return 0;
  std::sort(times.begin(), times.end());
  double ms = times[times.size() / 2];
  return ms > 0 ? 2.0 * static_cast<double>(bytes) / (ms * 1e-3) : 0;
}

#endif // MOEC_HAVE_CUDA

std::unique_ptr<RankExecutor>
RankExecutor::create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
                     std::string &error, Communicator *communicator) {
  if (artifact.target() == "cuda")
    return CudaExecutor::create(artifact, rank, numBlocks, error,
                                communicator);
  return HostExecutor::create(artifact, rank, numBlocks, error, communicator);
}
