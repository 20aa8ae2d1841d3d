//===- ModelConfigTest.cpp - Tests of the model description reader -------===//
//
// Every error class of models/README.md with its exact message, defaults, the
// dense/MoE distinction, and the shipped model files (round trip, canonical
// form, the fixed gpt4-mini values). MOEC_MODELS_DIR is set by the build.
//
//===----------------------------------------------------------------------===//

#include "models/ModelConfig.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace moec;
using Json = nlohmann::ordered_json;
using Errors = std::vector<std::string>;

namespace {

const char *const kShippedModels[] = {
    "gpt4",     "gpt4-draft", "gpt4-mini", "gpt4-mini-draft",
    "tiny-moe", "tiny-gqa",   "tiny-draft"};

std::string modelPath(const std::string &name) {
  return std::string(MOEC_MODELS_DIR) + "/" + name + ".json";
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// A valid description with only the required fields (a tiny MoE model).
Json minimalMoE() {
  return Json::parse(R"({
    "name": "t",
    "vocab_size": 512, "d_model": 128, "num_layers": 2, "max_context": 256,
    "norm": {"type": "rmsnorm"},
    "attention": {"num_heads": 4, "num_kv_heads": 1, "head_dim": 32},
    "mlp": {"type": "moe", "ffn_dim": 128, "activation": "silu",
            "num_experts": 4, "top_k": 2}
  })");
}

/// A valid dense description with only the required fields.
Json minimalDense() {
  Json doc = minimalMoE();
  doc["mlp"] = {{"type", "dense"}, {"ffn_dim", 128}, {"activation", "silu"}};
  return doc;
}

/// Parses `text`, which must be rejected, and returns the messages.
Errors errorsOfText(const std::string &text) {
  Errors errors;
  std::optional<ModelConfig> config = parseModelConfig(text, errors);
  EXPECT_FALSE(config.has_value()) << text;
  EXPECT_FALSE(errors.empty()) << text;
  return errors;
}

Errors errorsOf(const Json &doc) { return errorsOfText(doc.dump(2)); }

/// Parses `doc`, which must be accepted.
ModelConfig parseOk(const Json &doc) {
  Errors errors;
  std::optional<ModelConfig> config = parseModelConfig(doc.dump(2), errors);
  EXPECT_TRUE(config.has_value());
  EXPECT_EQ(errors, Errors{});
  return config.value_or(ModelConfig{});
}

void expectSameConfig(const ModelConfig &a, const ModelConfig &b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.vocabSize, b.vocabSize);
  EXPECT_EQ(a.dModel, b.dModel);
  EXPECT_EQ(a.numLayers, b.numLayers);
  EXPECT_EQ(a.maxContext, b.maxContext);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.tieEmbeddings, b.tieEmbeddings);
  EXPECT_EQ(a.norm.kind, b.norm.kind);
  EXPECT_EQ(a.norm.epsilon, b.norm.epsilon);
  EXPECT_EQ(a.attention.numHeads, b.attention.numHeads);
  EXPECT_EQ(a.attention.numKVHeads, b.attention.numKVHeads);
  EXPECT_EQ(a.attention.headDim, b.attention.headDim);
  EXPECT_EQ(a.attention.causal, b.attention.causal);
  ASSERT_EQ(a.attention.rope.has_value(), b.attention.rope.has_value());
  if (a.attention.rope) {
    EXPECT_EQ(a.attention.rope->theta, b.attention.rope->theta);
    EXPECT_EQ(a.attention.rope->style, b.attention.rope->style);
  }
  EXPECT_EQ(a.mlp.isMoE, b.mlp.isMoE);
  EXPECT_EQ(a.mlp.numExperts, b.mlp.numExperts);
  EXPECT_EQ(a.mlp.topK, b.mlp.topK);
  EXPECT_EQ(a.mlp.normalizeTopK, b.mlp.normalizeTopK);
  EXPECT_EQ(a.mlp.ffnDim, b.mlp.ffnDim);
  EXPECT_EQ(a.mlp.activation, b.mlp.activation);
  EXPECT_EQ(a.mlp.gated, b.mlp.gated);
}

