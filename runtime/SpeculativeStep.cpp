//===- SpeculativeStep.cpp - Speculative decoding in a scheduler step -----===//
//
// The speculative parts of Scheduler::step (the design is in Scheduler.h):
// the policy's decision, the drafts and draft blocks of the decode chunks,
// the batched draft forwards, and the verification and rollback after the
// target forward.
//
// Failure and exception safety follow Scheduler.cpp: the draft forwards
// and verifyProposals() only fill `proposals` (the draft's cache entries
// they write are not counted until the step succeeds: draftComputed moves
// in commitProposal / commitCatchUps only), and the commits after a
// successful step work in storage reserved before the target forward.
//
//===----------------------------------------------------------------------===//

#include "runtime/Scheduler.h"

#include <algorithm>
#include <cassert>
#include <chrono>

using namespace moert;

//===----------------------------------------------------------------------===//
// Planning
//===----------------------------------------------------------------------===//

bool Scheduler::decideSpeculation() {
  if (!opts.draft)
    return false;
  int64_t limit = opts.adaptiveSpeculation ? policy.batchLimit(opts.maxRunning)
                                           : opts.maxRunning;
  counters.acceptanceEstimate = policy.acceptance();
  counters.speculationBatchLimit = limit;
  bool on = static_cast<int64_t>(running.size()) <= limit;
  // Speculation that pays nowhere is tried now and then, so that a better
  // acceptance can be noticed.
  if (!on && limit == 0 && opts.speculationProbeInterval > 0 &&
      stepsWithoutSpeculation + 1 >= opts.speculationProbeInterval)
    on = true;
  stepsWithoutSpeculation = on ? 0 : stepsWithoutSpeculation + 1;
  return on;
}

void Scheduler::planDraft(size_t rank, int64_t budget, int64_t &draftBudget,
                          Chunk &chunk) {
  int64_t id = running[rank];
  Sequence &sequence = sequences.at(id);
  int64_t length = sequence.length();
  int64_t left = sequence.request.maxNewTokens -
                 static_cast<int64_t>(sequence.generated.size());
  // k_s drafts may give k_s + 1 tokens: no more than the request may still
  // generate, nor than the target's budget holds.
  int64_t drafts = std::min({opts.draftTokens, left - 1, budget - 1});
  if (drafts < 1 || draftBudget < 1)
    return;
  int64_t cached = std::min(sequence.draftComputed, length - 1);
  int64_t lag = length - cached; // The catch-up and the last token.
  int64_t needed;
  if (lag <= draftBudget) {
    chunk.drafts = drafts;
    chunk.draftCount = lag;
    needed = length + drafts - 1; // The last draft is not fed.
  } else {
    chunk.draftCount = draftBudget; // Catch up only.
    needed = cached + draftBudget;
  }
  chunk.draftStart = cached;

  while (!holdTokens(draftBlocks, id, needed)) {
    // Drop the draft cache of the lowest-ranked sequence after this one
    // that has one; those before it have their share of the step.
    size_t victim = running.size();
    for (size_t i = running.size(); i-- > rank + 1;)
      if (draftBlocks.hasSequence(running[i])) {
        victim = i;
        break;
      }
    if (victim == running.size()) {
      dropDraft(chunk);
      return;
    }
    draftBlocks.freeSequence(running[victim]);
    sequences.at(running[victim]).draftComputed = 0;
    ++counters.draftEvictions;
  }
  draftBudget -= chunk.draftCount;
}

void Scheduler::dropDraft(Chunk &chunk) {
  const Sequence &sequence = sequences.at(chunk.id);
  // Back to what the draft had cached (never grows: cannot fail).
  if (draftBlocks.getNumTokens(chunk.id) > sequence.draftComputed)
    holdTokens(draftBlocks, chunk.id, sequence.draftComputed);
  chunk.drafts = chunk.draftStart = chunk.draftCount = 0;
}

