//===- ArtifactWriter.cpp - The compiled artifact -------------------------===//

#include "codegen/ArtifactWriter.h"
#include "codegen/CudaObject.h"

#include "dialects/moe/MoEOps.h"
#include "passes/Partition.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/Base64.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::moe;

/// The checksum field as written before the digits are known.
static constexpr llvm::StringLiteral kChecksumPlaceholder =
    "fnv1a64:0000000000000000";

uint64_t mlir::moe::fnv1a64(llvm::StringRef bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

static llvm::json::Array toArray(ArrayRef<int64_t> values) {
  llvm::json::Array array;
  for (int64_t value : values)
    array.push_back(value);
  return array;
}

static std::string print(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  op->print(os, OpPrintingFlags().useLocalScope());
  return text;
}

/// The weights one rank of `func`'s stage loads, each once.
static llvm::json::Array describeWeights(func::FuncOp func) {
  llvm::json::Array weights;
  llvm::DenseSet<StringAttr> seen;
  func.walk([&](WeightOp weight) {
    if (!seen.insert(weight.getNameAttr()).second)
      return;
    RankedTensorType local = weight.getResult().getType();
    std::string dtype;
    llvm::raw_string_ostream(dtype) << local.getElementType();
    llvm::json::Object entry{
        {"name", weight.getName()},
        {"dtype", dtype},
        {"shape", toArray(weight.getFullType().getShape())},
        {"local_shape", toArray(local.getShape())},
        {"splits", llvm::json::Array()},
        {"chunks", llvm::json::Array()},
    };
    if (ShardAttr shard = weight.getShardAttr()) {
      entry["splits"] = toArray(shard.getSplits());
      entry["chunks"] = toArray(shard.getChunks());
    }
    weights.push_back(std::move(entry));
  });
  return weights;
}

FailureOr<std::string> mlir::moe::writeArtifact(
    ModuleOp module, const ::moec::ModelConfig &config, llvm::StringRef target,
    const HostCompilation *host, const CudaCompilation *cuda) {
  SmallVector<func::FuncOp> funcs = getForwardFunctions(module);
  if (funcs.empty())
    return module.emitError("the module has no forward function to write");
  int64_t tensorParallel = getTensorParallel(module);
  int64_t pipelineStages = funcs.size();
  int64_t expertParallel = 1;
  bool allToAll = false;
  // Graph-level experts, or their decomposed grouped FFN and exchange.
  module.walk([&](Operation *op) {
    if (auto experts = dyn_cast<ExpertsOp>(op)) {
      expertParallel = experts.getNumModelExperts() /
                       experts.getDown().getType().getDimSize(0);
      allToAll = experts.getAllToAll().has_value();
    } else if (auto ffn = dyn_cast<ExpertFFNOp>(op)) {
      expertParallel =
          ffn.getNumModelExperts() / ffn.getDown().getType().getDimSize(0);
    } else if (isa<ExpertExchangeOp>(op)) {
      allToAll = true;
    }
  });

  llvm::json::Array stages;
  for (func::FuncOp func : funcs) {
    int64_t stage = getStage(func), layers = 0, firstLayer = 0;
    for (Type type : func.getArgumentTypes())
      if (auto cache = dyn_cast<KVCacheType>(type))
        layers = cache.getNumLayers();
    if (auto first = func->getAttrOfType<IntegerAttr>(kFirstLayerAttr))
      firstLayer = first.getInt();
    llvm::json::Object entry{
        {"stage", stage},
        {"first_rank", stage * tensorParallel},
        {"ranks", tensorParallel},
        {"first_layer", firstLayer},
        {"layers", layers},
        {"weights", describeWeights(func)},
        {"program", print(func)},
    };
    if (auto memory = func->getAttrOfType<MemoryPlanAttr>(kMemoryPlanAttr))
      entry["memory"] = llvm::json::Object{
          {"weights", memory.getWeights()},
          {"activations", memory.getActivations()},
          {"workspace", memory.getWorkspace()},
          {"kv_cache", memory.getKvCache()},
          {"usable", memory.getUsable()}};
    if (auto kv = func->getAttrOfType<KVPlanAttr>(kKVPlanAttr))
      entry["kv_cache"] = llvm::json::Object{
          {"block_size", kv.getBlockSize()},
          {"bytes_per_token", kv.getBytesPerToken()},
          {"blocks", kv.getBlocks()},
          {"sequence_length", kv.getSequenceLength()},
          {"sequences", kv.getSequences()}};
    if (host && static_cast<size_t>(stage) < host->executions.size())
      entry["execution"] = llvm::json::Object(host->executions[stage]);
    if (cuda && static_cast<size_t>(stage) < cuda->executions.size())
      entry["execution"] = llvm::json::Object(cuda->executions[stage]);
    stages.push_back(std::move(entry));
  }

  llvm::json::Array kernels;
  for (auto func : module.getOps<func::FuncOp>())
    if (func->hasAttr("moe.kernel"))
      kernels.push_back(llvm::json::Object{{"name", func.getName()},
                                           {"mlir", print(func)}});

  llvm::json::Object artifact{
      {"format", "moec-artifact"},
      {"version", kArtifactVersion},
      {"checksum", kChecksumPlaceholder},
      {"target", target},
      {"model",
       llvm::json::Object{
           {"name", config.name},
           {"vocab_size", config.vocabSize},
           {"d_model", config.dModel},
           {"num_layers", config.numLayers},
           {"max_context", config.maxContext},
           {"experts", config.mlp.isMoE ? config.mlp.numExperts : 0},
           {"top_k", config.mlp.isMoE ? config.mlp.topK : 0},
           {"dtype", std::string(::moec::stringifyDType(config.dtype))}}},
      {"plan",
       llvm::json::Object{{"pipeline_stages", pipelineStages},
                          {"tensor_parallel", tensorParallel},
                          {"expert_parallel", expertParallel},
                          {"expert_all_to_all", allToAll},
                          {"ranks", pipelineStages * tensorParallel}}},
      {"stages", std::move(stages)},
      {"kernels", std::move(kernels)},
  };
  if (host)
    artifact["host_object"] = llvm::json::Object{
        {"format", "elf-shared-object"},
        {"size", static_cast<int64_t>(host->sharedObject.size())},
        {"base64", llvm::encodeBase64(host->sharedObject)}};
  if (cuda) {
    llvm::json::Array chips, modules;
    for (const std::string &chip : cuda->chips)
      chips.push_back(chip);
    for (const CudaKernel &kernel : cuda->kernels) {
      llvm::json::Object ptx, cubin;
      for (const auto &[chip, text] : kernel.ptx)
        ptx[chip] = text;
      for (const auto &[chip, bytes] : kernel.cubin)
        cubin[chip] = llvm::json::Object{
            {"size", static_cast<int64_t>(bytes.size())},
            {"base64", llvm::encodeBase64(bytes)}};
      llvm::json::Object entry{{"module", kernel.module},
                               {"function", kernel.function},
                               {"ptx", std::move(ptx)},
                               {"cubin", std::move(cubin)}};
      if (kernel.report)
        entry["ptxas"] = llvm::json::Object{
            {"registers", kernel.report->registers},
            {"shared_bytes", kernel.report->sharedBytes},
            {"stack_bytes", kernel.report->stackBytes},
            {"spill_stores", kernel.report->spillStores},
            {"spill_loads", kernel.report->spillLoads}};
      modules.push_back(std::move(entry));
    }
    artifact["cuda"] = llvm::json::Object{{"chips", std::move(chips)},
                                          {"modules", std::move(modules)}};
  }
  std::string text =
      llvm::formatv("{0:2}", llvm::json::Value(std::move(artifact))).str() +
      "\n";
  // Hash with the placeholder in place, then write the digits into it.
  size_t at = text.find(kChecksumPlaceholder);
  std::string digits;
  llvm::raw_string_ostream(digits)
      << llvm::format("%016llx",
                      static_cast<unsigned long long>(fnv1a64(text)));
  text.replace(at + strlen("fnv1a64:"), 16, digits);
  return text;
}
