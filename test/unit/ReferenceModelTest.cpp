//===- ReferenceModelTest.cpp - Tests of the reference model math ---------===//
//
// Hand-built models whose logits are worked out in the comments (RMSNorm,
// LayerNorm, attention with and without RoPE, grouped-query heads, routing,
// gated experts), causality, greedy decoding and input validation of the
// plain C++ reference in ReferenceModel.h.
//
//===----------------------------------------------------------------------===//

#include "ReferenceModel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

using namespace moec;
using namespace moec::reference;

namespace {

using Weights = std::map<std::string, std::vector<float>>;

/// A WeightFn over `w` that throws for a missing name.
WeightFn fromMap(const Weights &w) {
  return [&w](const std::string &name) {
    auto it = w.find(name);
    if (it == w.end())
      throw std::invalid_argument("test: no weight " + name);
    return it->second;
  };
}

/// One layer, no RoPE, causal, dense ReLU MLP (not gated); eps small enough
/// that a vector with mean square 1 is left as it is.
ModelConfig makeConfig(int64_t vocab, int64_t d, int64_t heads, int64_t kvHeads,
                       int64_t headDim, int64_t ffn) {
  ModelConfig c;
  c.name = "reference-test";
  c.vocabSize = vocab;
  c.dModel = d;
  c.numLayers = 1;
  c.maxContext = 64;
  c.norm = {NormKind::RMSNorm, 1e-12};
  c.attention.numHeads = heads;
  c.attention.numKVHeads = kvHeads;
  c.attention.headDim = headDim;
  c.mlp.ffnDim = ffn;
  c.mlp.activation = Activation::ReLU;
  c.mlp.gated = false;
  return c;
}

std::vector<float> identity(int64_t n, float scale = 1.0f) {
  std::vector<float> m(n * n, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    m[i * n + i] = scale;
  return m;
}

/// Turns the MLP of `c` into experts (`gated`: SwiGLU ones).
void makeMoE(ModelConfig &c, int64_t experts, int64_t topK, bool gated) {
  c.mlp.isMoE = true;
  c.mlp.numExperts = experts;
  c.mlp.topK = topK;
  c.mlp.gated = gated;
  c.mlp.activation = gated ? Activation::SiLU : Activation::ReLU;
}

/// Every tensor of `c` at its checkpoint size: zeros, norm scales one, and
/// an identity LM head when vocab == d_model (logits = final normed state).
Weights zeroWeights(const ModelConfig &c) {
  const int64_t d = c.dModel, v = c.vocabSize, ffn = c.mlp.ffnDim,
                e = c.mlp.numExperts,
                q = c.attention.numHeads * c.attention.headDim,
                kv = c.attention.numKVHeads * c.attention.headDim;
  Weights w;
  auto norm = [&](const std::string &prefix) {
    w[prefix + ".weight"].assign(d, 1.0f);
    if (c.norm.kind == NormKind::LayerNorm)
      w[prefix + ".bias"].assign(d, 0.0f);
  };
  w["model.embed_tokens.weight"].assign(v * d, 0.0f);
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    norm(p + "input_layernorm");
    w[p + "self_attn.q_proj.weight"].assign(q * d, 0.0f);
    w[p + "self_attn.k_proj.weight"].assign(kv * d, 0.0f);
    w[p + "self_attn.v_proj.weight"].assign(kv * d, 0.0f);
    w[p + "self_attn.o_proj.weight"].assign(d * q, 0.0f);
    norm(p + "post_attention_layernorm");
    if (c.mlp.isMoE) {
      w[p + "mlp.gate.weight"].assign(e * d, 0.0f);
      if (c.mlp.gated)
        w[p + "mlp.experts.gate_up_proj"].assign(e * 2 * ffn * d, 0.0f);
      else
        w[p + "mlp.experts.up_proj"].assign(e * ffn * d, 0.0f);
      w[p + "mlp.experts.down_proj"].assign(e * d * ffn, 0.0f);
    } else {
      if (c.mlp.gated)
        w[p + "mlp.gate_proj.weight"].assign(ffn * d, 0.0f);
      w[p + "mlp.up_proj.weight"].assign(ffn * d, 0.0f);
      w[p + "mlp.down_proj.weight"].assign(d * ffn, 0.0f);
    }
  }
  norm("model.norm");
  if (!c.tieEmbeddings)
    w["lm_head.weight"] = v == d ? identity(d) : std::vector<float>(v * d);
  return w;
}

/// Replaces an existing tensor, keeping its size.
void set(Weights &w, const std::string &name, std::vector<float> values) {
  ASSERT_TRUE(w.count(name)) << name;
  ASSERT_EQ(w[name].size(), values.size()) << name;
  w[name] = std::move(values);
}

/// x / sqrt(mean(x²) + eps) (RMSNorm with unit scale).
std::vector<double> rmsNormed(std::vector<double> x, double eps = 0.0) {
  double sum = 0.0;
  for (double v : x)
    sum += v * v;
  for (double &v : x)
    v /= std::sqrt(sum / x.size() + eps);
  return x;
}

void expectRow(const std::vector<float> &logits, int64_t row,
               const std::vector<double> &expected, double tolerance = 2e-6) {
  const int64_t n = static_cast<int64_t>(expected.size());
  ASSERT_GE(static_cast<int64_t>(logits.size()), (row + 1) * n);
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(logits[row * n + i], expected[i], tolerance)
        << "row " << row << ", column " << i;
}

double silu(double x) { return x / (1.0 + std::exp(-x)); }
double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

/// Two layers, GQA (4 heads over 2 KV heads), rotate-half RoPE, 4 experts
/// top-2 SwiGLU, with pseudo-random weights.
ModelConfig smallMoEConfig() {
  ModelConfig c = makeConfig(11, 8, 4, 2, 4, 6);
  c.numLayers = 2;
  c.norm.epsilon = 1e-5;
  c.attention.rope = RopeConfig{10000.0, RopeStyle::RotateHalf};
  makeMoE(c, 4, 2, true);
  return c;
}

Weights randomWeights(const ModelConfig &c, uint64_t seed) {
  Weights w = zeroWeights(c);
  uint64_t state = seed;
  auto next = [&] { // uniform in [-0.5, 0.5)
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<float>((state >> 40) / 16777216.0 - 0.5);
  };
  for (auto &[name, values] : w) {
    bool isNorm = name.find("norm") != std::string::npos;
    bool isBias = name.find(".bias") != std::string::npos;
    for (float &v : values)
      v = !isNorm ? next() : isBias ? 0.1f * next() : 1.0f + 0.2f * next();
  }
  return w;
}

TEST(ReferenceModel, HandBuiltDenseModelGivesWorkedOutLogits) {
  // vocab 3, d 4, one head of 4, q = k = v = identity, o_proj = 0.5·I,
  // MLP: relu(n0), relu(n1) back into dims 0 and 1, RMSNorm eps 1e-5.
  ModelConfig c = makeConfig(3, 4, 1, 1, 4, 2);
  c.norm.epsilon = 1e-5;
  Weights w = zeroWeights(c);
  set(w, "model.embed_tokens.weight", {1, 1, 1, 1, 1, -1, -1, 1, -1, 1, -1, 1});
  for (const char *proj : {"q", "k", "v"})
    set(w, std::string("model.layers.0.self_attn.") + proj + "_proj.weight",
        identity(4));
  set(w, "model.layers.0.self_attn.o_proj.weight", identity(4, 0.5f));
  set(w, "model.layers.0.mlp.up_proj.weight", {1, 0, 0, 0, 0, 1, 0, 0});
  set(w, "model.layers.0.mlp.down_proj.weight", {1, 0, 0, 1, 0, 0, 0, 0});
  set(w, "lm_head.weight", {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1});
  std::vector<float> logits = forward(c, fromMap(w), {0, 1});
  // (≈: eps neglected; the numbers below include it.) Embeddings have mean
  // square 1, so norm1 leaves them: x0 = [1,1,1,1], x1 = [1,-1,-1,1].
  // Token 0 sees itself only: attn = x0, h0 = x0 + 0.5·x0 = 1.5·[1,1,1,1];
  //   norm2 → [1,1,1,1], MLP adds [1,1,0,0]: out0 = [2.5, 2.5, 1.5, 1.5],
  //   rms = sqrt(17/4) = 2.0616: logits = [1.21268, 1.21268, 3/2.0616].
  expectRow(logits, 0, {1.2126766, 1.2126766, 1.4552123});
  // Token 1: scores x1·x0/2 = 0 and x1·x1/2 = 2, so weights 1/(1+e²) =
  //   0.119203 and 0.880797; attn = [1, -tanh 1, -tanh 1, 1] (tanh 1 =
  //   0.761594), h1 = [1.5, -1.380797, -1.380797, 1.5], rms 1.441641,
  //   norm2 = [1.040486, -0.957799, ...]: relu keeps only dim 0, out1 =
  //   [2.540484, -1.380797, -1.380797, 1.5], rms 1.768983: logits =
  //   [1.436123, -0.780556, (-1.380797 + 1.5)/1.768983 = 0.067386].
  expectRow(logits, 1, {1.4361229, -0.7805555, 0.0673857});
}

TEST(ReferenceModel, PrefixLogitsDoNotChangeWhenTokensAreAppended) {
  ModelConfig c = smallMoEConfig();
  Weights w = randomWeights(c, 7);
  std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9, 2};
  std::vector<float> full = forward(c, fromMap(w), tokens);
  ASSERT_EQ(full.size(), tokens.size() * 11);
  std::vector<float> prefix = forward(c, fromMap(w), {3, 1, 4});
  for (size_t i = 0; i < prefix.size(); ++i)
    EXPECT_FLOAT_EQ(prefix[i], full[i]) << i;

