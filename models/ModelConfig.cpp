//===- ModelConfig.cpp - Model description files --------------------------===//
//
// Reader, validator and writer of the model description format documented in
// models/README.md. Every object of the format is read through a FieldReader,
// which knows the JSON path of the object, which keys were asked for (to report
// unknown ones) and where errors go, so that one pass reports every problem.
// nlohmann_json's exceptions are caught here; none leaves this file.
//
//===----------------------------------------------------------------------===//

#include "ModelConfig.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

using namespace moec;

namespace {

/// Objects keep their document order, so that unknown fields are reported in
/// the order they were written and toJson writes keys in the documented order.
using Json = nlohmann::ordered_json;
using Errors = std::vector<std::string>;

/// Largest integer accepted for any field. Larger values are certainly typos,
/// and the limit keeps products of a few dimensions far from int64_t overflow.
constexpr int64_t kMaxInteger = int64_t(1) << 40;

/// Longest shown value after ", got " before it is cut with "...".
constexpr size_t kMaxShownValue = 60;

/// Characters of `$.name`; of keys that paths show as `.key`.
constexpr const char *kNameChars = "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
constexpr const char *kIdentifierChars =
    "abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";

/// Names of enum values in the JSON format, in documented order.
template <typename T> using Names = std::pair<const char *, T>;
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

template <typename T, size_t N>
std::string_view nameOf(const Names<T> (&table)[N], T value) {
  for (const auto &entry : table)
    if (entry.second == value)
      return entry.first;
  return "unknown";
}

/// One-line JSON text of `value`; invalid UTF-8 is replaced, never thrown on.
std::string dumpCompact(const Json &value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// Cuts `text` to kMaxShownValue bytes (at a UTF-8 character boundary).
std::string shorten(std::string text) {
  if (text.size() <= kMaxShownValue)
    return text;
  size_t cut = kMaxShownValue - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
    --cut;
  return text.substr(0, cut) + "...";
}

/// How a value found in the file is shown after ", got ": numbers and null as
/// themselves, strings and booleans with their type name in front, objects and
/// arrays by their type name only.
std::string describe(const Json &value) {
  if (value.is_object() || value.is_array())
    return value.is_object() ? "an object" : "an array";
  if (value.is_string())
    return "a string " + shorten(dumpCompact(value));
  return (value.is_boolean() ? "a boolean " : "") + shorten(dumpCompact(value));
}

/// A value that has the right type but is not allowed: strings as JSON text,
/// anything else as describe() shows it.
std::string showValue(const Json &value) {
  return value.is_string() ? shorten(dumpCompact(value)) : describe(value);
}

/// `path` extended by the object key `key`: `$.a.key`, or `$.a["odd key"]`
/// when the key is not a plain identifier.
std::string childPath(const std::string &path, std::string_view key) {
  if (!key.empty() && !(key[0] >= '0' && key[0] <= '9') &&
      key.find_first_not_of(kIdentifierChars) == std::string_view::npos)
    return path + "." + std::string(key);
  return path + "[" + shorten(dumpCompact(Json(std::string(key)))) + "]";
}

/// Levenshtein distance (insertions, deletions and substitutions).
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0]; // distance(a[0, i-1), b[0, j-1))
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = diagonal + (a[i - 1] != b[j - 1]);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

/// Reads the fields of one JSON object. Each accessor records its key as
/// known, reports problems as `<path>.<key>: ...` into the shared error list,
/// and returns std::nullopt for an absent or invalid value, so that the caller
/// falls back to the default and reading goes on to find further problems.
class FieldReader {
public:
  FieldReader(const Json &object, std::string path, Errors &errors)
      : object(&object), path(std::move(path)), errors(&errors) {}

  std::string pathOf(std::string_view key) const {
    return childPath(path, key);
  }

  /// Reports `<path>.<key>: <message>`.
  void error(std::string_view key, const std::string &message) {
    errors->push_back(pathOf(key) + ": " + message);
  }

  /// Returns the value of `key`, or nullptr when it is absent; an absent
  /// required field is reported as missing, naming what `expected` it to be.
  const Json *get(const char *key, bool required, const std::string &expected) {
    known.push_back(key);
    auto it = object->find(key);
    if (it != object->end())
      return &*it;
    if (required)
      error(key, "missing required field (expected " + expected + ")");
    return nullptr;
  }