//===----------------------------------------------------------------------===//
// Accepted descriptions
//===----------------------------------------------------------------------===//

TEST(ModelConfigTest, DefaultsAreApplied) {
  ModelConfig c = parseOk(minimalMoE());
  EXPECT_EQ(c.name, "t");
  EXPECT_EQ(c.description, "");
  EXPECT_EQ(c.vocabSize, 512);
  EXPECT_EQ(c.dModel, 128);
  EXPECT_EQ(c.numLayers, 2);
  EXPECT_EQ(c.maxContext, 256);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_FALSE(c.tieEmbeddings);
  EXPECT_EQ(c.norm.kind, NormKind::RMSNorm);
  EXPECT_EQ(c.norm.epsilon, 1e-5);
  EXPECT_TRUE(c.attention.causal);
  EXPECT_FALSE(c.attention.rope.has_value());
  EXPECT_TRUE(c.mlp.isMoE);
  EXPECT_EQ(c.mlp.numExperts, 4);
  EXPECT_EQ(c.mlp.topK, 2);
  EXPECT_TRUE(c.mlp.normalizeTopK);
  EXPECT_TRUE(c.mlp.gated);
  EXPECT_EQ(c.mlp.activation, Activation::SiLU);
}

TEST(ModelConfigTest, RopeDefaultsAndNull) {
  Json doc = minimalMoE();
  doc["attention"]["rope"] = Json::object();
  ModelConfig c = parseOk(doc);
  ASSERT_TRUE(c.attention.rope.has_value());
  EXPECT_EQ(c.attention.rope->theta, 10000.0);
  EXPECT_EQ(c.attention.rope->style, RopeStyle::RotateHalf);

  doc["attention"]["rope"] = nullptr;
  EXPECT_FALSE(parseOk(doc).attention.rope.has_value());
}

TEST(ModelConfigTest, ExplicitValuesOverrideDefaults) {
  Json doc = minimalMoE();
  doc["description"] = "d";
  doc["dtype"] = "f32";
  doc["tie_embeddings"] = true;
  doc["norm"] = {{"type", "layernorm"}, {"epsilon", 1e-6}};
  doc["attention"]["causal"] = false;
  doc["attention"]["rope"] = {{"theta", 500000}, {"style", "interleaved"}};
  doc["mlp"]["gated"] = false;
  doc["mlp"]["activation"] = "relu";
  doc["mlp"]["normalize_top_k"] = false;
  doc["mlp"]["router"] = "softmax";
  ModelConfig c = parseOk(doc);
  EXPECT_EQ(c.description, "d");
  EXPECT_EQ(c.dtype, DType::F32);
  EXPECT_TRUE(c.tieEmbeddings);
  EXPECT_EQ(c.norm.kind, NormKind::LayerNorm);
  EXPECT_EQ(c.norm.epsilon, 1e-6);
  EXPECT_FALSE(c.attention.causal);
  ASSERT_TRUE(c.attention.rope.has_value());
  EXPECT_EQ(c.attention.rope->theta, 500000.0);
  EXPECT_EQ(c.attention.rope->style, RopeStyle::Interleaved);
  EXPECT_FALSE(c.mlp.gated);
  EXPECT_EQ(c.mlp.activation, Activation::ReLU);
  EXPECT_FALSE(c.mlp.normalizeTopK);
}

TEST(ModelConfigTest, DenseModelHasOneExpert) {
  ModelConfig c = parseOk(minimalDense());
  EXPECT_FALSE(c.mlp.isMoE);
  EXPECT_EQ(c.mlp.numExperts, 1);
  EXPECT_EQ(c.mlp.topK, 1);
  EXPECT_EQ(c.mlp.ffnDim, 128);
}

TEST(ModelConfigTest, LimitsAreInclusive) {
  Json doc = minimalMoE();
  doc["vocab_size"] = int64_t(1) << 24;
  doc["num_layers"] = 10000;
  doc["attention"]["head_dim"] = 33; // odd is fine without rope
  doc["mlp"]["top_k"] = 4;           // top_k == num_experts
  doc["attention"]["num_kv_heads"] = 4;
  ModelConfig c = parseOk(doc);
  EXPECT_EQ(c.vocabSize, int64_t(1) << 24);
  EXPECT_EQ(c.numLayers, 10000);
  EXPECT_EQ(c.attention.headDim, 33);
}

