//===- Sampler.cpp - Token sampling and speculative acceptance ------------===//

#include "runtime/Sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

using namespace moert;

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

std::string moert::validate(const SamplingParams &params, int64_t vocabSize) {
  try {
    std::ostringstream os;
    if (vocabSize <= 0)
      os << "vocabulary size must be > 0, got " << vocabSize;
    else if (!std::isfinite(params.temperature) || params.temperature < 0)
      os << "temperature must be >= 0 and finite, got " << params.temperature;
    else if (params.topK < 0)
      os << "top_k must be >= 0, got " << params.topK;
    else if (!(params.topP > 0 && params.topP <= 1))
      os << "top_p must be in (0, 1], got " << params.topP;
    return os.str();
  } catch (...) {
    return "bad params"; // Short enough not to allocate.
  }
}

//===----------------------------------------------------------------------===//
// Philox4x32-10
//===----------------------------------------------------------------------===//

std::array<uint32_t, 4> moert::philox4x32_10(std::array<uint32_t, 4> ctr,
                                             std::array<uint32_t, 2> key) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round != 0) {
      key[0] += W0;
      key[1] += W1;
    }
    uint64_t p0 = static_cast<uint64_t>(M0) * ctr[0];
    uint64_t p1 = static_cast<uint64_t>(M1) * ctr[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32);
    uint32_t lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32);
    uint32_t lo1 = static_cast<uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

