//===- ClusterConfigTest.cpp - Tests of the cluster description reader ---===//
//
// Every error class of models/README.md ("Cluster descriptions") with its
// exact message, unit conversions, the built-in presets and their files, the
// `--cluster` argument forms, and the round trip through toJson.
// MOEC_MODELS_DIR is set by the build.
//
//===----------------------------------------------------------------------===//

#include "models/ClusterConfig.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace moec;
using Json = nlohmann::ordered_json;
using Errors = std::vector<std::string>;

namespace {

constexpr int64_t kGiB = int64_t(1) << 30;

/// Preset name, nodes, GPUs per node of each file in models/clusters.
struct PresetFile {
  const char *preset;
  int64_t nodes, gpusPerNode;
  const char *file;
} const kPresetFiles[] = {
    {"a100-40gb", 16, 8, "a100-40gb-16x8"},
    {"a100-80gb", 1, 8, "a100-80gb-1x8"},
    {"h100-80gb", 1, 8, "h100-80gb-1x8"},
    {"h200", 1, 8, "h200-1x8"},
};

std::string clusterPath(const std::string &name) {
  return std::string(MOEC_MODELS_DIR) + "/clusters/" + name + ".json";
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// A valid description with only the required fields.
Json minimal() {
  return Json::parse(R"({
    "name": "c",
    "nodes": 2, "gpus_per_node": 4,
    "gpu": {"name": "G", "memory_gib": 40, "hbm_bandwidth_gb_s": 1555,
            "peak_tflops": {"bf16": 312, "f16": 312, "f32": 19.5}},
    "links": {"intra_node_gb_s": 300, "inter_node_gb_s": 25}
  })");
}

/// Parses `text`, which must be rejected, and returns the messages.
Errors errorsOfText(const std::string &text) {
  Errors errors;
  std::optional<ClusterConfig> config = parseClusterConfig(text, errors);
  EXPECT_FALSE(config.has_value()) << text;
  EXPECT_FALSE(errors.empty()) << text;
  return errors;
}

Errors errorsOf(const Json &doc) { return errorsOfText(doc.dump(2)); }

/// Parses `doc`, which must be accepted.
ClusterConfig parseOk(const Json &doc) {
  Errors errors;
  std::optional<ClusterConfig> config = parseClusterConfig(doc.dump(2), errors);
  EXPECT_TRUE(config.has_value());
  EXPECT_EQ(errors, Errors{});
  return config.value_or(ClusterConfig{});
}

/// A preset that must exist.
ClusterConfig preset(const char *name, int64_t nodes = 1,
                     int64_t gpusPerNode = 8) {
  Errors errors;
  std::optional<ClusterConfig> config =
      getClusterPreset(name, nodes, gpusPerNode, errors);
  EXPECT_TRUE(config.has_value()) << name;
  EXPECT_EQ(errors, Errors{});
  return config.value_or(ClusterConfig{});
}

void expectSameCluster(const ClusterConfig &a, const ClusterConfig &b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.nodes, b.nodes);
  EXPECT_EQ(a.gpusPerNode, b.gpusPerNode);
  EXPECT_EQ(a.gpu.name, b.gpu.name);
  EXPECT_EQ(a.gpu.memoryBytes, b.gpu.memoryBytes);
  EXPECT_EQ(a.gpu.reservedBytes, b.gpu.reservedBytes);
  EXPECT_EQ(a.gpu.memoryBandwidth, b.gpu.memoryBandwidth);
  EXPECT_EQ(a.gpu.peakFlopsBF16, b.gpu.peakFlopsBF16);
  EXPECT_EQ(a.gpu.peakFlopsF16, b.gpu.peakFlopsF16);
  EXPECT_EQ(a.gpu.peakFlopsF32, b.gpu.peakFlopsF32);
  EXPECT_EQ(a.gpu.peakFlopsFP8, b.gpu.peakFlopsFP8);
  EXPECT_EQ(a.intraNodeBandwidth, b.intraNodeBandwidth);
  EXPECT_EQ(a.interNodeBandwidth, b.interNodeBandwidth);
}