TEST(ModelConfigTest, SuccessLeavesErrorsUntouchedAndFailureAppends) {
  Errors errors = {"earlier"};
  EXPECT_TRUE(parseModelConfig(minimalMoE().dump(), errors).has_value());
  EXPECT_EQ(errors, Errors{"earlier"});
  EXPECT_FALSE(parseModelConfig("[]", errors).has_value());
  EXPECT_EQ(errors,
            (Errors{"earlier", "$: expected a JSON object, got an array"}));
}

//===----------------------------------------------------------------------===//
// Error classes
//===----------------------------------------------------------------------===//

TEST(ModelConfigErrorTest, InvalidJson) {
  EXPECT_EQ(errorsOfText("{\n  \"name\": tru\n}"),
            Errors{"line 2, column 14: invalid JSON: invalid literal"});
  EXPECT_EQ(errorsOfText("{\"a\": 1,}"),
            Errors{"line 1, column 9: invalid JSON: unexpected '}'; expected "
                   "string literal"});
  EXPECT_EQ(errorsOfText(""),
            Errors{"line 1, column 1: invalid JSON: unexpected end of input; "
                   "expected '[', '{', or a literal"});
  EXPECT_EQ(errorsOfText("{} x"),
            Errors{"line 1, column 4: invalid JSON: invalid literal; "
                   "expected end of input"});
  // Columns count characters, not bytes.
  EXPECT_EQ(errorsOfText("{\"é\": 1,\n \"ü\": x}"),
            Errors{"line 2, column 7: invalid JSON: invalid literal"});
  EXPECT_EQ(errorsOfText("{\"a\": 1e400}"),
            Errors{"line 1, column 11: invalid JSON: number overflow parsing "
                   "'1e400'"});
}

TEST(ModelConfigErrorTest, InvalidJsonStopsParsing) {
  // The missing fields are not reported: only the syntax error.
  EXPECT_EQ(errorsOfText("{\"d_model\": \"x\", }").size(), 1u);
}

TEST(ModelConfigErrorTest, RootNotAnObject) {
  EXPECT_EQ(errorsOfText("[1, 2]"),
            Errors{"$: expected a JSON object, got an array"});
  EXPECT_EQ(errorsOfText("42"), Errors{"$: expected a JSON object, got 42"});
  EXPECT_EQ(errorsOfText("\"m\""),
            Errors{"$: expected a JSON object, got a string \"m\""});
  EXPECT_EQ(errorsOfText("null"),
            Errors{"$: expected a JSON object, got null"});
}

TEST(ModelConfigErrorTest, MissingRequiredField) {
  Json doc = minimalMoE();
  doc["attention"].erase("head_dim");
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.attention.head_dim: missing required field (expected a "
                   "positive integer)"});

  doc = minimalMoE();
  doc.erase("norm");
  doc["mlp"].erase("activation");
  doc.erase("name");
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.name: missing required field (expected a string)",
                    "$.norm: missing required field (expected an object)",
                    "$.mlp.activation: missing required field (expected one "
                    "of \"silu\", \"gelu\", \"relu\")"}));
}

TEST(ModelConfigErrorTest, MoEFieldsRequiredForMoE) {
  Json doc = minimalMoE();
  doc["mlp"].erase("num_experts");
  doc["mlp"].erase("top_k");
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.mlp.num_experts: missing required field (expected an "
                    "integer >= 2)",
                    "$.mlp.top_k: missing required field (expected a "
                    "positive integer)"}));
}

