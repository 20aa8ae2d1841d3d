//===- ArtifactTest.cpp - Reading and validating moec artifacts -----------===//

#include "runtime/Artifact.h"
#include "runtime/StepShapes.h"
#include "runtime/Base64.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

using namespace moert;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char *kName = "a.json";

json weight(const std::string &name, const std::string &dtype,
            std::vector<int64_t> shape, std::vector<int64_t> local,
            std::vector<int64_t> splits = {},
            std::vector<int64_t> chunks = {}) {
  return {{"name", name},         {"dtype", dtype},   {"shape", shape},
          {"local_shape", local}, {"splits", splits}, {"chunks", chunks}};
}

/// A valid artifact as the compiler would describe it: 2 pipeline stages of
/// 2 tensor-parallel ranks, 4 layers, a few sharded weights.
json validArtifact() {
  json stage0 = {
      {"stage", 0},
      {"first_rank", 0},
      {"ranks", 2},
      {"first_layer", 0},
      {"layers", 2},
      {"weights",
       {weight("model.embed_tokens.weight", "bf16", {64, 16}, {32, 16}, {2, 1}),
        weight("model.layers.0.mlp.experts.gate_up", "bf16", {4, 16, 32},
               {4, 16, 16}, {1, 1, 2}, {1, 1, 2}),
        weight("model.layers.0.input_layernorm.weight", "f32", {16}, {16})}},
      {"kv_cache",
       {{"block_size", 16},
        {"bytes_per_token", 256},
        {"blocks", 100},
        {"sequence_length", 128},
        {"sequences", 8}}},
      {"program", "func.func @forward_stage0() {\n  return\n}"}};
  json stage1 = {
      {"stage", 1},
      {"first_rank", 2},
      {"ranks", 2},
      {"first_layer", 2},
      {"layers", 2},
      {"weights",
       {weight("model.layers.2.self_attn.o_proj.weight", "f16", {16, 16},
               {16, 8}, {1, 2}),
        weight("lm_head.weight", "bf16", {64, 16}, {32, 16}, {2, 1}, {}),
        weight("model.norm.weight", "f32", {16}, {16}, {1})}},
      {"memory",
       {{"weights", 1000},
        {"activations", 200},
        {"workspace", 30},
        {"kv_cache", 4},
        {"usable", 5000}}},
      {"program", "func.func @forward_stage1() {\n  return\n}"}};
  return {{"format", "moec-artifact"},
          {"version", 6},
          {"target", "host"},
          {"model",
           {{"name", "tiny-moe"},
            {"vocab_size", 64},
            {"d_model", 16},
            {"num_layers", 4},
            {"max_context", 128},
            {"experts", 4},
            {"top_k", 2},
            {"dtype", "bf16"}}},
          {"plan",
           {{"pipeline_stages", 2},
            {"tensor_parallel", 2},
            {"expert_parallel", 2},
            {"expert_all_to_all", true},
            {"ranks", 4}}},
          {"stages", {stage0, stage1}},
          {"kernels", {{{"name", "k0"}, {"mlir", "func.func @k0()"}}}}};
}

/// The hash of `text` with the checksum digits read as zeros.
uint64_t contentHash(std::string text) {
  size_t at = text.find("\"checksum\": \"fnv1a64:") + 21;
  text.replace(at, 16, std::string(16, '0'));
  return fnv1a64(text);
}

std::string hex(uint64_t value) {
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016llx",
                static_cast<unsigned long long>(value));
  return digits;
}

/// Writes `artifact` as moec does: sorted keys, 2-space indentation, trailing
/// newline, checksum over the text with zero digits patched in.
std::string serialize(json artifact) {
  artifact["checksum"] = "fnv1a64:0000000000000000";
  std::string text = artifact.dump(2) + "\n";
  size_t at = text.find("\"checksum\": \"fnv1a64:") + 21;
  text.replace(at, 16, hex(fnv1a64(text)));
  return text;
}

/// The error parsing `text` gives ("" if it parses).
std::string parseError(const std::string &text) {
  std::string error;
  std::unique_ptr<Artifact> artifact = Artifact::parse(text, error, kName);
  EXPECT_EQ(artifact == nullptr, !error.empty());
  return artifact ? "" : error;
}

std::string errorOf(const json &artifact) {
  return parseError(serialize(artifact));
}

std::unique_ptr<Artifact> parseValid() {
  std::string error;
  std::unique_ptr<Artifact> artifact =
      Artifact::parse(serialize(validArtifact()), error, kName);
  EXPECT_TRUE(artifact) << error;
  return artifact;
}

