//===- RankExecutor.h - One rank's execution plan on a device ---*- C++ -*-===//
//
// What the host executor and the CUDA executor share: run one rank's plan
// of an artifact over a paged KV cache, with weights drawn from a seed or
// loaded from safetensors. LocalRunner drives one per rank through this
// interface, so the serving loops (generate, the scheduler, speculative
// decoding, bench) run either target unchanged.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_RANKEXECUTOR_H
#define MOEC_RUNTIME_RANKEXECUTOR_H

#include "runtime/Artifact.h"
#include "runtime/Communicator.h"
#include "runtime/ModelRunner.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace moert {

/// Runs one rank's execution plan on one device.
class RankExecutor : public ModelRunner {
public:
  /// The executor for the artifact's target ("host": HostExecutor, "cuda":
  /// CudaExecutor on CUDA device `device`), for rank `rank` with
  /// `numBlocks` KV-cache blocks per layer; `communicator` as
  /// HostExecutor::create. Null with `error` set.
  static std::unique_ptr<RankExecutor>
  create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
         std::string &error, Communicator *communicator = nullptr,
         int device = 0);

  /// "" when an executor for `target` may run rank `rank` of `artifact`
  /// with `numBlocks` KV-cache blocks and `communicator` (its rank must be
  /// `rank`), else why not. Both executors' create() start with it.
  static std::string checkRequest(const Artifact &artifact,
                                  const std::string &target, int64_t rank,
                                  int64_t numBlocks,
                                  const Communicator *communicator);

  /// Deterministic weights from `seed` (WeightInit.h). False with `error`
  /// set if the device cannot take them.
  virtual bool initRandomWeights(uint64_t seed, std::string &error) = 0;
  /// This rank's part of every weight from safetensors `checkpoint`;
  /// `progress(bytesDone, bytesTotal)` after each tensor.
  virtual bool
  loadWeights(const std::string &checkpoint, std::string &error,
              const std::function<void(int64_t, int64_t)> &progress = {}) = 0;
  /// "" when forward() accepts `inputs`, else why not.
  virtual std::string checkInputs(const StepInputs &inputs) const = 0;
  /// ModelRunner::copyBlocks on this rank's caches: every layer's K and V
  /// cache it holds (its shard of the KV heads), whole blocks of
  /// blockSize() slots. Every executor implements it.
  bool copyBlocks(const std::vector<BlockCopy> &copies,
                  std::string &error) override = 0;
  /// Bytes this rank sent in its last step: within its stage, and to the
  /// next stage.
  virtual std::pair<int64_t, int64_t> lastStepBytesSent() const = 0;

  /// Checking kernel by kernel: runs only the first `steps` steps of the
  /// plan for `inputs`, on activation buffers first filled with NaN (so
  /// that output a step leaves unwritten shows), and returns buffer
  /// `buffer` as f32 (i32 buffers: their values). One-rank plans only;
  /// never a CUDA graph. False with `error` set.
  virtual bool runPrefix(const StepInputs &inputs, size_t steps,
                         int64_t buffer, std::vector<float> &out,
                         std::string &error) = 0;
};

/// "" when runPrefix can run `steps` steps of `plan` and read back buffer
/// `buffer` (a one-rank plan: `partitioned` false), else why not.
inline std::string checkPrefix(const ExecutionInfo &plan, size_t steps,
                               int64_t buffer, bool partitioned) {
  if (!partitioned && steps <= plan.steps.size() && buffer >= 0 &&
      buffer < static_cast<int64_t>(plan.buffers.size()))
    return "";
  return "runPrefix needs a one-rank plan, at most " +
         std::to_string(plan.steps.size()) + " steps and a buffer below " +
         std::to_string(plan.buffers.size());
}

} // namespace moert

#endif // MOEC_RUNTIME_RANKEXECUTOR_H
