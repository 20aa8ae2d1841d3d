//===- Fuse.cpp - The moe-fuse pass ---------------------------------------===//
//
// Groups the memory-bound ops between GEMMs into moe.fused kernels. Greedy,
// in program order: a fusible op joins the kernel of one of its producers
// when everything else it reads was computed before that kernel starts, so
// the kernel can run where its first op was. Each kernel reads its inputs
// once and writes only what is used outside it. Typical kernels: residual
// add + RMSNorm; expert combine + residual add + the next layer's norm (+ the
// final gather of sampled rows); token dispatch. First, a RoPE whose only
// consumer is attention or a KV-cache write is folded into it (FoldRope.cpp).
// Ops that index the KV cache by layer, GEMMs and collectives stay outside.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/Fusion.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEFUSE
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

/// Memory-bound ops that are worth fusing and have no per-layer attributes.
static bool isFusible(Operation *op) {
  return isa<AddOp, RMSNormOp, LayerNormOp, RopeOp, DispatchOp, CombineOp,
             GatherTokensOp, SampleOp>(op);
}

/// Moves every moe.weight to the top of `block` (weights are constants), so
/// that they never keep a kernel from forming.
static void hoistWeights(Block &block) {
  SmallVector<Operation *> weights;
  for (Operation &op : block)
    if (isa<WeightOp>(op))
      weights.push_back(&op);
  Operation *first = nullptr;
  for (Operation &op : block)
    if (!isa<WeightOp>(op)) {
      first = &op;
      break;
    }
  if (!first)
    return;
  for (Operation *weight : weights)
    if (first->isBeforeInBlock(weight))
      weight->moveBefore(first);
}

namespace {
struct Group {
  SmallVector<Operation *> ops;
};
} // namespace

FusedOp mlir::moe::fuseOps(ArrayRef<Operation *> ops) {
  llvm::SmallPtrSet<Operation *, 8> members(ops.begin(), ops.end());
  llvm::SetVector<Value> inputs;
  for (Operation *op : ops)
    for (Value operand : op->getOperands())
      if (!members.contains(operand.getDefiningOp()))
        inputs.insert(operand);
  SmallVector<Value> outputs;
  for (Operation *op : ops)
    for (Value result : op->getResults())
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            return !members.contains(user);
          }))
        outputs.push_back(result);

  OpBuilder b(ops.front());
  SmallVector<Type> resultTypes;
  for (Value output : outputs)
    resultTypes.push_back(output.getType());
  auto fused = FusedOp::create(b, ops.front()->getLoc(), resultTypes,
                               inputs.getArrayRef());
  Block *body = b.createBlock(&fused.getBody());
  IRMapping mapping;
  for (Value input : inputs)
    mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
  for (Operation *op : ops)
    b.clone(*op, mapping);
  SmallVector<Value> yielded;
  for (Value output : outputs)
    yielded.push_back(mapping.lookup(output));
  YieldOp::create(b, fused.getLoc(), yielded);

  for (auto [output, result] : llvm::zip(outputs, fused.getResults()))
    output.replaceUsesWithIf(result, [&](OpOperand &use) {
      return !members.contains(use.getOwner());
    });
  for (Operation *op : llvm::reverse(ops))
    op->erase();
  return fused;
}

static void fuseBlock(Block &block) {
  hoistWeights(block);
  SmallVector<Group> groups;
  DenseMap<Operation *, size_t> groupOf;
  for (Operation &op : block) {
    if (!isFusible(&op))
      continue;
    // Join the first producer's kernel whose start every other operand
    // precedes.
    std::optional<size_t> chosen;
    for (Value operand : op.getOperands()) {
      auto it = groupOf.find(operand.getDefiningOp());
      if (it == groupOf.end())
        continue;
      Operation *first = groups[it->second].ops.front();
      bool ready = llvm::all_of(op.getOperands(), [&](Value other) {
        Operation *def = other.getDefiningOp();
        if (!def || def->getBlock() != &block)
          return true;
        auto member = groupOf.find(def);
        if (member != groupOf.end() && member->second == it->second)
          return true;
        return def->isBeforeInBlock(first);
      });
      if (ready) {
        chosen = it->second;
        break;
      }
    }
    if (!chosen) {
      chosen = groups.size();
      groups.emplace_back();
    }
    groups[*chosen].ops.push_back(&op);
    groupOf[&op] = *chosen;
  }
  for (Group &group : groups)
    fuseOps(group.ops);
}

namespace {
struct MoEFusePass : public moe::impl::MoEFuseBase<MoEFusePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFoldRopePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    getOperation().walk([](func::FuncOp func) {
      if (!func.isExternal())
        fuseBlock(func.getBody().front());
    });
  }
};
} // namespace
