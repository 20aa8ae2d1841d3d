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
/// kv_cache_write(rope(k), v) -> kv_cache_write(k, v) rope.
struct FoldKeyRope : OpRewritePattern<KVCacheWriteOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(KVCacheWriteOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getRope())
      return failure();
    RopeOp rope = foldableRope(op.getKeys(), op.getPositions(),
                               op.getKvCache().getType());
    if (!rope)
      return rewriter.notifyMatchFailure(op, "keys are not a foldable rope");
    rewriter.modifyOpInPlace(op, [&] {
      op.getKeysMutable().assign(rope.getInput());
      op.setRopeAttr(rope.getRope());
    });
    rewriter.eraseOp(rope);
    return success();
  }
};

/// attend(rope(q)) -> attend(q) rope.
struct FoldQueryRope : OpRewritePattern<AttendOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttendOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getRope())
      return failure();
    RopeOp rope = foldableRope(op.getQueries(), op.getPositions(),
                               op.getKvCache().getType());
    if (!rope)
      return rewriter.notifyMatchFailure(op, "queries are not a foldable rope");
    rewriter.modifyOpInPlace(op, [&] {
      op.getQueriesMutable().assign(rope.getInput());
      op.setRopeAttr(rope.getRope());
    });
    rewriter.eraseOp(rope);
    return success();
  }
};
} // namespace

void mlir::moe::populateFoldRopePatterns(RewritePatternSet &patterns) {
  patterns.add<FoldKeyRope, FoldQueryRope>(patterns.getContext());
}
