//===- PlanReport.cpp - Per-stage report of a partitioned model -----------===//

#include "passes/PlanReport.h"

#include "dialects/moe/MoEOps.h"
#include "passes/ModelReport.h"
#include "passes/Partition.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::moe;

PlanReport mlir::moe::summarizePlan(ModuleOp module,
                                    const moec::ClusterConfig *cluster,
                                    CostContext step) {
  PlanReport plan;
  if (auto name = module->getAttrOfType<StringAttr>(kModelNameAttr))
    plan.model = name.str();
  auto maxContext = module->getAttrOfType<IntegerAttr>(kMaxContextAttr);
  if (step.contextLength < 0)
    step.contextLength = maxContext ? maxContext.getInt() : 0;
  plan.step = step;
  plan.tensorParallel = getTensorParallel(module);
  SmallVector<func::FuncOp> funcs = getForwardFunctions(module);
  plan.pipelineStages = funcs.size();
  moec::DType type = getWeightDType(module);
  if (cluster) {
    plan.clusterName = cluster->name;
    plan.gpuName = cluster->gpu.name;
    plan.replicas = std::max<int64_t>(
        1, cluster->getNumGPUs() / (plan.tensorParallel * plan.pipelineStages));
  }

  double maxStageSeconds = 0;
  for (func::FuncOp func : funcs) {
    StageReport stage;
    stage.stage = getStage(func);
    stage.ranks = plan.tensorParallel;
    stage.firstRank = stage.stage * stage.ranks;
    if (auto first = func->getAttrOfType<IntegerAttr>(kFirstLayerAttr))
      stage.firstLayer = first.getInt();
    llvm::DenseSet<StringAttr> seen;
    func.walk([&](Operation *op) {
      if (auto weight = dyn_cast<WeightOp>(op)) {
        if (!seen.insert(weight.getNameAttr()).second)
          return;
        stage.paramsPerRank += weight.getResult().getType().getNumElements();
        stage.weightBytesPerRank +=
            getTensorBytes(weight.getResult().getType());
      } else if (isa<AttentionOp>(op)) {
        ++stage.layers;
      } else if (auto experts = dyn_cast<ExpertsOp>(op)) {
        int64_t local = experts.getDown().getType().getDimSize(0);
        plan.experts = experts.getNumModelExperts();
        plan.expertParallel = plan.experts / local;
        plan.expertTensorParallel = plan.tensorParallel / plan.expertParallel;
        plan.expertAllToAll = experts.getAllToAll().has_value();
      }
    });
    stage.kvBytesPerToken = getKVBytesPerToken(func);
    if (auto memory = func->getAttrOfType<MemoryPlanAttr>(kMemoryPlanAttr))
      stage.memory = memory;
    if (auto kv = func->getAttrOfType<KVPlanAttr>(kKVPlanAttr)) {
      stage.kv = kv;
      plan.sequences = std::min(plan.sequences.value_or(kv.getSequences()),
                                kv.getSequences());
    }
    if (cluster) {
      stage.cost = estimateStage(func, step, *cluster, type);
      plan.stepSeconds += stage.cost->seconds;
      maxStageSeconds = std::max(maxStageSeconds, stage.cost->seconds);
    }
    plan.stages.push_back(stage);
  }
  if (maxStageSeconds > 0)
    plan.tokensPerSecond =
        plan.replicas * step.numTokens / maxStageSeconds;
  return plan;
}

static std::string fixed(double value, int decimals = 2) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format(decimals == 1 ? "%.1f" : "%.2f", value);
  return text;
}

/// Decimal gigabytes.
static std::string gb(double bytes) { return fixed(bytes / 1e9); }

