//===- ReferenceModel.cpp - Plain C++ reference of the model math ---------===//
//
// One token at a time, one loop per formula: see ReferenceModel.h. Nothing
// here is shared with the compiler's lowering.
//
//===----------------------------------------------------------------------===//

#include "ReferenceModel.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

using namespace moec;

namespace moec::reference {
namespace {

using Vec = std::vector<double>;

[[noreturn]] void fail(const std::string &message) {
  throw std::invalid_argument("reference model: " + message);
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// Fetches `name` and checks that it holds exactly the elements of `shape`.
std::vector<float> load(const WeightFn &weights, const std::string &name,
                        const std::vector<int64_t> &shape) {
  std::vector<float> data = weights(name);
  int64_t expected = 1;
  for (int64_t dim : shape)
    expected *= dim;
  if (static_cast<int64_t>(data.size()) != expected)
    fail("weight '" + name + "' has " + std::to_string(data.size()) +
         " elements, expected " + std::to_string(expected) + " for shape " +
         formatShape(shape));
  return data;
}

void validateConfig(const ModelConfig &config) {
  const AttentionConfig &attn = config.attention;
  const MLPConfig &mlp = config.mlp;
  if (config.vocabSize <= 0 || config.dModel <= 0 || config.numLayers < 0)
    fail("vocab_size and d_model must be positive, num_layers non-negative");
  if (attn.numHeads <= 0 || attn.numKVHeads <= 0 || attn.headDim <= 0)
    fail("num_heads, num_kv_heads and head_dim must be positive");
  if (attn.numHeads % attn.numKVHeads != 0)
    fail("num_kv_heads (" + std::to_string(attn.numKVHeads) +
         ") does not divide num_heads (" + std::to_string(attn.numHeads) + ")");
  if (attn.rope && attn.headDim % 2 != 0)
    fail("head_dim must be even with rope, got " +
         std::to_string(attn.headDim));
  if (mlp.ffnDim <= 0)
    fail("ffn_dim must be positive");
  if (mlp.isMoE &&
      (mlp.numExperts < 1 || mlp.topK < 1 || mlp.topK > mlp.numExperts))
    fail("need 1 <= top_k <= num_experts, got top_k " +
         std::to_string(mlp.topK) + " of " + std::to_string(mlp.numExperts));
}

void validateTokens(const ModelConfig &config,
                    const std::vector<int32_t> &tokens) {
  if (tokens.empty())
    fail("empty token sequence");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= config.vocabSize)
      fail("token id " + std::to_string(tokens[i]) + " at index " +
           std::to_string(i) + " is outside the vocabulary [0, " +
           std::to_string(config.vocabSize) + ")");
}

/// y = x · Wᵀ with W = w[0 .. out*in) row-major [out, in].
Vec linear(const Vec &x, const float *w, int64_t out, int64_t in) {
  Vec y(out, 0.0);
  for (int64_t o = 0; o < out; ++o) {
    double sum = 0.0;
    for (int64_t i = 0; i < in; ++i)
      sum += x[i] * static_cast<double>(w[o * in + i]);
    y[o] = sum;
  }
  return y;
}

/// Softmax with the maximum subtracted first.
Vec softmax(const Vec &logits) {
  double maxValue = *std::max_element(logits.begin(), logits.end());
  Vec probs(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i)
    sum += probs[i] = std::exp(logits[i] - maxValue);
  for (double &p : probs)
    p /= sum;
  return probs;
}

double activate(Activation activation, double x) {
  switch (activation) {
  case Activation::SiLU:
    return x / (1.0 + std::exp(-x));
  case Activation::GELU:
    return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  case Activation::ReLU:
    return x > 0.0 ? x : 0.0;
  }
  fail("unknown activation");
}

/// Scale (and, for LayerNorm, bias) of one normalisation layer.
struct Norm {
  std::vector<float> weight;
  std::vector<float> bias;
};

Norm loadNorm(const ModelConfig &config, const WeightFn &weights,
              const std::string &prefix) {
  Norm norm;
  norm.weight = load(weights, prefix + ".weight", {config.dModel});
  if (config.norm.kind == NormKind::LayerNorm)
    norm.bias = load(weights, prefix + ".bias", {config.dModel});
  return norm;
}

Vec applyNorm(const ModelConfig &config, const Norm &norm, const Vec &x) {
  const double d = static_cast<double>(x.size());
  Vec y(x.size());
  if (config.norm.kind == NormKind::RMSNorm) {
    double sumSquares = 0.0;
    for (double v : x)
      sumSquares += v * v;
    double scale = 1.0 / std::sqrt(sumSquares / d + config.norm.epsilon);
    for (size_t i = 0; i < x.size(); ++i)
      y[i] = x[i] * scale * norm.weight[i];
    return y;
  }
  double mean = std::accumulate(x.begin(), x.end(), 0.0) / d;
  double variance = 0.0;
  for (double v : x)
    variance += (v - mean) * (v - mean);
  variance /= d;
  double scale = 1.0 / std::sqrt(variance + config.norm.epsilon);
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = (x[i] - mean) * scale * norm.weight[i] + norm.bias[i];
  return y;
}

/// Self-attention of a whole sequence (already normalised), o_proj included.
std::vector<Vec> attention(const ModelConfig &config, const WeightFn &weights,
                           const std::string &prefix,
                           const std::vector<Vec> &x) {
  const AttentionConfig &attn = config.attention;
  const int64_t d = config.dModel, numHeads = attn.numHeads,
                numKV = attn.numKVHeads, headDim = attn.headDim;
  const int64_t qWidth = numHeads * headDim, kvWidth = numKV * headDim;
  const int64_t group = numHeads / numKV;
  const int64_t n = static_cast<int64_t>(x.size());

  auto wq = load(weights, prefix + "q_proj.weight", {qWidth, d});
  auto wk = load(weights, prefix + "k_proj.weight", {kvWidth, d});
  auto wv = load(weights, prefix + "v_proj.weight", {kvWidth, d});
  auto wo = load(weights, prefix + "o_proj.weight", {d, qWidth});

  std::vector<Vec> q(n), k(n), v(n);
  for (int64_t t = 0; t < n; ++t) {
    q[t] = linear(x[t], wq.data(), qWidth, d);
    k[t] = linear(x[t], wk.data(), kvWidth, d);
    v[t] = linear(x[t], wv.data(), kvWidth, d);
  }
  if (attn.rope) {
    // Rotates head `h` of `row` in place for position `t`.
    auto rotate = [&](Vec &row, int64_t h, int64_t t) {
      Vec head(row.begin() + h * headDim, row.begin() + (h + 1) * headDim);
      head = applyRope(std::move(head), t, *attn.rope);
      std::copy(head.begin(), head.end(), row.begin() + h * headDim);
    };
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < numHeads; ++h)
        rotate(q[t], h, t);
      for (int64_t h = 0; h < numKV; ++h)
        rotate(k[t], h, t);
    }
  }