TEST(Fnv1a64, KnownValues) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(Artifact, ParsesValidArtifact) {
  std::unique_ptr<Artifact> artifact = parseValid();
  ASSERT_TRUE(artifact);
  EXPECT_EQ(artifact->target(), "host");
  EXPECT_EQ(artifact->checksum().substr(0, 8), "fnv1a64:");
  const ModelInfo &model = artifact->model();
  EXPECT_EQ(model.name, "tiny-moe");
  EXPECT_EQ(model.vocabSize, 64);
  EXPECT_EQ(model.dModel, 16);
  EXPECT_EQ(model.numLayers, 4);
  EXPECT_EQ(model.maxContext, 128);
  EXPECT_EQ(model.dtype, DType::BF16);
  const PlanInfo &plan = artifact->plan();
  EXPECT_EQ(plan.pipelineStages, 2);
  EXPECT_EQ(plan.tensorParallel, 2);
  EXPECT_EQ(plan.expertParallel, 2);
  EXPECT_TRUE(plan.expertAllToAll);
  EXPECT_EQ(plan.ranks, 4);
  ASSERT_EQ(artifact->stages().size(), 2u);
  const StageInfo &first = artifact->stages()[0];
  EXPECT_EQ(first.firstRank, 0);
  EXPECT_EQ(first.layers, 2);
  ASSERT_EQ(first.weights.size(), 3u);
  EXPECT_EQ(first.weights[1].chunks, (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(first.weights[1].localShape, (std::vector<int64_t>{4, 16, 16}));
  EXPECT_EQ(first.weights[2].dtype, DType::F32);
  EXPECT_EQ(first.weightBytes(), 32 * 16 * 2 + 4 * 16 * 16 * 2 + 16 * 4);
  ASSERT_TRUE(first.kvCache);
  EXPECT_EQ(first.kvCache->blocks, 100);
  EXPECT_EQ(first.kvCache->sequences, 8);
  EXPECT_FALSE(first.memory);
  const StageInfo &second = artifact->stages()[1];
  EXPECT_EQ(second.stage, 1);
  EXPECT_EQ(second.firstLayer, 2);
  ASSERT_TRUE(second.memory);
  EXPECT_EQ(second.memory->usable, 5000);
  EXPECT_FALSE(second.kvCache);
  EXPECT_EQ(second.program, "func.func @forward_stage1() {\n  return\n}");
  ASSERT_EQ(artifact->kernels().size(), 1u);
  EXPECT_EQ(artifact->kernels()[0].name, "k0");
}

TEST(Artifact, OpensFilesAndReportsUnreadableOnes) {
  std::string error;
  EXPECT_FALSE(Artifact::open("/nonexistent/x.json", error));
  EXPECT_EQ(error, "cannot read '/nonexistent/x.json': No such file or "
                   "directory");
  fs::path dir = fs::temp_directory_path();
  EXPECT_FALSE(Artifact::open(dir.string(), error));
  EXPECT_EQ(error, "cannot read '" + dir.string() + "': Is a directory");
  fs::path file = dir / ("moert-artifact-" +
                         std::to_string(std::random_device()()) + ".json");
  std::ofstream(file, std::ios::binary) << serialize(validArtifact());
  std::unique_ptr<Artifact> artifact = Artifact::open(file.string(), error);
  fs::remove(file);
  ASSERT_TRUE(artifact) << error;
  EXPECT_EQ(artifact->stages().size(), 2u);
}

TEST(Artifact, RejectsWhatIsNotAnArtifact) {
  EXPECT_EQ(parseError("not json"), "'a.json' is not a moec artifact");
  EXPECT_EQ(parseError("[1, 2]"), "'a.json' is not a moec artifact");
  EXPECT_EQ(parseError(""), "'a.json' is not a moec artifact");
  json other = validArtifact();
  other["format"] = "moec-model";
  EXPECT_EQ(errorOf(other), "'a.json' is not a moec artifact");
  other.erase("format");
  EXPECT_EQ(errorOf(other), "'a.json' is not a moec artifact");
}

TEST(Artifact, RejectsOtherVersions) {
  json artifact = validArtifact();
  artifact["version"] = 7;
  EXPECT_EQ(errorOf(artifact), "'a.json' is artifact version 7; this moe-run "
                               "reads version 6: rebuild moe-run");
  artifact["version"] = 5;
  EXPECT_EQ(errorOf(artifact), "'a.json' is artifact version 5; this moe-run "
                               "reads version 6: compile it again with moec");
  artifact["version"] = 0;
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.version: expected a positive integer, got 0");
  artifact["version"] = "2";
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.version: expected a positive integer, got \"2\"");
}

TEST(Artifact, DetectsCorruption) {
  std::string text = serialize(validArtifact());
  std::string stored = text.substr(text.find("fnv1a64:"), 24);
  size_t at = text.find("forward_stage1");
  text[at] ^= 0x01; // 'f' -> 'g'
  EXPECT_EQ(parseError(text), "'a.json' is corrupt: checksum " + stored +
                                  " does not match its contents (fnv1a64:" +
                                  hex(contentHash(text)) + ")");
  // A changed digit of the checksum itself.
  text = serialize(validArtifact());
  at = text.find("fnv1a64:") + 8;
  text[at] = text[at] == '0' ? '1' : '0';
  EXPECT_NE(parseError(text).find("does not match its contents"),
            std::string::npos);

  text = serialize(validArtifact());
  text.replace(text.find("fnv1a64:") + 8, 16, "ABCDEF0123456789");
  EXPECT_EQ(parseError(text),
            "'a.json' is corrupt: $.checksum: expected \"fnv1a64:\" and 16 "
            "lowercase hex digits, got \"fnv1a64:ABCDEF0123456789\"");
  json noChecksum = validArtifact();
  std::string bare = noChecksum.dump(2) + "\n";
  EXPECT_EQ(parseError(bare),
            "'a.json' is corrupt: $.checksum: missing required field "
            "(expected \"fnv1a64:\" and 16 lowercase hex digits)");
}

TEST(Artifact, NamesTheJsonPathOfBadFields) {
  json artifact = validArtifact();
  artifact["stages"][1]["weights"][0].erase("local_shape");
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.stages[1].weights[0].local_shape: missing required "
            "field (expected an array of non-negative integers)");
  artifact = validArtifact();
  artifact["stages"][1]["weights"][2]["local_shape"] = {-16};
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[1].weights[2].local_shape: "
                               "expected an array of non-negative integers");
  artifact = validArtifact();
  artifact["model"].erase("d_model");
  EXPECT_EQ(errorOf(artifact), "'a.json': $.model.d_model: missing required "
                               "field (expected a positive integer)");
  artifact = validArtifact();
  artifact["model"]["top_k"] = 5;
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.model.top_k: expected at most experts (4), got 5");
  artifact = validArtifact();
  artifact["plan"]["expert_all_to_all"] = 1;
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.plan.expert_all_to_all: expected a boolean");
  artifact = validArtifact();
  artifact["stages"][0]["weights"][0]["dtype"] = "q4";
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.stages[0].weights[0].dtype: expected \"bf16\", "
            "\"f16\", \"f32\", \"f8E4M3FN\", \"i32\" or \"i64\", got \"q4\"");
  artifact = validArtifact();
  artifact["target"] = "tpu";
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.target: expected \"host\" or \"cuda\", got \"tpu\"");
  artifact = validArtifact();
  artifact["stages"][0]["kv_cache"].erase("blocks");
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[0].kv_cache.blocks: "
                               "missing required field (expected a "
                               "non-negative integer)");
  artifact = validArtifact();
  artifact["kernels"][0]["mlir"] = nullptr;
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.kernels[0].mlir: expected a string");
}

