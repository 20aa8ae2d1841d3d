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
// Speculative decoding (SchedulerOptions::draft; DESIGN.md section 5). A
// draft model, a second ModelRunner over the same vocabulary with its own
// paged cache (and its own KVBlockManager here), proposes k tokens for a
// decoding sequence, and the target verifies them in the same forward step
// as everybody else's work. A step speculates while the running batch at
// its start (prefilling sequences included) is at most the batch limit B*
// of the policy in runtime/Speculation.h (always without
// adaptiveSpeculation). Then step 1 gives each decoding sequence, in rank
// order, k_s = min(k, tokens it may still generate - 1, budget left - 1)
// drafts when k_s >= 1 and its draft can take part (drafts come out of the
// token budget before the prefill chunks do):
//  - The draft may lag: it caches the first D tokens of the sequence (0
//    after admission or an eviction; behind after plain decode steps or
//    after all k drafts and the bonus token were accepted). Its first
//    forward feeds positions D..L-1 (the catch-up and the last token; L is
//    the sequence's length) and asks for the row of L-1; the draft forwards
//    2..k_s feed the previous draft token. All speculating sequences share
//    one draft forward per draft position. The first forward's tokens are
//    limited by maxTokensPerStep: a sequence whose catch-up does not fit
//    gets a catch-up chunk of what is left of that budget and decodes
//    plainly this step.
//  - Draft token j is sample(draft logits, sampling, g + j - 1) (g: tokens
//    generated so far) and q_j = probabilities() of the same row.
//  - Draft blocks for L + k_s - 1 tokens are taken before the step; when
//    short, the draft caches of the lowest-ranked running sequences are
//    dropped (they only cost a later catch-up); when still short, the
//    sequence decodes plainly. Target blocks for its L + k_s tokens are
//    taken like a decode's (preempting lower-ranked sequences; if only
//    preempting itself would do, it decodes plainly instead).
//  - The target step feeds the last token and the k_s drafts at positions
//    L-1..L+k_s-1 and returns all k_s+1 rows p_0..p_k_s (probabilities()
//    under the request's sampling); verifyDraft(p, q, drafts, seed, g)
//    yields a accepted drafts and one more token, and the step emits those
//    a+1 tokens (fewer if the stop token comes first).
//  - Rollback: the target keeps L + a cached tokens and the draft
//    min(L + k_s - 1, L + a); both block managers are truncated to that and
//    the stale entries past it are overwritten when the sequence grows
//    (attention reads only positions up to the token's own).
// Greedy requests get one-hot distributions, so they accept exactly the
// drafts equal to the target's argmax and emit that argmax: their output is
// the output without speculation. Sampled ones follow the target
// distribution (the rejection rule), with draws that depend only on the
// seed and position, but not the draws of plain decoding. A preemption or
// cancellation drops the draft cache with the sequence's blocks.
//
// Copy-on-write. The KV blocks of both caches come from KVBlockManagers,
// which let sequences share blocks (fork) and, when a sharer grows into a
// shared, partly filled last block, give it a copy of that block and record
// the copy (KVBlockManager::takePendingCopies). Every step, once planned,
// drains both managers' pending copies and has the runners perform them
// (ModelRunner::copyBlocks: the draft's before the draft forwards, the
// target's before the target forward), so no forward ever writes a copied
// block before its copy. Nothing in the scheduler forks today, so the list
// is always empty; prefix sharing (requests sharing a cached prompt prefix)
// and parallel sampling would fork and rely on this hook. Copies a runner
// failed to perform are kept and performed again before the next attempt.
//
// No exception leaves this API: failures return false with a message.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_SCHEDULER_H
#define MOEC_RUNTIME_SCHEDULER_H

#include "runtime/KVBlockManager.h"
#include "runtime/ModelRunner.h"
#include "runtime/Sampler.h"
#include "runtime/Speculation.h"

