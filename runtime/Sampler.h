//===- Sampler.h - Token sampling and speculative acceptance ----*- C++ -*-===//
//
// Turns a row of logits into a token: greedy, or temperature / top-k / top-p
// sampling driven by a counter-based generator (Philox4x32-10), so that a
// draw depends only on (seed, position, logits) and never on batch
// composition, thread scheduling or call order. Also the acceptance rule of
// speculative sampling (DESIGN.md section 5).
//
// Random streams. Every draw uses uniform(seed, counter, stream): the Philox
// key is the seed, the 128-bit counter is {counter, stream}. Streams in use:
//   0  sample(): the token sampled at sequence position n uses counter n.
//      A draft model drawing its k draft tokens uses sample() at positions
//      position .. position+k-1 like any other decoder.
//   1  verifyDraft() acceptance test of draft token i: counter position + i.
//   2  verifyDraft() final draw (residual resample after a rejection at i,
//      or the bonus token at index k): counter position + index.
// Distinct streams never share a Philox counter, so no two of these draws
// can reuse the same random number for the same seed.
//
// No function here throws; malformed arguments have documented results.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_SAMPLER_H
#define MOEC_RUNTIME_SAMPLER_H

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace moert {

/// How to pick the next token.
struct SamplingParams {
  /// 0 means greedy (argmax); otherwise logits are divided by it.
  float temperature = 0.0f;
  /// Keep only the topK most likely tokens; 0 means no limit.
  int32_t topK = 0;
  /// Keep the smallest most-likely prefix whose mass reaches topP (of the
  /// mass left after top-k); 1 keeps everything.
  float topP = 1.0f;
  /// Philox key: together with the position it fixes every draw.
  uint64_t seed = 0;
};

/// Returns "" when `params` are usable with a vocabulary of `vocabSize`
/// tokens, else a message such as "top_p must be in (0, 1], got 1.5".
/// top_k larger than the vocabulary is allowed (it means no limit).
std::string validate(const SamplingParams &params, int64_t vocabSize);

/// The Philox4x32-10 block function (Salmon et al., SC'11; Random123):
/// ten rounds with multipliers 0xD2511F53, 0xCD9E8D57 and key increments
/// 0x9E3779B9, 0xBB67AE85.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter,
                                      std::array<uint32_t, 2> key);

/// A uniform double in [0, 1) with 53 random bits, a pure function of its
/// arguments: Philox key {seed lo, seed hi}, counter {counter lo, counter hi,
/// stream lo, stream hi}; the first two output words form the mantissa.
/// Stream 0 is the one sample() uses (see the file comment).
double uniform(uint64_t seed, uint64_t counter, uint64_t stream = 0);

/// Picks the token at sequence position `position` (the caller's count of
/// tokens sampled so far for that sequence, used as the Philox counter).
///
/// temperature == 0: argmax, the lowest index winning ties. Otherwise
/// softmax(logits / temperature) in double, then top-k, then top-p (order:
/// descending probability, ties by lower index), then an inverse-CDF draw
/// over the kept tokens in index order with uniform(seed, position).
///
/// NaN logits count as -inf. +inf logits share all the mass equally. If no
/// logit is finite or +inf (all -inf/NaN), returns 0. Returns -1 if
/// `logits` is null or `vocabSize` is not in [1, INT32_MAX]. Parameters
/// that fail validate() are interpreted, never rejected: a temperature that
/// is not a finite positive number means greedy, topK < 0 means no limit,
/// topP <= 0 keeps only the most likely token, topP >= 1 or NaN keeps
/// everything. top_p is measured against the mass left after top-k. Should
/// memory run out, falls back to greedy (no exception escapes).
int32_t sample(const float *logits, int64_t vocabSize,
               const SamplingParams &params, uint64_t position);

/// The distribution sample() draws from: `vocabSize` probabilities after
/// temperature, top-k and top-p, renormalised, zero outside the kept set.
/// Greedy (and the no-usable-logit case) gives a one-hot vector at the
/// token sample() returns. Empty if sample() would return -1.
std::vector<float> probabilities(const float *logits, int64_t vocabSize,
                                 const SamplingParams &params);

/// Outcome of verifying k draft tokens against the target model.
struct SpeculativeResult {
  /// How many draft tokens (a prefix) were accepted, 0..k.
  int32_t acceptedCount;
  /// The token emitted after them: the residual resample at the first
  /// rejection, or the bonus token when all k were accepted. -1 only for
  /// malformed input.
  int32_t nextToken;
};

/// Speculative sampling acceptance (DESIGN.md section 5). `targetProbs` has
/// k+1 rows and `draftProbs` k rows, all of one vocabulary size V > 0;
/// `draftTokens` has k entries in [0, V). Row i of both belongs to sequence
/// position `position` + i. For i = 0..k-1 the draft token x is accepted
/// when uniform(seed, position+i, 1) < p(x)/q(x): p(x) <= 0 always
/// rejects, otherwise q(x) <= 0 (ratio +inf) always accepts. At the first
/// rejection the next token is drawn from normalize(max(0, p - q)) (from p
/// itself when that is all zero) with uniform(seed, position+i, 2); if all
/// k are accepted, a bonus token is drawn from targetProbs[k] with
/// uniform(seed, position+k, 2). Negative or non-finite probabilities
/// count as 0; a row with no mass yields token 0.
///
/// With one-hot targets (greedy) this accepts exactly the draft tokens that
/// equal the target argmax and then emits the argmax, as greedy decoding
/// without speculation would. Malformed shapes or tokens give {0, -1}.
SpeculativeResult
verifyDraft(const std::vector<std::vector<float>> &targetProbs,
            const std::vector<std::vector<float>> &draftProbs,
            const std::vector<int32_t> &draftTokens, uint64_t seed,
            uint64_t position);

} // namespace moert

#endif // MOEC_RUNTIME_SAMPLER_H
