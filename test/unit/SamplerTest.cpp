//===- SamplerTest.cpp - Token sampling and speculative acceptance --------===//

#include "runtime/Sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <utility>

using namespace moert;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

SamplingParams makeParams(float temperature, int32_t topK = 0,
                          float topP = 1.0f, uint64_t seed = 1234) {
  return SamplingParams{temperature, topK, topP, seed};
}

/// Chi-square statistic of `counts` against `probs` over `n` draws; tokens
/// with probability 0 must never be drawn (they add infinity).
double chiSquare(const std::vector<int> &counts,
                 const std::vector<float> &probs, int n) {
  double chi2 = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    double expected = n * static_cast<double>(probs[i]);
    if (expected == 0 && counts[i] != 0)
      return std::numeric_limits<double>::infinity();
    if (expected > 0)
      chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

/// Inverse-CDF draw from `probs` with the given uniform (a draft model's
/// sampler in the speculative tests).
int32_t drawFrom(const std::vector<float> &probs, double u) {
  double cumulative = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    cumulative += probs[i];
    if (u < cumulative)
      return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(probs.size()) - 1;
}

} // namespace

TEST(Philox, MatchesRandom123KnownAnswers) {
  using W4 = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (W4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                          {0xffffffff, 0xffffffff}),
            (W4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                          {0xa4093822, 0x299f31d0}),
            (W4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, UniformIsInRangeAndSeparatesSeedsCountersStreams) {
  double sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double u = uniform(42, i);
    ASSERT_TRUE(u >= 0.0 && u < 1.0) << u;
    sum += u;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  EXPECT_EQ(uniform(7, 3), uniform(7, 3, 0));
  EXPECT_NE(uniform(7, 3), uniform(7, 3, 1));
  EXPECT_NE(uniform(7, 3), uniform(8, 3));
  EXPECT_NE(uniform(7, 3), uniform(7, 4));
  // The high halves of seed and counter matter too.
  EXPECT_NE(uniform(7, 3), uniform(7 | (1ull << 40), 3));
  EXPECT_NE(uniform(7, 3), uniform(7, 3 | (1ull << 40)));
}

TEST(Sampler, ValidateMessages) {
  EXPECT_EQ(validate(makeParams(0), 10), "");
  EXPECT_EQ(validate(makeParams(0.7f, 50, 0.9f), 10), "");
  EXPECT_EQ(validate(makeParams(-1), 10),
            "temperature must be >= 0 and finite, got -1");
  EXPECT_EQ(validate(makeParams(1, 0, 1.5f), 10),
            "top_p must be in (0, 1], got 1.5");
  EXPECT_EQ(validate(makeParams(1, 0, 0.0f), 10),
            "top_p must be in (0, 1], got 0");
  EXPECT_EQ(validate(makeParams(1, -3), 10), "top_k must be >= 0, got -3");
  EXPECT_EQ(validate(makeParams(kInf), 10),
            "temperature must be >= 0 and finite, got inf");
  EXPECT_NE(validate(makeParams(kNaN), 10).find("temperature"),
            std::string::npos);
  EXPECT_NE(validate(makeParams(1, 0, kNaN), 10).find("top_p"),
            std::string::npos);
  EXPECT_EQ(validate(makeParams(1), 0), "vocabulary size must be > 0, got 0");
}

TEST(Sampler, GreedyIsArgmaxWithLowestIndexOnTies) {
  SamplingParams greedy = makeParams(0);
  std::vector<float> logits = {1, 3, 3, 2};
  EXPECT_EQ(sample(logits.data(), 4, greedy, 0), 1);
  logits = {-5, -2, -7};
  EXPECT_EQ(sample(logits.data(), 3, greedy, 9), 1);
  // NaN counts as -inf; nothing usable gives token 0.
  logits = {kNaN, 1, kNaN, 0.5f};
  EXPECT_EQ(sample(logits.data(), 4, greedy, 0), 1);
  logits = {-kInf, kNaN, -kInf};
  EXPECT_EQ(sample(logits.data(), 3, greedy, 0), 0);
  logits = {1, kInf, 2, kInf};
  EXPECT_EQ(sample(logits.data(), 4, greedy, 0), 1);
  std::vector<float> oneHot = probabilities(logits.data(), 4, greedy);
  EXPECT_EQ(oneHot, (std::vector<float>{0, 1, 0, 0}));
}

TEST(Sampler, MalformedInputsDoNotCrash) {
  std::vector<float> logits = {1, 2};
  EXPECT_EQ(sample(nullptr, 2, makeParams(1), 0), -1);
  EXPECT_EQ(sample(logits.data(), 0, makeParams(1), 0), -1);
  EXPECT_TRUE(probabilities(logits.data(), 0, makeParams(1)).empty());
  // Invalid params are interpreted, not rejected.
  EXPECT_EQ(sample(logits.data(), 2, makeParams(-1), 0), 1);
  EXPECT_EQ(sample(logits.data(), 2, makeParams(kNaN), 0), 1);
  EXPECT_EQ(sample(logits.data(), 2, makeParams(1, 0, -0.5f), 0), 1);
  EXPECT_GE(sample(logits.data(), 2, makeParams(1, -3, kNaN), 0), 0);
}

TEST(Sampler, NonFiniteLogitsWithTemperature) {
  SamplingParams params = makeParams(0.8f);
  std::vector<float> logits = {kNaN, 0, -kInf, 1};
  std::vector<float> probs = probabilities(logits.data(), 4, params);
  EXPECT_EQ(probs[0], 0.0f);
  EXPECT_EQ(probs[2], 0.0f);
  EXPECT_NEAR(probs[1] + probs[3], 1.0f, 1e-6f);
  logits = {3, kInf, 5, kInf};
  probs = probabilities(logits.data(), 4, params);
  EXPECT_EQ(probs, (std::vector<float>{0, 0.5f, 0, 0.5f}));
  std::set<int32_t> seen;
  for (uint64_t pos = 0; pos < 200; ++pos)
    seen.insert(sample(logits.data(), 4, params, pos));
  EXPECT_EQ(seen, (std::set<int32_t>{1, 3}));
  logits = {kNaN, -kInf};
  EXPECT_EQ(sample(logits.data(), 2, params, 0), 0);
  EXPECT_EQ(probabilities(logits.data(), 2, params),
            (std::vector<float>{1, 0}));
}

TEST(Sampler, ProbabilitiesApplyTemperatureTopKTopP) {
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                               std::log(0.05f)};
  auto expectNear = [](const std::vector<float> &actual,
                       const std::vector<double> &expected) {
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
      EXPECT_NEAR(actual[i], expected[i], 1e-6) << "token " << i;
  };
  expectNear(probabilities(logits.data(), 4, makeParams(1)),
             {0.5, 0.3, 0.15, 0.05});
  double s =
      std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.05);
  expectNear(probabilities(logits.data(), 4, makeParams(2)),
             {std::sqrt(0.5) / s, std::sqrt(0.3) / s, std::sqrt(0.15) / s,
              std::sqrt(0.05) / s});
  expectNear(probabilities(logits.data(), 4, makeParams(1, 3)),
             {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
  expectNear(probabilities(logits.data(), 4, makeParams(1, 0, 0.75f)),
             {0.625, 0.375, 0, 0});
  // top_p is measured against the mass left after top-k: 0.5/0.95 +
  // 0.3/0.95 = 0.842 >= 0.82 keeps two tokens (0.5 + 0.3 = 0.8 would not).
  expectNear(probabilities(logits.data(), 4, makeParams(1, 3, 0.82f)),
             {0.625, 0.375, 0, 0});
  // Ties in top-k / top-p go to the lower index.
  std::vector<float> flat = {1, 1, 1, 1};
  expectNear(probabilities(flat.data(), 4, makeParams(1, 2)),
             {0.5, 0.5, 0, 0});
  expectNear(probabilities(flat.data(), 4, makeParams(1, 0, 0.45f)),
             {0.5, 0.5, 0, 0});
}

TEST(Sampler, ReproducibleAndPositionDependent) {
  std::vector<float> logits(8, 0.0f); // Uniform over 8 tokens.
  SamplingParams params = makeParams(1, 0, 1, 99);
  std::vector<int32_t> forward, backward(1000);
  for (uint64_t pos = 0; pos < 1000; ++pos)
    forward.push_back(sample(logits.data(), 8, params, pos));
  // Any call order (batch composition, threads) gives the same tokens.
  for (uint64_t pos = 1000; pos-- > 0;)
    backward[pos] = sample(logits.data(), 8, params, pos);
  EXPECT_EQ(forward, backward);
  std::set<int32_t> distinct(forward.begin(), forward.end());
  EXPECT_EQ(distinct.size(), 8u);
  int changes = 0;
  for (size_t i = 1; i < forward.size(); ++i)
    changes += forward[i] != forward[i - 1];
  EXPECT_GT(changes, 800); // ~7/8 of neighbours differ.
  params.seed = 100;
  int same = 0;
  for (uint64_t pos = 0; pos < 1000; ++pos)
    same += sample(logits.data(), 8, params, pos) == forward[pos];
  EXPECT_LT(same, 250); // ~1/8 agree by chance.
}

TEST(Sampler, TopKOneAndTinyTopPEqualGreedy) {
  for (uint64_t pos = 0; pos < 300; ++pos) {
    std::vector<float> logits(16);
    for (size_t i = 0; i < logits.size(); ++i)
      logits[i] = static_cast<float>(std::floor(uniform(5, pos * 16 + i) * 8));
    int32_t greedy = sample(logits.data(), 16, makeParams(0), pos);
    EXPECT_EQ(sample(logits.data(), 16, makeParams(1.3f, 1), pos), greedy);
    EXPECT_EQ(sample(logits.data(), 16, makeParams(0.9f, 0, 1e-6f), pos),
              greedy);
    EXPECT_EQ(probabilities(logits.data(), 16, makeParams(1, 1))[greedy], 1.0f);
  }
}

TEST(Sampler, SampleFollowsProbabilities) {
  const std::vector<float> logits = {1.0f, 0.5f, 2.0f, -1.0f, 0.0f, 1.5f};
  const std::vector<SamplingParams> configs = {
      makeParams(1, 0, 1, 11), makeParams(0.7f, 4, 1, 12),
      makeParams(1.3f, 0, 0.8f, 13), makeParams(1, 5, 0.9f, 14),
      makeParams(3, 0, 1, 15)};
  const int n = 20000;
  for (const SamplingParams &params : configs) {
    std::vector<float> probs = probabilities(logits.data(), 6, params);
    std::vector<int> counts(6, 0);
    for (int pos = 0; pos < n; ++pos)
      ++counts[sample(logits.data(), 6, params, pos)];
    // At most 5 degrees of freedom: P(chi2 > 30) ~ 1.5e-5. Deterministic
    // seeds make the outcome fixed; a wrong distribution gives hundreds.
    EXPECT_LT(chiSquare(counts, probs, n), 30.0)
        << "T=" << params.temperature << " k=" << params.topK
        << " p=" << params.topP;
  }
}

TEST(Sampler, LargeVocabularyTopP) {
  const int64_t vocab = 50000;
  std::vector<float> logits(vocab);
  for (int64_t i = 0; i < vocab; ++i)
    logits[i] = static_cast<float>(8 * uniform(3, i));
  SamplingParams params = makeParams(0.8f, 0, 0.9f, 4);
  std::vector<float> probs = probabilities(logits.data(), vocab, params);
  double total = 0;
  int64_t kept = 0;
  for (float p : probs) {
    total += p;
    kept += p > 0;
  }
  EXPECT_NEAR(total, 1.0, 1e-4);
  EXPECT_GT(kept, 100);
  EXPECT_LT(kept, vocab);
  for (uint64_t pos = 0; pos < 20; ++pos)
    EXPECT_GT(probs[sample(logits.data(), vocab, params, pos)], 0.0f);
}

TEST(Speculative, GreedyTargetAcceptsExactlyMatchingDrafts) {
  auto oneHot = [](int32_t token) {
    std::vector<float> row(5, 0.0f);
    row[token] = 1;
    return row;
  };
  const std::vector<int32_t> argmaxes = {3, 1, 2, 0};
  std::vector<std::vector<float>> target;
  for (int32_t a : argmaxes)
    target.push_back(oneHot(a));
  const std::vector<float> soft = {0.3f, 0.2f, 0.1f, 0.25f, 0.15f};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    // Drafts as one-hot (greedy draft) or soft rows (sampled draft).
    for (bool softDraft : {false, true}) {
      auto check = [&](const std::vector<int32_t> &tokens, int32_t accepted,
                       int32_t next) {
        std::vector<std::vector<float>> draft;
        for (int32_t t : tokens)
          draft.push_back(softDraft ? soft : oneHot(t));
        SpeculativeResult r = verifyDraft(target, draft, tokens, seed, 10);
        EXPECT_EQ(r.acceptedCount, accepted);
        EXPECT_EQ(r.nextToken, next);
      };
      check({3, 1, 4}, 2, 2);
      check({3, 1, 2}, 3, 0); // All accepted: the bonus token.
      check({0, 1, 2}, 0, 3);
    }
  }
}