TEST(Artifact, ChecksThePlanAgainstTheStages) {
  json artifact = validArtifact();
  artifact["plan"]["ranks"] = 6;
  EXPECT_EQ(errorOf(artifact), "'a.json': $.plan.ranks: expected "
                               "pipeline_stages * tensor_parallel = 2 * 2 = "
                               "4, got 6");
  artifact = validArtifact();
  artifact["stages"].erase(1);
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages: expected 2 stages "
                               "(plan.pipeline_stages), got 1");
  artifact = validArtifact();
  artifact["stages"][1]["ranks"] = 4;
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[1].ranks: expected "
                               "plan.tensor_parallel = 2, got 4");
  artifact = validArtifact();
  artifact["stages"][1]["first_rank"] = 1;
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[1].first_rank: expected "
                               "stage * tensor_parallel = 2, got 1");
  artifact = validArtifact();
  artifact["stages"][1]["stage"] = 0;
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[1].stage: expected 1 "
                               "(stages are listed in order), got 0");
  artifact = validArtifact();
  artifact["stages"][1]["layers"] = 3;
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[1].layers: first_layer 2 "
                               "+ layers 3 run past the model's 4 layers");
}

TEST(Artifact, ChecksWeightShards) {
  json artifact = validArtifact();
  artifact["stages"][0]["weights"][0]["local_shape"] = {64, 16};
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[0].weights[0].local_shape: "
                               "[64, 16] times splits [2, 1] is not shape "
                               "[64, 16]");
  artifact = validArtifact();
  artifact["stages"][0]["weights"][2]["local_shape"] = {8};
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[0].weights[2].local_shape: "
                               "[8] is not shape [16] (the weight has no "
                               "splits)");
  artifact = validArtifact();
  artifact["stages"][0]["weights"][0]["splits"] = {2};
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.stages[0].weights[0].splits: expected [] or one "
            "entry per dimension of shape [64, 16], got [2]");
  artifact = validArtifact();
  artifact["stages"][0]["weights"][0]["splits"] = {4, 1};
  artifact["stages"][0]["weights"][0]["local_shape"] = {16, 16};
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[0].weights[0].splits: "
                               "[4, 1] make 4 parts, which a stage of 2 "
                               "ranks cannot share evenly");
  artifact = validArtifact();
  artifact["stages"][0]["weights"][1]["chunks"] = {1, 1, 3};
  EXPECT_EQ(errorOf(artifact), "'a.json': $.stages[0].weights[1].chunks: "
                               "dimension 2 of local_shape (16) is not a "
                               "multiple of its 3 chunks");
}