double moert::uniform(uint64_t seed, uint64_t counter, uint64_t stream) {
  auto lo = [](uint64_t v) { return static_cast<uint32_t>(v); };
  auto hi = [](uint64_t v) { return static_cast<uint32_t>(v >> 32); };
  std::array<uint32_t, 4> out = philox4x32_10(
      {lo(counter), hi(counter), lo(stream), hi(stream)}, {lo(seed), hi(seed)});
  uint64_t bits = ((static_cast<uint64_t>(out[0]) << 32) | out[1]) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

//===----------------------------------------------------------------------===//
// Sampling
//===----------------------------------------------------------------------===//

namespace {

constexpr uint64_t kSampleStream = 0;
constexpr uint64_t kAcceptStream = 1;
constexpr uint64_t kResampleStream = 2;

/// Token ids are int32_t: a vocabulary must fit.
bool badVocab(const float *logits, int64_t vocabSize) {
  return !logits || vocabSize <= 0 ||
         vocabSize > std::numeric_limits<int32_t>::max();
}

bool isGreedy(const SamplingParams &params) {
  return !(params.temperature > 0) || !std::isfinite(params.temperature);
}

/// Argmax with NaN as -inf and the lowest index winning ties; 0 when no
/// logit is above -inf.
int32_t argmax(const float *logits, int64_t vocabSize) {
  int64_t best = 0;
  float bestValue = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocabSize; ++i) {
    if (logits[i] > bestValue) { // False for NaN.
      bestValue = logits[i];
      best = i;
    }
  }
  return static_cast<int32_t>(best);
}

/// Fills `weights` with the unnormalised probabilities of the kept tokens
/// (temperature, top-k, top-p applied; zero elsewhere) and returns their sum,
/// summed in index order. Returns 0 when no logit is usable.
double keptWeights(const float *logits, int64_t vocabSize,
                   const SamplingParams &params, std::vector<double> &weights) {
  const size_t n = static_cast<size_t>(vocabSize);
  weights.assign(n, 0.0);
  bool anyFinite = false, anyPosInf = false;
  double maxLogit = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i) {
    float l = logits[i];
    if (std::isfinite(l)) {
      anyFinite = true;
      maxLogit = std::max(maxLogit, static_cast<double>(l));
    } else if (l > 0) {
      anyPosInf = true;
    }
  }
  if (anyPosInf) {
    // +inf dominates every finite logit: the +inf tokens share the mass.
    for (size_t i = 0; i < n; ++i)
      weights[i] = (std::isinf(logits[i]) && logits[i] > 0) ? 1.0 : 0.0;
  } else if (anyFinite) {
    const double temperature = params.temperature;
    for (size_t i = 0; i < n; ++i)
      if (std::isfinite(logits[i]))
        weights[i] =
            std::exp((static_cast<double>(logits[i]) - maxLogit) / temperature);
  } else {
    return 0.0;
  }

  const bool limitK = params.topK > 0 && params.topK < vocabSize;
  const bool limitP = params.topP < 1.0f; // False for NaN.
  if (limitK || limitP) {
    // Order: descending weight, ties by lower index (a strict total order,
    // so every partial sort yields the same prefix). Entries carry their
    // weight to keep the sort cache-friendly.
    struct Entry {
      double weight;
      int32_t index;
    };
    std::vector<Entry> order(n);
    for (size_t i = 0; i < n; ++i)
      order[i] = {weights[i], static_cast<int32_t>(i)};
    auto before = [](const Entry &a, const Entry &b) {
      return a.weight > b.weight || (a.weight == b.weight && a.index < b.index);
    };
    const size_t limit = limitK ? static_cast<size_t>(params.topK) : n;
    size_t sorted = 0;
    auto sortPrefix = [&](size_t count) {
      if (count > n / 4) // Growing further: one full sort is cheaper.
        count = n;
      if (count <= sorted)
        return;
      if (count == n)
        std::sort(order.begin(), order.end(), before);
      else
        std::partial_sort(order.begin(), order.begin() + count, order.end(),
                          before);
      sorted = count;
    };
    size_t keep = limit;
    if (limitP) {
      double mass = 0.0; // Mass left after top-k.
      if (limitK) {
        sortPrefix(limit);
        for (size_t j = 0; j < limit; ++j)
          mass += order[j].weight;
      } else {
        for (size_t i = 0; i < n; ++i)
          mass += weights[i];
      }
      const double target = static_cast<double>(params.topP) * mass;
      double cumulative = 0.0;
      for (size_t j = 0; j < limit; ++j) {
        if (j >= sorted)
          sortPrefix(std::max<size_t>(64, 4 * sorted));
        cumulative += order[j].weight;
        if (cumulative >= target) {
          keep = j + 1;
          break;
        }
      }
    } else {
      sortPrefix(limit);
    }
    // order[keep, n) holds exactly the dropped tokens.
    for (size_t j = keep; j < n; ++j)
      weights[order[j].index] = 0.0;
  }

  double total = 0.0;
  for (size_t i = 0; i < n; ++i)
    total += weights[i];
  return total;
}

/// Inverse CDF in index order over non-negative weights with sum `total`
/// (summed in index order, so the running sum ends exactly at it).
/// Returns the last positive-weight index if rounding runs off the end.
int32_t drawIndex(const std::vector<double> &weights, double total, double u) {
  const double target = u * total;
  double cumulative = 0.0;
  int32_t last = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!(weights[i] > 0))
      continue;
    cumulative += weights[i];
    last = static_cast<int32_t>(i);
    if (cumulative > target)
      return last;
  }
  return last;
}

} // namespace

int32_t moert::sample(const float *logits, int64_t vocabSize,
                      const SamplingParams &params, uint64_t position) {
  if (badVocab(logits, vocabSize))
    return -1;
  if (isGreedy(params))
    return argmax(logits, vocabSize);
  try {
    std::vector<double> weights;
    double total = keptWeights(logits, vocabSize, params, weights);
    if (!(total > 0))
      return 0;
    return drawIndex(weights, total,
                     uniform(params.seed, position, kSampleStream));
  } catch (...) {
    // Out of memory: the only allocation-free answer left is greedy.
    return argmax(logits, vocabSize);
  }
}