  /// Reports `<path>.<key>: expected <expected>, got <shown>`.
  std::nullopt_t fail(const char *key, const std::string &expected,
                      const std::string &shown) {
    error(key, "expected " + expected + ", got " + shown);
    return std::nullopt;
  }

  /// Reads an integer in [minimum, 2^40]; rejects floats, strings and booleans.
  std::optional<int64_t> integer(const char *key, bool required,
                                 int64_t minimum = 1) {
    std::string expected = minimum == 1
                               ? "a positive integer"
                               : "an integer >= " + std::to_string(minimum);
    const Json *value = get(key, required, expected);
    if (!value)
      return std::nullopt;
    bool tooLarge = value->is_number_unsigned() &&
                    value->get<uint64_t>() > uint64_t(kMaxInteger);
    if (tooLarge)
      return fail(key, expected + " (at most 2^40)", describe(*value));
    if (!value->is_number_integer() || value->get<int64_t>() < minimum)
      return fail(key, expected, describe(*value));
    return value->get<int64_t>();
  }

  /// Reads a number (integer or float) strictly between `low` and `high`;
  /// `expected` describes that range.
  std::optional<double> number(const char *key, const std::string &expected,
                               double low, std::optional<double> high) {
    const Json *value = get(key, false, expected);
    if (!value)
      return std::nullopt;
    if (!value->is_number() || !(value->get<double>() > low) ||
        (high && !(value->get<double>() < *high)))
      return fail(key, expected, describe(*value));
    return value->get<double>();
  }

  /// Reads an optional `true` or `false`.
  std::optional<bool> boolean(const char *key) {
    const Json *value = get(key, false, "a boolean");
    if (value && !value->is_boolean())
      return fail(key, "a boolean", describe(*value));
    return value ? std::optional<bool>(value->get<bool>()) : std::nullopt;
  }

  /// Reads a string.
  std::optional<std::string> string(const char *key, bool required) {
    const Json *value = get(key, required, "a string");
    if (value && !value->is_string())
      return fail(key, "a string", describe(*value));
    return value ? std::optional<std::string>(value->get<std::string>())
                 : std::nullopt;
  }

  /// Reads a string that must be one of the names in `table`.
  template <typename T, size_t N>
  std::optional<T> oneOf(const char *key, bool required,
                         const Names<T> (&table)[N]) {
    std::string expected = "one of ";
    for (size_t i = 0; i < N; ++i)
      expected += (i ? ", \"" : "\"") + std::string(table[i].first) + "\"";
    const Json *value = get(key, required, expected);
    if (!value)
      return std::nullopt;
    if (value->is_string())
      for (const auto &entry : table)
        if (value->get_ref<const std::string &>() == entry.first)
          return entry.second;
    return fail(key, expected, showValue(*value));
  }

  /// Returns a reader for the object at `key`, or std::nullopt when it is
  /// absent, null (where `nullable`) or not an object (reported).
  std::optional<FieldReader> child(const char *key, bool required,
                                   bool nullable = false) {
    std::string expected = nullable ? "an object or null" : "an object";
    const Json *value = get(key, required, expected);
    if (!value || (nullable && value->is_null()))
      return std::nullopt;
    if (!value->is_object())
      return fail(key, expected, describe(*value));
    return FieldReader(*value, pathOf(key), *errors);
  }

  /// Reports `key`, if present, as not allowed here, `reason` saying where it
  /// is. The key is not offered as a known field in unknown-field messages.
  void forbid(const char *key, const std::string &reason) {
    forbidden.insert(key);
    if (object->contains(key))
      error(key, reason);
  }