  const double scale = 1.0 / std::sqrt(static_cast<double>(headDim));
  std::vector<Vec> out(n);
  for (int64_t t = 0; t < n; ++t) {
    Vec context(qWidth, 0.0);
    const int64_t visible = attn.causal ? t + 1 : n;
    for (int64_t h = 0; h < numHeads; ++h) {
      const int64_t kvHead = h / group;
      Vec scores(visible);
      for (int64_t s = 0; s < visible; ++s) {
        double dot = 0.0;
        for (int64_t j = 0; j < headDim; ++j)
          dot += q[t][h * headDim + j] * k[s][kvHead * headDim + j];
        scores[s] = dot * scale;
      }
      Vec probs = softmax(scores);
      for (int64_t s = 0; s < visible; ++s)
        for (int64_t j = 0; j < headDim; ++j)
          context[h * headDim + j] += probs[s] * v[s][kvHead * headDim + j];
    }
    out[t] = linear(context, wo.data(), d, qWidth);
  }
  return out;
}

/// The MLP weights of one layer. A dense MLP is held as one expert with the
/// same layout as an MoE expert: [gate rows; up rows] (or up rows only) and
/// down.
struct MLPWeights {
  std::vector<float> router; // [E, d], MoE only
  std::vector<float> gateUp; // [E, 2I, d] gated, [E, I, d] not gated
  std::vector<float> down;   // [E, d, I]
};