  // Without the mask the first token sees the later ones.
  c.attention.causal = false;
  std::vector<float> open = forward(c, fromMap(w), tokens);
  double maxDiff = 0.0;
  for (size_t i = 0; i < 11; ++i)
    maxDiff = std::max(maxDiff, std::fabs(double(open[i]) - full[i]));
  EXPECT_GT(maxDiff, 1e-3);
}

TEST(ReferenceModel, RouterTiesGoToTheLowerExpertAndTopKIsRenormalised) {
  const double e = std::exp(1.0);
  // Probabilities ∝ [e, e², e, e]: expert 1, then the tie among 0, 2, 3 goes
  // to 0. Renormalised: e/(e+1) and 1/(e+1); raw: e/(e+3) and 1/(e+3).
  auto chosen = routeTopK({1, 2, 1, 1}, 2, true);
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0].first, 1);
  EXPECT_EQ(chosen[1].first, 0);
  EXPECT_NEAR(chosen[0].second, e / (e + 1), 1e-12);
  EXPECT_NEAR(chosen[1].second, 1 / (e + 1), 1e-12);
  auto raw = routeTopK({1, 2, 1, 1}, 2, false);
  EXPECT_NEAR(raw[0].second, e / (e + 3), 1e-12);
  EXPECT_NEAR(raw[1].second, 1 / (e + 3), 1e-12);
  auto all = routeTopK({0.5, 0.5, 0.5}, 3, false);
  EXPECT_TRUE(all[0].first == 0 && all[1].first == 1 && all[2].first == 2);

  // The same router inside a layer. Attention is zero, so h = x = [1,1,1,1];
  // router rows give logits [1, 2, 1, 1]; expert k computes relu(x0) = 1
  // and writes it to dim k: out = [1 + w0, 1 + w1, 1, 1].
  for (bool normalize : {true, false}) {
    ModelConfig c = makeConfig(4, 4, 1, 1, 1, 1);
    makeMoE(c, 4, 2, false);
    c.mlp.normalizeTopK = normalize;
    Weights w = zeroWeights(c);
    set(w, "model.embed_tokens.weight", std::vector<float>(16, 1.0f));
    std::vector<float> router(16, 0.25f);
    std::fill(router.begin() + 4, router.begin() + 8, 0.5f); // expert 1
    set(w, "model.layers.0.mlp.gate.weight", router);
    set(w, "model.layers.0.mlp.experts.up_proj",
        {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0});
    set(w, "model.layers.0.mlp.experts.down_proj", identity(4));
    double w1 = normalize ? e / (e + 1) : e / (e + 3);
    double w0 = normalize ? 1 / (e + 1) : 1 / (e + 3);
    expectRow(forward(c, fromMap(w), {0}), 0,
              rmsNormed({1 + w0, 1 + w1, 1, 1}));
  }
}