  /// Reports every key of the object that no accessor asked for.
  void reportUnknownFields() {
    for (auto it = object->begin(); it != object->end(); ++it) {
      const std::string &key = it.key();
      if (std::find(known.begin(), known.end(), key) != known.end() ||
          forbidden.count(key))
        continue;
      std::string message = "unknown field; expected one of ";
      std::string suggestion;
      size_t best = 3;
      for (size_t i = 0; i < known.size(); ++i) {
        message += (i ? ", " : "") + known[i];
        if (size_t distance = editDistance(key, known[i]); distance < best)
          best = distance, suggestion = known[i];
      }
      if (!suggestion.empty())
        message += " (did you mean \"" + suggestion + "\"?)";
      error(key, message);
    }
  }

private:
  const Json *object;
  std::string path;
  Errors *errors;
  /// Keys asked for, in the order asked (the documented order).
  std::vector<std::string> known;
  std::set<std::string> forbidden;
};

/// A first pass over the text that finds what the DOM parser hides: the
/// position of the first syntax error (lost for a float overflow, which throws
/// out_of_range) and keys that occur twice in one object (silently merged).
class Scanner : public nlohmann::json_sax<Json> {
public:
  Errors duplicates;
  /// 1-based offset of the last byte read when the first error was found.
  size_t errorByte = 0;
  std::string errorMessage;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t &) override {
    return value();
  }
  bool string(string_t &) override { return value(); }
  bool binary(binary_t &) override { return value(); }
  bool start_object(size_t) override { return frames.push_back({}), true; }
  bool start_array(size_t) override {
    return frames.push_back({true, {}, {}, 0}), true;
  }
  bool end_object() override { return frames.pop_back(), value(); }
  bool end_array() override { return frames.pop_back(), value(); }
  bool key(string_t &key) override {
    frames.back().lastKey = key;
    if (!frames.back().keys.insert(key).second)
      duplicates.push_back(childPath(path(), key) +
                           ": duplicate key; a field may appear only once");
    return true;
  }
  bool parse_error(size_t byte, const std::string &,
                   const nlohmann::detail::exception &e) override {
    errorByte = byte;
    errorMessage = e.what();
    return false;
  }

private:
  /// One open object or array. Paths are built only for a duplicate, so deep
  /// nesting costs linear memory.
  struct Frame {
    bool isArray = false;
    std::set<std::string> keys;
    std::string lastKey;
    size_t nextIndex = 0;
  };
  std::vector<Frame> frames;

  /// Counts a finished array element.
  bool value() {
    if (!frames.empty() && frames.back().isArray)
      ++frames.back().nextIndex;
    return true;
  }
  /// Path of the innermost open object or array.
  std::string path() const {
    std::string path = "$";
    for (size_t i = 0; i + 1 < frames.size(); ++i)
      path = frames[i].isArray
                 ? path + "[" + std::to_string(frames[i].nextIndex) + "]"
                 : childPath(path, frames[i].lastKey);
    return path;
  }
};

/// `line L, column C: invalid JSON: <reason>` for the error the scanner found
/// in `text`. Columns count UTF-8 characters.
std::string syntaxError(std::string_view text, const Scanner &scanner) {
  size_t end =
      std::min(scanner.errorByte - (scanner.errorByte > 0), text.size());
  size_t line = 1, column = 1;
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n')
      line += 1, column = 1;
    else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
      ++column;
  }
  // The message is "[json.exception.parse_error.101] parse error at line 1,
  // column 2: syntax error while parsing value - invalid literal; last read:
  // 'tx'; expected ...", or "[json.exception.out_of_range.406] number
  // overflow parsing '1e400'": keep the reason, without the "last read".
  std::string reason = scanner.errorMessage;
  size_t dash = reason.find(" - "), bracket = reason.find("] ");
  if (dash != std::string::npos || bracket != std::string::npos)
    reason.erase(0, dash != std::string::npos ? dash + 3 : bracket + 2);
  if (size_t at = reason.find("; last read: '"); at != std::string::npos) {
    size_t after = reason.find("'; expected ", at);
    reason.erase(at, after == std::string::npos ? after : after + 1 - at);
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column) +
         ": invalid JSON: " + (reason.empty() ? "syntax error" : reason);
}

/// Reads `$.norm`.
void readNorm(FieldReader &root, NormConfig &norm) {
  std::optional<FieldReader> reader = root.child("norm", true);
  if (!reader)
    return;
  norm.kind = reader->oneOf("type", true, kNormKinds).value_or(norm.kind);
  norm.epsilon = reader->number("epsilon", "a number in (0, 1)", 0.0, 1.0)
                     .value_or(norm.epsilon);
  reader->reportUnknownFields();
}

