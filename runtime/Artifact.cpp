//===- Artifact.cpp - Reading compiled moec artifacts ---------------------===//

#include "runtime/Artifact.h"
#include "runtime/ArtifactJson.h"
#include "runtime/Base64.h"
#include "runtime/ExecutionReader.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

using namespace moert;

namespace {

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr std::string_view kChecksumKey = "\"checksum\": \"fnv1a64:";
constexpr int kDigits = 16;
const char *const kChecksumExpected =
    "\"fnv1a64:\" and 16 lowercase hex digits";

uint64_t fnvUpdate(uint64_t hash, std::string_view bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= kFnvPrime;
  }
  return hash;
}

std::string hex16(uint64_t value) {
  char digits[kDigits + 1];
  std::snprintf(digits, sizeof digits, "%016llx",
                static_cast<unsigned long long>(value));
  return digits;
}

bool isLowerHex(std::string_view text) {
  return text.size() == kDigits &&
         text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

constexpr std::pair<DType, const char *> kDTypeNames[] = {
    {DType::BF16, "bf16"},       {DType::F16, "f16"}, {DType::F32, "f32"},
    {DType::F8E4M3, "f8E4M3FN"}, {DType::I32, "i32"}, {DType::I64, "i64"}};

std::string formatList(const std::vector<int64_t> &values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i)
    out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

std::string plural(int64_t count, const char *noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}


} // namespace

namespace moert {

/// Validates one parsed artifact into an Artifact, throwing ReadError.
class ArtifactReader : public JsonFields {
public:
  ArtifactReader(std::string name, Artifact &out)
      : JsonFields(std::move(name)), out(out) {}

  /// Reads `text` into the artifact; throws ReadError.
  void read(std::string_view text);

private:

  void checkHeader(const json &root, std::string_view text) {
    auto format = root.find("format");
    if (format == root.end() || *format != "moec-artifact")
      throw ReadError{"'" + name + "' is not a moec artifact"};
    auto version = root.find("version");
    if (version == root.end())
      fail("$.version", "missing required field (expected a positive integer)");
    if (version->is_number_unsigned() &&
        version->get<uint64_t>() > static_cast<uint64_t>(kArtifactVersion))
      throw ReadError{"'" + name + "' is artifact version " + show(*version) +
                      "; this moe-run reads version " +
                      std::to_string(kArtifactVersion) + ": rebuild moe-run"};
    if (version->is_number_unsigned() && version->get<uint64_t>() >= 1 &&
        version->get<uint64_t>() < static_cast<uint64_t>(kArtifactVersion))
      throw ReadError{"'" + name + "' is artifact version " + show(*version) +
                      "; this moe-run reads version " +
                      std::to_string(kArtifactVersion) +
                      ": compile it again with moec"};
    if (!version->is_number_integer() || *version != kArtifactVersion)
      fail("$.version", "expected a positive integer, got " + show(*version));

    std::string corrupt = "'" + name + "' is corrupt: ";
    auto checksum = root.find("checksum");
    if (checksum == root.end())
      throw ReadError{corrupt +
                      "$.checksum: missing required field (expected " +
                      kChecksumExpected + ")"};
    std::string stored =
        checksum->is_string() ? checksum->get<std::string>() : "";
    if (stored.compare(0, 8, "fnv1a64:") != 0 ||
        !isLowerHex(std::string_view(stored).substr(8)))
      throw ReadError{corrupt + "$.checksum: expected " + kChecksumExpected +
                      ", got " + show(*checksum)};
    // The digits the checksum covers as zeros: those after the first
    // `"checksum": "fnv1a64:`, which the writer puts first in the file.
    size_t at = text.find(kChecksumKey);
    if (at == std::string_view::npos ||
        text.substr(at + kChecksumKey.size(), kDigits + 1) !=
            stored.substr(8) + "\"")
      throw ReadError{corrupt +
                      "its checksum is not written as \"checksum\": \"" +
                      stored + "\""};
    size_t digits = at + kChecksumKey.size();
    uint64_t hash = fnvUpdate(kFnvBasis, text.substr(0, digits));
    hash = fnvUpdate(hash, std::string(kDigits, '0'));
    hash = fnvUpdate(hash, text.substr(digits + kDigits));
    if (hex16(hash) != stored.substr(8))
      throw ReadError{corrupt + "checksum " + stored +
                      " does not match its contents (fnv1a64:" + hex16(hash) +
                      ")"};
    out.checksumText = stored;
  }