TEST(ReferenceModel, GatedExpertsTakeGateRowsFirst) {
  // x = [1, 2, 0.5, -1] has rms 1.25: n = [0.8, 1.6, 0.4, -0.8].
  // Two experts, zero router: weights 0.5 each. Expert 0: gate row picks n0,
  // up row n1, result to dim 2; expert 1: gate n1, up n0, result to dim 3.
  ModelConfig c = makeConfig(4, 4, 1, 1, 1, 1);
  makeMoE(c, 2, 2, true);
  Weights w = zeroWeights(c);
  std::vector<float> embed = {1, 2, 0.5f, -1, 0, 0, 0, 0,
                              0, 0, 0,    0,  0, 0, 0, 0};
  set(w, "model.embed_tokens.weight", embed);
  set(w, "model.layers.0.mlp.experts.gate_up_proj",
      {1, 0, 0, 0, 0, 1, 0, 0, /*expert 1*/ 0, 1, 0, 0, 1, 0, 0, 0});
  set(w, "model.layers.0.mlp.experts.down_proj", {0, 0, 1, 0, 0, 0, 0, 1});
  expectRow(forward(c, fromMap(w), {0}), 0,
            rmsNormed({1, 2, 0.5 + 0.5 * silu(0.8) * 1.6,
                       -1 + 0.5 * silu(1.6) * 0.8}));

  // Dense gated GELU MLP: gelu(n0) · n1 into dim 2.
  ModelConfig dense = makeConfig(4, 4, 1, 1, 1, 1);
  dense.mlp.gated = true;
  dense.mlp.activation = Activation::GELU;
  Weights dw = zeroWeights(dense);
  set(dw, "model.embed_tokens.weight", embed);
  set(dw, "model.layers.0.mlp.gate_proj.weight", {1, 0, 0, 0});
  set(dw, "model.layers.0.mlp.up_proj.weight", {0, 1, 0, 0});
  set(dw, "model.layers.0.mlp.down_proj.weight", {0, 0, 1, 0});
  expectRow(forward(dense, fromMap(dw), {0}), 0,
            rmsNormed({1, 2, 0.5 + gelu(0.8) * 1.6, -1}));
}