TEST(Artifact, NeverCrashesOnDamagedText) {
  std::string text = serialize(validArtifact());
  for (size_t cut = 0; cut < text.size(); cut += 7)
    EXPECT_FALSE(parseError(text.substr(0, cut)).empty()) << cut;
  std::mt19937 random(7);
  for (int i = 0; i < 300; ++i) {
    std::string damaged = text;
    damaged[random() % damaged.size()] = static_cast<char>(random() % 256);
    parseError(damaged); // Anything but a crash.
  }
}

TEST(Artifact, CheckLaunch) {
  std::unique_ptr<Artifact> artifact = parseValid();
  ASSERT_TRUE(artifact);
  EXPECT_EQ(artifact->checkLaunch("host", 3, 4), "");
  EXPECT_EQ(artifact->checkLaunch("cuda", 0, 4),
            "the artifact was compiled for host; this moe-run runs cuda");
  EXPECT_EQ(artifact->checkLaunch("host", 0, 8),
            "the plan needs 4 ranks but 8 were started");
  EXPECT_EQ(artifact->checkLaunch("host", 0, 1),
            "the plan needs 4 ranks but 1 was started");
  EXPECT_EQ(artifact->checkLaunch("host", 4, 4),
            "rank 4 is out of range for a plan of 4 ranks");
  EXPECT_EQ(artifact->checkLaunch("host", -1, 4),
            "rank -1 is out of range for a plan of 4 ranks");
  json cuda = validArtifact();
  cuda["target"] = "cuda";
  std::string error;
  artifact = Artifact::parse(serialize(cuda), error);
  ASSERT_TRUE(artifact) << error;
  EXPECT_EQ(artifact->checkLaunch("host", 0, 4),
            "the artifact was compiled for cuda; this moe-run runs host");
}

TEST(Artifact, WeightsForRank) {
  std::unique_ptr<Artifact> artifact = parseValid();
  ASSERT_TRUE(artifact);
  for (int64_t rank = 0; rank < 4; ++rank) {
    SCOPED_TRACE(rank);
    const StageInfo &stage = artifact->stageOfRank(rank);
    EXPECT_EQ(stage.stage, rank / 2);
    EXPECT_EQ(artifact->rankInStage(rank), rank % 2);
    EXPECT_EQ(artifact->groupSize(rank), 2);
    std::vector<WeightSpec> specs = artifact->weightsForRank(rank);
    ASSERT_EQ(specs.size(), 3u);
    if (rank < 2) {
      EXPECT_EQ(specs[0].name, "model.embed_tokens.weight");
      EXPECT_EQ(specs[0].fullShape, (std::vector<int64_t>{64, 16}));
      EXPECT_EQ(specs[0].splits, (std::vector<int64_t>{2, 1}));
      EXPECT_EQ(specs[1].chunks, (std::vector<int64_t>{1, 1, 2}));
      EXPECT_EQ(specs[1].dtype, DType::BF16);
      EXPECT_EQ(WeightLoader::partBytes(specs[1]), 4 * 16 * 16 * 2);
      EXPECT_TRUE(specs[2].splits.empty());
      EXPECT_EQ(specs[2].dtype, DType::F32);
    } else {
      EXPECT_EQ(specs[0].name, "model.layers.2.self_attn.o_proj.weight");
      EXPECT_EQ(specs[0].dtype, DType::F16);
      EXPECT_EQ(specs[0].splits, (std::vector<int64_t>{1, 2}));
      EXPECT_EQ(WeightLoader::partBytes(specs[0]), 16 * 8 * 2);
      EXPECT_EQ(specs[1].name, "lm_head.weight");
      EXPECT_TRUE(specs[1].chunks.empty());
      EXPECT_EQ(specs[2].splits, (std::vector<int64_t>{1}));
    }
  }
  EXPECT_EQ(artifact->stageOfRank(4).stage, -1);
  EXPECT_TRUE(artifact->weightsForRank(-1).empty());
  EXPECT_EQ(artifact->groupSize(9), 0);
}

/// Writes one safetensors file holding `names` as f32 tensors of `shape` with
/// element i = i.
void writeCheckpoint(const fs::path &file,
                     const std::vector<std::string> &names,
                     const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t extent : shape)
    count *= extent;
  json header = json::object();
  std::string data;
  for (const std::string &name : names) {
    header[name] = {{"dtype", "F32"},
                    {"shape", shape},
                    {"data_offsets", {data.size(), data.size() + count * 4}}};
    for (int64_t i = 0; i < count; ++i) {
      float value = static_cast<float>(i);
      data.append(reinterpret_cast<const char *>(&value), 4);
    }
  }
  std::string text = header.dump();
  uint64_t size = text.size();
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char *>(&size), 8);
  out << text << data;
}

