//===- CudaDevice.cpp - The GPU, and checks that need none ----------------===//
//
// What the CUDA executor offers besides running plans: whether a GPU is
// usable, its copy rate, and the check of a cuda artifact's launches
// against its kernels' PTX (no GPU needed). Without CUDA, the executor's
// entry points say that it was built without it.
//
//===----------------------------------------------------------------------===//

#include "runtime/CudaExecutor.h"

#include <algorithm>
#include <string>
#include <vector>

#ifdef MOEC_HAVE_CUDA
#include <cuda_runtime.h>
#endif

using namespace moert;

/// The parameters of PTX entry `function` in `ptx`: their count and whether
/// every one is 64-bit; -1 when there is no such entry.
static int64_t ptxParameters(const std::string &ptx,
                             const std::string &function, bool &all64) {
  std::string entry = ".entry " + function + "(";
  size_t start = ptx.find(entry);
  if (start == std::string::npos)
    return -1;
  size_t end = ptx.find(')', start);
  std::string list = ptx.substr(start + entry.size(), end - start);
  int64_t count = 0;
  all64 = true;
  for (size_t at = list.find(".param"); at != std::string::npos;
       at = list.find(".param", at + 1)) {
    ++count;
    size_t lineEnd = list.find_first_of(",\n", at);
    std::string param = list.substr(at, lineEnd - at);
    all64 &= param.find(".u64") != std::string::npos ||
             param.find(".b64") != std::string::npos ||
             param.find(".s64") != std::string::npos;
  }
  return count;
}

std::string CudaExecutor::checkKernelParameters(const Artifact &artifact) {
  for (const StageInfo &stage : artifact.stages()) {
    if (!stage.execution)
      continue;
    const ExecutionInfo &plan = *stage.execution;
    for (const StepInfo &step : plan.steps)
      for (const LaunchInfo &launch : step.launches) {
        int64_t expected = 0;
        for (int64_t p : launch.params)
          expected += 3 + 2 * static_cast<int64_t>(
                                  plan.buffers[step.args[p]].shape.size());
        for (const CudaModuleInfo &module : artifact.cudaModules()) {
          if (module.module != launch.module)
            continue;
          for (const auto &[chip, ptx] : module.ptx) {
            bool all64 = true;
            int64_t declared = ptxParameters(ptx, launch.function, all64);
            std::string where = "kernel " + launch.function + " (" +
                                module.module + ", " + chip + ")";
            if (declared < 0)
              return where + ": no such entry in its PTX";
            if (declared != expected || !all64)
              return where + " declares " + std::to_string(declared) +
                     (all64 ? "" : " (not all 64-bit)") +
                     " parameters; the plan passes " + std::to_string(expected);
          }
        }
      }
  }
  return "";
}


#ifndef MOEC_HAVE_CUDA

struct CudaExecutor::State {};
CudaExecutor::~CudaExecutor() = default;
std::string CudaExecutor::deviceStatus(int) {
  return "this moe-run was built without CUDA (no CUDA toolkit was found "
         "when it was configured)";
}
int CudaExecutor::deviceCount() { return 0; }
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
std::pair<int64_t, int64_t> CudaExecutor::lastStepBytesSent() const {
  return {0, 0};
}
bool CudaExecutor::copyBlocks(const std::vector<BlockCopy> &,
                              std::string &error) {
  error = deviceStatus();
  return false;
}
void CudaExecutor::useGraphs(bool) {}
void CudaExecutor::useNccl(NcclCommunicator *) {}
bool CudaExecutor::profileStep(const StepInputs &, int,
                               std::vector<KernelTiming> &,
                               std::string &error) {
  error = deviceStatus();
  return false;
}
bool CudaExecutor::run(const StepInputs &, std::vector<float> &, std::string &,
                       std::vector<KernelTiming> *, int, const Prefix *) {
  return false;
}
bool CudaExecutor::runPrefix(const StepInputs &, size_t, int64_t,
                             std::vector<float> &, std::string &error) {
  error = deviceStatus();
  return false;
}
double CudaExecutor::measureCopyBandwidth(int, int64_t, std::string &error) {
  error = deviceStatus();
  return 0;
}


#else

int CudaExecutor::deviceCount() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

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