//===----------------------------------------------------------------------===//
// Accepted descriptions and units
//===----------------------------------------------------------------------===//

TEST(ClusterConfigTest, UnitsAreConvertedAndDefaultsApplied) {
  ClusterConfig c = parseOk(minimal());
  EXPECT_EQ(c.name, "c");
  EXPECT_EQ(c.nodes, 2);
  EXPECT_EQ(c.gpusPerNode, 4);
  EXPECT_EQ(c.getNumGPUs(), 8);
  EXPECT_EQ(c.gpu.name, "G");
  EXPECT_EQ(c.gpu.memoryBytes, 42949672960);   // 40 GiB
  EXPECT_EQ(c.gpu.reservedBytes, 2147483648);  // default 2 GiB
  EXPECT_EQ(c.getUsableBytes(), 38 * kGiB);
  EXPECT_EQ(c.gpu.memoryBandwidth, 1.555e12);  // 1555 GB/s
  EXPECT_EQ(c.gpu.peakFlopsBF16, 3.12e14);     // 312 TFLOP/s
  EXPECT_EQ(c.gpu.peakFlopsF16, 3.12e14);
  EXPECT_EQ(c.gpu.peakFlopsF32, 1.95e13);
  EXPECT_EQ(c.gpu.peakFlopsFP8, 0.0);          // default
  EXPECT_EQ(c.intraNodeBandwidth, 3e11);
  EXPECT_EQ(c.interNodeBandwidth, 2.5e10);
  EXPECT_EQ(c.getPeakFlops(DType::BF16), 3.12e14);
  EXPECT_EQ(c.getPeakFlops(DType::F16), 3.12e14);
  EXPECT_EQ(c.getPeakFlops(DType::F32), 1.95e13);
}

TEST(ClusterConfigTest, ExplicitValuesAndFractions) {
  Json doc = minimal();
  doc["gpu"]["memory_gib"] = 0.5;
  doc["gpu"]["reserved_gib"] = 0;
  doc["gpu"]["hbm_bandwidth_gb_s"] = 1555.5;
  doc["gpu"]["peak_tflops"] = {
      {"bf16", 1}, {"f16", 2}, {"f32", 0}, {"fp8", 1979}};
  ClusterConfig c = parseOk(doc);
  EXPECT_EQ(c.gpu.memoryBytes, 536870912);
  EXPECT_EQ(c.gpu.reservedBytes, 0);
  EXPECT_EQ(c.getUsableBytes(), 536870912);
  EXPECT_EQ(c.gpu.memoryBandwidth, 1.5555e12);
  EXPECT_EQ(c.getPeakFlops(DType::BF16), 1e12);
  EXPECT_EQ(c.getPeakFlops(DType::F16), 2e12);
  EXPECT_EQ(c.getPeakFlops(DType::F32), 0.0);
  EXPECT_EQ(c.gpu.peakFlopsFP8, 1.979e15);
}

TEST(ClusterConfigTest, LimitsAreInclusive) {
  Json doc = minimal();
  doc["nodes"] = 1;
  doc["gpus_per_node"] = int64_t(1) << 20;
  doc["gpu"]["memory_gib"] = 1048576;
  doc["gpu"]["reserved_gib"] = 1048575.5;
  doc["links"]["intra_node_gb_s"] = 1048576;
  ClusterConfig c = parseOk(doc);
  EXPECT_EQ(c.getNumGPUs(), int64_t(1) << 20);
  EXPECT_EQ(c.gpu.memoryBytes, int64_t(1) << 50);
  EXPECT_EQ(c.getUsableBytes(), kGiB / 2);
}

TEST(ClusterConfigTest, SuccessLeavesErrorsUntouchedAndFailureAppends) {
  Errors errors = {"earlier"};
  EXPECT_TRUE(parseClusterConfig(minimal().dump(), errors).has_value());
  EXPECT_EQ(errors, Errors{"earlier"});
  EXPECT_FALSE(parseClusterConfig("[]", errors).has_value());
  EXPECT_EQ(errors,
            (Errors{"earlier", "$: expected a JSON object, got an array"}));
}