TEST(Artifact, RankSpecsLoadTheirShards) {
  json description = validArtifact();
  description["stages"][1]["weights"] = {
      weight("w.rows", "f32", {4, 6}, {2, 6}, {2, 1}),
      weight("w.cols", "f32", {4, 6}, {4, 3}, {1, 2}, {1, 3})};
  std::string error;
  std::unique_ptr<Artifact> artifact =
      Artifact::parse(serialize(description), error);
  ASSERT_TRUE(artifact) << error;
  fs::path file = fs::temp_directory_path() /
                  ("moert-artifact-" + std::to_string(std::random_device()()) +
                   ".safetensors");
  writeCheckpoint(file, {"w.rows", "w.cols"}, {4, 6});
  std::unique_ptr<WeightLoader> loader =
      WeightLoader::open(file.string(), error);
  ASSERT_TRUE(loader) << error;
  // Rank 3 is the second of stage 1: rows 2..3, and the second column of
  // each of the 3 column chunks (columns 1, 3, 5).
  std::vector<WeightSpec> specs = artifact->weightsForRank(3);
  ASSERT_EQ(specs.size(), 2u);
  std::vector<float> part(12);
  ASSERT_TRUE(loader->load(specs[0], artifact->rankInStage(3),
                           artifact->groupSize(3), part.data(), error))
      << error;
  EXPECT_EQ(part, (std::vector<float>{12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                      22, 23}));
  ASSERT_TRUE(loader->load(specs[1], artifact->rankInStage(3),
                           artifact->groupSize(3), part.data(), error))
      << error;
  EXPECT_EQ(part,
            (std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23}));
  fs::remove(file);
}

} // namespace

namespace {
/// A small valid execution plan: one kernel and one GEMM.
json validExecution() {
  auto buffer = [](int id, const char *kind, const char *dtype, json shape) {
    return json{{"id", id}, {"kind", kind}, {"dtype", dtype},
                {"shape", shape}};
  };
  json tokens = buffer(0, "input", "i32", {"T"});
  tokens["name"] = "tokens";
  json weight = buffer(1, "weight", "f32", {8, 16});
  weight["name"] = "w";
  json cache = buffer(3, "k_cache", "f32", {"S", 16});
  cache["layer"] = 1;
  return {{"block_size", 16},
          {"kv_layers", 2},
          {"kv_width", 16},
          {"kv_dtype", "f32"},
          {"buffers",
           {tokens, weight, buffer(2, "activation", "f32", {"2T", 16}), cache,
            buffer(4, "activation", "f32", {"2T", 8})}},
          {"steps",
           {{{"kind", "kernel"}, {"kernel", "k0"}, {"args", {0, 3, 2}}},
            {{"kind", "gemm"}, {"a", 2}, {"b", 1}, {"c", 4}}}},
          {"inputs",
           {{"tokens", 0},
            {"positions", 0},
            {"logit_rows", 0},
            {"slot_mapping", 0},
            {"token_seq", 0},
            {"block_tables", 0}}},
          {"outputs", {{"logits", 4}}}};
}
} // namespace

TEST(Artifact, ReadsTheExecutionPlanAndHostObject) {
  json artifact = validArtifact();
  artifact["stages"][0]["execution"] = validExecution();
  artifact["host_object"] = {
      {"format", "elf-shared-object"}, {"size", 5}, {"base64", "f0VMRgI="}};
  std::string error;
  std::unique_ptr<Artifact> parsed =
      Artifact::parse(serialize(artifact), error, "a.json");
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->hostObject(), std::string("\x7f" "ELF\x02"));
  ASSERT_TRUE(parsed->stages()[0].execution);
  EXPECT_FALSE(parsed->stages()[1].execution);
  const ExecutionInfo &plan = *parsed->stages()[0].execution;
  EXPECT_EQ(plan.blockSize, 16);
  ASSERT_EQ(plan.buffers.size(), 5u);
  EXPECT_EQ(plan.buffers[2].shape[0].symbol, 'T');
  EXPECT_EQ(plan.buffers[2].shape[0].factor, 2);
  EXPECT_EQ(plan.buffers[2].shape[1].symbol, 0);
  EXPECT_EQ(plan.buffers[2].shape[1].factor, 16);
  EXPECT_EQ(plan.buffers[3].kind, BufferInfo::Kind::KCache);
  EXPECT_EQ(plan.buffers[3].layer, 1);
  EXPECT_EQ(plan.buffers[1].name, "w");
  ASSERT_EQ(plan.steps.size(), 2u);
  EXPECT_EQ(plan.steps[0].kernel, "k0");
  EXPECT_EQ(plan.steps[0].args, (std::vector<int64_t>{0, 3, 2}));
  EXPECT_EQ(plan.steps[1].kind, StepInfo::Kind::Gemm);
  EXPECT_EQ(plan.logits, 4);
  // Unguarded steps run at any size; a guarded one in its range only.
  EXPECT_TRUE(plan.steps[0].runsAt({0, 0}));
  EXPECT_TRUE(plan.steps[0].runsAt({100000, 1}));
  StepInfo small, large;
  small.belowTokens = 8;
  large.fromTokens = 8;
  EXPECT_TRUE(small.runsAt({7, 7}));
  EXPECT_FALSE(small.runsAt({8, 1}));
  EXPECT_FALSE(large.runsAt({7, 7}));
  EXPECT_TRUE(large.runsAt({8, 1}));
  // Guards on the most tokens of one sequence: a decode batch of 64 is not
  // a prefill of 8.
  StepInfo decode, prefill;
  decode.belowRunTokens = 8;
  prefill.fromRunTokens = 8;
  EXPECT_TRUE(decode.runsAt({64, 1}));
  EXPECT_FALSE(prefill.runsAt({64, 1}));
  EXPECT_FALSE(decode.runsAt({9, 8}));
  EXPECT_TRUE(prefill.runsAt({9, 8}));
  // The scale of a step: 3 tokens of sequence 1 beside 2 decodes.
  StepInputs in;
  in.sequences = 3;
  in.tokens = {1, 2, 3, 4, 5};
  in.tokenSeq = {0, 1, 1, 2, 1};
  StepScale scale = scaleOf(in);
  EXPECT_EQ(scale.tokens, 5);
  EXPECT_EQ(scale.run, 3);
}

