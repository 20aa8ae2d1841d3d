//===- CudaExecutorState.h - What a CUDA executor holds ---------*- C++ -*-===//
//
// Internal to runtime/CudaExecutor*.cpp (built with CUDA only): the state
// of one CUDA executor (device, stream, cuBLAS, loaded modules, buffers,
// graphs) and the step profiler of `moe-run bench-kernels`.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_CUDAEXECUTORSTATE_H
#define MOEC_RUNTIME_CUDAEXECUTORSTATE_H

#include "runtime/CudaDriver.h"
#include "runtime/BufferSlots.h"
#include "runtime/CudaExecutor.h"
#include "runtime/HalfFloat.h"
#include "runtime/NcclCommunicator.h"
#include "runtime/StepShapes.h"
#include "runtime/TransferStep.h"
#include "runtime/WeightInit.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

namespace moert {

struct CudaExecutor::State {
  ExecutionInfo plan;
  int64_t blocks = 0, vocab = 0;
  int device = 0;
  std::string deviceName, code;
  cuda::Driver driver;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  float lastMs = 0;
  std::vector<CUmodule> modules;
  /// GPU module name -> its kernel.
  std::map<std::string, CUfunction> functions;
  /// Per plan buffer: inputs, caches and (in runPrefix only) activations,
  /// then per activation slot (runtime/BufferSlots.h); weights by name.
  std::vector<cuda::DeviceBuffer> buffers;
  BufferSlots slots;
  std::map<std::string, cuda::DeviceBuffer> weights;
  std::vector<WeightSpec> specs;
  int64_t rankInStage = 0, groupSize = 1;
  RankPlace place;
  int64_t bytesWithinStage = 0, bytesToNextStage = 0;
  /// Decode-step graphs by batch bucket, and what they read and write at
  /// fixed addresses: pinned inputs and logits, the descriptors.
  bool useGraphs = false;
  NcclCommunicator *nccl = nullptr;
  int64_t maxBlocksPerSeq = 0;
  std::map<int64_t, cudaGraphExec_t> graphs;
  cuda::PinnedBuffer staging[6], stagedLogits;
  std::vector<std::vector<int64_t>> descriptors;
  void *blasWorkspace = nullptr;

  void dropGraphs() {
    for (auto &[bucket, graph] : graphs)
      cudaGraphExecDestroy(graph);
    graphs.clear();
  }

  /// Copies the step's inputs into the pinned staging buffers (grown, and
  /// the graphs dropped, when too small).
  bool stageGraphInputs(const std::vector<int32_t> *const sources[6],
                        size_t logitCount, std::string &error) {
    bool moved = false;
    for (int i = 0; i < 6; ++i) {
      size_t bytes = std::max<size_t>(sources[i]->size() * sizeof(int32_t), 4);
      if (staging[i].bytes < bytes) {
        if (!staging[i].reserve(bytes, error))
          return false;
        moved = true;
      }
      std::memcpy(staging[i].data, sources[i]->data(),
                  sources[i]->size() * sizeof(int32_t));
    }
    size_t bytes = std::max<size_t>(logitCount * sizeof(float), 4);
    if (stagedLogits.bytes < bytes) {
      if (!stagedLogits.reserve(bytes, error))
        return false;
      moved = true;
    }
    if (moved)
      dropGraphs();
    return true;
  }

  ~State() {
    cudaSetDevice(device);
    if (stream)
      cudaStreamSynchronize(stream);
    dropGraphs();
    cudaFree(blasWorkspace);
    for (cuda::DeviceBuffer &buffer : buffers)
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
    error = std::string(what) + ": " + cuda::blasStatus(status);
    return false;
  }

  /// Makes `buffer` hold at least `bytes`.
  bool reserve(cuda::DeviceBuffer &buffer, size_t bytes, std::string &error) {
    if (buffer.bytes >= bytes && buffer.data)
      return true;
    if (buffer.data &&
        !check(cudaStreamSynchronize(stream), "synchronising", error))
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

  /// Copies a device buffer of `dtype` and `shape` to `out` as f32.
  bool toHost(const void *device, DType dtype,
              const std::vector<int64_t> &shape, std::vector<float> &out,
              std::string &error) {
    size_t elements = elementCount(shape);
    std::vector<char> bytes(elements * dtypeSize(dtype));
    if (!check(cudaMemcpy(bytes.data(), device, bytes.size(),
                          cudaMemcpyDeviceToHost),
               "copying a buffer to the host", error))
      return false;
    out.resize(elements);
    for (size_t i = 0; i < elements; ++i) {
      if (dtype == DType::F32) {
        std::memcpy(&out[i], bytes.data() + 4 * i, 4);
      } else {
        uint16_t half;
        std::memcpy(&half, bytes.data() + 2 * i, 2);
        out[i] = dtype == DType::BF16 ? bf16ToFloat(half) : halfToFloat(half);
      }
    }
    return true;
  }
  /// Copies f32 `values` to a device buffer of `dtype`.
  bool toDevice(const std::vector<float> &values, DType dtype, void *device,
                std::string &error) {
    std::vector<char> bytes(values.size() * dtypeSize(dtype));
    for (size_t i = 0; i < values.size(); ++i) {
      if (dtype == DType::F32) {
        std::memcpy(bytes.data() + 4 * i, &values[i], 4);
      } else {
        uint16_t half = dtype == DType::BF16 ? floatToBF16(values[i])
                                             : floatToHalf(values[i]);
        std::memcpy(bytes.data() + 2 * i, &half, 2);
      }
    }
    return check(
        cudaMemcpy(device, bytes.data(), bytes.size(), cudaMemcpyHostToDevice),
        "copying a buffer to the device", error);
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
    if (values.size() * dtypeSize(dtype) > it->second.bytes) {
      error = "weight '" + name + "': its shard does not match the plan";
      return false;
    }
    return toDevice(values, dtype, it->second.data, error);
  }
};

namespace cuda {
/// Times every kernel, GEMM and grouped-GEMM step of `plan` that runs at
/// the step just run (`in`, its `sizes` and buffers `data`), replayed with
/// `runStep`: one warm-up, then `repeats` runs each between CUDA events,
/// the median kept. The bytes each step must move: its buffers, with only
/// the routed experts' share of expert weights and only the cached
/// positions of the K/V a step reads.
bool profileSteps(CudaExecutor::State &s, const ExecutionInfo &plan,
                  const StepInputs &in,
                  const std::vector<std::vector<int64_t>> &sizes,
                  const std::vector<void *> &data,
                  const std::function<bool(const StepInfo &)> &runStep,
                  std::vector<KernelTiming> &timings, int repeats,
                  std::string &error);
} // namespace cuda

} // namespace moert

#endif // MOEC_RUNTIME_CUDAEXECUTORSTATE_H
