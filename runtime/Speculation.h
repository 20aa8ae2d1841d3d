//===- Speculation.h - When speculative decoding pays -----------*- C++ -*-===//
//
// The on/off policy of speculative decoding inside continuous batching
// (Scheduler with SchedulerOptions::draft). A speculating sequence runs k
// draft forwards and one target forward over k+1 positions and gains, with
// i.i.d. per-token acceptance α, (1 - α^(k+1)) / (1 - α) tokens per step
// (Leviathan et al., 2023). With c the cost of one draft step relative to a
// target step, the expected speedup over plain decoding is
//
//   S(α, k, c) = (1 - α^(k+1)) / ((1 - α) (k c + 1))
//
// ((k+1) / (k c + 1) at α = 1).
//
// c depends on the batch: at small batches a step is bound by reading the
// weights, and verifying k+1 tokens costs about what decoding one does; at
// large batches every token costs compute, and verification k times more.
// The policy therefore works with c(b) for a running batch of b sequences:
//
//  - injected: SchedulerOptions::draftCostRatio(b), used as is;
//  - measured: forward times (std::chrono around every forward()) are fitted
//    by a decayed least-squares line T(n) = t0 + t1 n in the step's token
//    count n, one line for the target (T) and one for the draft (D), and
//        c(b) = (k D(b) + T((k+1) b) - T(b)) / (k T(b)),
//    the extra cost of a speculative step per draft token in target steps.
//    It is D(b)/T(b) when verification costs what a decode does (t1 = 0);
//    before the draft has been timed, c is unknown and speculation stays on
//    so that it gets measured.
//
// α is estimated as accepted / evaluated draft tokens (a draft token is
// evaluated when every draft before it was accepted: the maximum-likelihood
// estimate of a geometric acceptance), counts decayed by 1 - 1/256 per
// verification, plus a prior of `priorAcceptance` worth 4 evaluations.
//
// The batch limit B* is the largest b in [1, min(maxBatch, 4096)] with
// S(α, k, c(b)) > 1 (0 if none; maxBatch while c is unknown). The scheduler
// speculates in a step while its running batch is <= B*.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_SPECULATION_H
#define MOEC_RUNTIME_SPECULATION_H

#include <cstdint>
#include <functional>

namespace moert {

/// S(α, k, c) above; α is clamped to [0, 1], k to >= 1, c to >= 0.
double expectedSpeedup(double acceptance, int64_t draftTokens,
                       double costRatio);

/// A decayed least-squares line: the time of a forward step against its
/// token count.
class StepCostModel {
public:
  /// Adds one observation; older ones weigh 0.98 times less each time.
  void record(int64_t tokens, double seconds);
  bool empty() const { return weight <= 0; }
  /// Predicted seconds for `tokens` tokens (> 0; 0 when empty). The slope
  /// and intercept are kept >= 0; with too little spread in the token
  /// counts seen, the slope is 0 (every step costs the mean).
  double predict(int64_t tokens) const;

private:
  double weight = 0, sumN = 0, sumNN = 0, sumT = 0, sumNT = 0;
};

/// The acceptance estimate, the cost models and the batch limit.
class SpeculationPolicy {
public:
  /// `costRatio`: the injected c(b); empty means measured.
  SpeculationPolicy(int64_t draftTokens, double priorAcceptance,
                    std::function<double(int64_t)> costRatio);

  /// One verification: `accepted` draft tokens accepted out of `evaluated`
  /// tested (min(accepted + 1, proposed)).
  void recordVerification(int64_t accepted, int64_t evaluated);
  void recordTargetForward(int64_t tokens, double seconds) {
    target.record(tokens, seconds);
  }
  void recordDraftForward(int64_t tokens, double seconds) {
    draft.record(tokens, seconds);
  }

  /// The current estimate of α.
  double acceptance() const;
  /// c(b); negative while it is measured and not known yet.
  double costRatio(int64_t batch) const;
  /// B* (see the file comment) for batches up to `maxBatch` (>= 1).
  int64_t batchLimit(int64_t maxBatch) const;

private:
  int64_t k;
  double prior;
  std::function<double(int64_t)> injected;
  double accepted = 0, evaluated = 0;
  StepCostModel target, draft;
};

} // namespace moert

#endif // MOEC_RUNTIME_SPECULATION_H