TEST(Speculative, GreedyDecodingIsUnchangedBySpeculation) {
  // Toy models: logits are a hash of the context; the draft differs.
  auto model = [](const std::vector<int32_t> &context, uint64_t salt) {
    std::vector<float> logits(6);
    uint64_t h = salt;
    for (int32_t t : context)
      h = h * 31 + static_cast<uint64_t>(t) + 1;
    for (size_t i = 0; i < logits.size(); ++i)
      logits[i] = static_cast<float>(4 * uniform(h, i));
    return logits;
  };
  const SamplingParams greedy = makeParams(0);
  const SamplingParams draftParams = makeParams(1.0f, 0, 1, 77);
  std::vector<int32_t> reference = {2};
  while (reference.size() < 40) {
    std::vector<float> l = model(reference, 1);
    reference.push_back(sample(l.data(), 6, greedy, reference.size()));
  }
  std::vector<int32_t> seq = {2};
  int rounds = 0;
  while (seq.size() < 40) {
    ++rounds;
    const uint64_t position = seq.size();
    std::vector<int32_t> context = seq, tokens;
    std::vector<std::vector<float>> draftProbs, targetProbs;
    for (int i = 0; i < 3; ++i) {
      // The draft is the target model at odd positions (salt 1) and a
      // different one at even positions, so drafts are both kept and cut.
      std::vector<float> l = model(context, (position + i) % 2 ? 1 : 2);
      draftProbs.push_back(probabilities(l.data(), 6, draftParams));
      tokens.push_back(sample(l.data(), 6, draftParams, position + i));
      std::vector<float> t = model(context, 1);
      targetProbs.push_back(probabilities(t.data(), 6, greedy));
      context.push_back(tokens.back());
    }
    std::vector<float> t = model(context, 1);
    targetProbs.push_back(probabilities(t.data(), 6, greedy));
    SpeculativeResult r =
        verifyDraft(targetProbs, draftProbs, tokens, 5, position);
    ASSERT_GE(r.nextToken, 0);
    seq.insert(seq.end(), tokens.begin(), tokens.begin() + r.acceptedCount);
    seq.push_back(r.nextToken);
  }
  seq.resize(40);
  EXPECT_EQ(seq, reference);
  EXPECT_LT(rounds, 39); // Some drafts were accepted...
  EXPECT_GT(rounds, 10); // ...and some rejected (k + 1 = 4 tokens a round).
}