TEST(Artifact, RejectsBadExecutionPlans) {
  auto errorWith = [](auto edit) {
    json artifact = validArtifact();
    artifact["stages"][0]["execution"] = validExecution();
    edit(artifact["stages"][0]["execution"]);
    return errorOf(artifact);
  };
  const std::string at = "'a.json': $.stages[0].execution";
  EXPECT_EQ(errorWith([](json &p) { p["buffers"][2]["shape"][0] = "2X"; }),
            at + ".buffers[2].shape[0]: expected a non-negative integer or a "
                 "size such as \"T\" or \"2T\" (T, R, S, N or M), got \"2X\"");
  EXPECT_EQ(errorWith([](json &p) { p["buffers"][2]["kind"] = "scratch"; }),
            at + ".buffers[2].kind: expected \"input\", \"weight\", "
                 "\"activation\", \"k_cache\", \"v_cache\" or "
                 "\"group_rank\", got \"scratch\"");
  EXPECT_EQ(errorWith([](json &p) { p["buffers"][3]["layer"] = 2; }),
            at + ".buffers[3].layer: expected a layer below kv_layers (2), "
                 "got 2");
  EXPECT_EQ(errorWith([](json &p) { p["buffers"][1]["id"] = 7; }),
            at + ".buffers[1].id: expected 1, got 7");
  EXPECT_EQ(errorWith([](json &p) { p["steps"][0]["args"][1] = 5; }),
            at + ".steps[0].args[1]: expected a buffer id below 5, got 5");
  EXPECT_EQ(errorWith([](json &p) { p["steps"][1]["b"] = 0; }),
            at + ".steps[1]: GEMM buffer 0 is not two-dimensional");
  EXPECT_EQ(errorWith([](json &p) { p["steps"][1]["kind"] = "conv"; }),
            at + ".steps[1].kind: expected \"kernel\", \"gemm\", "
                 "\"grouped_gemm\", \"all_reduce\", \"all_gather\", "
                 "\"expert_exchange\", "
                 "\"all_gather_tokens\", \"send\" or \"recv\", got "
                 "\"conv\"");
  // An expert exchange names its routing buffers (i32 vectors) and a
  // direction.
  auto exchange = [](json &p) {
    p["steps"][1] = {{"kind", "expert_exchange"}, {"direction", "to_experts"},
                     {"a", 2}, {"c", 4}, {"offsets", 0},
                     {"permutation", 0}, {"top_k", 2}};
  };
  EXPECT_EQ(errorWith([&](json &p) {
              exchange(p);
              p["steps"][1]["direction"] = "sideways";
            }),
            at + ".steps[1].direction: expected \"to_experts\" or "
                 "\"to_tokens\", got \"sideways\"");
  EXPECT_EQ(errorWith([&](json &p) {
              exchange(p);
              p["steps"][1]["offsets"] = 2;
            }),
            at + ".steps[1]: routing buffer 2 is not a vector of i32");
  EXPECT_EQ(errorWith([&](json &p) {
              exchange(p);
              p["steps"][1]["top_k"] = 0;
            }),
            at + ".steps[1].top_k: expected a positive integer, got 0");
  EXPECT_EQ(errorWith([&](json &p) {
              exchange(p);
              p["steps"][1]["a"] = 0;
            }),
            at + ".steps[1]: exchanged buffer 0 is not two-dimensional");
  EXPECT_EQ(errorWith([&](json &p) {
              exchange(p);
              p["steps"][1].erase("permutation");
            }),
            at + ".steps[1].permutation: missing required field (expected a "
                 "non-negative integer)");
  // A grouped GEMM: rows [M, K], per-expert weights [experts, N, K], the
  // dispatch's offsets [experts + 1] (i32), rows [M, N] out; a step's token
  // range must not be empty.
  auto grouped = [](json &p) {
    json experts = {{"id", 5}, {"kind", "weight"}, {"name", "experts"},
                    {"dtype", "f32"}, {"shape", {2, 8, 16}}};
    json offsets = {{"id", 6}, {"kind", "activation"}, {"dtype", "i32"},
                    {"shape", {3}}};
    p["buffers"].push_back(experts);
    p["buffers"].push_back(offsets);
    p["steps"][1] = {{"kind", "grouped_gemm"}, {"a", 2}, {"b", 5},
                     {"c", 4}, {"offsets", 6}, {"from_tokens", 8}};
  };
  EXPECT_EQ(errorWith(grouped), "");
  EXPECT_EQ(errorWith([&](json &p) {
              grouped(p);
              p["steps"][1]["b"] = 1;
            }),
            at + ".steps[1].b: expected a weight [experts, N, K], buffer 1 "
                 "is not");
  EXPECT_EQ(errorWith([&](json &p) {
              grouped(p);
              p["steps"][1]["c"] = 2;
            }),
            at + ".steps[1]: grouped GEMM shapes do not agree: a (buffer 2) "
                 "must be [M, K] and c (buffer 2) [M, N] for b [experts, N, "
                 "K]");
  EXPECT_EQ(errorWith([&](json &p) {
              grouped(p);
              p["steps"][1]["offsets"] = 0;
            }),
            at + ".steps[1].offsets: expected an i32 vector [experts + 1], "
                 "buffer 0 is not");
  EXPECT_EQ(errorWith([&](json &p) {
              grouped(p);
              p["steps"][1]["group"] = 2;
            }),
            at + ".steps[1].group: expected a group_rank buffer, buffer 2 "
                 "is not");
  EXPECT_EQ(errorWith([&](json &p) {
              grouped(p);
              p["steps"][1]["below_tokens"] = 8;
            }),
            at + ".steps[1]: below_tokens (8) must exceed from_tokens (8)");
  EXPECT_EQ(errorWith([](json &p) { p["steps"][0]["below_tokens"] = 0; }),
            at + ".steps[0].below_tokens: expected a positive integer");
  EXPECT_EQ(errorWith([](json &p) {
              p["steps"][0]["from_run_tokens"] = 16;
              p["steps"][0]["below_run_tokens"] = 16;
            }),
            at + ".steps[0]: below_run_tokens (16) must exceed "
                 "from_run_tokens (16)");
  EXPECT_EQ(errorWith([](json &p) { p["steps"][0]["from_run_tokens"] = -1; }),
            at + ".steps[0].from_run_tokens: expected a non-negative "
                 "integer");
  EXPECT_EQ(errorWith([](json &p) { p["inputs"].erase("token_seq"); }),
            at + ".inputs.token_seq: missing required field (expected a "
                 "non-negative integer)");
}