TEST(ModelConfigErrorTest, WrongType) {
  struct Case {
    Json value;
    const char *message;
  } cases[] = {
      {"4096", "$.d_model: expected a positive integer, got a string \"4096\""},
      {1.5, "$.d_model: expected a positive integer, got 1.5"},
      {4096.0, "$.d_model: expected a positive integer, got 4096.0"},
      {true, "$.d_model: expected a positive integer, got a boolean true"},
      {nullptr, "$.d_model: expected a positive integer, got null"},
      {Json::array({1}),
       "$.d_model: expected a positive integer, got an array"},
      {Json::object(), "$.d_model: expected a positive integer, got an object"},
  };
  for (const Case &c : cases) {
    Json doc = minimalMoE();
    doc["d_model"] = c.value;
    EXPECT_EQ(errorsOf(doc), Errors{c.message});
  }

  Json doc = minimalMoE();
  doc["tie_embeddings"] = "false";
  doc["norm"] = "rmsnorm";
  doc["attention"]["rope"] = true;
  doc["description"] = 3;
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.description: expected a string, got 3",
                    "$.tie_embeddings: expected a boolean, got a string "
                    "\"false\"",
                    "$.norm: expected an object, got a string \"rmsnorm\"",
                    "$.attention.rope: expected an object or null, got a "
                    "boolean true"}));
}

TEST(ModelConfigErrorTest, OutOfRange) {
  Json doc = minimalMoE();
  doc["norm"]["epsilon"] = 2;
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.norm.epsilon: expected a number in (0, 1), got 2"});
  doc["norm"]["epsilon"] = 0.0;
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.norm.epsilon: expected a number in (0, 1), got 0.0"});
  doc["norm"]["epsilon"] = "1e-5";
  EXPECT_EQ(errorsOf(doc), Errors{"$.norm.epsilon: expected a number in (0, "
                                  "1), got a string \"1e-5\""});

  doc = minimalMoE();
  doc["attention"]["rope"] = {{"theta", -1}};
  EXPECT_EQ(
      errorsOf(doc),
      Errors{"$.attention.rope.theta: expected a positive number, got -1"});

  doc = minimalMoE();
  doc["attention"]["num_heads"] = -3;
  doc["num_layers"] = 0;
  doc["vocab_size"] = (int64_t(1) << 24) + 1;
  doc["mlp"]["num_experts"] = 1;
  doc["mlp"]["top_k"] = 1;
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{"$.vocab_size: expected a positive integer (at most 2^24), "
              "got 16777217",
              "$.num_layers: expected a positive integer, got 0",
              "$.attention.num_heads: expected a positive integer, got -3",
              "$.mlp.num_experts: expected an integer >= 2, got 1"}));

  // Beyond int64_t and beyond uint64_t (which JSON parsers read as a float).
  EXPECT_EQ(
      errorsOfText(R"({"name": "t", "d_model": 18446744073709551615})")[1],
      "$.d_model: expected a positive integer (at most 2^17), got "
      "18446744073709551615");
  EXPECT_EQ(
      errorsOfText(R"({"name": "t", "d_model": 99999999999999999999})")[1],
      "$.d_model: expected a positive integer, got 1e+20");
}

TEST(ModelConfigErrorTest, BadEnumValue) {
  Json doc = minimalMoE();
  doc["mlp"]["activation"] = "swish";
  EXPECT_EQ(errorsOf(doc), Errors{"$.mlp.activation: expected one of \"silu\", "
                                  "\"gelu\", \"relu\", got \"swish\""});

  doc = minimalMoE();
  doc["dtype"] = "BF16"; // names are case-sensitive
  doc["norm"]["type"] = 1;
  doc["attention"]["rope"] = {{"style", "neox"}};
  doc["mlp"]["router"] = "sigmoid";
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.dtype: expected one of \"bf16\", \"f16\", \"f32\", got "
                    "\"BF16\"",
                    "$.norm.type: expected one of \"rmsnorm\", \"layernorm\", "
                    "got 1",
                    "$.attention.rope.style: expected one of \"rotate_half\", "
                    "\"interleaved\", got \"neox\"",
                    "$.mlp.router: expected one of \"softmax\", got "
                    "\"sigmoid\""}));
}

TEST(ModelConfigErrorTest, InvalidMLPTypeStillChecksRoutingFields) {
  Json doc = minimalMoE();
  doc["mlp"]["type"] = "sparse";
  doc["mlp"]["top_k"] = 0;
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.mlp.type: expected one of \"moe\", \"dense\", got "
                    "\"sparse\"",
                    "$.mlp.top_k: expected a positive integer, got 0"}));
}

