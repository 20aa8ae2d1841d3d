//===- ClusterConfig.cpp - Cluster descriptions ---------------------------===//
//
// Reader, validator and writer of the cluster description format documented
// in models/README.md ("Cluster descriptions"), the built-in GPU presets and
// the `--cluster` argument syntax. Files give sizes in human units (GiB, GB/s,
// TFLOP/s); ClusterConfig holds bytes, bytes/s and FLOP/s. Reading goes
// through json::FieldReader, as for model descriptions, so that messages have
// the same form. No exception leaves this file.
//
//===----------------------------------------------------------------------===//

#include "models/ClusterConfig.h"

#include "models/JsonReader.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

using namespace moec;
using namespace moec::json;

namespace {

/// Units of the file: GiB (memory), GB/s (bandwidth), TFLOP/s (peaks).
constexpr double kGiB = 1073741824.0;
constexpr double kGB = 1e9;
constexpr double kTera = 1e12;

/// Largest value of every number field, and largest node and GPU count: far
/// beyond any real machine, and it keeps byte counts within int64_t and
/// nodes x GPUs within 2^40.
constexpr double kMaxNumber = 1048576.0; // 2^20
constexpr int64_t kMaxCount = int64_t(1) << 20;

/// `$.gpu.reserved_gib` when absent.
constexpr double kDefaultReservedGiB = 2.0;

/// GPUs per node of a preset named without a size (`--cluster=h100-80gb`).
constexpr int64_t kDefaultGPUsPerNode = 8;

/// A built-in GPU (SXM part, vendor datasheet figures: dense tensor-core
/// peaks without sparsity; f32 is the non-tensor-core FP32 rate) with the
/// links of its usual 8-GPU node.
struct Preset {
  const char *key;
  const char *gpuName;
  double memoryGiB;
  double bandwidthGBs;
  double tflopsBF16, tflopsF16, tflopsF32, tflopsFP8;
  /// NVLink, per direction.
  double intraNodeGBs;
  /// One InfiniBand NIC per GPU: 200 Gb/s HDR (A100), 400 Gb/s NDR (H100,
  /// H200).
  double interNodeGBs;
};

const Preset kPresets[] = {
    {"a100-40gb", "A100-SXM4-40GB", 40, 1555, 312, 312, 19.5, 0, 300, 25},
    {"a100-80gb", "A100-SXM4-80GB", 80, 2039, 312, 312, 19.5, 0, 300, 25},
    {"h100-80gb", "H100-SXM5-80GB", 80, 3350, 989, 989, 67, 1979, 450, 50},
    {"h200", "H200-SXM-141GB", 141, 4800, 989, 989, 67, 1979, 450, 50},
};

/// "a100-40gb, a100-80gb, h100-80gb, h200".
std::string presetList() {
  std::string list;
  for (const Preset &preset : kPresets)
    list += (list.empty() ? "" : ", ") + std::string(preset.key);
  return list;
}

std::string toLower(std::string_view text) {
  std::string lower(text);
  for (char &c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

/// The preset called `name`, ignoring case, or nullptr.
const Preset *findPreset(std::string_view name) {
  std::string lower = toLower(name);
  for (const Preset &preset : kPresets)
    if (lower == preset.key)
      return &preset;
  return nullptr;
}

/// Bytes in `gib` GiB, rounded to a whole byte; `gib` is at most kMaxNumber.
int64_t gibToBytes(double gib) { return std::llround(gib * kGiB); }

/// `value / scale` as a JSON number that reads back to `value` when
/// multiplied by `scale` (the nearest such double; the plain quotient when
/// none is within a few ulps), written as an integer when it is one.
Json scaled(double value, double scale) {
  double x = value / scale;
  if (std::isfinite(x) && x * scale != value) {
    double down = x, up = x;
    for (int i = 0; i < 4; ++i) {
      up = std::nextafter(up, HUGE_VAL);
      down = std::nextafter(down, -HUGE_VAL);
      if (up * scale == value || down * scale == value) {
        x = up * scale == value ? up : down;
        break;
      }
    }
  }
  constexpr double kExact = 9007199254740992.0; // 2^53
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < kExact)
    return Json(static_cast<int64_t>(x));
  return Json(x);
}

/// Number fields: > 0 or >= 0, at most 2^20.
NumberRange numberRange(bool positive) {
  NumberRange range;
  range.expected = positive ? "a positive number" : "a non-negative number";
  range.includeLow = !positive;
  range.high = kMaxNumber;
  range.includeHigh = true;
  range.highText = "2^20";
  return range;
}

/// Reads `$.gpu.peak_tflops`.
void readPeaks(FieldReader &gpuReader, GPUConfig &gpu) {
  std::optional<FieldReader> reader = gpuReader.child("peak_tflops", true);
  if (!reader)
    return;
  NumberRange range = numberRange(false);
  gpu.peakFlopsBF16 = reader->number("bf16", true, range).value_or(0) * kTera;
  gpu.peakFlopsF16 = reader->number("f16", true, range).value_or(0) * kTera;
  gpu.peakFlopsF32 = reader->number("f32", true, range).value_or(0) * kTera;
  gpu.peakFlopsFP8 = reader->number("fp8", false, range).value_or(0) * kTera;
  reader->reportUnknownFields();
}

/// Reads `$.gpu` and checks the reserved memory against the memory.
void readGPU(FieldReader &root, GPUConfig &gpu) {
  std::optional<FieldReader> reader = root.child("gpu", true);
  if (!reader)
    return;
  if (std::optional<std::string> name = reader->string("name", true)) {
    if (name->empty())
      reader->error("name", "expected a non-empty string, got \"\"");
    gpu.name = *name;
  }
  std::optional<double> memory =
      reader->number("memory_gib", true, numberRange(true));
  std::optional<double> reserved =
      reader->number("reserved_gib", false, numberRange(false));
  bool reservedValid = reserved || !reader->has("reserved_gib");
  double reservedGiB = reserved.value_or(kDefaultReservedGiB);
  gpu.memoryBytes = memory ? gibToBytes(*memory) : 0;
  gpu.reservedBytes = reservedValid ? gibToBytes(reservedGiB) : 0;
  gpu.memoryBandwidth =
      reader->number("hbm_bandwidth_gb_s", true, numberRange(true))
          .value_or(0) *
      kGB;
  readPeaks(*reader, gpu);
  if (memory && reservedValid &&
      (reservedGiB >= *memory || gpu.reservedBytes >= gpu.memoryBytes))
    reader->error("reserved_gib", "must be less than " +
                                      reader->pathOf("memory_gib") + " (" +
                                      formatNumber(*memory) + "), got " +
                                      formatNumber(reservedGiB) +
                                      (reserved ? "" : " (the default)"));
  reader->reportUnknownFields();
}

/// Reads `$.links`.
void readLinks(FieldReader &root, ClusterConfig &config) {
  std::optional<FieldReader> reader = root.child("links", true);
  if (!reader)
    return;
  NumberRange range = numberRange(true);
  config.intraNodeBandwidth =
      reader->number("intra_node_gb_s", true, range).value_or(0) * kGB;
  config.interNodeBandwidth =
      reader->number("inter_node_gb_s", true, range).value_or(0) * kGB;
  reader->reportUnknownFields();
}

/// Reads the root object of a cluster description; the config is meaningful
/// only when nothing was appended to `errors`.
ClusterConfig readCluster(const Json &root, Errors &errors) {
  ClusterConfig config;
  FieldReader reader(root, "$", errors);
  config.name = reader.name("name", true).value_or("");
  config.nodes = reader.integer("nodes", true, 1, kMaxCount).value_or(0);
  config.gpusPerNode =
      reader.integer("gpus_per_node", true, 1, kMaxCount).value_or(0);
  readGPU(reader, config.gpu);
  readLinks(reader, config);
  reader.reportUnknownFields();
  return config;
}

/// Parses `NODESxGPUS` (decimal digits on both sides of an `x` or `X`).
std::optional<std::pair<int64_t, int64_t>> parseSize(std::string_view text) {
  size_t x = text.find_first_of("xX");
  if (x == std::string_view::npos)
    return std::nullopt;
  auto parse = [](std::string_view digits) -> std::optional<int64_t> {
    int64_t value = 0;
    const char *end = digits.data() + digits.size();
    if (digits.empty() ||
        digits.find_first_not_of("0123456789") != std::string_view::npos)
      return std::nullopt;
    auto [ptr, error] = std::from_chars(digits.data(), end, value);
    if (error != std::errc() || ptr != end)
      return std::nullopt;
    return value;
  };
  std::optional<int64_t> nodes = parse(text.substr(0, x));
  std::optional<int64_t> gpus = parse(text.substr(x + 1));
  if (!nodes || !gpus)
    return std::nullopt;
  return std::make_pair(*nodes, *gpus);
}

/// Whether a `--cluster` argument can only be a file: it has a '/' or ends
/// with ".json".
bool isFilePath(const std::string &spec) {
  std::string lower = toLower(spec);
  bool json =
      lower.size() >= 5 && lower.compare(lower.size() - 5, 5, ".json") == 0;
  return json || spec.find('/') != std::string::npos;
}

} // namespace

double ClusterConfig::getPeakFlops(DType type) const {
  switch (type) {
  case DType::BF16:
    return gpu.peakFlopsBF16;
  case DType::F16:
    return gpu.peakFlopsF16;
  case DType::F32:
    return gpu.peakFlopsF32;
  }
  return 0;
}

std::optional<ClusterConfig> moec::parseClusterConfig(std::string_view text,
                                                     Errors &errors) {
  return readDocument<ClusterConfig>(text, errors, readCluster);
}

std::optional<ClusterConfig> moec::loadClusterConfig(const std::string &path,
                                                    Errors &errors) {
  std::optional<std::string> text = readTextFile(path, errors);
  return text ? parseClusterConfig(*text, errors) : std::nullopt;
}

std::vector<std::string> moec::getClusterPresetNames() {
  std::vector<std::string> names;
  for (const Preset &preset : kPresets)
    names.push_back(preset.key);
  return names;
}

std::optional<ClusterConfig> moec::getClusterPreset(std::string_view name,
                                                   int64_t nodes,
                                                   int64_t gpusPerNode,
                                                   Errors &errors) {
  try {
    const Preset *preset = findPreset(name);
    size_t before = errors.size();
    if (!preset)
      errors.push_back("unknown cluster preset \"" + std::string(name) +
                       "\"; expected one of " + presetList());
    std::string range = "an integer in [1, " + formatLimit(kMaxCount) + "]";
    if (nodes < 1 || nodes > kMaxCount)
      errors.push_back("bad number of nodes for cluster preset \"" +
                       std::string(name) + "\": expected " + range + ", got " +
                       std::to_string(nodes));
    if (gpusPerNode < 1 || gpusPerNode > kMaxCount)
      errors.push_back("bad number of GPUs per node for cluster preset \"" +
                       std::string(name) + "\": expected " + range + ", got " +
                       std::to_string(gpusPerNode));
    if (errors.size() != before)
      return std::nullopt;
    ClusterConfig config;
    config.name = std::string(preset->key) + "-" + std::to_string(nodes) + "x" +
                  std::to_string(gpusPerNode);
    config.nodes = nodes;
    config.gpusPerNode = gpusPerNode;
    config.gpu.name = preset->gpuName;
    config.gpu.memoryBytes = gibToBytes(preset->memoryGiB);
    config.gpu.reservedBytes = gibToBytes(kDefaultReservedGiB);
    config.gpu.memoryBandwidth = preset->bandwidthGBs * kGB;
    config.gpu.peakFlopsBF16 = preset->tflopsBF16 * kTera;
    config.gpu.peakFlopsF16 = preset->tflopsF16 * kTera;
    config.gpu.peakFlopsF32 = preset->tflopsF32 * kTera;
    config.gpu.peakFlopsFP8 = preset->tflopsFP8 * kTera;
    config.intraNodeBandwidth = preset->intraNodeGBs * kGB;
    config.interNodeBandwidth = preset->interNodeGBs * kGB;
    return config;
  } catch (...) {
    appendQuietly(errors, {"cluster preset: out of memory"});
    return std::nullopt;
  }
}

std::optional<ClusterConfig> moec::resolveCluster(const std::string &spec,
                                                 Errors &errors) {
  try {
    if (isFilePath(spec))
      return loadClusterConfig(spec, errors);
    if (size_t colon = spec.find(':'); colon != std::string::npos) {
      std::string name = spec.substr(0, colon);
      std::optional<std::pair<int64_t, int64_t>> size =
          parseSize(std::string_view(spec).substr(colon + 1));
      if (findPreset(name) && !size) {
        errors.push_back("bad cluster \"" + spec +
                         "\": expected PRESET:NODESxGPUS, e.g. a100-40gb:16x8");
        return std::nullopt;
      }
      // An unknown preset is reported whatever follows the colon.
      return getClusterPreset(name, size ? size->first : 1,
                              size ? size->second : kDefaultGPUsPerNode,
                              errors);
    }
    if (findPreset(spec))
      return getClusterPreset(spec, 1, kDefaultGPUsPerNode, errors);
    // Neither a preset nor obviously a path: a file if there is one.
    Errors readErrors;
    if (std::optional<std::string> text = readTextFile(spec, readErrors))
      return parseClusterConfig(*text, errors);
    errors.push_back("unknown cluster \"" + spec + "\": not a preset (" +
                     presetList() + ") and " +
                     (readErrors.empty() ? "not a readable file"
                                         : readErrors.front()));
    return std::nullopt;
  } catch (...) {
    appendQuietly(errors, {"cluster '", spec, "': out of memory"});
    return std::nullopt;
  }
}

/// Returns an empty string only if memory runs out.
std::string moec::toJson(const ClusterConfig &config) {
  try {
    const GPUConfig &gpu = config.gpu;
    Json peaks = {{"bf16", scaled(gpu.peakFlopsBF16, kTera)},
                  {"f16", scaled(gpu.peakFlopsF16, kTera)},
                  {"f32", scaled(gpu.peakFlopsF32, kTera)},
                  {"fp8", scaled(gpu.peakFlopsFP8, kTera)}};
    Json gpuJson = {
        {"name", gpu.name},
        {"memory_gib", scaled(static_cast<double>(gpu.memoryBytes), kGiB)},
        {"reserved_gib", scaled(static_cast<double>(gpu.reservedBytes), kGiB)},
        {"hbm_bandwidth_gb_s", scaled(gpu.memoryBandwidth, kGB)},
        {"peak_tflops", peaks}};
    Json links = {{"intra_node_gb_s", scaled(config.intraNodeBandwidth, kGB)},
                  {"inter_node_gb_s", scaled(config.interNodeBandwidth, kGB)}};
    Json root = {{"name", config.name},
                 {"nodes", config.nodes},
                 {"gpus_per_node", config.gpusPerNode},
                 {"gpu", gpuJson},
                 {"links", links}};
    return root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  } catch (...) {
    return std::string();
  }
}
