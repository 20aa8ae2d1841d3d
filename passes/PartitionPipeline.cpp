//===- PartitionPipeline.cpp - The moe-partition-pipeline pass ------------===//
//
// Cuts @forward into one function per pipeline stage, @forward_stage<i>, each
// holding a contiguous range of layers. Values that cross a cut travel by
// moe.send / moe.recv (in practice: the residual stream entering the stage's
// first layer); every stage gets its own KV cache holding its layers.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/ModelReport.h"
#include "passes/Partition.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPARTITIONPIPELINE
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

SmallVector<int64_t> mlir::moe::assignLayersToStages(int64_t layers,
                                                     int64_t stages,
                                                     int64_t headLayers) {
  SmallVector<int64_t> counts(stages, 0);
  if (stages == 1) {
    counts[0] = layers;
    return counts;
  }
  if (headLayers < 0) {
    // Even split; the remainder goes to the last stages so that the head
    // stage, which also holds the embedding, is never the heaviest.
    for (int64_t s = 0; s < stages; ++s)
      counts[s] = layers / stages + (s >= stages - layers % stages ? 1 : 0);
    return counts;
  }
  counts[0] = headLayers;
  int64_t rest = layers - headLayers, others = stages - 1;
  for (int64_t s = 1; s < stages; ++s)
    counts[s] = rest / others + (s > others - rest % others ? 1 : 0);
  return counts;
}

namespace {
struct MoEPartitionPipelinePass
    : public moe::impl::MoEPartitionPipelineBase<MoEPartitionPipelinePass> {
  using MoEPartitionPipelineBase::MoEPartitionPipelineBase;

  void runOnOperation() override;

private:
  LogicalResult partition(func::FuncOp forward);
};
} // namespace

/// The value of the residual stream entering `attention`'s layer: the input
/// of the norm in front of it (or the attention input if there is no norm).
static Value residualInto(AttentionOp attention) {
  Operation *norm = attention.getInput().getDefiningOp();
  if (isa_and_nonnull<RMSNormOp, LayerNormOp>(norm))
    return norm->getOperand(0);
  return attention.getInput();
}

