//===- DistributedRunner.h - The head rank drives the others ----*- C++ -*-===//
//
// How a job of one process per rank serves: the head rank (rank 0) runs the
// serving loop (generate, the scheduler, speculative decoding) against a
// DistributedRunner, a ModelRunner that, for each step, sends the step's
// inputs to every other rank, runs its own part, and receives the logits
// from the first rank of the last stage. Every other rank runs
// serveFollower(): receive a step, run its part, send logits if it owns
// them, until the head says stop. With pipeline stages a step goes as
// micro-batches of whole sequences (runtime/MicroBatch.h), all sent before
// any runs, so the stages overlap; the logits come back at once. Between
// steps the head may ask every rank for the bytes it sent in the decode
// steps (runtime/DecodeTraffic.h), or tell every rank to copy KV-cache
// blocks (copy-on-write, ModelRunner::copyBlocks; no answer: the next step
// follows it in order on every rank). The transfers go through a Communicator:
// MPI between processes (mpirun, srun), or the in-process world in tests.
//
// The head checks a step's inputs before sending it, so a bad request never
// leaves the head and every rank stays in step. A failure after that (a
// rank's error, a timeout) ends the job: the head reports it; the caller
// stops every rank (MPI_Abort under mpirun).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_DISTRIBUTEDRUNNER_H
#define MOEC_RUNTIME_DISTRIBUTEDRUNNER_H

#include "runtime/DecodeTraffic.h"
#include "runtime/RankExecutor.h"

namespace moert {

/// The head rank's view of a job: a ModelRunner over every rank.
class DistributedRunner : public ModelRunner {
public:
  /// `executor` is rank 0's part of `artifact`; `communicator` connects the
  /// plan's ranks. Both must outlive the runner.
  DistributedRunner(const Artifact &artifact, RankExecutor &executor,
                    Communicator &communicator);
  /// Tells the followers to stop (once; also done by the destructor).
  ~DistributedRunner() override;
  bool stop(std::string &error);

  bool forward(const StepInputs &inputs, std::vector<float> &logits,
               std::string &error) override;
  int64_t blockSize() const override { return executor.blockSize(); }
  int64_t numBlocks() const override { return executor.numBlocks(); }
  int64_t vocabSize() const override { return executor.vocabSize(); }
  /// Sends the copies to every follower (one header and one message of
  /// copies each), then copies rank 0's blocks. Copies refused by
  /// checkBlockCopies never leave rank 0; a failure after they did leaves
  /// the ranks out of step, as a failed step does.
  bool copyBlocks(const std::vector<BlockCopy> &copies,
                  std::string &error) override;
  /// Asks every follower for its count (one message each way per rank);
  /// a failure leaves the ranks out of step, as a failed step does.
  bool decodeTraffic(std::vector<DecodeTraffic> &ranks,
                     std::string &error) override;
  /// Whether the last failed forward() failed after the step left rank 0
  /// (the ranks are then out of step and the job must stop).
  bool failedMidStep() const { return midStepFailure; }

private:
  RankExecutor &executor;
  Communicator &comm;
  /// The rank that holds the logits: the first of the last stage.
  int64_t logitsRank = 0;
  /// Pipeline stages: a step runs as up to this many micro-batches.
  int64_t stages = 1;
  bool stopped = false;
  bool midStepFailure = false;
  /// The head's own bytes over the decode steps.
  DecodeTraffic traffic;
};

/// Runs a follower rank: receives each step from rank 0, runs `executor` on
/// it and sends the logits to rank 0 when this rank is the first of the last
/// stage; answers rank 0's DistributedRunner::decodeTraffic() and performs
/// its DistributedRunner::copyBlocks(). Returns true
/// when rank 0 says stop, false with `error` on a failure.
bool serveFollower(const Artifact &artifact, RankExecutor &executor,
                   Communicator &communicator, std::string &error);

} // namespace moert

#endif // MOEC_RUNTIME_DISTRIBUTEDRUNNER_H