void mlir::moe::printPlanReport(const PlanReport &plan, llvm::raw_ostream &os) {
  int64_t gpus = plan.pipelineStages * plan.tensorParallel * plan.replicas;
  os << "plan: " << plan.pipelineStages << " pipeline stage(s) x "
     << plan.tensorParallel << " tensor-parallel rank(s)";
  if (plan.replicas > 1)
    os << " x " << plan.replicas << " replicas";
  os << " = " << gpus << " GPUs";
  if (!plan.gpuName.empty())
    os << " of " << plan.gpuName << " (" << plan.clusterName << ")";
  os << "\n";
  if (plan.experts)
    os << "experts: " << plan.experts << " per layer in " << plan.expertParallel
       << " group(s) of " << plan.expertTensorParallel
       << " rank(s), inside each stage (node)"
       << (plan.tensorParallel == 1 ? ""
           : plan.expertAllToAll   ? "; tokens exchanged by all-to-all"
                                   : "; shares summed by all-reduce")
       << "\n";

  os << llvm::left_justify("stage", 6) << llvm::left_justify("ranks", 9)
     << llvm::left_justify("layers", 9) << llvm::right_justify("params/GPU", 12)
     << llvm::right_justify("GB/GPU", 9) << llvm::right_justify("@8bit", 8)
     << llvm::right_justify("GB/node", 9) << llvm::right_justify("@8bit", 8)
     << llvm::right_justify("KV B/tok", 10);
  bool planned = !plan.stages.empty() && plan.stages.front().kv;
  bool costed = !plan.stages.empty() && plan.stages.front().cost;
  if (planned)
    os << llvm::right_justify("KV tokens", 11) << llvm::right_justify("seqs", 7);
  if (costed)
    os << llvm::right_justify("step ms", 9);
  os << "\n";
  for (const StageReport &s : plan.stages) {
    std::string ranks = std::to_string(s.firstRank);
    if (s.ranks > 1)
      ranks += "-" + std::to_string(s.firstRank + s.ranks - 1);
    std::string layers = std::to_string(s.firstLayer);
    if (s.layers > 1)
      layers += "-" + std::to_string(s.firstLayer + s.layers - 1);
    // 16-bit and 8-bit storage of the same parameters.
    double bytes16 = 2.0 * s.paramsPerRank, bytes8 = 1.0 * s.paramsPerRank;
    os << llvm::left_justify(std::to_string(s.stage), 6)
       << llvm::left_justify(ranks, 9) << llvm::left_justify(layers, 9)
       << llvm::right_justify(formatCount(s.paramsPerRank), 12)
       << llvm::right_justify(gb(bytes16), 9)
       << llvm::right_justify(gb(bytes8), 8)
       << llvm::right_justify(gb(bytes16 * s.ranks), 9)
       << llvm::right_justify(gb(bytes8 * s.ranks), 8)
       << llvm::right_justify(std::to_string(s.kvBytesPerToken), 10);
    if (planned && s.kv)
      os << llvm::right_justify(std::to_string(s.kv->getTokens()), 11)
         << llvm::right_justify(std::to_string(s.kv->getSequences()), 7);
    if (costed && s.cost)
      os << llvm::right_justify(fixed(s.cost->seconds * 1e3, 2), 9);
    os << "\n";
  }
  if (planned) {
    const StageReport &first = plan.stages.front();
    os << "kv cache: blocks of " << first.kv->getBlockSize()
       << " tokens; every stage holds " << plan.sequences.value_or(0)
       << " sequences of " << first.kv->getSequenceLength() << " tokens\n";
  }
  if (costed) {
    int64_t within = 0, between = 0;
    for (const StageReport &s : plan.stages) {
      within = std::max(within, s.cost->bytesWithinStage);
      between = std::max(between, s.cost->bytesToNextStage);
    }
    os << "decode step, " << plan.step.numTokens << " sequence(s) at context "
       << plan.step.contextLength << ": " << fixed(plan.stepSeconds * 1e3)
       << " ms through all stages (roofline, no overlap); "
       << fixed(plan.tokensPerSecond, 1)
       << " tokens/s with every stage busy\n";
    os << "communication per step per rank (most loaded stage): " << within
       << " bytes within the node, " << between << " bytes to the next stage\n";
    // Per stage, as moe-run prints what its ranks really sent.
    if (plan.stages.size() > 1)
      for (const StageReport &s : plan.stages)
        os << "  stage " << s.stage << ": " << s.cost->bytesWithinStage
           << " bytes within the node, " << s.cost->bytesToNextStage
           << " bytes to the next stage\n";
  }
}

llvm::json::Value mlir::moe::toJSON(const PlanReport &plan) {
  llvm::json::Array stages;
  for (const StageReport &s : plan.stages) {
    llvm::json::Object stage{
        {"stage", s.stage},
        {"first_rank", s.firstRank},
        {"ranks", s.ranks},
        {"first_layer", s.firstLayer},
        {"layers", s.layers},
        {"params_per_gpu", s.paramsPerRank},
        {"weight_bytes_per_gpu", s.weightBytesPerRank},
        {"bytes_per_gpu_16bit", 2 * s.paramsPerRank},
        {"bytes_per_gpu_8bit", s.paramsPerRank},
        {"bytes_per_node_16bit", 2 * s.paramsPerRank * s.ranks},
        {"bytes_per_node_8bit", s.paramsPerRank * s.ranks},
        {"kv_bytes_per_token", s.kvBytesPerToken},
    };
    if (s.memory)
      stage["memory"] = llvm::json::Object{
          {"weights", s.memory->getWeights()},
          {"activations", s.memory->getActivations()},
          {"workspace", s.memory->getWorkspace()},
          {"kv_cache", s.memory->getKvCache()},
          {"usable", s.memory->getUsable()}};
    if (s.kv)
      stage["kv_cache"] = llvm::json::Object{
          {"block_size", s.kv->getBlockSize()},
          {"blocks", s.kv->getBlocks()},
          {"tokens", s.kv->getTokens()},
          {"sequence_length", s.kv->getSequenceLength()},
          {"sequences", s.kv->getSequences()}};
    if (s.cost)
      stage["step"] = llvm::json::Object{
          {"flops", s.cost->flops},
          {"bytes", s.cost->bytes},
          {"bytes_within_stage", s.cost->bytesWithinStage},
          {"bytes_to_next_stage", s.cost->bytesToNextStage},
          {"seconds", s.cost->seconds}};
    stages.push_back(std::move(stage));
  }
  llvm::json::Object result{
      {"model", plan.model},
      {"pipeline_stages", plan.pipelineStages},
      {"tensor_parallel", plan.tensorParallel},
      {"expert_parallel", plan.expertParallel},
      {"expert_tensor_parallel", plan.expertTensorParallel},
      {"expert_all_to_all", plan.expertAllToAll},
      {"replicas", plan.replicas},
      {"batch", plan.step.numTokens},
      {"context", plan.step.contextLength},
      {"stages", std::move(stages)},
  };
  if (!plan.clusterName.empty()) {
    result["cluster"] = plan.clusterName;
    result["gpu"] = plan.gpuName;
    result["step_seconds"] = plan.stepSeconds;
    result["tokens_per_second"] = plan.tokensPerSecond;
  }
  if (plan.sequences)
    result["sequences"] = *plan.sequences;
  return result;
}