//===----------------------------------------------------------------------===//
// The draft forwards
//===----------------------------------------------------------------------===//

bool Scheduler::runDrafts(const std::vector<Chunk> &chunks,
                          std::string &error) {
  proposals.clear();
  int64_t rounds = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (chunks[c].draftCount > 0)
      rounds = std::max<int64_t>(rounds, 1);
    if (chunks[c].drafts > 0) {
      rounds = std::max(rounds, chunks[c].drafts);
      Proposal proposal;
      proposal.chunk = c;
      proposal.tokens.reserve(chunks[c].drafts);
      proposal.probs.reserve(chunks[c].drafts);
      proposals.push_back(std::move(proposal));
    }
  }

  if (rounds == 0)
    return true;
  ModelRunner &draft = *opts.draft;
  int64_t vocab = draft.vocabSize();
  int64_t blockSize = draftBlocks.getBlockSize();
  StepInputs in;
  std::vector<float> out;
  std::vector<size_t> owners; // Per logit row: its proposal (or none).
  for (int64_t round = 1; round <= rounds; ++round) {
    in = StepInputs{};
    owners.clear();
    size_t proposal = 0;
    for (const Chunk &chunk : chunks) {
      if (chunk.draftCount == 0)
        continue;
      size_t owner = chunk.drafts > 0 ? proposal++ : proposals.size();
      // Round 1 feeds the catch-up chunk (ending with the last token);
      // round j > 1 feeds draft j - 1 at position L + j - 2.
      int64_t start = chunk.draftStart, count = chunk.draftCount;
      if (round > 1) {
        if (chunk.drafts < round)
          continue;
        start = chunk.start + round - 1;
        count = 1;
      }
      const Sequence &sequence = sequences.at(chunk.id);
      const std::vector<int32_t> &table = draftBlocks.getBlockTable(chunk.id);
      int32_t row = static_cast<int32_t>(in.sequences++);
      in.blocksPerSeq = std::max<int64_t>(in.blocksPerSeq,
                                          static_cast<int64_t>(table.size()));
      for (int64_t i = start; i < start + count; ++i) {
        in.tokens.push_back(round == 1 ? sequence.tokenAt(i)
                                       : proposals[owner].tokens.back());
        in.positions.push_back(static_cast<int32_t>(i));
        in.slotMapping.push_back(static_cast<int32_t>(
            table[i / blockSize] * blockSize + i % blockSize));
        in.tokenSeq.push_back(row);
      }
      if (chunk.drafts > 0) {
        in.logitRows.push_back(static_cast<int32_t>(in.tokens.size()) - 1);
        owners.push_back(owner);
      }
    }
    if (in.logitRows.empty()) { // Only catch-up chunks: one ignored row.
      in.logitRows.push_back(static_cast<int32_t>(in.tokens.size()) - 1);
      owners.push_back(proposals.size());
    }
    // Rows shorter than the longest are padded with block 0, which no token
    // of theirs reaches.
    in.blocksPerSeq = std::max<int64_t>(in.blocksPerSeq, 1);
    in.blockTables.assign(in.sequences * in.blocksPerSeq, 0);
    int64_t row = 0;
    for (const Chunk &chunk : chunks)
      if (chunk.draftCount > 0 && (round == 1 || chunk.drafts >= round)) {
        const std::vector<int32_t> &table = draftBlocks.getBlockTable(chunk.id);
        std::copy(table.begin(), table.end(),
                  in.blockTables.begin() + row++ * in.blocksPerSeq);
      }

    auto start = std::chrono::steady_clock::now();
    if (!draft.forward(in, out, error)) {
      error = "draft forward step failed: " + error;
      return false;
    }
    policy.recordDraftForward(
        static_cast<int64_t>(in.tokens.size()),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
    if (static_cast<int64_t>(out.size()) !=
        static_cast<int64_t>(in.logitRows.size()) * vocab) {
      error = "draft forward step returned " + std::to_string(out.size()) +
              " logits for " + std::to_string(in.logitRows.size()) +
              " rows of " + std::to_string(vocab);
      return false;
    }
    ++counters.draftForwards;
    counters.draftFedTokens += static_cast<int64_t>(in.tokens.size());

    for (size_t r = 0; r < owners.size(); ++r) {
      if (owners[r] >= proposals.size())
        continue;
      Proposal &proposal = proposals[owners[r]];
      const Sequence &sequence = sequences.at(chunks[proposal.chunk].id);
      const float *row = out.data() + r * vocab;
      // Draft j is the sample at generated position g + j - 1.
      uint64_t position = sequence.generated.size() + round - 1;
      proposal.tokens.push_back(
          sample(row, vocab, sequence.request.sampling, position));
      proposal.probs.push_back(
          probabilities(row, vocab, sequence.request.sampling));
    }
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Verification and rollback
//===----------------------------------------------------------------------===//

void Scheduler::verifyProposals() {
  int64_t vocab = runner.vocabSize();
  std::vector<std::vector<float>> targetProbs;
  for (const Sampled &entry : sampled) {
    if (entry.proposal < 0)
      continue;
    Proposal &proposal = proposals[entry.proposal];
    const Sequence &sequence = sequences.at(entry.id);
    const SamplingParams &sampling = sequence.request.sampling;
    targetProbs.clear();
    for (size_t i = 0; i <= proposal.tokens.size(); ++i)
      targetProbs.push_back(probabilities(
          logits.data() + (entry.row + i) * vocab, vocab, sampling));
    proposal.result = verifyDraft(targetProbs, proposal.probs, proposal.tokens,
                                  sampling.seed, sequence.generated.size());
    if (proposal.result.nextToken < 0) // Malformed (out of memory): plain.
      proposal.result = {0, sample(logits.data() + entry.row * vocab, vocab,
                                   sampling, sequence.generated.size())};
  }
}

void Scheduler::commitProposal(size_t index, const std::vector<Chunk> &chunks,
                               std::vector<SchedulerEvent> &events) {
  const Proposal &proposal = proposals[index];
  const Chunk &chunk = chunks[proposal.chunk];
  int64_t id = chunk.id;
  int64_t drafts = static_cast<int64_t>(proposal.tokens.size());
  int64_t accepted = proposal.result.acceptedCount;
  int64_t length = sequences.at(id).length(); // L: before this step's tokens.

  ++counters.verifications;
  for (int64_t j = 0; j < drafts; ++j) {
    ++counters.draftProposed[j];
    counters.draftAccepted[j] += j < accepted ? 1 : 0;
  }
  policy.recordVerification(accepted, std::min(accepted + 1, drafts));

  for (int64_t j = 0; j <= accepted; ++j)
    if (emit(id, j < accepted ? proposal.tokens[j] : proposal.result.nextToken,
             events))
      return; // Finished: its blocks are gone.

  // Rollback: the target keeps the last token and the accepted drafts, the
  // draft what it was fed of them.
  Sequence &sequence = sequences.at(id);
  sequence.computed = length + accepted;
  sequence.everComputed = std::max(sequence.everComputed, sequence.computed);
  sequence.draftComputed = std::min(length + drafts - 1, length + accepted);
  assert(sequence.computed + 1 == sequence.length() && "one token to feed");
  bool held = holdTokens(blocks, id, sequence.computed) &&
              holdTokens(draftBlocks, id, sequence.draftComputed);
  (void)held;
  assert(held && "truncation cannot fail");
}

void Scheduler::commitCatchUps(const std::vector<Chunk> &chunks) {
  for (const Chunk &chunk : chunks)
    if (chunk.drafts == 0 && chunk.draftCount > 0)
      sequences.at(chunk.id).draftComputed =
          chunk.draftStart + chunk.draftCount;
}