TEST(ModelConfigErrorTest, InvalidName) {
  Json doc = minimalMoE();
  doc["name"] = "gpt 4/x";
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.name: expected a non-empty string of letters, digits, "
                   "'.', '_' and '-', got \"gpt 4/x\""});
  doc["name"] = "";
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.name: expected a non-empty string of letters, digits, "
                   "'.', '_' and '-', got \"\""});
}

TEST(ModelConfigErrorTest, InconsistentValues) {
  Json doc = minimalMoE();
  doc["attention"]["num_heads"] = 32;
  doc["attention"]["num_kv_heads"] = 5;
  EXPECT_EQ(errorsOf(doc), Errors{"$.attention.num_kv_heads: must divide "
                                  "$.attention.num_heads (32), got 5"});

  doc = minimalMoE();
  doc["mlp"]["num_experts"] = 16;
  doc["mlp"]["top_k"] = 17;
  EXPECT_EQ(errorsOf(doc), Errors{"$.mlp.top_k: must be at most "
                                  "$.mlp.num_experts (16), got 17"});

  doc = minimalMoE();
  doc["attention"]["head_dim"] = 127;
  doc["attention"]["rope"] = Json::object();
  EXPECT_EQ(errorsOf(doc), Errors{"$.attention.head_dim: must be even when "
                                  "$.attention.rope is set, got 127"});
}

TEST(ModelConfigErrorTest, UnknownField) {
  Json doc = minimalMoE();
  doc["attention"]["num_head"] = 4;
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.attention.num_head: unknown field; expected one of "
                   "num_heads, num_kv_heads, head_dim, causal, rope (did you "
                   "mean \"num_heads\"?)"});

  // Suggestions up to edit distance 2 (a swap of two letters is 2), none at
  // 3 or more; keys that are not identifiers are quoted in the path.
  doc = minimalMoE();
  doc["layers"] = 2;
  doc["norm"]["epsilno"] = 1e-5;
  doc["attention"]["rope"] = {{"thetas", 1}, {"thetaxyz", 1}};
  doc["mlp"]["top k"] = 2;
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{
          "$.norm.epsilno: unknown field; expected one of type, epsilon "
          "(did you mean \"epsilon\"?)",
          "$.attention.rope.thetas: unknown field; expected one of theta, "
          "style (did you mean \"theta\"?)",
          "$.attention.rope.thetaxyz: unknown field; expected one of theta, "
          "style",
          "$.mlp[\"top k\"]: unknown field; expected one of type, ffn_dim, "
          "activation, gated, num_experts, top_k, router, normalize_top_k "
          "(did you mean \"top_k\"?)",
          "$.layers: unknown field; expected one of name, description, "
          "vocab_size, d_model, num_layers, max_context, dtype, "
          "tie_embeddings, norm, attention, mlp"}));
}

TEST(ModelConfigErrorTest, MoEOnlyFieldInDenseMLP) {
  for (const char *key :
       {"num_experts", "top_k", "router", "normalize_top_k"}) {
    Json doc = minimalDense();
    doc["mlp"][key] = 2;
    EXPECT_EQ(errorsOf(doc),
              Errors{std::string("$.mlp.") + key +
                     ": only allowed when $.mlp.type is \"moe\""});
  }
  // The known fields offered for a dense MLP are the dense ones.
  Json doc = minimalDense();
  doc["mlp"]["gate"] = true;
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.mlp.gate: unknown field; expected one of type, ffn_dim, "
                   "activation, gated (did you mean \"gated\"?)"});
}

TEST(ModelConfigErrorTest, DuplicateKey) {
  EXPECT_EQ(errorsOfText(R"({"name": "a", "d_model": 1, "d_model": 2,
                         "mlp": {"x": [0, {"k": 1, "k": 2}]}})")[0],
            "$.d_model: duplicate key; a field may appear only once");
  EXPECT_EQ(errorsOfText(R"({"mlp": {"x": [0, {"k": 1, "k": 2}]}})")[0],
            "$.mlp.x[1].k: duplicate key; a field may appear only once");
}