TEST(Artifact, RejectsABadHostObject) {
  json artifact = validArtifact();
  artifact["host_object"] = {
      {"format", "elf-shared-object"}, {"size", 5}, {"base64", "f0VMR*I="}};
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.host_object.base64: expected base64 text");
  artifact["host_object"]["base64"] = "f0VMRgI=";
  artifact["host_object"]["size"] = 6;
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.host_object: expected a decoded size of 6, got 5");
}

namespace {
/// validExecution() with GPU launches, in a cuda artifact with its module.
json validCudaArtifact() {
  json artifact = validArtifact();
  artifact["target"] = "cuda";
  json plan = validExecution();
  plan["steps"][0]["launches"] = {{{"module", "k0_kernel"},
                                   {"function", "k0_kernel"},
                                   {"grid", {"2T", 4, "3T/64"}},
                                   {"block", {256, 1, 1}},
                                   {"params", {2, 0, 1}}}};
  artifact["stages"][0]["execution"] = plan;
  artifact["cuda"] = {
      {"chips", {"sm_90a"}},
      {"modules",
       {{{"module", "k0_kernel"},
         {"function", "k0_kernel"},
         {"ptx", {{"sm_90a", ".version 8.0"}}},
         {"cubin", {{"sm_90a", {{"size", 5}, {"base64", "f0VMRgI="}}}}}}}}};
  return artifact;
}
} // namespace

