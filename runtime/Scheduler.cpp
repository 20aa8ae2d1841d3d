//===- Scheduler.cpp - Continuous batching over a paged KV cache ----------===//
//
// Exception safety: the only things here that can throw are allocations
// (and a runner that breaks its contract). Planning changes state in steps
// that each leave every request queued or running; everything after a
// successful forward() works in storage reserved before it, so that no
// sampled token can be half recorded. step() and submit() turn an exception
// into a false return.
//
//===----------------------------------------------------------------------===//

#include "runtime/Scheduler.h"

#include <algorithm>
#include <cassert>
#include <exception>

using namespace moert;

namespace {
int32_t clampToInt32(int64_t value) {
  return static_cast<int32_t>(
      std::min<int64_t>(std::max<int64_t>(value, 1), INT32_MAX));
}
} // namespace

Scheduler::Scheduler(ModelRunner &runner, SchedulerOptions options)
    : runner(runner), opts(options), blocks(clampToInt32(runner.numBlocks()),
                                            clampToInt32(runner.blockSize())) {
  opts.maxTokensPerStep = std::max<int64_t>(opts.maxTokensPerStep, 1);
  opts.maxRunning = std::max<int64_t>(opts.maxRunning, 1);
  if (opts.maxContext <= 0)
    opts.maxContext =
        static_cast<int64_t>(blocks.getNumBlocks()) * blocks.getBlockSize();
  updateCounts();
}

//===----------------------------------------------------------------------===//
// Requests
//===----------------------------------------------------------------------===//

std::string Scheduler::checkRequest(const Request &request) const {
  std::string name = "request " + std::to_string(request.id);
  int64_t vocab = runner.vocabSize();
  std::string outside =
      " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  int64_t promptLength = static_cast<int64_t>(request.prompt.size());
  if (request.prompt.empty())
    return name + ": the prompt is empty";
  if (request.maxNewTokens < 1)
    return name + ": max new tokens must be at least 1, got " +
           std::to_string(request.maxNewTokens);
  for (size_t i = 0; i < request.prompt.size(); ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= vocab)
      return name + ": prompt token " + std::to_string(i) + " (id " +
             std::to_string(request.prompt[i]) + ")" + outside;
  if (request.stopToken < -1 || request.stopToken >= vocab)
    return name + ": stop token " + std::to_string(request.stopToken) +
           outside + " (-1: none)";
  std::string invalid = validate(request.sampling, vocab);
  if (!invalid.empty())
    return name + ": " + invalid;
  if (request.maxNewTokens > opts.maxContext - promptLength)
    return name + ": prompt (" + std::to_string(promptLength) +
           ") + new tokens (" + std::to_string(request.maxNewTokens) +
           ") exceed the model's context of " + std::to_string(opts.maxContext);
  // The last generated token is never fed back, so it takes no slot.
  int64_t cached = promptLength + request.maxNewTokens - 1;
  if (blocks.blocksFor(cached) > blocks.getNumBlocks())
    return name + " needs up to " + std::to_string(blocks.blocksFor(cached)) +
           " KV blocks (" + std::to_string(cached) +
           " tokens) but the whole cache has " +
           std::to_string(blocks.getNumBlocks()) + " blocks of " +
           std::to_string(blocks.getBlockSize()) + " tokens";
  if (sequences.count(request.id))
    return name + " is already queued or running";
  return "";
}

bool Scheduler::submit(const Request &request, std::string &reason) {
  try {
    reason = checkRequest(request);
  } catch (const std::exception &) {
    reason =
        "out of memory while checking request " + std::to_string(request.id);
  }
  if (!reason.empty()) {
    ++counters.rejected;
    return false;
  }

  try {
    // Both containers grow before either changes, so a failed allocation
    // leaves no trace.
    waiting.reserve(waiting.size() + 1);
    running.reserve(running.size() + waiting.size() + 1);
    Sequence sequence;
    sequence.request = request;
    sequence.arrival = nextArrival++;
    sequences.emplace(request.id, std::move(sequence));
  } catch (const std::exception &) {
    reason =
        "out of memory while queueing request " + std::to_string(request.id);
    ++counters.rejected;
    return false;
  }
  insertSorted(waiting, request.id, /*queue=*/true);
  ++counters.submitted;
  updateCounts();
  return true;
}

bool Scheduler::cancel(int64_t id) {
  auto it = sequences.find(id);
  if (it == sequences.end())
    return false;
  for (std::vector<int64_t> *list : {&waiting, &running})
    list->erase(std::remove(list->begin(), list->end(), id), list->end());
  blocks.freeSequence(id);
  sequences.erase(it);
  ++counters.cancelled;
  updateCounts();
  return true;
}

const std::vector<int32_t> *Scheduler::outputOf(int64_t id) const {
  auto it = sequences.find(id);
  return it == sequences.end() ? nullptr : &it->second.generated;
}

