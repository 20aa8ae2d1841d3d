//===- Scheduler.cpp - Continuous batching over a paged KV cache ----------===//
//
// Exception safety: the only things here that can throw are allocations
// (and a runner that breaks its contract). Planning changes state in steps
// that each leave every request queued or running; everything after a
// successful forward() works in storage reserved before it, so that no
// sampled token can be half recorded. step() and submit() turn an exception
// into a false return.
//
// The speculative parts of a step are in SpeculativeStep.cpp.
//
//===----------------------------------------------------------------------===//

#include "runtime/Scheduler.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <exception>
#include <utility>

using namespace moert;

namespace {
int32_t clampToInt32(int64_t value) {
  return static_cast<int32_t>(
      std::min<int64_t>(std::max<int64_t>(value, 1), INT32_MAX));
}

SchedulerOptions sanitize(SchedulerOptions opts, const ModelRunner &runner) {
  opts.maxTokensPerStep = std::max<int64_t>(opts.maxTokensPerStep, 1);
  opts.maxRunning = std::max<int64_t>(opts.maxRunning, 1);
  opts.draftTokens = std::max<int64_t>(opts.draftTokens, 1);
  opts.speculationProbeInterval =
      std::max<int64_t>(opts.speculationProbeInterval, 0);
  if (opts.draft && opts.draft->vocabSize() != runner.vocabSize())
    opts.draft = nullptr;
  return opts;
}
} // namespace

Scheduler::Scheduler(ModelRunner &runner, SchedulerOptions options)
    : runner(runner), opts(sanitize(std::move(options), runner)),
      blocks(clampToInt32(runner.numBlocks()),
             clampToInt32(runner.blockSize())),
      draftBlocks(opts.draft ? clampToInt32(opts.draft->numBlocks()) : 0,
                  opts.draft ? clampToInt32(opts.draft->blockSize()) : 1),
      policy(opts.draftTokens, opts.priorAcceptance, opts.draftCostRatio) {
  if (opts.maxContext <= 0)
    opts.maxContext =
        static_cast<int64_t>(blocks.getNumBlocks()) * blocks.getBlockSize();
  if (opts.draft) {
    counters.draftProposed.assign(opts.draftTokens, 0);
    counters.draftAccepted.assign(opts.draftTokens, 0);
  }
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
  draftBlocks.freeSequence(id);
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
  counters.draftBlocksUsed =
      draftBlocks.getNumBlocks() - draftBlocks.getNumFreeBlocks();
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
  draftBlocks.freeSequence(id);
  Sequence &sequence = sequences.at(id);
  sequence.computed = 0;
  sequence.draftComputed = 0;
  sequence.prefilled = false;
  ++counters.preemptions;
}

bool Scheduler::holdTokens(KVBlockManager &manager, int64_t id,
                           int64_t tokens) {
  std::string ignored;
  if (!manager.hasSequence(id))
    return manager.addSequence(id, tokens, ignored);
  int64_t held = manager.getNumTokens(id);
  if (tokens > held)
    return manager.appendTokens(id, tokens - held, ignored);
  return manager.truncate(id, tokens, ignored);
}

