//===- Speculation.cpp - When speculative decoding pays -------------------===//

#include "runtime/Speculation.h"

#include <algorithm>
#include <cmath>
#include <utility>

using namespace moert;

namespace {
/// Observations of a cost model decay by this much each.
constexpr double kCostDecay = 0.98;
/// Verifications decay the acceptance counts by this much each.
constexpr double kAcceptanceDecay = 1.0 - 1.0 / 256;
/// The prior's weight, in evaluated draft tokens.
constexpr double kPriorWeight = 4;
/// The largest batch the policy considers.
constexpr int64_t kMaxPolicyBatch = 4096;
} // namespace

double moert::expectedSpeedup(double acceptance, int64_t draftTokens,
                              double costRatio) {
  double alpha =
      std::isnan(acceptance) ? 0.0 : std::min(std::max(acceptance, 0.0), 1.0);
  double k = static_cast<double>(std::max<int64_t>(draftTokens, 1));
  double c = std::isnan(costRatio) ? 0.0 : std::max(costRatio, 0.0);
  // Expected tokens per step: 1 + α + ... + α^k.
  double tokens =
      alpha >= 1.0 ? k + 1 : (1.0 - std::pow(alpha, k + 1)) / (1.0 - alpha);
  return tokens / (k * c + 1.0);
}

//===----------------------------------------------------------------------===//
// StepCostModel
//===----------------------------------------------------------------------===//

void StepCostModel::record(int64_t tokens, double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds) || tokens < 1)
    return;
  double n = static_cast<double>(tokens);
  weight = weight * kCostDecay + 1;
  sumN = sumN * kCostDecay + n;
  sumNN = sumNN * kCostDecay + n * n;
  sumT = sumT * kCostDecay + seconds;
  sumNT = sumNT * kCostDecay + n * seconds;
}

double StepCostModel::predict(int64_t tokens) const {
  if (empty())
    return 0;
  double meanN = sumN / weight, meanT = sumT / weight;
  double varN = sumNN / weight - meanN * meanN;
  double slope = 0;
  // Token counts that hardly vary say nothing about the slope.
  if (varN > 1e-6 * std::max(1.0, meanN * meanN))
    slope = std::max(0.0, (sumNT / weight - meanN * meanT) / varN);
  double intercept = meanT - slope * meanN;
  if (intercept < 0) { // A line through the origin instead.
    intercept = 0;
    slope = sumNN > 0 ? sumNT / sumNN : 0;
  }
  return std::max(intercept + slope * static_cast<double>(tokens), 1e-12);
}

//===----------------------------------------------------------------------===//
// SpeculationPolicy
//===----------------------------------------------------------------------===//

SpeculationPolicy::SpeculationPolicy(int64_t draftTokens,
                                     double priorAcceptance,
                                     std::function<double(int64_t)> costRatio)
    : k(std::max<int64_t>(draftTokens, 1)),
      prior(std::isnan(priorAcceptance)
                ? 0.5
                : std::min(std::max(priorAcceptance, 0.0), 1.0)),
      injected(std::move(costRatio)) {}

void SpeculationPolicy::recordVerification(int64_t acceptedTokens,
                                           int64_t evaluatedTokens) {
  accepted = accepted * kAcceptanceDecay + static_cast<double>(acceptedTokens);
  evaluated =
      evaluated * kAcceptanceDecay + static_cast<double>(evaluatedTokens);
}

double SpeculationPolicy::acceptance() const {
  return (accepted + prior * kPriorWeight) / (evaluated + kPriorWeight);
}

double SpeculationPolicy::costRatio(int64_t batch) const {
  batch = std::max<int64_t>(batch, 1);
  if (injected)
    return injected(batch);
  if (target.empty() || draft.empty())
    return -1;
  double plain = target.predict(batch);
  double speculative = static_cast<double>(k) * draft.predict(batch) +
                       target.predict((k + 1) * batch);
  return (speculative - plain) / (static_cast<double>(k) * plain);
}

int64_t SpeculationPolicy::batchLimit(int64_t maxBatch) const {
  maxBatch = std::max<int64_t>(maxBatch, 1);
  if (!injected && (target.empty() || draft.empty()))
    return maxBatch; // Speculate until the draft has been measured.
  double alpha = acceptance();
  for (int64_t b = std::min(maxBatch, kMaxPolicyBatch); b >= 1; --b)
    if (expectedSpeedup(alpha, k, costRatio(b)) > 1.0)
      return b == kMaxPolicyBatch ? maxBatch : b;
  return 0;
}