TEST(Speculative, EmittedTokensAreDistributedAsTarget) {
  const std::vector<std::vector<float>> target = {{0.1f, 0.4f, 0.3f, 0.2f},
                                                  {0.25f, 0.05f, 0.3f, 0.4f},
                                                  {0.7f, 0.1f, 0.1f, 0.1f}};
  const std::vector<std::vector<float>> draft = {{0.4f, 0.1f, 0.2f, 0.3f},
                                                 {0.25f, 0.25f, 0.25f, 0.25f}};
  const int n = 40000;
  const uint64_t position = 17;
  std::vector<int> first(4, 0), second(4, 0);
  int secondCount = 0, acceptedTotal = 0;
  for (int seed = 0; seed < n; ++seed) {
    std::vector<int32_t> tokens = {
        drawFrom(draft[0], uniform(seed, position)),
        drawFrom(draft[1], uniform(seed, position + 1))};
    SpeculativeResult r = verifyDraft(target, draft, tokens, seed, position);
    ASSERT_GE(r.acceptedCount, 0);
    ASSERT_LE(r.acceptedCount, 2);
    acceptedTotal += r.acceptedCount;
    ++first[r.acceptedCount >= 1 ? tokens[0] : r.nextToken];
    if (r.acceptedCount >= 1) {
      ++secondCount;
      ++second[r.acceptedCount >= 2 ? tokens[1] : r.nextToken];
    }
  }
  // 3 degrees of freedom: P(chi2 > 25) ~ 1.6e-5 (deterministic seeds).
  EXPECT_LT(chiSquare(first, target[0], n), 25.0);
  EXPECT_LT(chiSquare(second, target[1], secondCount), 25.0);
  // The test can tell p from q: against the draft it fails by far.
  EXPECT_GT(chiSquare(first, draft[0], n), 1000.0);
  // Acceptance rate of token 0 is sum min(p, q) = 0.6.
  double rate0 = static_cast<double>(secondCount) / n;
  EXPECT_NEAR(rate0, 0.6, 0.01);
  EXPECT_GT(acceptedTotal, secondCount);
}