TEST(ModelConfigErrorTest, CollectsAllErrorsInOnePass) {
  Json doc = minimalMoE();
  doc["d_model"] = "4096";
  doc["norm"]["epsilon"] = 2;
  doc["attention"].erase("head_dim");
  doc["attention"]["num_kv_heads"] = 3;
  doc["mlp"]["activation"] = "swish";
  doc["mlp"]["top_k"] = 5;
  doc["dmodel"] = 1;
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{"$.d_model: expected a positive integer, got a string \"4096\"",
              "$.norm.epsilon: expected a number in (0, 1), got 2",
              "$.attention.head_dim: missing required field (expected a "
              "positive integer)",
              "$.attention.num_kv_heads: must divide $.attention.num_heads "
              "(4), got 3",
              "$.mlp.activation: expected one of \"silu\", \"gelu\", "
              "\"relu\", got \"swish\"",
              "$.mlp.top_k: must be at most $.mlp.num_experts (4), got 5",
              "$.dmodel: unknown field; expected one of name, description, "
              "vocab_size, d_model, num_layers, max_context, dtype, "
              "tie_embeddings, norm, attention, mlp (did you mean "
              "\"d_model\"?)"}));
}

TEST(ModelConfigErrorTest, LongValuesAreShortened) {
  Json doc = minimalMoE();
  doc["dtype"] = std::string(200, 'x');
  std::string message = errorsOf(doc).at(0);
  EXPECT_LT(message.size(), 150u);
  EXPECT_EQ(message.substr(message.size() - 3), "...");
}

TEST(ModelConfigErrorTest, UnreadableFile) {
  Errors errors;
  EXPECT_FALSE(loadModelConfig("/nonexistent/model.json", errors).has_value());
  EXPECT_EQ(errors, Errors{"cannot read '/nonexistent/model.json': No such "
                           "file or directory"});
  errors.clear();
  EXPECT_FALSE(loadModelConfig(MOEC_MODELS_DIR, errors).has_value());
  EXPECT_EQ(errors, Errors{std::string("cannot read '") + MOEC_MODELS_DIR +
                           "': Is a directory"});
}

//===----------------------------------------------------------------------===//
// Writing and the shipped models
//===----------------------------------------------------------------------===//

TEST(ModelConfigWriteTest, DenseOmitsRoutingFieldsAndWritesNullRope) {
  std::string text = toJson(parseOk(minimalDense()));
  Json written = Json::parse(text);
  EXPECT_FALSE(written["mlp"].contains("num_experts"));
  EXPECT_FALSE(written["mlp"].contains("top_k"));
  EXPECT_FALSE(written["mlp"].contains("router"));
  EXPECT_FALSE(written["mlp"].contains("normalize_top_k"));
  EXPECT_TRUE(written["attention"]["rope"].is_null());
  EXPECT_EQ(text.back(), '\n');
  std::vector<std::string> keys;
  for (auto it = written.begin(); it != written.end(); ++it)
    keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "name", "description", "vocab_size", "d_model",
                      "num_layers", "max_context", "dtype", "tie_embeddings",
                      "norm", "attention", "mlp"}));
}

TEST(ModelConfigWriteTest, RoundTripKeepsNonDefaultValues) {
  ModelConfig config = parseOk(minimalMoE());
  config.description = "quote \" and \xc3\xa9";
  config.dtype = DType::F16;
  config.norm.epsilon = 1.0 / 3.0;
  config.attention.rope = RopeConfig{123456.789, RopeStyle::Interleaved};
  config.mlp.normalizeTopK = false;
  Errors errors;
  std::optional<ModelConfig> back = parseModelConfig(toJson(config), errors);
  ASSERT_TRUE(back.has_value()) << errors.front();
  expectSameConfig(*back, config);
}

TEST(ModelConfigWriteTest, ShippedModelsRoundTripAndAreCanonical) {
  for (const char *name : kShippedModels) {
    SCOPED_TRACE(name);
    Errors errors;
    std::optional<ModelConfig> config =
        loadModelConfig(modelPath(name), errors);
    ASSERT_TRUE(config.has_value()) << (errors.empty() ? "" : errors.front());
    EXPECT_EQ(config->name, name);
    EXPECT_FALSE(config->description.empty());
    std::string text = toJson(*config);
    EXPECT_EQ(text, readFile(modelPath(name)));
    std::optional<ModelConfig> back = parseModelConfig(text, errors);
    ASSERT_TRUE(back.has_value());
    expectSameConfig(*back, *config);
  }
}