void Scheduler::planDecodes(std::vector<Chunk> &chunks, int64_t &budget,
                            bool speculate) {
  int64_t draftBudget = opts.maxTokensPerStep;
  for (size_t i = 0; i < running.size() && budget > 0; ++i) {
    int64_t id = running[i];
    Sequence &sequence = sequences.at(id);
    if (!sequence.prefilled)
      continue;
    assert(sequence.computed + 1 == sequence.length() && "one token to feed");
    Chunk chunk{id, sequence.computed, 1, /*decode=*/true};
    if (speculate)
      planDraft(i, budget, draftBudget, chunk);
    // The token fed back and the drafts get slots; after a failed step the
    // sequence may hold them already, or more.
    bool preemptedItself = false;
    while (!holdTokens(blocks, id, sequence.length() + chunk.drafts)) {
      // Victims come from the end of the rank order, after position i: the
      // sequences that already have their token in this step are safe.
      int64_t victim = running.back();
      if (victim == id && chunk.drafts > 0) {
        dropDraft(chunk); // Decoding plainly may still fit.
        continue;
      }
      preempt(victim);
      if (victim == id) {
        preemptedItself = true;
        break;
      }
    }
    if (preemptedItself)
      break; // It was the last running sequence.
    chunk.count = 1 + chunk.drafts;
    chunks.push_back(chunk);
    budget -= chunk.count;
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
    sequence.draftComputed = 0;
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
  sampled.clear();
  size_t proposal = 0;
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
    size_t first = inputs.tokens.size();
    int64_t length = sequence.length();
    for (int64_t i = chunk.start; i < chunk.start + chunk.count; ++i) {
      // Past the sequence's end come its draft tokens.
      inputs.tokens.push_back(i < length
                                  ? sequence.tokenAt(i)
                                  : proposals[proposal].tokens[i - length]);
      inputs.positions.push_back(static_cast<int32_t>(i));
      inputs.slotMapping.push_back(static_cast<int32_t>(
          table[i / blockSize] * blockSize + i % blockSize));
      inputs.tokenSeq.push_back(static_cast<int32_t>(row));
    }
    if (chunk.drafts > 0) {
      // Every position of a speculating sequence has its row.
      for (size_t t = first; t < inputs.tokens.size(); ++t)
        inputs.logitRows.push_back(static_cast<int32_t>(t));
      sampled.push_back({chunk.id, inputs.logitRows.size() - chunk.count,
                         static_cast<int64_t>(proposal++)});
    } else if (chunk.start + chunk.count == length) {
      inputs.logitRows.push_back(static_cast<int32_t>(inputs.tokens.size()) -
                                 1);
      sampled.push_back({chunk.id, inputs.logitRows.size() - 1, -1});
    }
  }
  // ModelRunner::forward wants at least one row even when every sequence
  // of the step is in the middle of its prefill.
  if (inputs.logitRows.empty() && !inputs.tokens.empty()) {
    inputs.logitRows.push_back(static_cast<int32_t>(inputs.tokens.size()) - 1);
    sampled.push_back({-1, 0, -1});
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
  draftBlocks.freeSequence(id);
  sequences.erase(id);
  ++counters.finished;
}

bool Scheduler::emit(int64_t id, int32_t token,
                     std::vector<SchedulerEvent> &events) {
  Sequence &sequence = sequences.at(id);
  sequence.generated.push_back(token); // Reserved by runStep.
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
  else
    return false;
  return true;
}

bool Scheduler::runStep(std::vector<SchedulerEvent> &events,
                        std::string &error) {
  std::vector<Chunk> chunks;
  int64_t budget = opts.maxTokensPerStep;
  planDecodes(chunks, budget, decideSpeculation());
  planPrefills(chunks, budget);
  admit(chunks, budget);
  updateCounts();
  if (chunks.empty())
    return true; // Idle.
  // Planning may have copied shared blocks on write: the copies go first.
  if (!runBlockCopies(error))
    return false;
  if (!runDrafts(chunks, error))
    return false;
  buildInputs(chunks);

  // Everything recorded after forward() goes into storage reserved now.
  size_t eventCount = 0;
  for (const Sampled &entry : sampled) {
    if (entry.id < 0)
      continue;
    size_t tokens =
        entry.proposal < 0 ? 1 : proposals[entry.proposal].tokens.size() + 1;
    eventCount += tokens + 1;
    Sequence &sequence = sequences.at(entry.id);
    sequence.generated.reserve(sequence.generated.size() + tokens);
  }
  events.reserve(events.size() + eventCount);

  auto start = std::chrono::steady_clock::now();
  if (!runner.forward(inputs, logits, error)) {
    error = "forward step failed: " + error;
    return false;
  }
  policy.recordTargetForward(
      static_cast<int64_t>(inputs.tokens.size()),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count());
  int64_t vocab = runner.vocabSize();
  if (static_cast<int64_t>(logits.size()) !=
      static_cast<int64_t>(inputs.logitRows.size()) * vocab) {
    error = "forward step returned " + std::to_string(logits.size()) +
            " logits for " + std::to_string(inputs.logitRows.size()) +
            " rows of " + std::to_string(vocab);
    return false;
  }
  // May allocate (and throw): still before any change.
  verifyProposals();

  ++counters.steps;
  counters.speculativeSteps += proposals.empty() ? 0 : 1;
  for (const Chunk &chunk : chunks) {
    Sequence &sequence = sequences.at(chunk.id);
    if (chunk.decode) {
      counters.decodeTokens += 1;
      counters.verifiedDraftTokens += chunk.drafts;
    } else {
      counters.prefillTokens += chunk.count;
      counters.recomputedTokens += std::max<int64_t>(
          0, std::min(chunk.start + chunk.count, sequence.everComputed) -
                 chunk.start);
    }
    // A speculating sequence's drafts count once verified (commitProposal).
    sequence.computed = chunk.start + chunk.count - chunk.drafts;
    sequence.everComputed = std::max(sequence.everComputed, sequence.computed);
    if (sequence.computed == sequence.length())
      sequence.prefilled = true;
  }
  commitCatchUps(chunks);
  for (const Sampled &entry : sampled) {
    if (entry.id < 0)
      continue;
    if (entry.proposal >= 0) {
      commitProposal(entry.proposal, chunks, events);
      continue;
    }
    Sequence &sequence = sequences.at(entry.id);
    emit(entry.id,
         sample(logits.data() + entry.row * vocab, vocab,
                sequence.request.sampling, sequence.generated.size()),
         events);
  }
  updateCounts();
  return true;
}

bool Scheduler::runBlockCopies(std::string &error) {
  struct Cache {
    KVBlockManager &manager;
    std::vector<BlockCopy> &copies;
    ModelRunner *runner;
    const char *name;
  };
  for (Cache cache :
       {Cache{draftBlocks, draftBlockCopies, opts.draft, "the draft's"},
        Cache{blocks, blockCopies, &runner, "the"}}) {
    // Kept until performed: a failed attempt leaves them all, in order, for
    // the next one (copying again is harmless, nothing has written since).
    std::vector<BlockCopy> taken = cache.manager.takePendingCopies();
    if (cache.copies.empty())
      cache.copies = std::move(taken);
    else
      cache.copies.insert(cache.copies.end(), taken.begin(), taken.end());
    if (cache.copies.empty())
      continue;
    if (!cache.runner) {
      error = std::string("copy-on-write in ") + cache.name +
              " KV cache but there is no runner for it";
      return false;
    }
    if (!cache.runner->copyBlocks(cache.copies, error)) {
      error = std::string("copying ") + cache.name +
              " KV-cache blocks failed: " + error;
      return false;
    }
    cache.copies.clear();
  }
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