#include <cstdint>
#include <functional>
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

  /// The draft model of speculative decoding (null: none). It must outlive
  /// the scheduler, which then manages its KV cache alone. A draft whose
  /// vocabulary size differs from the target's is not used (options()
  /// then reports null).
  ModelRunner *draft = nullptr;
  /// Draft tokens k proposed per speculating sequence and step (>= 1).
  int64_t draftTokens = 4;
  /// True: speculate only while the running batch is at most the policy's
  /// batch limit (runtime/Speculation.h); false: in every step.
  bool adaptiveSpeculation = true;
  /// The cost ratio c(b) of the policy for a running batch of b sequences;
  /// empty: measured from the forward times.
  std::function<double(int64_t)> draftCostRatio;
  /// The acceptance rate assumed before any draft was verified.
  double priorAcceptance = 0.5;
  /// While the policy finds that speculation pays at no batch size, one
  /// step in this many speculates anyway to measure the acceptance again
  /// (0: never).
  int64_t speculationProbeInterval = 64;
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

  /// Speculative decoding. Steps in which a sequence speculated; draft
  /// forward() calls that succeeded; tokens fed to the draft (catch-up
  /// included); draft tokens run through the target to verify them (not in
  /// decodeTokens); verifications (one per speculating sequence and step).
  int64_t speculativeSteps = 0, draftForwards = 0, draftFedTokens = 0,
          verifiedDraftTokens = 0, verifications = 0;
  /// Draft caches dropped for lack of draft blocks; the draft's blocks in
  /// use now.
  int64_t draftEvictions = 0, draftBlocksUsed = 0;
  /// Per draft position j = 1..draftTokens (index j - 1): verifications
  /// that proposed a j-th draft token, and those that accepted it (and so
  /// all before it): draftAccepted[j-1] / draftProposed[j-1] estimates the
  /// probability that the first j drafts are accepted (α^j).
  std::vector<int64_t> draftProposed, draftAccepted;
  /// The policy's acceptance estimate α and batch limit B* as of the last
  /// step (runtime/Speculation.h); B* = maxRunning when not adaptive.
  double acceptanceEstimate = 0;
  int64_t speculationBatchLimit = 0;
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

  /// Runs one iteration and appends its events to `events` (a speculating
  /// sequence may get several Token events in one step). Returns true
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
    /// Tokens whose K/V are in the draft's cache.
    int64_t draftComputed = 0;

    int64_t length() const {
      return static_cast<int64_t>(request.prompt.size() + generated.size());
    }
    int32_t tokenAt(int64_t i) const {
      int64_t prompt = static_cast<int64_t>(request.prompt.size());
      return i < prompt ? request.prompt[i] : generated[i - prompt];
    }
  };
  /// A sequence's share of one step: tokens [start, start + count), of
  /// which the last `drafts` are draft tokens (speculation), and the tokens
  /// [draftStart, draftStart + draftCount) fed to the draft's first forward
  /// (with drafts == 0: a catch-up chunk only).
  struct Chunk {
    int64_t id;
    int64_t start, count;
    bool decode;
    int64_t drafts = 0, draftStart = 0, draftCount = 0;
  };
  /// A speculating sequence's drafts and their distributions q_j.
  struct Proposal {
    size_t chunk = 0;
    std::vector<int32_t> tokens;
    std::vector<std::vector<float>> probs;
    SpeculativeResult result{0, -1};
  };
  /// Who samples from the logit rows [row, row + rows): a sequence (-1: a
  /// row asked for only because the runner wants one) and its proposal
  /// (-1: a plain decode or the end of a prefill).
  struct Sampled {
    int64_t id;
    size_t row;
    int64_t proposal;
  };

  /// Why `request` can never run ("" if it can).
  std::string checkRequest(const Request &request) const;
  /// True if `a` runs before `b` (running) or is admitted before it
  /// (waiting); the lowest-ranked running sequence is the preemption victim.
  bool ranksBefore(const Sequence &a, const Sequence &b, bool queue) const;
  void insertSorted(std::vector<int64_t> &list, int64_t id, bool queue);
  /// Makes `id` hold exactly `tokens` tokens in `manager` (added, grown or
  /// truncated); false, changing nothing, when blocks are short.
  static bool holdTokens(KVBlockManager &manager, int64_t id, int64_t tokens);
  void preempt(int64_t id);
  void finish(int64_t id, FinishReason reason,
              std::vector<SchedulerEvent> &events);
  void planDecodes(std::vector<Chunk> &chunks, int64_t &budget, bool speculate);
  void planPrefills(std::vector<Chunk> &chunks, int64_t &budget);
  void admit(std::vector<Chunk> &chunks, int64_t &budget);
  void buildInputs(const std::vector<Chunk> &chunks);
  bool runStep(std::vector<SchedulerEvent> &events, std::string &error);
  /// Takes the block managers' pending copy-on-write copies and has the
  /// draft and the target runner perform them (see Copy-on-write above).
  bool runBlockCopies(std::string &error);
  void updateCounts();
  /// Records the sampled token `token` of `id`; true if it finished.
  bool emit(int64_t id, int32_t token, std::vector<SchedulerEvent> &events);

  // Speculation (SpeculativeStep.cpp).
  /// Whether this step speculates (the policy; updates its statistics).
  bool decideSpeculation();
  /// Drafts (and the draft's blocks) for the decode chunk of the sequence at
  /// running[rank], given the target budget left; a catch-up chunk or
  /// nothing when the draft cannot take part.
  void planDraft(size_t rank, int64_t budget, int64_t &draftBudget,
                 Chunk &chunk);
  /// Drops speculation from a planned chunk, releasing its draft blocks.
  void dropDraft(Chunk &chunk);
  /// Runs the draft forwards of the planned chunks, filling `proposals`.
  bool runDrafts(const std::vector<Chunk> &chunks, std::string &error);
  /// After the target forward: each proposal's verifyDraft result.
  void verifyProposals();
  /// Records proposal `index`'s tokens and rolls back the rejected ones.
  void commitProposal(size_t index, const std::vector<Chunk> &chunks,
                      std::vector<SchedulerEvent> &events);
  /// After a successful step: draft caches of the catch-up chunks.
  void commitCatchUps(const std::vector<Chunk> &chunks);

  ModelRunner &runner;
  SchedulerOptions opts;
  KVBlockManager blocks;
  /// The draft's cache (empty without a draft) and the policy.
  KVBlockManager draftBlocks;
  SpeculationPolicy policy;
  int64_t stepsWithoutSpeculation = 0;
  std::unordered_map<int64_t, Sequence> sequences;
  /// Ids in rank order (see ranksBefore).
  std::vector<int64_t> running, waiting;
  uint64_t nextArrival = 0, nextAdmission = 0;
  SchedulerStats counters;
  /// The step being run: its inputs, logits, who samples from them, and
  /// the proposals of the speculating sequences.
  StepInputs inputs;
  std::vector<float> logits;
  std::vector<Sampled> sampled;
  std::vector<Proposal> proposals;
  /// Copies taken from `blocks` and `draftBlocks` that the runners have not
  /// yet performed.
  std::vector<BlockCopy> blockCopies, draftBlockCopies;
};

} // namespace moert

#endif // MOEC_RUNTIME_SCHEDULER_H
