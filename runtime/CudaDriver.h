//===- CudaDriver.h - CUDA helpers of the CUDA executor ---------*- C++ -*-===//
//
// Internal to runtime/CudaExecutor*.cpp (built with CUDA only): the driver
// functions reached through the runtime, cuBLAS types and messages, pinned
// and device buffers.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_CUDADRIVER_H
#define MOEC_RUNTIME_CUDADRIVER_H

#include "runtime/Artifact.h"

#include <cublas_v2.h>
#include <cuda.h>
#include <cuda_runtime.h>

#include <string>
#include <type_traits>
#include <vector>

namespace moert::cuda {
/// The driver functions the executor calls, reached through the runtime.
struct Driver {
  CUresult (*moduleLoadData)(CUmodule *, const void *) = nullptr;
  CUresult (*moduleGetFunction)(CUfunction *, CUmodule, const char *) = nullptr;
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

inline const char *blasStatus(cublasStatus_t status) {
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

inline cudaDataType blasType(DType dtype) {
  switch (dtype) {
  case DType::BF16:
    return CUDA_R_16BF;
  case DType::F16:
    return CUDA_R_16F;
  default:
    return CUDA_R_32F;
  }
}

/// Row-major c [m, n] = a [m, k] times b [n, k] transposed, accumulating
/// in f32 (cublasGemmEx on the handle's stream); nothing when m is 0.
cublasStatus_t rowMajorGemm(cublasHandle_t blas, const void *a, DType aType,
                            const void *b, DType bType, void *c, DType cType,
                            int64_t m, int64_t n, int64_t k);

/// A grouped_gemm step (StepInfo::Kind::GroupedGemm): the expert offsets
/// are read to the host (the stream waits), then one GEMM per run of rows
/// of an expert the rank holds; the other rows are zeroed. Not for a step
/// being captured into a graph.
bool groupedGemm(cublasHandle_t blas, cudaStream_t stream,
                 const ExecutionInfo &plan, const StepInfo &step,
                 const std::vector<std::vector<int64_t>> &sizes,
                 const std::vector<void *> &data, int64_t rankInStage,
                 std::string &error);

/// Page-locked host memory, which graphs copy from and to.
struct PinnedBuffer {
  void *data = nullptr;
  size_t bytes = 0;
  ~PinnedBuffer() {
    if (data)
      cudaFreeHost(data);
  }
  bool reserve(size_t size, std::string &error) {
    if (data)
      cudaFreeHost(data);
    data = nullptr;
    bytes = 0;
    cudaError_t result = cudaMallocHost(&data, size);
    if (result != cudaSuccess) {
      error = std::string("allocating pinned memory: ") +
              cudaGetErrorString(result);
      data = nullptr;
      return false;
    }
    bytes = size;
    return true;
  }
};

/// Decode steps of up to this many sequences replay CUDA graphs.
constexpr int64_t kMaxGraphBatch = 256;
/// The workspace cuBLAS gets (instead of allocating its own).
constexpr size_t kBlasWorkspace = size_t(32) << 20;

/// A device allocation that grows on demand.
struct DeviceBuffer {
  void *data = nullptr;
  size_t bytes = 0;
};

} // namespace moert::cuda

#endif // MOEC_RUNTIME_CUDADRIVER_H
