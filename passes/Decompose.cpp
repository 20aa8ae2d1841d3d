//===- Decompose.cpp - The moe-decompose pass -----------------------------===//
//
// Graph-level attention and routed experts -> their step-by-step forms.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEDECOMPOSE
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

/// [rows of `like`, width] tensor with `like`'s element type.
static RankedTensorType withWidth(RankedTensorType like, int64_t width) {
  return RankedTensorType::get({like.getDimSize(0), width},
                               like.getElementType());
}

namespace {
struct DecomposeAttention : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType inputType = op.getInput().getType();
    int64_t headDim = op.getHeadDim();
    auto qType = withWidth(inputType, op.getNumHeads() * headDim);
    auto kvType = withWidth(inputType, op.getNumKvHeads() * headDim);
    Value positions = op.getPositions();

    auto project = [&](Type type, Value input, Value weight) -> Value {
      return LinearOp::create(rewriter, loc, type, input, weight,
                              ParamCategory::attention);
    };
    Value q = project(qType, op.getInput(), op.getWq());
    Value k = project(kvType, op.getInput(), op.getWk());
    Value v = project(kvType, op.getInput(), op.getWv());
    if (RopeAttr rope = op.getRopeAttr()) {
      q = RopeOp::create(rewriter, loc, qType, q, positions, headDim, rope);
      k = RopeOp::create(rewriter, loc, kvType, k, positions, headDim, rope);
    }
    Value cache = KVCacheWriteOp::create(rewriter, loc,
                                         op.getKvCache().getType(),
                                         op.getKvCache(), k, v, positions,
                                         op.getLayer(), /*rope=*/nullptr);
    Value attended =
        AttendOp::create(rewriter, loc, qType, q, cache, positions,
                         op.getLayer(), op.getNumHeads(), op.getCausal(),
                         /*rope=*/nullptr);
    Value output = project(inputType, attended, op.getWo());
    rewriter.replaceOp(op, {output, cache});
    return success();
  }
};

struct DecomposeExperts : OpRewritePattern<ExpertsOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ExpertsOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType inputType = op.getInput().getType();
    int64_t experts = op.getNumModelExperts();
    int64_t topK = op.getIndices().getType().getDimSize(1);
    int64_t tokens = inputType.getDimSize(0);
    int64_t rows =
        ShapedType::isDynamic(tokens) ? ShapedType::kDynamic : tokens * topK;
    auto permutedType = RankedTensorType::get(
        {rows, inputType.getDimSize(1)}, inputType.getElementType());
    auto i32 = rewriter.getI32Type();
    auto dispatch = DispatchOp::create(
        rewriter, loc, permutedType, RankedTensorType::get({experts + 1}, i32),
        RankedTensorType::get({rows}, i32), op.getInput(), op.getIndices(),
        experts);
    // With all-to-all, every rank dispatches every token (the same on all
    // ranks), the copies travel to their experts' ranks and back, each rank
    // combines its own tokens and the ranks gather the result.
    std::optional<uint64_t> group = op.getAllToAll();
    auto exchange = [&](Value rows, ExchangeDirection direction) -> Value {
      if (!group)
        return rows;
      return ExpertExchangeOp::create(
          rewriter, loc, permutedType, rows, dispatch.getOffsets(),
          dispatch.getPermutation(), direction, topK,
          static_cast<int64_t>(*group));
    };
    Value expertInputs =
        exchange(dispatch.getPermuted(), ExchangeDirection::to_experts);
    Value expertOutputs = ExpertFFNOp::create(
        rewriter, loc, permutedType, expertInputs, dispatch.getOffsets(),
        op.getGateUp(), op.getDown(), op.getActivationAttr(),
        op.getGatedAttr(), rewriter.getI64IntegerAttr(topK),
        op.getGlobalExpertsAttr(), op.getExpertGroup());
    Value combined = CombineOp::create(
        rewriter, loc, inputType,
        exchange(expertOutputs, ExchangeDirection::to_tokens),
        dispatch.getPermutation(), op.getRoutingWeights());
    if (group)
      combined = AllGatherTokensOp::create(rewriter, loc, combined,
                                           static_cast<int64_t>(*group));
    rewriter.replaceOp(op, combined);
    return success();
  }
};

struct MoEDecomposePass
    : public moe::impl::MoEDecomposeBase<MoEDecomposePass> {
  using MoEDecomposeBase::MoEDecomposeBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    if (attention)
      populateDecomposeAttentionPatterns(patterns);
    if (experts)
      populateDecomposeExpertsPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};
} // namespace

void mlir::moe::populateDecomposeAttentionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DecomposeAttention>(patterns.getContext());
}

void mlir::moe::populateDecomposeExpertsPatterns(RewritePatternSet &patterns) {
  patterns.add<DecomposeExperts>(patterns.getContext());
}
