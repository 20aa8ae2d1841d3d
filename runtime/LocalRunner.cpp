//===- LocalRunner.cpp - Every rank of a plan in one process --------------===//

#include "runtime/LocalRunner.h"
#include "runtime/MicroBatch.h"

#include <thread>

using namespace moert;

std::unique_ptr<LocalRunner>
LocalRunner::create(const Artifact &artifact, int64_t numBlocks,
                    std::string &error, std::chrono::milliseconds timeout) {
  std::unique_ptr<LocalRunner> runner(new LocalRunner());
  int64_t ranks = artifact.plan().ranks;
  runner->world = std::make_unique<LocalWorld>(ranks, timeout);
  for (int64_t rank = 0; rank < ranks; ++rank) {
    runner->communicators.push_back(runner->world->communicator(rank));
    std::unique_ptr<RankExecutor> executor = RankExecutor::create(
        artifact, rank, numBlocks, error,
        ranks > 1 ? runner->communicators.back().get() : nullptr);
    if (!executor) {
      if (ranks > 1)
        error = "rank " + std::to_string(rank) + ": " + error;
      return nullptr;
    }
    runner->executors.push_back(std::move(executor));
  }
  const PlanInfo &plan = artifact.plan();
  runner->head = (plan.pipelineStages - 1) * plan.tensorParallel;
  runner->stages = plan.pipelineStages;
  return runner;
}

bool LocalRunner::initRandomWeights(uint64_t seed, std::string &error) {
  for (size_t rank = 0; rank < executors.size(); ++rank)
    if (!executors[rank]->initRandomWeights(seed, error)) {
      if (executors.size() > 1)
        error = "rank " + std::to_string(rank) + ": " + error;
      return false;
    }
  return true;
}

bool LocalRunner::loadWeights(
    const std::string &checkpoint, std::string &error,
    const std::function<void(int64_t, int64_t)> &progress) {
  int64_t before = 0;
  for (size_t rank = 0; rank < executors.size(); ++rank) {
    int64_t last = 0;
    auto report = [&](int64_t done, int64_t total) {
      last = total;
      if (progress)
        progress(before + done, before + total);
    };
    if (!executors[rank]->loadWeights(checkpoint, error, report)) {
      if (executors.size() > 1)
        error = "rank " + std::to_string(rank) + ": " + error;
      return false;
    }
    before += last;
  }
  return true;
}

bool LocalRunner::decodeTraffic(std::vector<DecodeTraffic> &ranks,
                                std::string &) {
  ranks.clear();
  if (executors.size() > 1) {
    ranks = traffic;
    ranks.resize(executors.size());
  }
  return true;
}

bool LocalRunner::copyBlocks(const std::vector<BlockCopy> &copies,
                             std::string &error) {
  if (broken) {
    error = "an earlier step failed in a transfer; the ranks cannot run again";
    return false;
  }
  error = checkBlockCopies(copies, numBlocks());
  if (!error.empty() || copies.empty())
    return error.empty();
  // No transfers: each rank copies within its own caches, one after another.
  for (size_t rank = 0; rank < executors.size(); ++rank)
    if (!executors[rank]->copyBlocks(copies, error)) {
      if (executors.size() > 1)
        error = "rank " + std::to_string(rank) + ": " + error;
      return false;
    }
  return true;
}

bool LocalRunner::forward(const StepInputs &inputs, std::vector<float> &logits,
                          std::string &error) {
  if (broken) {
    error = "an earlier step failed in a transfer; the ranks cannot run again";
    return false;
  }
  if (executors.size() == 1)
    return executors[0]->forward(inputs, logits, error);
  // Refused inputs fail here, before any rank starts: the world stays up.
  error = executors[0]->checkInputs(inputs);
  if (!error.empty())
    return false;
  // With pipeline stages, the step's sequences go through as micro-batches:
  // every rank runs them in order, so stage s works on one while stage s-1
  // works on the next.
  MicroBatches batches;
  int64_t count = microBatchCount(inputs, stages);
  bool split = count > 1;
  if (split)
    batches = splitMicroBatches(inputs, count);
  size_t parts = split ? batches.parts.size() : 1;
  size_t ranks = executors.size();
  std::vector<std::string> errors(ranks);
  std::vector<std::vector<std::vector<float>>> outputs(
      ranks, std::vector<std::vector<float>>(parts));
  std::vector<char> ok(ranks, 0);
  stepBytes.assign(ranks, {0, 0});
  std::vector<std::thread> threads;
  threads.reserve(ranks);
  for (size_t rank = 0; rank < ranks; ++rank)
    threads.emplace_back([&, rank] {
      ok[rank] = 1;
      for (size_t p = 0; p < parts && ok[rank]; ++p) {
        ok[rank] = executors[rank]->forward(split ? batches.parts[p] : inputs,
                                            outputs[rank][p], errors[rank]);
        auto [within, next] = executors[rank]->lastStepBytesSent();
        stepBytes[rank].first += within;
        stepBytes[rank].second += next;
      }
      // A rank that fails mid-step releases the ranks waiting for it.
      if (!ok[rank])
        world->abort(static_cast<int64_t>(rank), errors[rank]);
    });
  for (std::thread &thread : threads)
    thread.join();
  bool all = true;
  for (size_t rank = 0; rank < ranks; ++rank)
    all = all && ok[rank];
  if (all) {
    if (DecodeTraffic::counts(inputs)) {
      traffic.resize(ranks);
      for (size_t rank = 0; rank < ranks; ++rank)
        traffic[rank].add(stepBytes[rank]);
    }
    logits = split ? joinLogits(batches, outputs[head], vocabSize())
                   : std::move(outputs[head][0]);
    return true;
  }
  // The first rank that failed on its own (the others report its abort).
  for (size_t rank = 0; rank < ranks && error.empty(); ++rank)
    if (!ok[rank] && errors[rank].find("aborted by rank") == std::string::npos)
      error = "rank " + std::to_string(rank) + ": " + errors[rank];
  for (size_t rank = 0; rank < ranks && error.empty(); ++rank)
    if (!ok[rank])
      error = "rank " + std::to_string(rank) + ": " + errors[rank];
  broken = true;
  return false;
}
