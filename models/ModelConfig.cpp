//===- ModelConfig.cpp - Model description files --------------------------===//
//
// Reader, validator and writer of the model description format documented in
// models/README.md. Every object of the format is read through a
// json::FieldReader (models/JsonReader.h), which knows the JSON path of the
// object, which keys were asked for (to report unknown ones) and where errors
// go, so that one pass reports every problem. No exception leaves this file.
//
//===----------------------------------------------------------------------===//

#include "models/ModelConfig.h"

#include "models/JsonReader.h"

#include <optional>
#include <string>

using namespace moec;

/// Upper bounds far above any real model. They keep every product the
/// compiler forms (parameters and bytes summed over all layers) inside
/// int64_t, and a typo from building millions of ops.
static constexpr int64_t kMaxLayers = 10000;
static constexpr int64_t kMaxWidth = int64_t(1) << 17;      // d_model
static constexpr int64_t kMaxFFN = int64_t(1) << 18;        // ffn_dim
static constexpr int64_t kMaxVocab = int64_t(1) << 24;      // vocab_size
static constexpr int64_t kMaxContext = int64_t(1) << 24;    // max_context
static constexpr int64_t kMaxHeads = 4096;                  // heads, head_dim
static constexpr int64_t kMaxExperts = 1024;
using namespace moec::json;

namespace {

/// Names of enum values in the JSON format, in documented order.
const Names<DType> kDTypes[] = {
    {"bf16", DType::BF16}, {"f16", DType::F16}, {"f32", DType::F32}};
const Names<NormKind> kNormKinds[] = {{"rmsnorm", NormKind::RMSNorm},
                                      {"layernorm", NormKind::LayerNorm}};
const Names<Activation> kActivations[] = {{"silu", Activation::SiLU},
                                          {"gelu", Activation::GELU},
                                          {"relu", Activation::ReLU}};
const Names<RopeStyle> kRopeStyles[] = {
    {"rotate_half", RopeStyle::RotateHalf},
    {"interleaved", RopeStyle::Interleaved}};
/// `$.mlp.type`: true for a mixture of experts.
const Names<bool> kMLPTypes[] = {{"moe", true}, {"dense", false}};
/// `$.mlp.router`: only one kind exists so far.
const Names<int> kRouters[] = {{"softmax", 0}};

/// Fields of `$.mlp` that only a mixture of experts may have.
const char *const kMoEOnlyFields[] = {"num_experts", "top_k", "router",
                                      "normalize_top_k"};

/// `$.norm.epsilon`: 0 < epsilon < 1.
NumberRange epsilonRange() {
  NumberRange range;
  range.expected = "a number in (0, 1)";
  range.high = 1.0;
  return range;
}

/// `$.attention.rope.theta`: > 0.
NumberRange thetaRange() {
  NumberRange range;
  range.expected = "a positive number";
  return range;
}

/// Reads `$.norm`.
void readNorm(FieldReader &root, NormConfig &norm) {
  std::optional<FieldReader> reader = root.child("norm", true);
  if (!reader)
    return;
  norm.kind = reader->oneOf("type", true, kNormKinds).value_or(norm.kind);
  norm.epsilon =
      reader->number("epsilon", false, epsilonRange()).value_or(norm.epsilon);
  reader->reportUnknownFields();
}

/// Reads `$.attention` and checks its heads and rope against each other.
void readAttention(FieldReader &root, AttentionConfig &attention) {
  std::optional<FieldReader> reader = root.child("attention", true);
  if (!reader)
    return;
  std::optional<int64_t> heads =
      reader->integer("num_heads", true, 1, kMaxHeads);
  std::optional<int64_t> kvHeads =
      reader->integer("num_kv_heads", true, 1, kMaxHeads);
  std::optional<int64_t> headDim =
      reader->integer("head_dim", true, 1, kMaxHeads);
  attention.numHeads = heads.value_or(0);
  attention.numKVHeads = kvHeads.value_or(0);
  attention.headDim = headDim.value_or(0);
  attention.causal = reader->boolean("causal").value_or(attention.causal);
  if (std::optional<FieldReader> rope = reader->child("rope", false, true)) {
    RopeConfig config;
    config.theta =
        rope->number("theta", false, thetaRange()).value_or(config.theta);
    config.style =
        rope->oneOf("style", false, kRopeStyles).value_or(config.style);
    rope->reportUnknownFields();
    attention.rope = config;
    if (headDim && *headDim % 2 != 0)
      reader->error("head_dim", "must be even when " + reader->pathOf("rope") +
                                    " is set, got " + std::to_string(*headDim));
  }
  if (heads && kvHeads && *heads % *kvHeads != 0)
    reader->error("num_kv_heads", "must divide " + reader->pathOf("num_heads") +
                                      " (" + std::to_string(*heads) +
                                      "), got " + std::to_string(*kvHeads));
  reader->reportUnknownFields();
}

/// Reads `$.mlp`; the routing fields are required for "moe" and rejected for
/// "dense" (a dense MLP is one expert that every token uses).
void readMLP(FieldReader &root, MLPConfig &mlp) {
  std::optional<FieldReader> reader = root.child("mlp", true);
  if (!reader)
    return;
  std::optional<bool> isMoE = reader->oneOf("type", true, kMLPTypes);
  mlp.isMoE = isMoE.value_or(false);
  mlp.ffnDim = reader->integer("ffn_dim", true, 1, kMaxFFN).value_or(0);
  mlp.activation =
      reader->oneOf("activation", true, kActivations).value_or(mlp.activation);
  mlp.gated = reader->boolean("gated").value_or(mlp.gated);
  if (isMoE.has_value() && !*isMoE) {
    for (const char *key : kMoEOnlyFields)
      reader->forbid(key, "only allowed when " + reader->pathOf("type") +
                              " is \"moe\"");
  } else {
    // With an invalid type, still check the routing fields that are present.
    bool required = isMoE.has_value();
    std::optional<int64_t> experts =
        reader->integer("num_experts", required, 2, kMaxExperts);
    std::optional<int64_t> topK = reader->integer("top_k", required);
    reader->oneOf("router", false, kRouters);
    mlp.normalizeTopK =
        reader->boolean("normalize_top_k").value_or(mlp.normalizeTopK);
    if (experts && topK && *topK > *experts)
      reader->error("top_k", "must be at most " +
                                 reader->pathOf("num_experts") + " (" +
                                 std::to_string(*experts) + "), got " +
                                 std::to_string(*topK));
    if (mlp.isMoE) {
      mlp.numExperts = experts.value_or(0);
      mlp.topK = topK.value_or(0);
    }
  }
  reader->reportUnknownFields();
}

/// Reads the root object of a model description; the config is meaningful
/// only when nothing was appended to `errors`.
ModelConfig readModel(const Json &root, Errors &errors) {
  ModelConfig config;
  FieldReader reader(root, "$", errors);
  config.name = reader.name("name", true).value_or("");
  config.description = reader.string("description", false).value_or("");
  config.vocabSize =
      reader.integer("vocab_size", true, 1, kMaxVocab).value_or(0);
  config.dModel = reader.integer("d_model", true, 1, kMaxWidth).value_or(0);
  // Deeper than any real model: a typo would otherwise build millions of ops.
  config.numLayers =
      reader.integer("num_layers", true, 1, kMaxLayers).value_or(0);
  config.maxContext =
      reader.integer("max_context", true, 1, kMaxContext).value_or(0);
  config.dtype = reader.oneOf("dtype", false, kDTypes).value_or(config.dtype);
  config.tieEmbeddings =
      reader.boolean("tie_embeddings").value_or(config.tieEmbeddings);
  readNorm(reader, config.norm);
  readAttention(reader, config.attention);
  readMLP(reader, config.mlp);
  reader.reportUnknownFields();
  return config;
}

} // namespace