//===----------------------------------------------------------------------===//
// Error classes
//===----------------------------------------------------------------------===//

TEST(ClusterConfigErrorTest, InvalidJson) {
  EXPECT_EQ(errorsOfText("{\n  \"nodes\": 2,,\n}"),
            Errors{"line 2, column 14: invalid JSON: unexpected ','; "
                   "expected string literal"});
  EXPECT_EQ(errorsOfText("{\"gpu\": {\"memory_gib\": 4O}}"),
            Errors{"line 1, column 25: invalid JSON: invalid literal; "
                   "expected '}'"});
  EXPECT_EQ(errorsOfText("{\"links\": {\"intra_node_gb_s\": 1e999}}"),
            Errors{"line 1, column 35: invalid JSON: number overflow parsing "
                   "'1e999'"});
}

TEST(ClusterConfigErrorTest, RootNotAnObject) {
  EXPECT_EQ(errorsOfText("8"), Errors{"$: expected a JSON object, got 8"});
  EXPECT_EQ(errorsOfText("\"h100-80gb:1x8\""),
            Errors{"$: expected a JSON object, got a string "
                   "\"h100-80gb:1x8\""});
}

TEST(ClusterConfigErrorTest, MissingRequiredFields) {
  Json doc = minimal();
  doc.erase("name");
  doc.erase("gpus_per_node");
  doc["gpu"].erase("memory_gib");
  doc["gpu"]["peak_tflops"].erase("f32");
  doc["links"].erase("inter_node_gb_s");
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{"$.name: missing required field (expected a string)",
              "$.gpus_per_node: missing required field (expected a positive "
              "integer)",
              "$.gpu.memory_gib: missing required field (expected a positive "
              "number)",
              "$.gpu.peak_tflops.f32: missing required field (expected a "
              "non-negative number)",
              "$.links.inter_node_gb_s: missing required field (expected a "
              "positive number)"}));

  doc = minimal();
  doc.erase("gpu");
  doc.erase("links");
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.gpu: missing required field (expected an object)",
                    "$.links: missing required field (expected an object)"}));

  doc = minimal();
  doc["gpu"].erase("peak_tflops");
  doc["gpu"].erase("name");
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.gpu.name: missing required field (expected a string)",
                    "$.gpu.peak_tflops: missing required field (expected an "
                    "object)"}));
}

TEST(ClusterConfigErrorTest, WrongType) {
  Json doc = minimal();
  doc["nodes"] = 1.5;
  doc["gpus_per_node"] = "8";
  doc["gpu"]["name"] = 100;
  doc["gpu"]["memory_gib"] = "40";
  doc["gpu"]["reserved_gib"] = nullptr;
  doc["gpu"]["peak_tflops"] = Json::array({312, 312, 19.5});
  doc["links"]["intra_node_gb_s"] = true;
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{"$.nodes: expected a positive integer, got 1.5",
              "$.gpus_per_node: expected a positive integer, got a string "
              "\"8\"",
              "$.gpu.name: expected a string, got 100",
              "$.gpu.memory_gib: expected a positive number, got a string "
              "\"40\"",
              "$.gpu.reserved_gib: expected a non-negative number, got null",
              "$.gpu.peak_tflops: expected an object, got an array",
              "$.links.intra_node_gb_s: expected a positive number, got a "
              "boolean true"}));

  doc = minimal();
  doc["gpu"] = "H100";
  doc["links"] = 3;
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.gpu: expected an object, got a string \"H100\"",
                    "$.links: expected an object, got 3"}));
}