bool Scheduler::ranksBefore(const Sequence &a, const Sequence &b,
                            bool queue) const {
  if (a.request.priority != b.request.priority)
    return a.request.priority > b.request.priority;
  return queue ? a.arrival < b.arrival : a.admission < b.admission;
}

void Scheduler::insertSorted(std::vector<int64_t> &list, int64_t id,
                             bool queue) {
  auto position =
      std::upper_bound(list.begin(), list.end(), id, [&](int64_t a, int64_t b) {
        return ranksBefore(sequences.at(a), sequences.at(b), queue);
      });
  list.insert(position, id);
}

void Scheduler::updateCounts() {
  counters.blocksUsed = blocks.getNumBlocks() - blocks.getNumFreeBlocks();
  counters.peakBlocksUsed =
      std::max(counters.peakBlocksUsed, counters.blocksUsed);
  counters.running = static_cast<int64_t>(running.size());
  counters.waiting = static_cast<int64_t>(waiting.size());
}

//===----------------------------------------------------------------------===//
// Planning a step
//===----------------------------------------------------------------------===//

void Scheduler::preempt(int64_t id) {
  // Queue first: if that allocation throws, nothing has changed.
  insertSorted(waiting, id, /*queue=*/true);
  running.erase(std::find(running.begin(), running.end(), id));
  blocks.freeSequence(id);
  Sequence &sequence = sequences.at(id);
  sequence.computed = 0;
  sequence.prefilled = false;
  ++counters.preemptions;
}

void Scheduler::planDecodes(std::vector<Chunk> &chunks, int64_t &budget) {
  std::string ignored;
  for (size_t i = 0; i < running.size() && budget > 0; ++i) {
    int64_t id = running[i];
    Sequence &sequence = sequences.at(id);
    if (!sequence.prefilled)
      continue;
    // The token fed back gets a slot; after a failed step it may have one.
    int64_t missing = sequence.length() - blocks.getNumTokens(id);
    bool preemptedItself = false;
    while (missing > 0 && !blocks.appendTokens(id, missing, ignored)) {
      // Victims come from the end of the rank order, after position i: the
      // sequences that already have their token in this step are safe.
      int64_t victim = running.back();
      preempt(victim);
      if (victim == id) {
        preemptedItself = true;
        break;
      }
    }
    if (preemptedItself)
      break; // It was the last running sequence.
    assert(sequence.computed + 1 == sequence.length() && "one token to feed");
    chunks.push_back({id, sequence.computed, 1, /*decode=*/true});
    --budget;
  }
}

void Scheduler::planPrefills(std::vector<Chunk> &chunks, int64_t &budget) {
  for (size_t i = 0; i < running.size() && budget > 0; ++i) {
    int64_t id = running[i];
    Sequence &sequence = sequences.at(id);
    if (sequence.prefilled)
      continue;
    // Admission took the blocks of the whole prefill.
    int64_t count = std::min(sequence.length() - sequence.computed, budget);
    chunks.push_back({id, sequence.computed, count, /*decode=*/false});
    budget -= count;
  }
}

void Scheduler::admit(std::vector<Chunk> &chunks, int64_t &budget) {
  std::string ignored;
  while (budget > 0 && !waiting.empty() &&
         static_cast<int64_t>(running.size()) < opts.maxRunning) {
    int64_t id = waiting.front();
    Sequence &sequence = sequences.at(id);
    if (!blocks.addSequence(id, sequence.length(), ignored))
      break; // The head waits for blocks; nothing overtakes it.
    sequence.admission = nextAdmission++;
    sequence.computed = 0;
    sequence.prefilled = false;
    running.push_back(id); // Reserved in submit(): cannot throw.
    std::rotate(std::upper_bound(running.begin(), running.end() - 1, id,
                                 [&](int64_t a, int64_t b) {
                                   return ranksBefore(sequences.at(a),
                                                      sequences.at(b), false);
                                 }),
                running.end() - 1, running.end());
    waiting.erase(waiting.begin());
    int64_t count = std::min(sequence.length(), budget);
    chunks.push_back({id, 0, count, /*decode=*/false});
    budget -= count;
  }
}