MLPWeights loadMLP(const ModelConfig &config, const WeightFn &weights,
                   const std::string &prefix) {
  const MLPConfig &mlp = config.mlp;
  const int64_t d = config.dModel, ffn = mlp.ffnDim;
  MLPWeights w;
  if (mlp.isMoE) {
    const int64_t e = mlp.numExperts;
    w.router = load(weights, prefix + "gate.weight", {e, d});
    w.gateUp =
        mlp.gated
            ? load(weights, prefix + "experts.gate_up_proj", {e, 2 * ffn, d})
            : load(weights, prefix + "experts.up_proj", {e, ffn, d});
    w.down = load(weights, prefix + "experts.down_proj", {e, d, ffn});
    return w;
  }
  if (mlp.gated)
    w.gateUp = load(weights, prefix + "gate_proj.weight", {ffn, d});
  std::vector<float> up = load(weights, prefix + "up_proj.weight", {ffn, d});
  w.gateUp.insert(w.gateUp.end(), up.begin(), up.end());
  w.down = load(weights, prefix + "down_proj.weight", {d, ffn});
  return w;
}

/// Output of expert `e` (0 for a dense MLP) for one token.
Vec expert(const ModelConfig &config, const MLPWeights &w, int64_t e,
           const Vec &x) {
  const MLPConfig &mlp = config.mlp;
  const int64_t d = config.dModel, ffn = mlp.ffnDim;
  const int64_t rows = mlp.gated ? 2 * ffn : ffn;
  const float *gateUp = w.gateUp.data() + e * rows * d;
  Vec hidden(ffn);
  if (mlp.gated) {
    Vec gate = linear(x, gateUp, ffn, d);
    Vec up = linear(x, gateUp + ffn * d, ffn, d);
    for (int64_t i = 0; i < ffn; ++i)
      hidden[i] = activate(mlp.activation, gate[i]) * up[i];
  } else {
    Vec up = linear(x, gateUp, ffn, d);
    for (int64_t i = 0; i < ffn; ++i)
      hidden[i] = activate(mlp.activation, up[i]);
  }
  return linear(hidden, w.down.data() + e * d * ffn, d, ffn);
}

Vec mlpForward(const ModelConfig &config, const MLPWeights &w, const Vec &x) {
  const MLPConfig &mlp = config.mlp;
  if (!mlp.isMoE)
    return expert(config, w, 0, x);
  Vec logits = linear(x, w.router.data(), mlp.numExperts, config.dModel);
  Vec out(config.dModel, 0.0);
  for (auto [e, weight] : routeTopK(logits, mlp.topK, mlp.normalizeTopK)) {
    Vec y = expert(config, w, e, x);
    for (int64_t j = 0; j < config.dModel; ++j)
      out[j] += weight * y[j];
  }
  return out;
}

} // namespace

std::vector<double> applyRope(std::vector<double> head, int64_t position,
                              const RopeConfig &rope) {
  const int64_t headDim = static_cast<int64_t>(head.size());
  if (headDim % 2 != 0)
    fail("rope needs an even head size, got " + std::to_string(headDim));
  const int64_t half = headDim / 2;
  for (int64_t i = 0; i < half; ++i) {
    double angle = static_cast<double>(position) *
                   std::pow(rope.theta, -2.0 * static_cast<double>(i) /
                                            static_cast<double>(headDim));
    double c = std::cos(angle), s = std::sin(angle);
    int64_t a = rope.style == RopeStyle::RotateHalf ? i : 2 * i;
    int64_t b = rope.style == RopeStyle::RotateHalf ? i + half : 2 * i + 1;
    double x = head[a], y = head[b];
    head[a] = x * c - y * s;
    head[b] = y * c + x * s;
  }
  return head;
}