TEST(ReferenceModel, RopeRotateHalfAndInterleavedOnAKnownVector) {
  // Dh = 4, position 1, theta 10000: pair 0 turns by 1 rad, pair 1 by
  // 10000^(-1/2) = 0.01 rad.
  const double c1 = std::cos(1.0), s1 = std::sin(1.0);
  const double c2 = std::cos(0.01), s2 = std::sin(0.01);
  std::vector<double> x = {1, 2, 3, 4};
  auto half = applyRope(x, 1, {10000.0, RopeStyle::RotateHalf});
  // Pairs (0, 2) and (1, 3).
  std::vector<double> expectHalf = {1 * c1 - 3 * s1, 2 * c2 - 4 * s2,
                                    3 * c1 + 1 * s1, 4 * c2 + 2 * s2};
  auto inter = applyRope(x, 1, {10000.0, RopeStyle::Interleaved});
  // Pairs (0, 1) and (2, 3).
  std::vector<double> expectInter = {1 * c1 - 2 * s1, 2 * c1 + 1 * s1,
                                     3 * c2 - 4 * s2, 4 * c2 + 3 * s2};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(half[i], expectHalf[i], 1e-12) << i;
    EXPECT_NEAR(inter[i], expectInter[i], 1e-12) << i;
  }
  EXPECT_EQ(applyRope(x, 0, {10000.0, RopeStyle::RotateHalf}), x);
}