TEST(Speculative, EdgeCases) {
  auto result = [](SpeculativeResult r) {
    return std::make_pair(r.acceptedCount, r.nextToken);
  };
  // q(x) == 0 with p(x) > 0 accepts; p(x) == 0 rejects.
  EXPECT_EQ(result(verifyDraft({{0.5f, 0.5f}, {1, 0}}, {{1, 0}}, {1}, 3, 0)),
            std::make_pair(1, 0));
  // Residual max(0, p - q) is all zero here (q dominates p): falls back to p.
  EXPECT_EQ(result(verifyDraft({{0, 1}, {1, 0}}, {{0.5f, 1}}, {0}, 3, 0)),
            std::make_pair(0, 1));
  // k == 0: just a draw from the target row.
  EXPECT_EQ(result(verifyDraft({{0, 0, 1}}, {}, {}, 3, 0)),
            std::make_pair(0, 2));
  // Malformed shapes or tokens.
  EXPECT_EQ(verifyDraft({{1, 0}}, {{1, 0}}, {0}, 3, 0).nextToken, -1);
  EXPECT_EQ(verifyDraft({{1, 0}, {1, 0}}, {{1, 0}}, {2}, 3, 0).nextToken, -1);
  EXPECT_EQ(verifyDraft({{1, 0}, {1}}, {{1, 0}}, {0}, 3, 0).nextToken, -1);
  EXPECT_EQ(verifyDraft({{}}, {}, {}, 3, 0).nextToken, -1);
}
