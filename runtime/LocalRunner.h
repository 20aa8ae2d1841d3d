//===- LocalRunner.h - Every rank of a plan in one process ------*- C++ -*-===//
//
// Runs a plan with all its ranks in this process: one executor per rank
// (RankExecutor: the host's or the CUDA one, by the artifact's target), the ranks talking through an in-process
// communicator (LocalWorld), one thread per rank for each step. It is the
// ModelRunner the serving loops drive, seen from the head rank: every rank
// gets the same step inputs (the scheduler's decisions) and the logits come
// from the last stage. This is how a partitioned plan is checked against the
// unpartitioned one on a single machine (DESIGN.md section 6); `mpirun`
// with NCCL runs the same executors, one process per GPU.
//
// Inputs are validated by every rank before any transfer, so a bad request
// fails on all ranks alike and the runner stays usable. A failed transfer
// (a rank's error, a timeout) aborts the world: the step fails with the
// first rank's message and the runner cannot run again.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_LOCALRUNNER_H
#define MOEC_RUNTIME_LOCALRUNNER_H

#include "runtime/Communicator.h"
#include "runtime/DecodeTraffic.h"
#include "runtime/RankExecutor.h"

#include <chrono>
#include <memory>

namespace moert {

/// All ranks of a plan, in this process.
class LocalRunner : public ModelRunner {
public:
  /// Prepares every rank of `artifact` with `numBlocks` KV-cache blocks per
  /// layer and rank. Collectives give up after `timeout`. Null with `error`
  /// set on failure.
  static std::unique_ptr<LocalRunner>
  create(const Artifact &artifact, int64_t numBlocks, std::string &error,
         std::chrono::milliseconds timeout = std::chrono::seconds(60));

  /// As HostExecutor::initRandomWeights on every rank: each rank gets its
  /// part of the same whole tensors, so any partitioning computes the same
  /// model.
  void initRandomWeights(uint64_t seed) {
    std::string error;
    initRandomWeights(seed, error);
  }
  /// The same, false with `error` set when a device cannot take them.
  bool initRandomWeights(uint64_t seed, std::string &error);
  /// As HostExecutor::loadWeights on every rank; `progress` sees the bytes
  /// of every rank.
  bool loadWeights(const std::string &checkpoint, std::string &error,
                   const std::function<void(int64_t, int64_t)> &progress = {});

  bool forward(const StepInputs &inputs, std::vector<float> &logits,
               std::string &error) override;
  int64_t blockSize() const override { return executors[0]->blockSize(); }
  int64_t numBlocks() const override { return executors[0]->numBlocks(); }
  int64_t vocabSize() const override { return executors[0]->vocabSize(); }

  /// Every rank copies the blocks in its own caches (its shard of the KV
  /// heads, its stage's layers). Refused copies fail before any rank
  /// starts.
  bool copyBlocks(const std::vector<BlockCopy> &copies,
                  std::string &error) override;

  /// Every rank's count (one rank: none).
  bool decodeTraffic(std::vector<DecodeTraffic> &ranks,
                     std::string &error) override;

  /// The ranks of the plan.
  int64_t ranks() const { return static_cast<int64_t>(executors.size()); }

private:
  LocalRunner() = default;

  std::unique_ptr<LocalWorld> world;
  std::vector<std::unique_ptr<Communicator>> communicators;
  std::vector<std::unique_ptr<RankExecutor>> executors;
  /// The rank whose logits are returned: the first of the last stage.
  int64_t head = 0;
  /// Pipeline stages: a step runs as this many micro-batches (at most one
  /// per sequence), so that the stages overlap (runtime/MicroBatch.h).
  int64_t stages = 1;
  /// Per rank, the bytes it sent in the last step (all its micro-batches),
  /// within its stage and to the next (RankExecutor::lastStepBytesSent).
  std::vector<std::pair<int64_t, int64_t>> stepBytes;
  /// Per rank, its bytes over the decode steps.
  std::vector<DecodeTraffic> traffic;
  bool broken = false;
};

} // namespace moert

#endif // MOEC_RUNTIME_LOCALRUNNER_H
