//===- HostExecutor.h - Running an artifact's plan on the CPU ---*- C++ -*-===//
//
// The host device: loads the artifact's kernel shared object (from memory,
// through a memfd, with dlopen), binds the weights, owns the paged KV cache
// of every layer and runs the execution plan of one forward step: kernel
// calls through their packed entry points (codegen/HostObject.h) and GEMMs
// through OpenBLAS (plain loops when the runtime was built without it).
//
// No exception leaves this API: failures return false (or null) with a
// one-line message.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_HOSTEXECUTOR_H
#define MOEC_RUNTIME_HOSTEXECUTOR_H

#include "runtime/BufferSlots.h"
#include "runtime/RankExecutor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moert {

/// Runs one rank's execution plan on the CPU.
class HostExecutor : public RankExecutor {
public:
  ~HostExecutor() override;

  /// Prepares rank `rank` of `artifact` with a KV cache of `numBlocks`
  /// blocks per layer. A partitioned plan needs a communicator of the job's
  /// ranks (`communicator`, which must outlive the executor; its size must
  /// be the plan's ranks); a one-rank plan needs none. Null with `error` set
  /// when the artifact has no host plan, the ranks do not match or the
  /// shared object cannot be loaded.
  static std::unique_ptr<HostExecutor>
  create(const Artifact &artifact, int64_t rank, int64_t numBlocks,
         std::string &error, Communicator *communicator = nullptr);

  /// Fills every weight with deterministic values from `seed`: uniform in
  /// ±1/sqrt(fan-in) for matrices and embeddings, 1 for norm scales, 0 for
  /// biases; the same seed gives the same weights on every machine.
  void initRandomWeights(uint64_t seed);
  bool initRandomWeights(uint64_t seed, std::string &) override {
    initRandomWeights(seed);
    return true;
  }
  /// Loads this rank's part of every weight from safetensors `checkpoint`
  /// (a file, an index .json or a folder), widening bf16 and f16 to the
  /// plan's f32. `progress(bytesDone, bytesTotal)` is called after each
  /// tensor. False with `error` naming the tensor on a missing or mismatched
  /// weight; weights loaded before it keep their new values.
  bool loadWeights(const std::string &checkpoint, std::string &error,
                   const std::function<void(int64_t, int64_t)> &progress = {})
      override;
  /// The weight `name` as the plan holds it (f32, row-major); null if the
  /// plan has no such weight.
  const std::vector<float> *weight(const std::string &name) const;

  /// Runs one step; `logits` gets [logitRows.size(), vocab] f32 (nothing
  /// on a stage before the last). False with `error` set for inputs that are
  /// inconsistent or out of range (nothing is written to the cache then) or
  /// a failed transfer. Every rank of a partitioned plan runs the same step
  /// with the same inputs.
  bool forward(const StepInputs &inputs, std::vector<float> &logits,
               std::string &error) override;

  /// Copies each block's slots (blockSize() x the plan's KV width) in
  /// every K and V cache of this rank, in order.
  bool copyBlocks(const std::vector<BlockCopy> &copies,
                  std::string &error) override;

  /// Tokens per KV-cache block and blocks per layer.
  int64_t blockSize() const override { return plan.blockSize; }
  int64_t numBlocks() const override { return blocks; }
  int64_t vocabSize() const override { return vocab; }

  /// Bytes this rank sent in its last forward() step, counted as the
  /// planner predicts them (ring algorithms: an all-reduce of B bytes over
  /// g ranks sends 2B(g-1)/g, an all-gather of a B-byte result B(g-1)/g, a
  /// pipeline send its B bytes): within its stage, and to the next stage.
  std::pair<int64_t, int64_t> lastStepBytesSent() const override {
    return {bytesWithinStage, bytesToNextStage};
  }

  /// "" when forward() accepts `inputs`, else why not (the message forward
  /// fails with). The same on every rank of a plan.
  std::string checkInputs(const StepInputs &inputs) const override;

  bool runPrefix(const StepInputs &inputs, size_t steps, int64_t buffer,
                 std::vector<float> &out, std::string &error) override;

private:
  HostExecutor() = default;

  /// forward() and runPrefix(): the first `steps` steps (activations
  /// poisoned first when `poison`); then `finish` reads the buffers.
  bool run(const StepInputs &inputs, size_t steps, bool poison,
           std::string &error,
           const std::function<void(const std::vector<char *> &,
                                    const std::vector<std::vector<int64_t>> &)>
               &finish);

  ExecutionInfo plan;
  int64_t blocks = 0;
  int64_t vocab = 0;
  void *library = nullptr;
  int memfd = -1;
  /// Packed kernel entry points, by kernel name.
  std::map<std::string, void (*)(void **)> entries;
  /// Per buffer: its storage (caches persist; inputs are resized each
  /// step; activations only in runPrefix, which keeps each apart so that
  /// an unwritten one shows its poison), then per activation slot
  /// (runtime/BufferSlots.h), resized each step.
  std::vector<std::vector<char>> storage;
  BufferSlots slots;
  std::map<std::string, std::vector<float>> weights;
  /// How this rank's weights are cut from a checkpoint.
  std::vector<WeightSpec> specs;
  int64_t rankInStage = 0, groupSize = 1;
  /// Partitioned plans: the job's communicator, this rank, its stage's
  /// ranks (the tensor-parallel group) and the plan's ranks per stage.
  Communicator *comm = nullptr;
  int64_t bytesWithinStage = 0, bytesToNextStage = 0;
  int64_t rank = 0;
  std::vector<int64_t> group;
  bool runStep(const StepInfo &step, std::vector<char *> &data,
               std::vector<std::vector<int64_t>> &sizes, std::string &error);
};

} // namespace moert

#endif // MOEC_RUNTIME_HOSTEXECUTOR_H
