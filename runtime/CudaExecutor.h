//===- CudaExecutor.h - Running an artifact's plan on a GPU -----*- C++ -*-===//
//
// The cuda device: loads the artifact's GPU modules (the cubin for the
// device's chip when moec assembled one, else the PTX, JIT-compiled by the
// driver), binds the weights in device memory in the plan's dtypes, owns
// the paged KV cache of every layer and runs the execution plan of one
// forward step on one stream: kernel launches with the plan's grids and the
// buffers' memref descriptors as parameters, GEMMs through cuBLAS
// (cublasGemmEx, f32 accumulation). The driver functions are reached through
// the CUDA runtime (cudaGetDriverEntryPointByVersion), so a machine without
// a driver still runs everything else and reports why the GPU is not used.
//
// Partitioned plans run with a communicator of their ranks (the in-process
// one: every rank a thread on the same GPU); their collective and pipeline
// steps are staged through the host in f32 (runtime/TransferStep.h), a
// correctness path, not a fast one (NCCL comes with issue 8).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_CUDAEXECUTOR_H
#define MOEC_RUNTIME_CUDAEXECUTOR_H

#include "runtime/RankExecutor.h"

#include <memory>

namespace moert {

/// The time of one kernel or GEMM step (CudaExecutor::profileStep).
struct KernelTiming {
  /// The plan step, and the kernel's name or "gemm MxNxK".
  int64_t step = 0;
  std::string name;
  /// Median milliseconds; bytes the step must move; GEMM FLOPs (else 0).
  double milliseconds = 0, bytes = 0, flops = 0;
};

/// Runs one rank's execution plan on a CUDA GPU.
class NcclCommunicator;

class CudaExecutor : public RankExecutor {
public:
  ~CudaExecutor() override;

  /// "" when this process can run on CUDA device `device`, else why not
  /// (built without CUDA, no driver, no device).
  static std::string deviceStatus(int device = 0);
  /// CUDA devices this process sees (0 without CUDA, a driver or a device).
  static int deviceCount();

  /// "" when every launch of `artifact`'s plans passes its kernel the
  /// parameters the kernel's PTX declares (one 64-bit value per descriptor
  /// field: 3 + 2 x rank per buffer), else the first mismatch. Needs no GPU;
  /// create() checks it too.
  static std::string checkKernelParameters(const Artifact &artifact);

  /// Prepares rank `rank` of a cuda `artifact` on device `device` with a KV
  /// cache of `numBlocks` blocks per layer. Null with `error` set when the
  /// device is unusable, the artifact has no GPU code for it, or memory
  /// runs out.
  static std::unique_ptr<CudaExecutor>
  create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
         std::string &error, Communicator *communicator = nullptr,
         int device = 0);

  bool initRandomWeights(uint64_t seed, std::string &error) override;
  bool loadWeights(const std::string &checkpoint, std::string &error,
                   const std::function<void(int64_t, int64_t)> &progress = {})
      override;
  bool forward(const StepInputs &inputs, std::vector<float> &logits,
               std::string &error) override;
  std::string checkInputs(const StepInputs &inputs) const override;
  std::pair<int64_t, int64_t> lastStepBytesSent() const override;
  /// Queues one device-to-device copy per block and K/V cache on the
  /// executor's stream, ahead of the next step's work (which the stream
  /// orders after them).
  bool copyBlocks(const std::vector<BlockCopy> &copies,
                  std::string &error) override;
  bool runPrefix(const StepInputs &inputs, size_t steps, int64_t buffer,
                 std::vector<float> &out, std::string &error) override;
  int64_t blockSize() const override;
  int64_t numBlocks() const override;
  int64_t vocabSize() const override;

  /// Whether decode steps (one token per sequence, every logit row wanted,
  /// one-rank plans) are captured as CUDA graphs, one per batch-size bucket
  /// (powers of two up to 256; a batch is padded to its bucket and the
  /// block tables to the model's context), and replayed. Off unless set or
  /// $MOEC_CUDA_GRAPHS is 1.
  void useGraphs(bool enabled);
  /// Runs all_reduce, all_gather, send and recv steps on the device
  /// through `nccl` (which must outlive the executor) instead of staging
  /// them through the host; null goes back to staging.
  void useNccl(NcclCommunicator *nccl);

  /// Runs `inputs` as forward() does, then times every kernel and GEMM
  /// step again on that step's buffers: a warm-up run, then `repeats` runs
  /// between CUDA events, the median kept, with the bytes each step must
  /// move (its buffers; only the routed experts' share of expert weights
  /// and the cached positions attention reads) and the GEMMs' FLOPs.
  bool profileStep(const StepInputs &inputs, int repeats,
                   std::vector<KernelTiming> &timings, std::string &error);

  /// GPU time of the last forward() step in milliseconds (CUDA events
  /// around the step's work on the stream).
  float lastStepMilliseconds() const;
  /// The device and the code loaded, e.g. "NVIDIA H100 80GB HBM3 (sm_90a
  /// cubins)".
  std::string describe() const;

  /// The device-to-device copy rate of device `device` in bytes per second
  /// (bytes read plus bytes written), the median of 10 copies of `bytes`
  /// timed with CUDA events after a warm-up copy; 0 with `error` set on
  /// failure. The floor a memory-bound kernel is measured against.
  static double measureCopyBandwidth(int device, int64_t bytes,
                                     std::string &error);

  struct State;

private:
  CudaExecutor() = default;
  /// runPrefix()'s request: the steps to run and the buffer to read.
  struct Prefix {
    size_t steps;
    int64_t buffer;
    std::vector<float> *out;
  };
  bool run(const StepInputs &inputs, std::vector<float> &logits,
           std::string &error, std::vector<KernelTiming> *profile,
           int repeats, const Prefix *prefix = nullptr);
  std::unique_ptr<State> state;
};

} // namespace moert

#endif // MOEC_RUNTIME_CUDAEXECUTOR_H