std::vector<std::pair<int64_t, double>>
routeTopK(const std::vector<double> &logits, int64_t topK, bool normalize) {
  const int64_t numExperts = static_cast<int64_t>(logits.size());
  if (topK < 1 || topK > numExperts)
    fail("need 1 <= top_k <= " + std::to_string(numExperts) + ", got " +
         std::to_string(topK));
  Vec probs = softmax(logits);
  std::vector<int64_t> order(numExperts);
  std::iota(order.begin(), order.end(), 0);
  // Total order: larger probability first, then lower index.
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return probs[a] != probs[b] ? probs[a] > probs[b] : a < b;
  });
  std::vector<std::pair<int64_t, double>> chosen;
  double sum = 0.0;
  for (int64_t i = 0; i < topK; ++i) {
    chosen.emplace_back(order[i], probs[order[i]]);
    sum += probs[order[i]];
  }
  if (normalize)
    for (auto &entry : chosen)
      entry.second /= sum;
  return chosen;
}

std::vector<float> forward(const ModelConfig &config, const WeightFn &weights,
                           const std::vector<int32_t> &tokens) {
  validateConfig(config);
  validateTokens(config, tokens);
  const int64_t d = config.dModel, vocab = config.vocabSize;
  const int64_t n = static_cast<int64_t>(tokens.size());

  auto embed = load(weights, "model.embed_tokens.weight", {vocab, d});
  std::vector<Vec> x(n, Vec(d));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < d; ++j)
      x[t][j] = embed[tokens[t] * d + j];

  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    Norm norm1 = loadNorm(config, weights, prefix + "input_layernorm");
    std::vector<Vec> normed(n);
    for (int64_t t = 0; t < n; ++t)
      normed[t] = applyNorm(config, norm1, x[t]);
    std::vector<Vec> attn =
        attention(config, weights, prefix + "self_attn.", normed);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < d; ++j)
        x[t][j] += attn[t][j];

    Norm norm2 = loadNorm(config, weights, prefix + "post_attention_layernorm");
    MLPWeights mlp = loadMLP(config, weights, prefix + "mlp.");
    for (int64_t t = 0; t < n; ++t) {
      Vec y = mlpForward(config, mlp, applyNorm(config, norm2, x[t]));
      for (int64_t j = 0; j < d; ++j)
        x[t][j] += y[j];
    }
  }

  Norm finalNorm = loadNorm(config, weights, "model.norm");
  std::vector<float> head = config.tieEmbeddings
                                ? std::move(embed)
                                : load(weights, "lm_head.weight", {vocab, d});
  std::vector<float> logits(n * vocab);
  for (int64_t t = 0; t < n; ++t) {
    Vec row = linear(applyNorm(config, finalNorm, x[t]), head.data(), vocab, d);
    for (int64_t v = 0; v < vocab; ++v)
      logits[t * vocab + v] = static_cast<float>(row[v]);
  }
  return logits;
}

std::vector<int32_t> greedyGenerate(const ModelConfig &config,
                                    const WeightFn &weights,
                                    std::vector<int32_t> prompt,
                                    int64_t steps) {
  if (steps < 0)
    fail("steps must be non-negative, got " + std::to_string(steps));
  validateConfig(config);
  validateTokens(config, prompt);
  const int64_t vocab = config.vocabSize;
  std::vector<int32_t> generated;
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<float> logits = forward(config, weights, prompt);
    const float *last = logits.data() + (prompt.size() - 1) * vocab;
    int32_t best = 0;
    for (int64_t v = 1; v < vocab; ++v)
      if (last[v] > last[best])
        best = static_cast<int32_t>(v);
    generated.push_back(best);
    prompt.push_back(best);
  }
  return generated;
}

} // namespace moec::reference