void Scheduler::buildInputs(const std::vector<Chunk> &chunks) {
  int64_t blockSize = blocks.getBlockSize();
  inputs = StepInputs{};
  sampledIds.clear();
  inputs.sequences = static_cast<int64_t>(chunks.size());
  inputs.blocksPerSeq = 1;
  for (const Chunk &chunk : chunks)
    inputs.blocksPerSeq = std::max<int64_t>(
        inputs.blocksPerSeq, blocks.getBlockTable(chunk.id).size());
  // Rows shorter than the longest are padded with block 0, which no token
  // of theirs reaches (a token reads positions 0..its own only).
  inputs.blockTables.assign(inputs.sequences * inputs.blocksPerSeq, 0);
  for (size_t row = 0; row < chunks.size(); ++row) {
    const Chunk &chunk = chunks[row];
    const Sequence &sequence = sequences.at(chunk.id);
    const std::vector<int32_t> &table = blocks.getBlockTable(chunk.id);
    std::copy(table.begin(), table.end(),
              inputs.blockTables.begin() + row * inputs.blocksPerSeq);
    for (int64_t i = chunk.start; i < chunk.start + chunk.count; ++i) {
      inputs.tokens.push_back(sequence.tokenAt(i));
      inputs.positions.push_back(static_cast<int32_t>(i));
      inputs.slotMapping.push_back(static_cast<int32_t>(
          table[i / blockSize] * blockSize + i % blockSize));
      inputs.tokenSeq.push_back(static_cast<int32_t>(row));
    }
    if (chunk.start + chunk.count == sequence.length()) {
      inputs.logitRows.push_back(static_cast<int32_t>(inputs.tokens.size()) -
                                 1);
      sampledIds.push_back(chunk.id);
    }
  }
  // ModelRunner::forward wants at least one row even when every sequence
  // of the step is in the middle of its prefill.
  if (inputs.logitRows.empty() && !inputs.tokens.empty()) {
    inputs.logitRows.push_back(static_cast<int32_t>(inputs.tokens.size()) - 1);
    sampledIds.push_back(-1);
  }
}

//===----------------------------------------------------------------------===//
// Running a step
//===----------------------------------------------------------------------===//

void Scheduler::finish(int64_t id, FinishReason reason,
                       std::vector<SchedulerEvent> &events) {
  SchedulerEvent event;
  event.kind = SchedulerEvent::Kind::Finished;
  event.requestId = id;
  event.reason = reason;
  events.push_back(event); // Reserved by runStep.
  running.erase(std::find(running.begin(), running.end(), id));
  blocks.freeSequence(id);
  sequences.erase(id);
  ++counters.finished;
}

bool Scheduler::runStep(std::vector<SchedulerEvent> &events,
                        std::string &error) {
  std::vector<Chunk> chunks;
  int64_t budget = opts.maxTokensPerStep;
  planDecodes(chunks, budget);
  planPrefills(chunks, budget);
  admit(chunks, budget);
  updateCounts();
  if (chunks.empty())
    return true; // Idle.
  buildInputs(chunks);

  // Everything recorded after forward() goes into storage reserved now.
  events.reserve(events.size() + 2 * sampledIds.size());
  for (int64_t id : sampledIds)
    if (id >= 0) {
      Sequence &sequence = sequences.at(id);
      sequence.generated.reserve(sequence.generated.size() + 1);
    }

  if (!runner.forward(inputs, logits, error)) {
    error = "forward step failed: " + error;
    return false;
  }
  int64_t vocab = runner.vocabSize();
  if (static_cast<int64_t>(logits.size()) !=
      static_cast<int64_t>(inputs.logitRows.size()) * vocab) {
    error = "forward step returned " + std::to_string(logits.size()) +
            " logits for " + std::to_string(inputs.logitRows.size()) +
            " rows of " + std::to_string(vocab);
    return false;
  }

  ++counters.steps;
  for (const Chunk &chunk : chunks) {
    Sequence &sequence = sequences.at(chunk.id);
    if (chunk.decode) {
      counters.decodeTokens += chunk.count;
    } else {
      counters.prefillTokens += chunk.count;
      counters.recomputedTokens += std::max<int64_t>(
          0, std::min(chunk.start + chunk.count, sequence.everComputed) -
                 chunk.start);
    }
    sequence.computed = chunk.start + chunk.count;
    sequence.everComputed = std::max(sequence.everComputed, sequence.computed);
    if (sequence.computed == sequence.length())
      sequence.prefilled = true;
  }
  for (size_t row = 0; row < sampledIds.size(); ++row) {
    int64_t id = sampledIds[row];
    if (id < 0)
      continue;
    Sequence &sequence = sequences.at(id);
    int32_t token =
        sample(logits.data() + row * vocab, vocab, sequence.request.sampling,
               sequence.generated.size());
    sequence.generated.push_back(token);
    ++counters.generatedTokens;
    SchedulerEvent event;
    event.requestId = id;
    event.token = token;
    events.push_back(event);
    if (token == sequence.request.stopToken)
      finish(id, FinishReason::StopToken, events);
    else if (static_cast<int64_t>(sequence.generated.size()) >=
             sequence.request.maxNewTokens)
      finish(id, FinishReason::Length, events);
  }
  updateCounts();
  return true;
}

bool Scheduler::step(std::vector<SchedulerEvent> &events, std::string &error) {
  try {
    bool ok = runStep(events, error);
    updateCounts();
    return ok;
  } catch (const std::exception &e) {
    error = std::string("scheduler step failed: ") + e.what();
  } catch (...) {
    error = "scheduler step failed: unknown exception";
  }
  updateCounts();
  return false;
}

bool Scheduler::runUntilIdle(std::vector<SchedulerEvent> &events,
                             std::string &error, int64_t maxSteps) {
  for (int64_t n = 0; n < maxSteps && !idle(); ++n)
    if (!step(events, error))
      return false;
  return true;
}