  void readModel(const json &root) {
    const json &model = object(root, "$", "model");
    ModelInfo &info = out.modelInfo;
    info.name = string(model, "$.model", "name");
    info.vocabSize = integer(model, "$.model", "vocab_size", true);
    info.dModel = integer(model, "$.model", "d_model", true);
    info.numLayers = integer(model, "$.model", "num_layers", true);
    info.maxContext = integer(model, "$.model", "max_context", true);
    info.experts = integer(model, "$.model", "experts", false);
    info.topK = integer(model, "$.model", "top_k", false);
    if (info.topK > info.experts)
      fail("$.model.top_k", "expected at most experts (" +
                                std::to_string(info.experts) + "), got " +
                                std::to_string(info.topK));
    std::string dtype = string(model, "$.model", "dtype");
    if ((dtype != "bf16" && dtype != "f16" && dtype != "f32") ||
        !parseArtifactDType(dtype, info.dtype))
      fail("$.model.dtype",
           "expected \"bf16\", \"f16\" or \"f32\", got " + show(json(dtype)));
  }

  void readPlan(const json &root) {
    const json &plan = object(root, "$", "plan");
    PlanInfo &info = out.planInfo;
    info.pipelineStages = integer(plan, "$.plan", "pipeline_stages", true);
    info.tensorParallel = integer(plan, "$.plan", "tensor_parallel", true);
    info.expertParallel = integer(plan, "$.plan", "expert_parallel", true);
    info.expertAllToAll = get(plan, "$.plan", "expert_all_to_all", "a boolean",
                              [](const json &v) { return v.is_boolean(); })
                              .get<bool>();
    info.ranks = integer(plan, "$.plan", "ranks", true);
    int64_t ranks = -1;
    if (__builtin_mul_overflow(info.pipelineStages, info.tensorParallel,
                               &ranks))
      ranks = -1;
    expect(info.ranks, ranks, "$.plan.ranks",
           "pipeline_stages * tensor_parallel = " +
               std::to_string(info.pipelineStages) + " * " +
               std::to_string(info.tensorParallel) + " = ");
  }

  WeightInfo readWeight(const json &entry, const std::string &path,
                        int64_t stageRanks) {
    if (!entry.is_object())
      fail(path, "expected an object");
    WeightInfo weight;
    weight.name = string(entry, path, "name");
    if (weight.name.empty())
      fail(path + ".name", "expected a non-empty string");
    std::string dtype = string(entry, path, "dtype");
    if (!parseArtifactDType(dtype, weight.dtype))
      fail(path + ".dtype",
           "expected \"bf16\", \"f16\", \"f32\", \"f8E4M3FN\", "
           "\"i32\" or \"i64\", got " +
               show(json(dtype)));
    weight.shape = integers(entry, path, "shape", false);
    weight.localShape = integers(entry, path, "local_shape", false);
    weight.splits = integers(entry, path, "splits", true);
    weight.chunks = integers(entry, path, "chunks", true);
    size_t dims = weight.shape.size();
    if (weight.localShape.size() != dims)
      fail(path + ".local_shape",
           "expected " + plural(static_cast<int64_t>(dims), "dimension") +
               " like shape " + formatList(weight.shape) + ", got " +
               formatList(weight.localShape));
    for (const char *key : {"splits", "chunks"}) {
      const std::vector<int64_t> &list =
          key[0] == 's' ? weight.splits : weight.chunks;
      if (!list.empty() && list.size() != dims)
        fail(path + "." + key,
             "expected [] or one entry per dimension of shape " +
                 formatList(weight.shape) + ", got " + formatList(list));
    }
    int64_t parts = 1;
    for (size_t i = 0; i < dims; ++i) {
      int64_t split = weight.splits.empty() ? 1 : weight.splits[i], full = 0;
      if (__builtin_mul_overflow(weight.localShape[i], split, &full) ||
          full != weight.shape[i])
        fail(path + ".local_shape",
             formatList(weight.localShape) +
                 (weight.splits.empty()
                      ? " is not shape " + formatList(weight.shape) +
                            " (the weight has no splits)"
                      : " times splits " + formatList(weight.splits) +
                            " is not shape " + formatList(weight.shape)));
      if (!weight.chunks.empty() &&
          weight.localShape[i] % weight.chunks[i] != 0)
        fail(path + ".chunks", "dimension " + std::to_string(i) +
                                   " of local_shape (" +
                                   std::to_string(weight.localShape[i]) +
                                   ") is not a multiple of its " +
                                   plural(weight.chunks[i], "chunk"));
      if (__builtin_mul_overflow(parts, split, &parts))
        fail(path + ".splits",
             formatList(weight.splits) + " make too many parts");
    }
    if (stageRanks % parts != 0)
      fail(path + ".splits", formatList(weight.splits) + " make " +
                                 plural(parts, "part") + ", which a stage of " +
                                 plural(stageRanks, "rank") +
                                 " cannot share evenly");
    if (weight.localBytes() < 0)
      fail(path + ".local_shape",
           formatList(weight.localShape) + " is too large");
    return weight;
  }