LogicalResult MoEPartitionPipelinePass::partition(func::FuncOp forward) {
  SmallVector<AttentionOp> attentions;
  forward.walk([&](AttentionOp op) { attentions.push_back(op); });
  if (attentions.empty())
    return forward.emitError(
        "moe-partition-pipeline needs graph-level moe.attention ops (one per "
        "layer); run it before moe-decompose");
  int64_t layers = attentions.size();
  if (stages < 1 || stages > layers)
    return forward.emitError()
           << "moe-partition-pipeline: stages must be between 1 and the "
              "number of layers ("
           << layers << "), got " << static_cast<int64_t>(stages);
  if (headLayers == 0 || headLayers > layers - (stages - 1))
    return forward.emitError()
           << "moe-partition-pipeline: head-layers must leave every stage at "
              "least one layer: between 1 and "
           << layers - (stages - 1) << " for " << static_cast<int64_t>(stages)
           << " stages of " << layers << " layers, got "
           << static_cast<int64_t>(headLayers);
  for (auto [index, op] : llvm::enumerate(attentions))
    if (op.getLayer() != index)
      return op.emitError() << "moe-partition-pipeline: expected the layers "
                               "in order, found layer "
                            << op.getLayer() << " at position " << index;
  if (stages == 1)
    return success();

  // Stage of each layer, and the residual value each stage starts from.
  SmallVector<int64_t> counts =
      assignLayersToStages(layers, stages, headLayers);
  SmallVector<int64_t> firstLayer(stages + 1, 0);
  for (int64_t s = 0; s < stages; ++s)
    firstLayer[s + 1] = firstLayer[s] + counts[s];
  DenseMap<Value, int64_t> boundaryStage;
  for (int64_t s = 1; s < stages; ++s)
    boundaryStage[residualInto(attentions[firstLayer[s]])] = s;

  // Stage of every op: the latest stage among its operands (a boundary value
  // counts as belonging to the stage it enters); weights go where used.
  DenseMap<Operation *, int64_t> opStage;
  auto valueStage = [&](Value value) -> int64_t {
    auto it = boundaryStage.find(value);
    if (it != boundaryStage.end())
      return it->second;
    Operation *def = value.getDefiningOp();
    if (!def || isa<WeightOp>(def))
      return 0;
    return opStage.lookup(def);
  };
  Block &body = forward.getBody().front();
  for (Operation &op : body.without_terminator()) {
    if (isa<WeightOp>(op))
      continue;
    int64_t stage = 0;
    for (Value operand : op.getOperands())
      if (!isa<KVCacheType>(operand.getType()))
        stage = std::max(stage, valueStage(operand));
    opStage[&op] = stage;
  }

  // Activations that cross stages, (value, from, to), each pair of stages
  // once, in program order. Weights are cloned and KV caches are per stage.
  llvm::SetVector<std::tuple<Value, int64_t, int64_t>> crossings;
  for (Operation &op : body.without_terminator()) {
    if (isa<WeightOp>(op))
      continue;
    int64_t to = opStage.lookup(&op);
    for (Value operand : op.getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (!def || isa<WeightOp>(def) || isa<KVCacheType>(operand.getType()))
        continue;
      int64_t from = opStage.lookup(def);
      if (from != to)
        crossings.insert({operand, from, to});
    }
  }

  // Build the stage functions.
  auto cacheType = cast<KVCacheType>(forward.getArgument(2).getType());
  OpBuilder builder(forward);
  auto returnOp = cast<func::ReturnOp>(body.getTerminator());
  for (int64_t s = 0; s < stages; ++s) {
    auto localCache = KVCacheType::get(
        &getContext(), counts[s], cacheType.getNumKvHeads(),
        cacheType.getHeadDim(), cacheType.getElementType());
    // Results: whatever @forward returns from this stage, then the cache.
    SmallVector<Value> returned;
    for (Value value : returnOp.getOperands())
      if (!isa<KVCacheType>(value.getType()) &&
          value.getDefiningOp() && opStage.lookup(value.getDefiningOp()) == s)
        returned.push_back(value);
    SmallVector<Type> resultTypes;
    for (Value value : returned)
      resultTypes.push_back(value.getType());
    resultTypes.push_back(localCache);
    SmallVector<Type> argTypes(forward.getArgumentTypes());
    argTypes[2] = localCache;

    auto func = func::FuncOp::create(
        builder, forward.getLoc(),
        (kForwardFunctionName + "_stage" + Twine(s)).str(),
        builder.getFunctionType(argTypes, resultTypes));
    func->setAttr(kStageAttr, builder.getI64IntegerAttr(s));
    func->setAttr(kFirstLayerAttr, builder.getI64IntegerAttr(firstLayer[s]));
    Block *entry = func.addEntryBlock();
    OpBuilder b = OpBuilder::atBlockEnd(entry);
    IRMapping mapping;
    for (unsigned i = 0; i < forward.getNumArguments(); ++i)
      mapping.map(forward.getArgument(i), entry->getArgument(i));
    Value localCacheValue = entry->getArgument(2);

    // Values arriving from earlier stages, in program order.
    for (auto [value, from, to] : crossings)
      if (to == s)
        mapping.map(value, RecvOp::create(b, value.getLoc(), value.getType(),
                                          from)
                               .getResult());

    for (Operation &op : body.without_terminator()) {
      if (isa<WeightOp>(op) || opStage.lookup(&op) != s)
        continue;
      for (Value operand : op.getOperands()) {
        if (mapping.contains(operand))
          continue;
        if (auto weight = operand.getDefiningOp<WeightOp>())
          mapping.map(operand, b.clone(*weight)->getResult(0));
        else if (isa<KVCacheType>(operand.getType()))
          mapping.map(operand, localCacheValue);
      }
      Operation *clone = b.clone(op, mapping);
      if (auto attention = dyn_cast<AttentionOp>(clone)) {
        attention.setLayer(attention.getLayer() - firstLayer[s]);
        attention.getNewKvCache().setType(localCache);
        localCacheValue = attention.getNewKvCache();
      }
    }
    // Values leaving for later stages, sent once per destination stage.
    for (auto [value, from, to] : crossings)
      if (from == s)
        SendOp::create(b, value.getLoc(), mapping.lookup(value), to);
    SmallVector<Value> results;
    for (Value value : returned)
      results.push_back(mapping.lookup(value));
    results.push_back(localCacheValue);
    func::ReturnOp::create(b, returnOp.getLoc(), results);
  }
  forward.erase();
  return success();
}

void MoEPartitionPipelinePass::runOnOperation() {
  ModuleOp module = getOperation();
  auto forward = module.lookupSymbol<func::FuncOp>(kForwardFunctionName);
  if (!forward) {
    if (module->hasAttr(kPipelineStagesAttr))
      module.emitError("moe-partition-pipeline: the model is already "
                       "partitioned into stages");
    else
      module.emitError() << "moe-partition-pipeline: the module has no @"
                         << kForwardFunctionName;
    return signalPassFailure();
  }
  if (failed(partition(forward)))
    return signalPassFailure();
  module->setAttr(kPipelineStagesAttr,
                  IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                   static_cast<int64_t>(stages)));
}
