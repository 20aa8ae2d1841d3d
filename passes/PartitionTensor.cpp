//===- PartitionTensor.cpp - The moe-partition-tensor pass ----------------===//
//
// Megatron-style tensor parallelism over the T ranks of a stage: attention
// heads and dense FFN columns split across ranks (column-parallel q/k/v and
// gate/up, row-parallel o and down, each followed by an all-reduce),
// vocabulary-parallel embedding (all-reduce) and LM head (all-gather of the
// logits). KV heads are split when T divides them and replicated otherwise
// (MQA: every rank keeps the one KV head). Norms and routers are replicated;
// routed experts are left to moe-partition-experts.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/Partition.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPARTITIONTENSOR
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct MoEPartitionTensorPass
    : public moe::impl::MoEPartitionTensorBase<MoEPartitionTensorPass> {
  using MoEPartitionTensorBase::MoEPartitionTensorBase;

  void runOnOperation() override;
  LogicalResult partition(func::FuncOp func);
};
} // namespace

/// Error for a dimension `what` (value `size`) that T does not divide.
static InFlightDiagnostic notDivisible(Operation *op, StringRef what,
                                       int64_t size, int64_t degree) {
  return op->emitError() << "moe-partition-tensor: " << what << " (" << size
                         << ") is not divisible by the tensor-parallel "
                            "degree ("
                         << degree << ")";
}

LogicalResult MoEPartitionTensorPass::partition(func::FuncOp func) {
  int64_t t = degree;
  Operation *decomposed = nullptr;
  func.walk([&](Operation *op) {
    if (isa<LinearOp, AttendOp, KVCacheWriteOp, ExpertFFNOp>(op))
      decomposed = op;
  });
  if (decomposed)
    return decomposed->emitError(
        "moe-partition-tensor needs graph-level ops; run it before "
        "moe-decompose");

  // Decide every weight's shard and check every split before changing
  // anything.
  ShardPlan plan;
  SmallVector<EmbedOp> embeds;
  SmallVector<AttentionOp> attentions;
  SmallVector<Value> reduced;
  WalkResult walk = func.walk([&](Operation *op) -> WalkResult {
    if (auto attention = dyn_cast<AttentionOp>(op)) {
      int64_t heads = attention.getNumHeads();
      int64_t kvHeads = attention.getNumKvHeads();
      if (heads % t != 0)
        return notDivisible(op, "num_heads", heads, t);
      if (kvHeads % t != 0 && t % kvHeads != 0)
        return op->emitError()
               << "moe-partition-tensor: num_kv_heads (" << kvHeads
               << ") and the tensor-parallel degree (" << t
               << "): one must divide the other";
      int64_t kvParts = std::min(kvHeads, t);
      if (failed(plan.add(attention.getWq(), {t, 1})) ||
          failed(plan.add(attention.getWk(), {kvParts, 1})) ||
          failed(plan.add(attention.getWv(), {kvParts, 1})) ||
          failed(plan.add(attention.getWo(), {1, t})))
        return WalkResult::interrupt();
      attentions.push_back(attention);
      reduced.push_back(attention.getResult());
    } else if (auto ffn = dyn_cast<FFNOp>(op)) {
      int64_t width = ffn.getDown().getType().getDimSize(1);
      if (width % t != 0)
        return notDivisible(op, "ffn width", width, t);
      if (failed(plan.add(ffn.getUp(), {t, 1})) ||
          (ffn.getGate() && failed(plan.add(ffn.getGate(), {t, 1}))) ||
          failed(plan.add(ffn.getDown(), {1, t})))
        return WalkResult::interrupt();
      reduced.push_back(ffn.getResult());
    } else if (auto embed = dyn_cast<EmbedOp>(op)) {
      int64_t vocab = embed.getTable().getType().getDimSize(0);
      if (vocab % t != 0)
        return notDivisible(op, "vocabulary", vocab, t);
      if (failed(plan.add(embed.getTable(), {t, 1})))
        return WalkResult::interrupt();
      embeds.push_back(embed);
      reduced.push_back(embed.getResult());
    } else if (auto head = dyn_cast<LMHeadOp>(op)) {
      int64_t vocab = head.getWeight().getType().getDimSize(0);
      if (vocab % t != 0)
        return notDivisible(op, "vocabulary", vocab, t);
      if (failed(plan.add(head.getWeight(), {t, 1})))
        return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted() || failed(plan.apply()))
    return failure();

  // Local heads and the local KV cache type, threaded through the layers.
  for (AttentionOp attention : attentions) {
    int64_t kvHeads = attention.getNumKvHeads();
    attention.setNumHeads(attention.getNumHeads() / t);
    attention.setNumKvHeads(kvHeads % t == 0 ? kvHeads / t : 1);
    auto cache = attention.getKvCache().getType();
    auto local = KVCacheType::get(&getContext(), cache.getNumLayers(),
                                  attention.getNumKvHeads(),
                                  cache.getHeadDim(), cache.getElementType());
    if (auto arg = dyn_cast<BlockArgument>(attention.getKvCache()))
      arg.setType(local);
    attention.getNewKvCache().setType(local);
  }
  // Each rank looks up the tokens of its part of the vocabulary.
  for (EmbedOp embed : embeds) {
    OpBuilder b(embed);
    auto part = GroupRankOp::create(
        b, embed.getLoc(), RankedTensorType::get({1}, b.getI32Type()), t, 1);
    embed.getPartMutable().assign(part);
  }
  for (Value value : reduced)
    insertAllReduceAfter(value, t);
  func.walk([&](LMHeadOp head) {
    RankedTensorType full = head.getLogits().getType();
    head.getLogits().setType(full.clone(
        {full.getDimSize(0), full.getDimSize(1) / t}));
    OpBuilder b(head.getContext());
    b.setInsertionPointAfter(head);
    auto gather = AllGatherOp::create(b, head.getLoc(), full, head.getLogits(),
                                      /*dim=*/1, t);
    head.getLogits().replaceAllUsesExcept(gather.getResult(), gather);
  });
  updateFunctionType(func);
  return success();
}

void MoEPartitionTensorPass::runOnOperation() {
  ModuleOp module = getOperation();
  if (degree < 1) {
    module.emitError() << "moe-partition-tensor: degree must be at least 1, "
                          "got "
                       << static_cast<int64_t>(degree);
    return signalPassFailure();
  }
  if (getTensorParallel(module) != 1) {
    module.emitError("moe-partition-tensor: the model is already partitioned "
                     "for tensor parallelism");
    return signalPassFailure();
  }
  SmallVector<func::FuncOp> funcs = getForwardFunctions(module);
  if (funcs.empty()) {
    module.emitError("moe-partition-tensor: the module has no forward "
                     "function");
    return signalPassFailure();
  }
  if (degree > 1)
    for (func::FuncOp func : funcs)
      if (failed(partition(func)))
        return signalPassFailure();
  module->setAttr(kTensorParallelAttr,
                  IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                   static_cast<int64_t>(degree)));
}
