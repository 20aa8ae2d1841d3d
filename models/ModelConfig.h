//===- ModelConfig.h - Model description files ------------------*- C++ -*-===//
//
// The in-memory form of a model description (models/*.json) and its reader.
// This library has no MLIR/LLVM dependency and is built with C++ exceptions
// enabled; no exception ever leaves it. Every field is documented in
// models/README.md.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_MODELS_MODELCONFIG_H
#define MOEC_MODELS_MODELCONFIG_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moec {

/// Element type of weights and activations.
enum class DType { BF16, F16, F32 };
/// Normalisation layer kind.
enum class NormKind { RMSNorm, LayerNorm };
/// FFN activation; SwiGLU is `SiLU` with `gated = true`.
enum class Activation { SiLU, GELU, ReLU };
/// Rotary embedding convention (`RotateHalf` is the Hugging Face/Llama one).
enum class RopeStyle { RotateHalf, Interleaved };

/// `"norm"`: the normalisation used before attention, before the MLP and at
/// the end of the model.
struct NormConfig {
  NormKind kind = NormKind::RMSNorm;
  double epsilon = 1e-5;
};

/// `"attention.rope"`: rotary position embedding parameters.
struct RopeConfig {
  double theta = 10000.0;
  RopeStyle style = RopeStyle::RotateHalf;
};

/// `"attention"`: multi-head / grouped-query / multi-query attention.
struct AttentionConfig {
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  bool causal = true;
  /// Absent when the model uses no rotary embedding.
  std::optional<RopeConfig> rope;
};

/// `"mlp"`: a dense FFN or a routed mixture of experts.
struct MLPConfig {
  /// True for `"type": "moe"`; a dense model has `numExperts == 1`, `topK == 1`.
  bool isMoE = false;
  int64_t numExperts = 1;
  int64_t topK = 1;
  /// Renormalise the top-k router probabilities so that they sum to one.
  bool normalizeTopK = true;
  int64_t ffnDim = 0;
  Activation activation = Activation::SiLU;
  bool gated = true;
};

/// A whole decoder-only transformer description.
struct ModelConfig {
  std::string name;
  std::string description;
  int64_t vocabSize = 0;
  int64_t dModel = 0;
  int64_t numLayers = 0;
  int64_t maxContext = 0;
  DType dtype = DType::BF16;
  NormConfig norm;
  AttentionConfig attention;
  MLPConfig mlp;
  bool tieEmbeddings = false;
};

/// Parses and validates a model description. On success returns the config
/// and leaves `errors` empty. On failure returns std::nullopt and appends one
/// message per problem found, each of the form
///   `<json path>: <what was expected>[, got <what was found>]`
/// e.g. `$.attention.num_heads: expected a positive integer, got -3`, or
/// `line 3, column 7: invalid JSON: ...` for a syntax error. Never throws.
std::optional<ModelConfig> parseModelConfig(std::string_view text,
                                            std::vector<std::string> &errors);

/// Reads `path` and parses it with parseModelConfig. A file that cannot be
/// read gives one error naming the path. Never throws.
std::optional<ModelConfig> loadModelConfig(const std::string &path,
                                           std::vector<std::string> &errors);

/// Serialises a config back to the JSON format (every field written, keys in
/// the documented order, two-space indentation, trailing newline). Parsing the
/// result gives back an equal config.
std::string toJson(const ModelConfig &config);

/// Lower-case names used in the JSON format and in IR attributes.
std::string_view stringifyDType(DType type);
std::string_view stringifyNormKind(NormKind kind);
std::string_view stringifyActivation(Activation activation);
std::string_view stringifyRopeStyle(RopeStyle style);

/// Size in bytes of one element of `type`.
int64_t getDTypeBytes(DType type);

} // namespace moec

#endif // MOEC_MODELS_MODELCONFIG_H
