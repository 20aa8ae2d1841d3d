//===- PlanMemory.cpp - The moe-plan-memory pass --------------------------===//
//
// Device memory of one rank of each stage: weights, activations (buffers
// reused by liveness), workspace, and the KV cache in what is left.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "models/ClusterConfig.h"
#include "passes/ModelReport.h"
#include "passes/Partition.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPLANMEMORY
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

/// Bytes of an activation value with `rows` tokens in its dynamic dimension;
/// weights and the KV cache are not activations.
static int64_t activationBytes(Value value, int64_t rows) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || value.getDefiningOp<WeightOp>())
    return 0;
  return getTensorBytes(type, rows);
}

/// Peak bytes of the activation buffers `func` keeps live at once when each
/// dynamic (token) dimension is `rows`: a buffer is freed after its last
/// reader. Weights and KV caches do not count.
static int64_t peakActivationBytes(func::FuncOp func, int64_t rows) {
  Block &body = func.getBody().front();
  // Position of each value's last reader: its buffer is free after that.
  DenseMap<Operation *, unsigned> position;
  for (auto [index, op] : llvm::enumerate(body))
    position[&op] = index;
  auto lastUse = [&](Value value) {
    unsigned last = 0;
    for (Operation *user : value.getUsers())
      last = std::max(last, position.lookup(
                                body.findAncestorOpInBlock(*user)));
    return last;
  };
  SmallVector<std::pair<unsigned, int64_t>> frees; // (position, bytes)
  int64_t live = 0, peak = 0;
  for (BlockArgument arg : body.getArguments()) {
    int64_t bytes = activationBytes(arg, rows);
    live += bytes;
    frees.push_back({lastUse(arg), bytes});
  }
  for (auto [index, op] : llvm::enumerate(body)) {
    for (Value result : op.getResults()) {
      int64_t bytes = activationBytes(result, rows);
      live += bytes;
      frees.push_back({result.use_empty() ? static_cast<unsigned>(index)
                                          : lastUse(result),
                       bytes});
    }
    peak = std::max(peak, live);
    // Buffers whose last reader is this op are free for the next one.
    for (auto &[at, bytes] : frees)
      if (at == index && bytes) {
        live -= bytes;
        bytes = 0;
      }
  }
  return peak;
}

namespace {
struct MoEPlanMemoryPass
    : public moe::impl::MoEPlanMemoryBase<MoEPlanMemoryPass> {
  using MoEPlanMemoryBase::MoEPlanMemoryBase;

  void runOnOperation() override;
};
} // namespace

void MoEPlanMemoryPass::runOnOperation() {
  ModuleOp module = getOperation();
  std::vector<std::string> errors;
  std::optional<moec::ClusterConfig> clusterConfig =
      moec::resolveCluster(cluster, errors);
  if (!clusterConfig) {
    for (const std::string &error : errors)
      module.emitError() << "moe-plan-memory: " << error;
    return signalPassFailure();
  }
  if (maxTokens < 1 || workspaceMiB < 0) {
    module.emitError() << "moe-plan-memory: max-tokens must be at least 1 "
                          "and workspace-mib not negative, got "
                       << static_cast<int64_t>(maxTokens) << " and "
                       << static_cast<int64_t>(workspaceMiB);
    return signalPassFailure();
  }
  SmallVector<func::FuncOp> funcs = getForwardFunctions(module);
  if (funcs.empty()) {
    module.emitError("moe-plan-memory: the module has no forward function");
    return signalPassFailure();
  }
  int64_t tp = getTensorParallel(module);
  int64_t needed = tp * static_cast<int64_t>(funcs.size());
  if (needed > clusterConfig->getNumGPUs()) {
    module.emitError() << "moe-plan-memory: the plan needs " << needed
                       << " GPUs (" << funcs.size() << " stages x " << tp
                       << " ranks) but cluster " << clusterConfig->name
                       << " has " << clusterConfig->getNumGPUs();
    return signalPassFailure();
  }
  auto maxContext = module->getAttrOfType<IntegerAttr>(kMaxContextAttr);
  int64_t context = maxContext ? maxContext.getInt() : 1;

  int64_t usable = clusterConfig->getUsableBytes();
  int64_t workspace = static_cast<int64_t>(workspaceMiB) << 20;
  bool fits = true;
  for (func::FuncOp func : funcs) {
    int64_t weights = 0;
    llvm::DenseSet<StringAttr> seen;
    func.walk([&](WeightOp weight) {
      if (seen.insert(weight.getNameAttr()).second)
        weights += getTensorBytes(weight.getResult().getType());
    });
    int64_t activations = peakActivationBytes(func, maxTokens);
    int64_t kvPerToken = getKVBytesPerToken(func);
    int64_t kvCache = usable - weights - activations - workspace;
    int64_t oneSequence = kvPerToken * context;
    if (kvCache < oneSequence) {
      fits = false;
      func.emitError() << "moe-plan-memory: stage " << getStage(func) << " ("
                       << describeRanks(getStage(func), tp)
                       << ") does not fit on " << clusterConfig->gpu.name
                       << " (" << formatGiB(usable) << " usable): weights "
                       << formatGiB(weights) << " + activations "
                       << formatGiB(activations) << " + workspace "
                       << formatGiB(workspace) << " leave "
                       << formatGiB(kvCache) << " for the KV cache, "
                       << formatGiB(oneSequence - kvCache)
                       << " short of one " << context << "-token sequence ("
                       << formatGiB(oneSequence) << ")";
      continue;
    }
    func->setAttr(kMemoryPlanAttr,
                  MemoryPlanAttr::get(&getContext(), weights, activations,
                                      workspace, kvCache, usable));
  }
  if (!fits)
    return signalPassFailure();
  module->setAttr(kClusterAttr,
                  StringAttr::get(&getContext(), clusterConfig->name));
}