/// Reads `$.attention` and checks its heads and rope against each other.
void readAttention(FieldReader &root, AttentionConfig &attention) {
  std::optional<FieldReader> reader = root.child("attention", true);
  if (!reader)
    return;
  std::optional<int64_t> heads = reader->integer("num_heads", true);
  std::optional<int64_t> kvHeads = reader->integer("num_kv_heads", true);
  std::optional<int64_t> headDim = reader->integer("head_dim", true);
  attention.numHeads = heads.value_or(0);
  attention.numKVHeads = kvHeads.value_or(0);
  attention.headDim = headDim.value_or(0);
  attention.causal = reader->boolean("causal").value_or(attention.causal);
  if (std::optional<FieldReader> rope = reader->child("rope", false, true)) {
    RopeConfig config;
    config.theta = rope->number("theta", "a positive number", 0.0, std::nullopt)
                       .value_or(config.theta);
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
  mlp.ffnDim = reader->integer("ffn_dim", true).value_or(0);
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
        reader->integer("num_experts", required, 2);
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

/// Parses and validates; appends to `errors` and returns the config, which is
/// meaningful only when nothing was appended.
std::optional<ModelConfig> parseChecked(std::string_view text, Errors &errors) {
  Scanner scanner;
  if (!Json::sax_parse(text.begin(), text.end(), &scanner)) {
    errors.push_back(syntaxError(text, scanner));
    return std::nullopt;
  }
  errors.insert(errors.end(), scanner.duplicates.begin(),
                scanner.duplicates.end());
  Json root = Json::parse(text.begin(), text.end());
  if (!root.is_object()) {
    errors.push_back("$: expected a JSON object, got " + describe(root));
    return std::nullopt;
  }
  ModelConfig config;
  FieldReader reader(root, "$", errors);
  if (std::optional<std::string> name = reader.string("name", true)) {
    if (!name->empty() &&
        name->find_first_not_of(kNameChars) == std::string::npos)
      config.name = *name;
    else
      reader.error("name", "expected a non-empty string of letters, digits, "
                           "'.', '_' and '-', got " +
                               showValue(Json(*name)));
  }
  config.description = reader.string("description", false).value_or("");
  config.vocabSize = reader.integer("vocab_size", true).value_or(0);
  config.dModel = reader.integer("d_model", true).value_or(0);
  config.numLayers = reader.integer("num_layers", true).value_or(0);
  config.maxContext = reader.integer("max_context", true).value_or(0);
  config.dtype = reader.oneOf("dtype", false, kDTypes).value_or(config.dtype);
  config.tieEmbeddings =
      reader.boolean("tie_embeddings").value_or(config.tieEmbeddings);
  readNorm(reader, config.norm);
  readAttention(reader, config.attention);
  readMLP(reader, config.mlp);
  reader.reportUnknownFields();
  return config;
}

/// Appends the concatenation of `parts` unless that throws (out of memory):
/// for catch blocks, from which nothing may escape.
void appendQuietly(Errors &errors,
                   std::initializer_list<std::string_view> parts) noexcept {
  try {
    std::string message;
    for (std::string_view part : parts)
      message += part;
    errors.push_back(std::move(message));
  } catch (...) {
  }
}

} // namespace

std::optional<ModelConfig> moec::parseModelConfig(std::string_view text,
                                                 Errors &errors) {
  try {
    Errors found;
    std::optional<ModelConfig> config = parseChecked(text, found);
    errors.insert(errors.end(), found.begin(), found.end());
    if (found.empty())
      return config;
  } catch (const std::exception &e) {
    appendQuietly(errors, {"$: cannot parse: ", e.what()});
  } catch (...) {
    appendQuietly(errors, {"$: cannot parse: unknown error"});
  }
  return std::nullopt;
}

std::optional<ModelConfig> moec::loadModelConfig(const std::string &path,
                                                Errors &errors) {
  try {
    std::FILE *file = std::fopen(path.c_str(), "rb");
    int error = errno;
    std::string text;
    if (file) {
      char buffer[1 << 16];
      size_t count;
      while ((count = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
        text.append(buffer, count);
      error = std::ferror(file) ? errno : 0;
      std::fclose(file);
    }
    if (error != 0) {
      errors.push_back("cannot read '" + path + "': " + std::strerror(error));
      return std::nullopt;
    }
    return parseModelConfig(text, errors);
  } catch (...) {
    appendQuietly(errors, {"cannot read '", path, "': out of memory"});
    return std::nullopt;
  }
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