std::vector<float> moert::probabilities(const float *logits,
                                        int64_t vocabSize,
                                        const SamplingParams &params) {
  if (badVocab(logits, vocabSize))
    return {};
  try {
    std::vector<float> result(static_cast<size_t>(vocabSize), 0.0f);
    if (isGreedy(params)) {
      result[argmax(logits, vocabSize)] = 1.0f;
      return result;
    }
    std::vector<double> weights;
    double total = keptWeights(logits, vocabSize, params, weights);
    if (!(total > 0)) {
      result[0] = 1.0f;
      return result;
    }
    for (size_t i = 0; i < weights.size(); ++i)
      result[i] = static_cast<float>(weights[i] / total);
    return result;
  } catch (...) {
    return {};
  }
}

//===----------------------------------------------------------------------===//
// Speculative acceptance
//===----------------------------------------------------------------------===//

namespace {

/// A probability as a usable weight: negative and non-finite values are 0.
double weightOf(float p) {
  return (std::isfinite(p) && p > 0) ? static_cast<double>(p) : 0.0;
}

/// Inverse-CDF draw in index order from the weights `weight(j)`, j < size,
/// without allocating; -1 when they have no mass.
template <typename WeightFn>
int32_t drawFrom(size_t size, WeightFn weight, double u) {
  double total = 0.0;
  for (size_t j = 0; j < size; ++j)
    total += weight(j);
  if (!(total > 0) || !std::isfinite(total))
    return -1;
  const double target = u * total;
  double cumulative = 0.0;
  int32_t last = -1;
  for (size_t j = 0; j < size; ++j) {
    double w = weight(j);
    if (!(w > 0))
      continue;
    cumulative += w;
    last = static_cast<int32_t>(j);
    if (cumulative > target)
      return last;
  }
  return last;
}

/// A draw from the probability row `p`; token 0 when it has no mass.
int32_t drawFromRow(const std::vector<float> &p, double u) {
  int32_t token = drawFrom(
      p.size(), [&](size_t j) { return weightOf(p[j]); }, u);
  return token < 0 ? 0 : token;
}

} // namespace

SpeculativeResult
moert::verifyDraft(const std::vector<std::vector<float>> &targetProbs,
                   const std::vector<std::vector<float>> &draftProbs,
                   const std::vector<int32_t> &draftTokens, uint64_t seed,
                   uint64_t position) {
  const SpeculativeResult malformed{0, -1};
  const size_t k = draftTokens.size();
  if (k >= static_cast<size_t>(std::numeric_limits<int32_t>::max()) ||
      targetProbs.size() != k + 1 || draftProbs.size() != k)
    return malformed;
  const size_t vocab = targetProbs[0].size();
  if (vocab == 0 ||
      vocab > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return malformed;
  for (const auto &row : targetProbs)
    if (row.size() != vocab)
      return malformed;
  for (const auto &row : draftProbs)
    if (row.size() != vocab)
      return malformed;
  for (int32_t token : draftTokens)
    if (token < 0 || static_cast<size_t>(token) >= vocab)
      return malformed;

  for (size_t i = 0; i < k; ++i) {
    const std::vector<float> &p = targetProbs[i];
    const std::vector<float> &q = draftProbs[i];
    const int32_t x = draftTokens[i];
    const double px = weightOf(p[x]), qx = weightOf(q[x]);
    bool accept;
    if (!(px > 0))
      accept = false;
    else if (!(qx > 0) || px >= qx)
      accept = true; // Ratio +inf or >= 1.
    else
      accept = uniform(seed, position + i, kAcceptStream) < px / qx;
    if (accept)
      continue;

    const double u = uniform(seed, position + i, kResampleStream);
    int32_t token = drawFrom(
        vocab,
        [&](size_t j) {
          return std::max(0.0, weightOf(p[j]) - weightOf(q[j]));
        },
        u);
    if (token < 0)
      token = drawFromRow(p, u);
    return {static_cast<int32_t>(i), token};
  }
  return {static_cast<int32_t>(k),
          drawFromRow(targetProbs[k],
                      uniform(seed, position + k, kResampleStream))};
}