TEST(ReferenceModel, RopeRotatesQueriesAndKeysByPosition) {
  // Dh = 2 (both styles agree). E0 = [1,0,1,0], E1 = [1,0,0,1], normalised
  // ×√2. q and k read dims 0-1, v dims 2-3, o_proj writes to dims 2-3.
  // Token 1: q = √2[cos 1, sin 1], k0 = [√2, 0], k1 = q: scores (÷√2)
  // √2·cos 1 and √2, so p1 = 1/(1 + exp(√2 cos 1 − √2)); v0 = [√2, 0],
  // v1 = [0, √2]: h1 = [1, 0, √2 p0, 1 + √2 p1]. Without RoPE p1 = 0.5.
  ModelConfig c = makeConfig(4, 4, 1, 1, 2, 1);
  Weights w = zeroWeights(c);
  set(w, "model.embed_tokens.weight",
      {1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0});
  set(w, "model.layers.0.self_attn.q_proj.weight", {1, 0, 0, 0, 0, 1, 0, 0});
  set(w, "model.layers.0.self_attn.k_proj.weight", {1, 0, 0, 0, 0, 1, 0, 0});
  set(w, "model.layers.0.self_attn.v_proj.weight", {0, 0, 1, 0, 0, 0, 0, 1});
  set(w, "model.layers.0.self_attn.o_proj.weight", {0, 0, 0, 0, 1, 0, 0, 1});
  const double r2 = std::sqrt(2.0);
  auto expected = [&](double p1) {
    return rmsNormed({1, 0, r2 * (1 - p1), 1 + r2 * p1});
  };
  expectRow(forward(c, fromMap(w), {0, 1}), 1, expected(0.5));
  const double p1 = 1 / (1 + std::exp(r2 * std::cos(1.0) - r2));
  for (RopeStyle style : {RopeStyle::RotateHalf, RopeStyle::Interleaved}) {
    c.attention.rope = RopeConfig{10000.0, style};
    std::vector<float> logits = forward(c, fromMap(w), {0, 1});
    expectRow(logits, 0, rmsNormed({1, 0, 1 + r2, 0}));
    expectRow(logits, 1, expected(p1));
  }
}