  void readStage(const json &entry, const std::string &path, int64_t index) {
    if (!entry.is_object())
      fail(path, "expected an object");
    const PlanInfo &plan = out.planInfo;
    StageInfo stage;
    stage.stage = integer(entry, path, "stage", false);
    if (stage.stage != index)
      fail(path + ".stage", "expected " + std::to_string(index) +
                                " (stages are listed in order), got " +
                                std::to_string(stage.stage));
    stage.firstRank = integer(entry, path, "first_rank", false);
    stage.ranks = integer(entry, path, "ranks", true);
    expect(stage.ranks, plan.tensorParallel, path + ".ranks",
           "plan.tensor_parallel = ");
    expect(stage.firstRank, index * plan.tensorParallel, path + ".first_rank",
           "stage * tensor_parallel = ");
    stage.firstLayer = integer(entry, path, "first_layer", false);
    stage.layers = integer(entry, path, "layers", false);
    if (stage.firstLayer > out.modelInfo.numLayers ||
        stage.layers > out.modelInfo.numLayers - stage.firstLayer)
      fail(path + ".layers", "first_layer " + std::to_string(stage.firstLayer) +
                                 " + layers " + std::to_string(stage.layers) +
                                 " run past the model's " +
                                 plural(out.modelInfo.numLayers, "layer"));
    const json &weights = array(entry, path, "weights");
    int64_t total = 0;
    for (size_t w = 0; w < weights.size(); ++w) {
      std::string at = path + ".weights[" + std::to_string(w) + "]";
      stage.weights.push_back(readWeight(weights[w], at, stage.ranks));
      if (__builtin_add_overflow(total, stage.weights.back().localBytes(),
                                 &total))
        fail(at, "the stage's weights are too large");
    }
    if (entry.contains("memory")) {
      const json &memory = object(entry, path, "memory");
      std::string at = path + ".memory";
      stage.memory = MemoryInfo{integer(memory, at, "weights", false),
                                integer(memory, at, "activations", false),
                                integer(memory, at, "workspace", false),
                                integer(memory, at, "kv_cache", false),
                                integer(memory, at, "usable", false)};
    }
    if (entry.contains("kv_cache")) {
      const json &kv = object(entry, path, "kv_cache");
      std::string at = path + ".kv_cache";
      stage.kvCache = KVCacheInfo{integer(kv, at, "block_size", true),
                                  integer(kv, at, "bytes_per_token", false),
                                  integer(kv, at, "blocks", false),
                                  integer(kv, at, "sequence_length", false),
                                  integer(kv, at, "sequences", false)};
    }
    stage.program = string(entry, path, "program");
    if (entry.contains("execution"))
      stage.execution = readExecutionPlan(
          name, object(entry, path, "execution"), path + ".execution");
    out.stageInfos.push_back(std::move(stage));
  }


