//===- Scheduler.h - Continuous batching over a paged KV cache --*- C++ -*-===//
//
// An iteration-level scheduler (Orca, vLLM): requests join and leave the
// running batch at every step, and one step mixes the decode tokens of the
// sequences that are generating with chunks of the prompts being prefilled,
// in one ModelRunner::forward call.
//
// Each step:
//  1. Decodes. Running sequences whose prefill is done get one token each, in
//     rank order (priority, highest first; then admission order, oldest
//     first) while the step's token budget lasts. A token that needs a new
//     KV block and finds none preempts the lowest-ranked running sequence
//     (lowest priority, then the most recently admitted; possibly the one
//     asking) until the block is there. Preemption is by recompute: the
//     victim's blocks are freed, its generated tokens kept, and it returns
//     to the waiting queue, to be prefilled again (prompt + generated) when
//     readmitted.
//  2. Prefill chunks. Running sequences still prefilling get, in rank order,
//     chunks of what is left of the budget. Their blocks were all taken at
//     admission, so a prefill never preempts.
//  3. Admission. While budget and maxRunning allow and the free blocks hold
//     its whole prefill, the head of the waiting queue (priority, highest
//     first; then arrival, oldest first, so a preempted request goes back
//     ahead of the later arrivals of its priority) joins the running batch
//     with its first chunk. The head is never skipped (no starvation of
//     long prompts) and admission never preempts.
//  4. One forward step over all of it; only the tokens that end a
//     sequence's pending input (a decode, the last chunk of a prefill) ask
//     for logits (a step made only of middle chunks asks for one row, which
//     it ignores, because ModelRunner::forward wants at least one). Such a
//     sequence samples its k-th generated token with sample(logits, vocab,
//     sampling, k), so that its output depends neither on what it was
//     batched with nor on preemptions.
//
// A decoding sequence can take blocks from every lower-ranked one, and
// submit() refuses requests that do not fit the whole cache alone, so every
// step runs at least one token of a running sequence and every request
// finishes (while higher priorities do not keep arriving).
//
// No exception leaves this API: failures return false with a message.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_SCHEDULER_H
#define MOEC_RUNTIME_SCHEDULER_H

#include "runtime/KVBlockManager.h"
#include "runtime/ModelRunner.h"
#include "runtime/Sampler.h"

#include <cstdint>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

namespace moert {

/// One generation request.
struct Request {
  /// Caller's id, unique among the requests queued or running.
  int64_t id = 0;
  std::vector<int32_t> prompt;
  /// Tokens to generate at most (>= 1).
  int64_t maxNewTokens = 16;
  SamplingParams sampling;
  /// Generation stops after producing this token (-1: none).
  int32_t stopToken = -1;
  /// Higher runs first; requests of one priority run in arrival order.
  int32_t priority = 0;
};

/// Why a request finished.
enum class FinishReason { Length, StopToken };

/// What a step reports to the caller.
struct SchedulerEvent {
  enum class Kind {
    /// `token` was generated for `requestId`.
    Token,
    /// `requestId` finished for `reason` (right after its last Token).
    Finished,
  };
  Kind kind = Kind::Token;
  int64_t requestId = 0;
  int32_t token = -1;
  FinishReason reason = FinishReason::Length;
};

struct SchedulerOptions {
  /// The model's context: prompt + max new tokens must not exceed it.
  int64_t maxContext = 0;
  /// Tokens (decodes + prefill chunks) in one forward step (>= 1).
  int64_t maxTokensPerStep = 256;
  /// Sequences in the running batch at most (>= 1).
  int64_t maxRunning = 64;
};

/// Counters since construction; blocksUsed, running and waiting are the
/// current state.
struct SchedulerStats {
  /// forward() calls that succeeded.
  int64_t steps = 0;
  /// Tokens run through the model: prompt and recomputed tokens (prefill),
  /// one per generated token fed back (decode). `recomputedTokens` is the
  /// part of the prefill tokens that re-prefilled preempted sequences.
  int64_t prefillTokens = 0, decodeTokens = 0, recomputedTokens = 0;
  int64_t generatedTokens = 0;
  int64_t preemptions = 0;
  int64_t submitted = 0, rejected = 0, finished = 0, cancelled = 0;
  int64_t peakBlocksUsed = 0;
  int64_t blocksUsed = 0;
  int64_t running = 0, waiting = 0;
};

/// Continuous batching of many requests over one ModelRunner.
class Scheduler {
public:
  /// Schedules onto `runner` (which must outlive the scheduler and whose KV
  /// cache it then manages alone). Options outside their ranges are clamped
  /// to 1; a maxContext <= 0 means the cache's capacity in tokens.
  Scheduler(ModelRunner &runner, SchedulerOptions options);

