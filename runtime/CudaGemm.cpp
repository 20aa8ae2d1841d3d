//===- CudaGemm.cpp - The plan's library GEMMs on the GPU -----------------===//

#ifdef MOEC_HAVE_CUDA
#include "runtime/CudaDriver.h"
#include "runtime/ExpertRuns.h"
#include "runtime/StepShapes.h"

using namespace moert;
using namespace moert::cuda;

cublasStatus_t moert::cuda::rowMajorGemm(cublasHandle_t blas, const void *a,
                                         DType aType, const void *b,
                                         DType bType, void *c, DType cType,
                                         int64_t m, int64_t n, int64_t k) {
  if (m == 0)
    return CUBLAS_STATUS_SUCCESS;
  // Row-major c [m, n] = a [m, k] b [n, k]^T is, in cuBLAS's column-major
  // terms, c^T [n, m] = op(b) a^T with op(b) = T.
  const float one = 1.0f, zero = 0.0f;
  return cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                      static_cast<int>(m), static_cast<int>(k), &one, b,
                      blasType(bType), static_cast<int>(k), a, blasType(aType),
                      static_cast<int>(k), &zero, c, blasType(cType),
                      static_cast<int>(n), CUBLAS_COMPUTE_32F,
                      CUBLAS_GEMM_DEFAULT);
}

bool moert::cuda::groupedGemm(cublasHandle_t blas, cudaStream_t stream,
                              const ExecutionInfo &plan, const StepInfo &step,
                              const std::vector<std::vector<int64_t>> &sizes,
                              const std::vector<void *> &data,
                              int64_t rankInStage, std::string &error) {
  // The runs' sizes must be on the host: wait for the dispatch that wrote
  // them (this is why such steps run only outside CUDA graphs).
  const std::vector<int64_t> &b = sizes[step.b];
  std::vector<int32_t> offsets(sizes[step.offsets][0]);
  cudaError_t copied = cudaMemcpyAsync(
      offsets.data(), data[step.offsets], offsets.size() * sizeof(int32_t),
      cudaMemcpyDeviceToHost, stream);
  if (copied == cudaSuccess)
    copied = cudaStreamSynchronize(stream);
  if (copied != cudaSuccess) {
    error = std::string("reading the expert offsets: ") +
            cudaGetErrorString(copied);
    return false;
  }
  int64_t rows = sizes[step.a][0], n = b[1], k = b[2];
  std::vector<ExpertRun> runs;
  bool covered = false;
  if (!expertRuns(plan, step, sizes, rankInStage, offsets.data(), runs,
                  covered, error))
    return false;
  DType aType = plan.buffers[step.a].dtype, bType = plan.buffers[step.b].dtype,
        cType = plan.buffers[step.c].dtype;
  size_t aRow = k * dtypeSize(aType), cRow = n * dtypeSize(cType),
         expert = n * k * dtypeSize(bType);
  if (!covered) {
    cudaError_t zeroed =
        cudaMemsetAsync(data[step.c], 0, rows * cRow, stream);
    if (zeroed != cudaSuccess) {
      error = std::string("zeroing the rows of other ranks' experts: ") +
              cudaGetErrorString(zeroed);
      return false;
    }
  }
  for (const ExpertRun &run : runs) {
    cublasStatus_t status = rowMajorGemm(
        blas, static_cast<const char *>(data[step.a]) + run.firstRow * aRow,
        aType, static_cast<const char *>(data[step.b]) + run.local * expert,
        bType, static_cast<char *>(data[step.c]) + run.firstRow * cRow, cType,
        run.rows, n, k);
    if (status != CUBLAS_STATUS_SUCCESS) {
      error = std::string("an expert's GEMM (cublasGemmEx): ") +
              blasStatus(status);
      return false;
    }
  }
  return true;
}
#endif // MOEC_HAVE_CUDA