TEST(ClusterConfigErrorTest, OutOfRange) {
  Json doc = minimal();
  doc["gpu"]["memory_gib"] = -1;
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.gpu.memory_gib: expected a positive number, got -1"});

  doc = minimal();
  doc["nodes"] = 0;
  doc["gpus_per_node"] = (int64_t(1) << 20) + 1;
  doc["gpu"]["memory_gib"] = 0.0;
  doc["gpu"]["reserved_gib"] = -0.5;
  doc["gpu"]["hbm_bandwidth_gb_s"] = 0;
  doc["gpu"]["peak_tflops"]["bf16"] = -312;
  doc["gpu"]["peak_tflops"]["fp8"] = 1e7;
  doc["links"]["inter_node_gb_s"] = -25;
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{"$.nodes: expected a positive integer, got 0",
              "$.gpus_per_node: expected a positive integer (at most 2^20), "
              "got 1048577",
              "$.gpu.memory_gib: expected a positive number, got 0.0",
              "$.gpu.reserved_gib: expected a non-negative number, got -0.5",
              "$.gpu.hbm_bandwidth_gb_s: expected a positive number, got 0",
              "$.gpu.peak_tflops.bf16: expected a non-negative number, got "
              "-312",
              "$.gpu.peak_tflops.fp8: expected a non-negative number (at "
              "most 2^20), got 10000000.0",
              "$.links.inter_node_gb_s: expected a positive number, got "
              "-25"}));
}

TEST(ClusterConfigErrorTest, InvalidNames) {
  Json doc = minimal();
  doc["name"] = "my cluster";
  doc["gpu"]["name"] = "";
  EXPECT_EQ(errorsOf(doc),
            (Errors{"$.name: expected a non-empty string of letters, digits, "
                    "'.', '_' and '-', got \"my cluster\"",
                    "$.gpu.name: expected a non-empty string, got \"\""}));
}

TEST(ClusterConfigErrorTest, ReservedMustBeLessThanMemory) {
  Json doc = minimal();
  doc["gpu"]["reserved_gib"] = 40;
  EXPECT_EQ(errorsOf(doc), Errors{"$.gpu.reserved_gib: must be less than "
                                  "$.gpu.memory_gib (40), got 40"});
  doc["gpu"]["reserved_gib"] = 40.5;
  doc["gpu"]["memory_gib"] = 40.0;
  EXPECT_EQ(errorsOf(doc), Errors{"$.gpu.reserved_gib: must be less than "
                                  "$.gpu.memory_gib (40), got 40.5"});

  // The default counts too.
  doc = minimal();
  doc["gpu"]["memory_gib"] = 1.5;
  EXPECT_EQ(errorsOf(doc),
            Errors{"$.gpu.reserved_gib: must be less than $.gpu.memory_gib "
                   "(1.5), got 2 (the default)"});

  // No rule message when either side is itself invalid.
  doc = minimal();
  doc["gpu"]["memory_gib"] = -1;
  doc["gpu"]["reserved_gib"] = 4;
  EXPECT_EQ(errorsOf(doc).size(), 1u);
  doc = minimal();
  doc["gpu"]["memory_gib"] = 1;
  doc["gpu"]["reserved_gib"] = "4";
  EXPECT_EQ(errorsOf(doc).size(), 1u);
}

TEST(ClusterConfigErrorTest, UnknownFields) {
  Json doc = minimal();
  doc["gpus"] = 8;
  doc["gpu"]["memory_gb"] = 40;
  doc["gpu"]["peak_tflops"]["fp16"] = 312;
  doc["links"]["nvlink_gb_s"] = 900;
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{"$.gpu.peak_tflops.fp16: unknown field; expected one of bf16, "
              "f16, f32, fp8 (did you mean \"f16\"?)",
              "$.gpu.memory_gb: unknown field; expected one of name, "
              "memory_gib, reserved_gib, hbm_bandwidth_gb_s, peak_tflops "
              "(did you mean \"memory_gib\"?)",
              "$.links.nvlink_gb_s: unknown field; expected one of "
              "intra_node_gb_s, inter_node_gb_s",
              "$.gpus: unknown field; expected one of name, nodes, "
              "gpus_per_node, gpu, links (did you mean \"gpu\"?)"}));
}