  void readCuda(const json &root) {
    const json &cuda = object(root, "$", "cuda");
    const json &chips = array(cuda, "$.cuda", "chips");
    for (size_t c = 0; c < chips.size(); ++c) {
      if (!chips[c].is_string())
        fail("$.cuda.chips[" + std::to_string(c) + "]", "expected a chip");
      out.chips.push_back(chips[c].get<std::string>());
    }
    const json &modules = array(cuda, "$.cuda", "modules");
    for (size_t m = 0; m < modules.size(); ++m) {
      std::string at = "$.cuda.modules[" + std::to_string(m) + "]";
      if (!modules[m].is_object())
        fail(at, "expected an object");
      CudaModuleInfo module;
      module.module = string(modules[m], at, "module");
      module.function = string(modules[m], at, "function");
      const json &ptx = object(modules[m], at, "ptx");
      for (auto it = ptx.begin(); it != ptx.end(); ++it) {
        if (!it.value().is_string())
          fail(at + ".ptx." + it.key(), "expected PTX text");
        module.ptx[it.key()] = it.value().get<std::string>();
      }
      const json &cubin = object(modules[m], at, "cubin");
      for (auto it = cubin.begin(); it != cubin.end(); ++it) {
        std::string where = at + ".cubin." + it.key();
        int64_t size = integer(it.value(), where, "size", true);
        if (!decodeBase64(string(it.value(), where, "base64"),
                          module.cubin[it.key()]))
          fail(where + ".base64", "expected base64 text");
        expect(static_cast<int64_t>(module.cubin[it.key()].size()), size,
               where, "a decoded size of ");
      }
      out.modules.push_back(std::move(module));
    }
    // Every launch names a module the artifact holds.
    for (const StageInfo &stage : out.stageInfos)
      if (stage.execution)
        for (const StepInfo &step : stage.execution->steps)
          for (const LaunchInfo &launch : step.launches)
            if (std::none_of(out.modules.begin(), out.modules.end(),
                             [&](const CudaModuleInfo &m) {
                               return m.module == launch.module;
                             }))
              fail("$.cuda.modules", "no module '" + launch.module +
                                         "' for kernel '" + step.kernel + "'");
  }

  void readHostObject(const json &root) {
    const json &object = this->object(root, "$", "host_object");
    if (string(object, "$.host_object", "format") != "elf-shared-object")
      fail("$.host_object.format", "expected \"elf-shared-object\"");
    int64_t size = integer(object, "$.host_object", "size", true);
    std::string text = string(object, "$.host_object", "base64");
    if (!decodeBase64(text, out.hostObjectBytes))
      fail("$.host_object.base64", "expected base64 text");
    expect(static_cast<int64_t>(out.hostObjectBytes.size()), size,
           "$.host_object", "a decoded size of ");
  }

  Artifact &out;
};

} // namespace moert

uint64_t moert::fnv1a64(std::string_view bytes) {
  return fnvUpdate(kFnvBasis, bytes);
}

const char *moert::artifactDTypeName(DType dtype) {
  for (const auto &entry : kDTypeNames)
    if (entry.first == dtype)
      return entry.second;
  return "unknown";
}

bool moert::parseArtifactDType(std::string_view name, DType &dtype) {
  for (const auto &entry : kDTypeNames)
    if (name == entry.second) {
      dtype = entry.first;
      return true;
    }
  return false;
}