TEST(ReferenceModel, GroupedQueryHeadsShareKVHeadsInOrder) {
  // 4 query heads of 1 over 2 KV heads: heads 0, 1 read KV head 0 and heads
  // 2, 3 KV head 1. One token: head h outputs v[h / 2], v = [n0, n1],
  // o_proj = I. x = [1, 2, 0, 0]; with eps 0.5, n = x/√(1.25 + 0.5):
  // h = [1 + n0, 2 + n0, n1, n1], logits = h/√(mean(h²) + 0.5).
  ModelConfig c = makeConfig(4, 4, 4, 2, 1, 1);
  c.norm.epsilon = 0.5;
  Weights w = zeroWeights(c);
  set(w, "model.embed_tokens.weight",
      {1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  set(w, "model.layers.0.self_attn.v_proj.weight", {1, 0, 0, 0, 0, 1, 0, 0});
  set(w, "model.layers.0.self_attn.o_proj.weight", identity(4));
  const double n0 = 1 / std::sqrt(1.75), n1 = 2 / std::sqrt(1.75);
  expectRow(forward(c, fromMap(w), {0}), 0,
            rmsNormed({1 + n0, 2 + n0, n1, n1}, 0.5));
}

TEST(ReferenceModel, LayerNormWithBiasAndTiedEmbeddings) {
  // Layer outputs are zero, so logits = LN(E0) · Eᵀ. E0 = [1, 2, 3, 6]:
  // mean 3, deviations [-2, -1, 0, 3], biased variance 14/4 = 3.5; eps 0.5:
  // s = 1/√4 = 0.5. Scale [1, 2, 1, 1], bias [0, 0, 1, 0]: y = [-1, -1, 1,
  // 1.5]. Logits: y·E0 = -1 - 2 + 3 + 9 = 9, y·E1 = y·[0, 1, 0, 0] = -1.
  ModelConfig c = makeConfig(2, 4, 1, 1, 1, 1);
  c.norm = {NormKind::LayerNorm, 0.5};
  c.tieEmbeddings = true;
  Weights w = zeroWeights(c);
  set(w, "model.embed_tokens.weight", {1, 2, 3, 6, 0, 1, 0, 0});
  set(w, "model.norm.weight", {1, 2, 1, 1});
  set(w, "model.norm.bias", {0, 0, 1, 0});
  expectRow(forward(c, fromMap(w), {0}), 0, {9, -1});
}

TEST(ReferenceModel, GreedyGenerateTakesTheArgmaxLowestIndexOnTies) {
  ModelConfig c = smallMoEConfig();
  Weights w = randomWeights(c, 11);
  std::vector<int32_t> seq = {1, 2, 3};
  std::vector<int32_t> generated = greedyGenerate(c, fromMap(w), seq, 5);
  ASSERT_EQ(generated.size(), 5u);
  for (int32_t token : generated) {
    std::vector<float> logits = forward(c, fromMap(w), seq);
    const float *last = logits.data() + (seq.size() - 1) * 11;
    for (int v = 0; v < 11; ++v)
      EXPECT_LE(last[v], last[token]) << v;
    seq.push_back(token);
  }
  EXPECT_TRUE(greedyGenerate(c, fromMap(w), {1}, 0).empty());

  // Logits ≈ [0, 4, 4, -4]: the tie between 1 and 2 goes to 1.
  ModelConfig tie = makeConfig(4, 4, 1, 1, 1, 1);
  Weights tw = zeroWeights(tie);
  set(tw, "model.embed_tokens.weight", std::vector<float>(16, 1.0f));
  set(tw, "lm_head.weight",
      {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1});
  EXPECT_EQ(greedyGenerate(tie, fromMap(tw), {3}, 3),
            (std::vector<int32_t>{1, 1, 1}));
}

/// Expects `call` to throw std::invalid_argument whose message holds `text`.
template <typename Call>
void expectInvalid(Call call, const std::string &text) {
  try {
    call();
    ADD_FAILURE() << "no exception, expected one about: " << text;
  } catch (const std::invalid_argument &error) {
    EXPECT_NE(std::string(error.what()).find(text), std::string::npos)
        << error.what();
  }
}

TEST(ReferenceModel, RejectsInvalidInputs) {
  ModelConfig c = smallMoEConfig();
  Weights w = randomWeights(c, 3);
  WeightFn fn = fromMap(w);
  expectInvalid([&] { forward(c, fn, {}); }, "empty token sequence");
  expectInvalid([&] { forward(c, fn, {-1}); }, "token id -1 at index 0");
  expectInvalid([&] { forward(c, fn, {0, 11}); }, "token id 11 at index 1");
  expectInvalid([&] { greedyGenerate(c, fn, {}, 1); }, "empty token sequence");
  expectInvalid([&] { greedyGenerate(c, fn, {12}, 1); }, "token id 12");
  expectInvalid([&] { greedyGenerate(c, fn, {1}, -1); }, "steps must be");
  Weights bad = w;
  bad["model.layers.1.self_attn.q_proj.weight"].pop_back();
  expectInvalid([&] { forward(c, fromMap(bad), {0}); },
                "'model.layers.1.self_attn.q_proj.weight' has 127 elements");
  c.attention.numKVHeads = 3;
  expectInvalid([&] { forward(c, fn, {0}); }, "does not divide");
}

} // namespace