TEST(ModelConfigWriteTest, Gpt4MiniHasTheDesignValues) {
  Errors errors;
  std::optional<ModelConfig> c =
      loadModelConfig(modelPath("gpt4-mini"), errors);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->vocabSize, 32000);
  EXPECT_EQ(c->dModel, 4096);
  EXPECT_EQ(c->numLayers, 24);
  EXPECT_EQ(c->maxContext, 8192);
  EXPECT_EQ(c->dtype, DType::BF16);
  EXPECT_FALSE(c->tieEmbeddings);
  EXPECT_EQ(c->norm.kind, NormKind::RMSNorm);
  EXPECT_EQ(c->norm.epsilon, 1e-5);
  EXPECT_EQ(c->attention.numHeads, 32);
  EXPECT_EQ(c->attention.numKVHeads, 1);
  EXPECT_EQ(c->attention.headDim, 128);
  EXPECT_TRUE(c->attention.causal);
  ASSERT_TRUE(c->attention.rope.has_value());
  EXPECT_EQ(c->attention.rope->theta, 10000.0);
  EXPECT_EQ(c->attention.rope->style, RopeStyle::RotateHalf);
  EXPECT_TRUE(c->mlp.isMoE);
  EXPECT_EQ(c->mlp.numExperts, 16);
  EXPECT_EQ(c->mlp.topK, 2);
  EXPECT_TRUE(c->mlp.normalizeTopK);
  EXPECT_EQ(c->mlp.ffnDim, 4096);
  EXPECT_EQ(c->mlp.activation, Activation::SiLU);
  EXPECT_TRUE(c->mlp.gated);

  // 20.4 B parameters (DESIGN.md): attention, router, experts, norms, embedding
  // and LM head.
  int64_t d = c->dModel, kv = c->attention.numKVHeads * c->attention.headDim;
  int64_t perLayer =
      2 * d * d + 2 * d * kv + 16 * d + 16 * 3 * d * 4096 + 2 * d;
  int64_t total = 24 * perLayer + 2 * 32000 * d + d;
  EXPECT_NEAR(double(total) / 1e9, 20.4, 0.05);
}

TEST(ModelConfigWriteTest, Gpt4HasThePublicAnalysisShape) {
  Errors errors;
  std::optional<ModelConfig> c = loadModelConfig(modelPath("gpt4"), errors);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->numLayers, 120);
  EXPECT_EQ(c->dModel, 10752);
  // Query width 2 * d_model: ~55 B of shared attention with one KV head.
  EXPECT_EQ(c->attention.numHeads * c->attention.headDim, 2 * c->dModel);
  EXPECT_EQ(c->attention.numKVHeads, 1);
  EXPECT_EQ(c->mlp.numExperts, 16);
  EXPECT_EQ(c->mlp.topK, 2);
  EXPECT_EQ(c->mlp.ffnDim, 4 * c->dModel);
  EXPECT_FALSE(c->mlp.gated);
  EXPECT_EQ(c->maxContext, 8192);
}

TEST(ModelConfigWriteTest, NamesAndSizes) {
  EXPECT_EQ(stringifyDType(DType::BF16), "bf16");
  EXPECT_EQ(stringifyDType(DType::F16), "f16");
  EXPECT_EQ(stringifyDType(DType::F32), "f32");
  EXPECT_EQ(stringifyNormKind(NormKind::LayerNorm), "layernorm");
  EXPECT_EQ(stringifyActivation(Activation::GELU), "gelu");
  EXPECT_EQ(stringifyRopeStyle(RopeStyle::RotateHalf), "rotate_half");
  EXPECT_EQ(getDTypeBytes(DType::BF16), 2);
  EXPECT_EQ(getDTypeBytes(DType::F16), 2);
  EXPECT_EQ(getDTypeBytes(DType::F32), 4);
}

} // namespace