TEST(ClusterConfigErrorTest, DuplicateKey) {
  std::string text = minimal().dump();
  text.insert(text.find("\"memory_gib\""), "\"memory_gib\": 80, ");
  EXPECT_EQ(errorsOfText(text),
            Errors{"$.gpu.memory_gib: duplicate key; a field may appear only "
                   "once"});
}

TEST(ClusterConfigErrorTest, CollectsAllErrorsInOnePass) {
  Json doc = minimal();
  doc["nodes"] = -16;
  doc["gpu"]["memory_gib"] = 40;
  doc["gpu"]["reserved_gib"] = 41;
  doc["gpu"]["peak_tflops"]["bf16"] = "312";
  doc["links"].erase("intra_node_gb_s");
  doc["link"] = {};
  EXPECT_EQ(
      errorsOf(doc),
      (Errors{"$.nodes: expected a positive integer, got -16",
              "$.gpu.peak_tflops.bf16: expected a non-negative number, got a "
              "string \"312\"",
              "$.gpu.reserved_gib: must be less than $.gpu.memory_gib (40), "
              "got 41",
              "$.links.intra_node_gb_s: missing required field (expected a "
              "positive number)",
              "$.link: unknown field; expected one of name, nodes, "
              "gpus_per_node, gpu, links (did you mean \"links\"?)"}));
}

TEST(ClusterConfigErrorTest, UnreadableFile) {
  Errors errors;
  EXPECT_FALSE(
      loadClusterConfig("/nonexistent/cluster.json", errors).has_value());
  EXPECT_EQ(errors, Errors{"cannot read '/nonexistent/cluster.json': No such "
                           "file or directory"});
}

//===----------------------------------------------------------------------===//
// Presets and --cluster arguments
//===----------------------------------------------------------------------===//

TEST(ClusterPresetTest, Names) {
  EXPECT_EQ(getClusterPresetNames(),
            (std::vector<std::string>{"a100-40gb", "a100-80gb", "h100-80gb",
                                      "h200"}));
}

TEST(ClusterPresetTest, DatasheetFigures) {
  struct Case {
    const char *preset, *gpu;
    int64_t gib;
    double gbs, bf16, f16, f32, fp8, intra, inter;
  } const cases[] = {
      {"a100-40gb", "A100-SXM4-40GB", 40, 1555, 312, 312, 19.5, 0, 300, 25},
      {"a100-80gb", "A100-SXM4-80GB", 80, 2039, 312, 312, 19.5, 0, 300, 25},
      {"h100-80gb", "H100-SXM5-80GB", 80, 3350, 989, 989, 67, 1979, 450, 50},
      {"h200", "H200-SXM-141GB", 141, 4800, 989, 989, 67, 1979, 450, 50},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.preset);
    ClusterConfig p = preset(c.preset, 3, 4);
    EXPECT_EQ(p.name, std::string(c.preset) + "-3x4");
    EXPECT_EQ(p.nodes, 3);
    EXPECT_EQ(p.gpusPerNode, 4);
    EXPECT_EQ(p.getNumGPUs(), 12);
    EXPECT_EQ(p.gpu.name, c.gpu);
    EXPECT_EQ(p.gpu.memoryBytes, c.gib * kGiB);
    EXPECT_EQ(p.gpu.reservedBytes, 2 * kGiB);
    EXPECT_EQ(p.getUsableBytes(), (c.gib - 2) * kGiB);
    EXPECT_EQ(p.gpu.memoryBandwidth, c.gbs * 1e9);
    EXPECT_EQ(p.getPeakFlops(DType::BF16), c.bf16 * 1e12);
    EXPECT_EQ(p.getPeakFlops(DType::F16), c.f16 * 1e12);
    EXPECT_EQ(p.getPeakFlops(DType::F32), c.f32 * 1e12);
    EXPECT_EQ(p.gpu.peakFlopsFP8, c.fp8 * 1e12);
    EXPECT_EQ(p.intraNodeBandwidth, c.intra * 1e9);
    EXPECT_EQ(p.interNodeBandwidth, c.inter * 1e9);
  }
  // Spot checks in plain numbers.
  ClusterConfig a100 = preset("a100-40gb");
  EXPECT_EQ(a100.gpu.memoryBytes, 42949672960);
  EXPECT_EQ(a100.gpu.memoryBandwidth, 1.555e12);
  EXPECT_EQ(a100.gpu.peakFlopsBF16, 3.12e14);
  ClusterConfig h100 = preset("h100-80gb");
  EXPECT_EQ(h100.gpu.memoryBandwidth, 3.35e12);
  EXPECT_EQ(h100.gpu.peakFlopsBF16, 9.89e14);
  EXPECT_EQ(h100.gpu.peakFlopsFP8, 1.979e15);
}

