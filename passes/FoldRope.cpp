//===- FoldRope.cpp - RoPE folded into its consumers ----------------------===//
//
// A query's RoPE becomes part of attention (which rotates the queries as it
// loads them) and a key's RoPE part of the KV-cache write, so neither needs
// a kernel of its own nor a round trip of the rotated rows through memory.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::moe;

/// The moe.rope that produces `value` when its rotation can move into the
/// consumer: it is the value's only use, rotates at `positions`, and its
/// heads are the cache's.
static RopeOp foldableRope(Value value, Value positions, KVCacheType cache) {
  auto rope = value.getDefiningOp<RopeOp>();
  if (!rope || !value.hasOneUse() || rope.getPositions() != positions ||
      static_cast<int64_t>(rope.getHeadDim()) != cache.getHeadDim())
    return {};
  return rope;
}

namespace {
/// kv_cache_write(rope(k), v) -> kv_cache_write(k, v) rope, and
/// attend(rope(q)) -> attend(q) rope: `rotated` is the operand whose RoPE
/// folds (the keys, the queries).
template <typename OpTy>
struct FoldRope : OpRewritePattern<OpTy> {
  using Rotated = OpOperand &(*)(OpTy);
  FoldRope(MLIRContext *context, Rotated rotated)
      : OpRewritePattern<OpTy>(context), rotated(rotated) {}

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    if (op.getRope())
      return failure();
    OpOperand &operand = rotated(op);
    RopeOp rope = foldableRope(operand.get(), op.getPositions(),
                               op.getKvCache().getType());
    if (!rope)
      return rewriter.notifyMatchFailure(op, "not fed by a foldable rope");
    rewriter.modifyOpInPlace(op, [&] {
      operand.set(rope.getInput());
      op.setRopeAttr(rope.getRope());
    });
    rewriter.eraseOp(rope);
    return success();
  }

  Rotated rotated;
};
} // namespace

void mlir::moe::populateFoldRopePatterns(RewritePatternSet &patterns) {
  MLIRContext *context = patterns.getContext();
  patterns.add<FoldRope<KVCacheWriteOp>>(
      context, +[](KVCacheWriteOp op) -> OpOperand & {
        return op.getKeysMutable();
      });
  patterns.add<FoldRope<AttendOp>>(context, +[](AttendOp op) -> OpOperand & {
    return op.getQueriesMutable();
  });
}