std::optional<ModelConfig> moec::parseModelConfig(std::string_view text,
                                                 Errors &errors) {
  return readDocument<ModelConfig>(text, errors, readModel);
}

std::optional<ModelConfig> moec::loadModelConfig(const std::string &path,
                                                Errors &errors) {
  std::optional<std::string> text = readTextFile(path, errors);
  return text ? parseModelConfig(*text, errors) : std::nullopt;
}

/// Returns an empty string only if memory runs out.
std::string moec::toJson(const ModelConfig &config) {
  try {
    Json norm = {{"type", stringifyNormKind(config.norm.kind)},
                 {"epsilon", config.norm.epsilon}};
    Json rope = nullptr;
    if (config.attention.rope)
      rope = {{"theta", config.attention.rope->theta},
              {"style", stringifyRopeStyle(config.attention.rope->style)}};
    Json attention = {{"num_heads", config.attention.numHeads},
                      {"num_kv_heads", config.attention.numKVHeads},
                      {"head_dim", config.attention.headDim},
                      {"causal", config.attention.causal},
                      {"rope", rope}};
    const MLPConfig &mlp = config.mlp;
    Json mlpJson = {{"type", nameOf(kMLPTypes, mlp.isMoE)},
                    {"ffn_dim", mlp.ffnDim},
                    {"activation", stringifyActivation(mlp.activation)},
                    {"gated", mlp.gated}};
    if (mlp.isMoE) {
      mlpJson["num_experts"] = mlp.numExperts;
      mlpJson["top_k"] = mlp.topK;
      mlpJson["router"] = nameOf(kRouters, 0);
      mlpJson["normalize_top_k"] = mlp.normalizeTopK;
    }
    Json root = {{"name", config.name},
                 {"description", config.description},
                 {"vocab_size", config.vocabSize},
                 {"d_model", config.dModel},
                 {"num_layers", config.numLayers},
                 {"max_context", config.maxContext},
                 {"dtype", stringifyDType(config.dtype)},
                 {"tie_embeddings", config.tieEmbeddings},
                 {"norm", norm},
                 {"attention", attention},
                 {"mlp", mlpJson}};
    return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  } catch (...) {
    return std::string();
  }
}

std::string_view moec::stringifyDType(DType t) { return nameOf(kDTypes, t); }
std::string_view moec::stringifyNormKind(NormKind k) {
  return nameOf(kNormKinds, k);
}
std::string_view moec::stringifyActivation(Activation a) {
  return nameOf(kActivations, a);
}
std::string_view moec::stringifyRopeStyle(RopeStyle s) {
  return nameOf(kRopeStyles, s);
}

int64_t moec::getDTypeBytes(DType type) { return type == DType::F32 ? 4 : 2; }