TEST(ClusterPresetTest, NamesAreCaseInsensitive) {
  ClusterConfig p = preset("H100-80GB", 2, 8);
  EXPECT_EQ(p.name, "h100-80gb-2x8");
  EXPECT_EQ(p.gpu.name, "H100-SXM5-80GB");
}

TEST(ClusterPresetTest, Errors) {
  Errors errors;
  EXPECT_FALSE(getClusterPreset("foo", 1, 8, errors).has_value());
  EXPECT_EQ(errors, Errors{"unknown cluster preset \"foo\"; expected one of "
                           "a100-40gb, a100-80gb, h100-80gb, h200"});
  errors.clear();
  EXPECT_FALSE(getClusterPreset("h200", 0, -1, errors).has_value());
  EXPECT_EQ(errors,
            (Errors{"bad number of nodes for cluster preset \"h200\": "
                    "expected an integer in [1, 2^20], got 0",
                    "bad number of GPUs per node for cluster preset \"h200\": "
                    "expected an integer in [1, 2^20], got -1"}));
  errors.clear();
  EXPECT_FALSE(
      getClusterPreset("h200", 1, (int64_t(1) << 20) + 1, errors).has_value());
  EXPECT_EQ(errors.size(), 1u);
}

TEST(ClusterPresetTest, ResolveClusterForms) {
  Errors errors;
  std::optional<ClusterConfig> c = resolveCluster("a100-40gb:16x8", errors);
  ASSERT_TRUE(c.has_value());
  expectSameCluster(*c, preset("a100-40gb", 16, 8));
  EXPECT_EQ(c->name, "a100-40gb-16x8");
  EXPECT_EQ(c->getNumGPUs(), 128);

  c = resolveCluster("H200:2X4", errors);
  ASSERT_TRUE(c.has_value());
  expectSameCluster(*c, preset("h200", 2, 4));

  // A bare preset is one node of 8 GPUs.
  c = resolveCluster("h100-80gb", errors);
  ASSERT_TRUE(c.has_value());
  expectSameCluster(*c, preset("h100-80gb", 1, 8));

  c = resolveCluster(clusterPath("a100-80gb-1x8"), errors);
  ASSERT_TRUE(c.has_value());
  expectSameCluster(*c, preset("a100-80gb", 1, 8));
  EXPECT_EQ(errors, Errors{});
}