TEST(Artifact, ReadsGPULaunchesAndModules) {
  std::string error;
  std::unique_ptr<Artifact> parsed =
      Artifact::parse(serialize(validCudaArtifact()), error, "a.json");
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->cudaChips(), std::vector<std::string>{"sm_90a"});
  ASSERT_EQ(parsed->cudaModules().size(), 1u);
  const CudaModuleInfo &module = parsed->cudaModules()[0];
  EXPECT_EQ(module.function, "k0_kernel");
  EXPECT_EQ(module.ptx.at("sm_90a"), ".version 8.0");
  EXPECT_EQ(module.cubin.at("sm_90a"), std::string("\x7f" "ELF\x02"));
  const StepInfo &step = parsed->stages()[0].execution->steps[0];
  ASSERT_EQ(step.launches.size(), 1u);
  const LaunchInfo &launch = step.launches[0];
  EXPECT_EQ(launch.module, "k0_kernel");
  EXPECT_EQ(launch.grid[0].symbol, 'T');
  EXPECT_EQ(launch.grid[0].factor, 2);
  EXPECT_EQ(launch.grid[1].symbol, 0);
  EXPECT_EQ(launch.grid[1].factor, 4);
  // ceil(3 T / 64) blocks: 1 at T = 21, 2 at T = 22.
  EXPECT_EQ(launch.grid[2].symbol, 'T');
  EXPECT_EQ(launch.grid[2].factor, 3);
  EXPECT_EQ(launch.grid[2].divisor, 64);
  StepSizes sizes;
  sizes.tokens = 21;
  EXPECT_EQ(sizes.extent(launch.grid[2]), 1);
  sizes.tokens = 22;
  EXPECT_EQ(sizes.extent(launch.grid[2]), 2);
  EXPECT_EQ(sizes.extent(launch.grid[0]), 44);
  EXPECT_EQ(launch.block[0], 256);
  EXPECT_EQ(launch.params, (std::vector<int64_t>{2, 0, 1}));
}

TEST(Artifact, RejectsBadGPULaunches) {
  const std::string at = "'a.json': $.stages[0].execution.steps[0].launches[0]";
  json artifact = validCudaArtifact();
  artifact["stages"][0]["execution"]["steps"][0]["launches"][0]["params"][1] =
      3;
  EXPECT_EQ(errorOf(artifact), at + ".params[1]: expected an argument index "
                                    "below 3, got 3");
  artifact = validCudaArtifact();
  artifact["stages"][0]["execution"]["steps"][0]["launches"][0]["grid"] = {
      "T", 1};
  EXPECT_EQ(errorOf(artifact), at + ".grid: expected 3 sizes");
  for (const char *bad : {"T/0", "T/", "T/x", "/64"}) {
    artifact = validCudaArtifact();
    artifact["stages"][0]["execution"]["steps"][0]["launches"][0]["grid"][0] =
        bad;
    EXPECT_EQ(errorOf(artifact),
              at + ".grid[0]: expected a non-negative integer or a size such "
                   "as \"T\", \"2T\" or \"2T/64\" (T, R, S, N or M), "
                   "got \"" +
                  bad + "\"")
        << bad;
  }
  // Only grid sizes may be divided.
  artifact = validCudaArtifact();
  artifact["stages"][0]["execution"]["buffers"][0]["shape"][0] = "T/2";
  EXPECT_NE(errorOf(artifact).find("expected a non-negative integer or a "
                                   "size such as \"T\" or \"2T\""),
            std::string::npos)
      << errorOf(artifact);
  artifact = validCudaArtifact();
  artifact["cuda"]["modules"][0]["module"] = "other";
  EXPECT_EQ(errorOf(artifact),
            "'a.json': $.cuda.modules: no module 'k0_kernel' for kernel 'k0'");
  artifact = validCudaArtifact();
  artifact["cuda"]["modules"][0]["cubin"]["sm_90a"]["size"] = 6;
  EXPECT_EQ(errorOf(artifact).rfind("'a.json': $.cuda.modules[0].cubin.sm_90a",
                                    0),
            0u)
      << errorOf(artifact);
}

TEST(Base64, DecodesStrictly) {
  std::string bytes;
  ASSERT_TRUE(decodeBase64("", bytes));
  EXPECT_EQ(bytes, "");
  ASSERT_TRUE(decodeBase64("TWFu", bytes));
  EXPECT_EQ(bytes, "Man");
  ASSERT_TRUE(decodeBase64("TWE=", bytes));
  EXPECT_EQ(bytes, "Ma");
  ASSERT_TRUE(decodeBase64("TQ==", bytes));
  EXPECT_EQ(bytes, "M");
  ASSERT_TRUE(decodeBase64("+/+/", bytes));
  EXPECT_EQ(bytes, std::string("\xfb\xff\xbf"));
  EXPECT_FALSE(decodeBase64("TWF", bytes));      // not a multiple of 4
  EXPECT_FALSE(decodeBase64("TW-u", bytes));     // not base64
  EXPECT_FALSE(decodeBase64("T===", bytes));     // too much padding
  EXPECT_FALSE(decodeBase64("TQ==TWFu", bytes)); // padding before the end
  EXPECT_FALSE(decodeBase64("TQ=u", bytes));     // data after padding
}