  /// Queues `request`; from then on it is never dropped (only cancel()
  /// removes it). False with `reason` set, changing nothing, for a request
  /// that can never run: empty prompt, token outside the vocabulary, max
  /// new tokens < 1, longer than the context or than the whole KV cache,
  /// duplicate id, invalid sampling parameters or stop token.
  bool submit(const Request &request, std::string &reason);

  /// Runs one iteration and appends its events to `events`. Returns true
  /// also when there was nothing to do. On false (`error` set: the runner
  /// failed or broke its contract, or memory ran out) no token was sampled
  /// and no event emitted, and every request is still queued or running
  /// with its output so far: what planning the step did stays done
  /// (sequences it preempted are queued, those it admitted run, blocks it
  /// took stay with their sequences), and no sequence counts the step's
  /// tokens as cached (a retry writes them again). step() can simply be
  /// called again; cancel() removes requests that keep failing.
  bool step(std::vector<SchedulerEvent> &events, std::string &error);

  /// Steps until idle() (or `maxSteps` steps), appending every event.
  /// False as soon as a step fails.
  bool runUntilIdle(std::vector<SchedulerEvent> &events, std::string &error,
                    int64_t maxSteps = std::numeric_limits<int64_t>::max());

  /// Removes a queued or running request (its blocks are freed, no event is
  /// emitted). False if no such request is queued or running.
  bool cancel(int64_t id);

  /// Nothing is waiting or running.
  bool idle() const { return waiting.empty() && running.empty(); }
  /// Whether `id` is queued or running.
  bool contains(int64_t id) const { return sequences.count(id) != 0; }
  /// Tokens generated so far for a queued or running request (null if none).
  const std::vector<int32_t> *outputOf(int64_t id) const;

  const SchedulerStats &stats() const { return counters; }
  const SchedulerOptions &options() const { return opts; }

private:
  struct Sequence {
    Request request;
    std::vector<int32_t> generated;
    /// Submission order (FCFS) and admission order (preemption victims).
    uint64_t arrival = 0, admission = 0;
    /// Tokens of prompt + generated whose K/V are in the cache, and the
    /// most there ever were (what exceeds `computed` is recomputation).
    int64_t computed = 0, everComputed = 0;
    /// The prefill since its last admission is done: it is decoding.
    bool prefilled = false;

    int64_t length() const {
      return static_cast<int64_t>(request.prompt.size() + generated.size());
    }
    int32_t tokenAt(int64_t i) const {
      int64_t prompt = static_cast<int64_t>(request.prompt.size());
      return i < prompt ? request.prompt[i] : generated[i - prompt];
    }
  };
  /// A sequence's share of one step: tokens [start, start + count).
  struct Chunk {
    int64_t id;
    int64_t start, count;
    bool decode;
  };

  /// Why `request` can never run ("" if it can).
  std::string checkRequest(const Request &request) const;
  /// True if `a` runs before `b` (running) or is admitted before it
  /// (waiting); the lowest-ranked running sequence is the preemption victim.
  bool ranksBefore(const Sequence &a, const Sequence &b, bool queue) const;
  void insertSorted(std::vector<int64_t> &list, int64_t id, bool queue);
  void preempt(int64_t id);
  void finish(int64_t id, FinishReason reason,
              std::vector<SchedulerEvent> &events);
  void planDecodes(std::vector<Chunk> &chunks, int64_t &budget);
  void planPrefills(std::vector<Chunk> &chunks, int64_t &budget);
  void admit(std::vector<Chunk> &chunks, int64_t &budget);
  void buildInputs(const std::vector<Chunk> &chunks);
  bool runStep(std::vector<SchedulerEvent> &events, std::string &error);
  void updateCounts();

  ModelRunner &runner;
  SchedulerOptions opts;
  KVBlockManager blocks;
  std::unordered_map<int64_t, Sequence> sequences;
  /// Ids in rank order (see ranksBefore).
  std::vector<int64_t> running, waiting;
  uint64_t nextArrival = 0, nextAdmission = 0;
  SchedulerStats counters;
  /// The step being run: its inputs, logits, and per logit row the
  /// sequence that samples from it (-1: a row asked for only because the
  /// runner wants at least one).
  StepInputs inputs;
  std::vector<float> logits;
  std::vector<int64_t> sampledIds;
};

} // namespace moert

#endif // MOEC_RUNTIME_SCHEDULER_H