void ArtifactReader::read(std::string_view text) {
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object())
    throw ReadError{"'" + name + "' is not a moec artifact"};
  checkHeader(root, text);
  out.targetName = string(root, "$", "target");
  if (out.targetName != "host" && out.targetName != "cuda")
    fail("$.target",
         "expected \"host\" or \"cuda\", got " + show(json(out.targetName)));
  readModel(root);
  readPlan(root);
  const json &stages = array(root, "$", "stages");
  if (static_cast<int64_t>(stages.size()) != out.planInfo.pipelineStages)
    fail("$.stages",
         "expected " + plural(out.planInfo.pipelineStages, "stage") +
             " (plan.pipeline_stages), got " + std::to_string(stages.size()));
  for (size_t s = 0; s < stages.size(); ++s)
    readStage(stages[s], "$.stages[" + std::to_string(s) + "]",
              static_cast<int64_t>(s));
  if (root.contains("host_object"))
    readHostObject(root);
  if (root.contains("cuda"))
    readCuda(root);
  const json &kernels = array(root, "$", "kernels");
  for (size_t k = 0; k < kernels.size(); ++k) {
    std::string at = "$.kernels[" + std::to_string(k) + "]";
    if (!kernels[k].is_object())
      fail(at, "expected an object");
    out.kernelInfos.push_back(
        {string(kernels[k], at, "name"), string(kernels[k], at, "mlir")});
  }
}

//===----------------------------------------------------------------------===//
// Artifact
//===----------------------------------------------------------------------===//

std::unique_ptr<Artifact> Artifact::parse(std::string_view text,
                                          std::string &error,
                                          const std::string &name) {
  try {
    std::unique_ptr<Artifact> artifact(new Artifact());
    ArtifactReader(name, *artifact).read(text);
    return artifact;
  } catch (const ReadError &e) {
    error = e.message;
  } catch (const std::exception &e) {
    error = "'" + name + "': " + e.what();
  } catch (...) {
    error = "'" + name + "': unknown failure while reading";
  }
  return nullptr;
}

std::unique_ptr<Artifact> Artifact::open(const std::string &path,
                                         std::string &error) {
  struct Closer {
    void operator()(std::FILE *file) const { std::fclose(file); }
  };
  std::string text;
  try {
    std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "rb"));
    char buffer[1 << 16];
    size_t got = 0;
    while (file && (got = std::fread(buffer, 1, sizeof buffer, file.get())) > 0)
      text.append(buffer, got);
    if (!file || std::ferror(file.get())) {
      error = "cannot read '" + path + "': " + std::strerror(errno);
      return nullptr;
    }
  } catch (const std::exception &e) { // std::bad_alloc
    error = "cannot read '" + path + "': " + e.what();
    return nullptr;
  }
  return parse(text, error, path);
}

std::string Artifact::checkLaunch(const std::string &runtimeTarget,
                                  int64_t rank, int64_t worldSize) const {
  if (runtimeTarget != targetName)
    return "the artifact was compiled for " + targetName +
           "; this moe-run runs " + runtimeTarget;
  if (worldSize != planInfo.ranks)
    return "the plan needs " + plural(planInfo.ranks, "rank") + " but " +
           std::to_string(worldSize) + (worldSize == 1 ? " was" : " were") +
           " started";
  if (rank < 0 || rank >= planInfo.ranks)
    return "rank " + std::to_string(rank) + " is out of range for a plan of " +
           plural(planInfo.ranks, "rank");
  return "";
}

const StageInfo &Artifact::stageOfRank(int64_t rank) const {
  static const StageInfo kNoStage{-1, 0, 0, 0, 0, {}, {}, {}, {}, {}};
  if (rank < 0 || rank >= planInfo.ranks || planInfo.tensorParallel < 1)
    return kNoStage;
  size_t index = static_cast<size_t>(rank / planInfo.tensorParallel);
  return index < stageInfos.size() ? stageInfos[index] : kNoStage;
}

std::vector<WeightSpec> Artifact::weightsForRank(int64_t rank) const {
  std::vector<WeightSpec> specs;
  for (const WeightInfo &weight : stageOfRank(rank).weights)
    specs.push_back(weight.spec());
  return specs;
}

int64_t Artifact::rankInStage(int64_t rank) const {
  const StageInfo &stage = stageOfRank(rank);
  return stage.stage < 0 ? -1 : rank - stage.firstRank;
}

int64_t Artifact::groupSize(int64_t rank) const {
  return stageOfRank(rank).ranks;
}