TEST(ClusterPresetTest, ResolveClusterErrors) {
  auto errorsOfSpec = [](const std::string &spec) {
    Errors errors;
    EXPECT_FALSE(resolveCluster(spec, errors).has_value()) << spec;
    return errors;
  };
  EXPECT_EQ(errorsOfSpec("a100-40gb:16y8"),
            Errors{"bad cluster \"a100-40gb:16y8\": expected "
                   "PRESET:NODESxGPUS, e.g. a100-40gb:16x8"});
  for (const char *spec :
       {"a100-40gb:", "a100-40gb:16", "a100-40gb:x8", "a100-40gb:16x",
        "a100-40gb:16x8x2", "a100-40gb:-1x8",
        "a100-40gb:99999999999999999999x8"})
    EXPECT_EQ(errorsOfSpec(spec),
              Errors{"bad cluster \"" + std::string(spec) +
                     "\": expected PRESET:NODESxGPUS, e.g. a100-40gb:16x8"});
  EXPECT_EQ(errorsOfSpec("a100:16x8"),
            Errors{"unknown cluster preset \"a100\"; expected one of "
                   "a100-40gb, a100-80gb, h100-80gb, h200"});
  EXPECT_EQ(errorsOfSpec("h200:0x8"),
            Errors{"bad number of nodes for cluster preset \"h200\": "
                   "expected an integer in [1, 2^20], got 0"});
  EXPECT_EQ(errorsOfSpec("/nonexistent/c.json"),
            Errors{"cannot read '/nonexistent/c.json': No such file or "
                   "directory"});
  EXPECT_EQ(errorsOfSpec("h100"),
            Errors{"unknown cluster \"h100\": not a preset (a100-40gb, "
                   "a100-80gb, h100-80gb, h200) and cannot read 'h100': No "
                   "such file or directory"});
}

//===----------------------------------------------------------------------===//
// Writing and the preset files
//===----------------------------------------------------------------------===//

TEST(ClusterConfigWriteTest, CanonicalForm) {
  std::string text = toJson(parseOk(minimal()));
  EXPECT_EQ(text, R"({
  "name": "c",
  "nodes": 2,
  "gpus_per_node": 4,
  "gpu": {
    "name": "G",
    "memory_gib": 40,
    "reserved_gib": 2,
    "hbm_bandwidth_gb_s": 1555,
    "peak_tflops": {
      "bf16": 312,
      "f16": 312,
      "f32": 19.5,
      "fp8": 0
    }
  },
  "links": {
    "intra_node_gb_s": 300,
    "inter_node_gb_s": 25
  }
}
)");
}

TEST(ClusterConfigWriteTest, RoundTrip) {
  Json doc = minimal();
  doc["gpu"]["name"] = "quote \" and \xc3\xa9";
  doc["gpu"]["memory_gib"] = 79.6;
  doc["gpu"]["reserved_gib"] = 1.0 / 3.0;
  doc["gpu"]["hbm_bandwidth_gb_s"] = 3016.123456789;
  doc["gpu"]["peak_tflops"] = {
      {"bf16", 0.1}, {"f16", 1.0 / 7.0}, {"f32", 66.9}, {"fp8", 1979.5}};
  doc["links"]["inter_node_gb_s"] = 12.3456789e-3;
  ClusterConfig config = parseOk(doc);
  // Byte counts that are not whole GiB survive too.
  config.gpu.memoryBytes = 85520809984 + 123;
  Errors errors;
  std::optional<ClusterConfig> back =
      parseClusterConfig(toJson(config), errors);
  ASSERT_TRUE(back.has_value()) << errors.front();
  expectSameCluster(*back, config);
  EXPECT_EQ(toJson(*back), toJson(config));
}

TEST(ClusterConfigWriteTest, PresetFilesAreCanonical) {
  for (const PresetFile &file : kPresetFiles) {
    SCOPED_TRACE(file.file);
    ClusterConfig p = preset(file.preset, file.nodes, file.gpusPerNode);
    EXPECT_EQ(p.name, file.file);
    EXPECT_EQ(readFile(clusterPath(file.file)), toJson(p));
    Errors errors;
    std::optional<ClusterConfig> loaded =
        loadClusterConfig(clusterPath(file.file), errors);
    ASSERT_TRUE(loaded.has_value()) << (errors.empty() ? "" : errors.front());
    expectSameCluster(*loaded, p);
  }
}

TEST(ClusterConfigWriteTest, EveryPresetRoundTrips) {
  for (const std::string &name : getClusterPresetNames()) {
    SCOPED_TRACE(name);
    ClusterConfig p = preset(name.c_str(), 4, 8);
    Errors errors;
    std::optional<ClusterConfig> back = parseClusterConfig(toJson(p), errors);
    ASSERT_TRUE(back.has_value());
    expectSameCluster(*back, p);
  }
}

} // namespace
