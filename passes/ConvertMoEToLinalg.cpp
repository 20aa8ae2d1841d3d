//===- ConvertMoEToLinalg.cpp - The convert-moe-to-linalg pass ------------===//
//
// Lowers the elementwise and normalisation ops of moe to linalg.generic on
// tensors, the form the host and GPU code generators start from. Arithmetic
// runs in f32 and is rounded once to the activation type. Lowered so far:
// moe.add, moe.rms_norm, moe.layer_norm, moe.rope, moe.gather_tokens,
// moe.embed (unsharded table), moe.combine, and the GEMMs moe.linear and
// moe.lm_head (the host reference); other ops stay as they are.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/LinalgBuilder.h"
#include "passes/Passes.h"
#include "passes/KernelMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTMOETOLINALG
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
using Lowering = LinalgBuilder;

struct LowerAdd : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp op,
                                PatternRewriter &rewriter) const override {
    Lowering l{rewriter, op.getLoc()};
    Type element = op.getType().getElementType();
    auto map = l.identity();
    auto parallel = utils::IteratorType::parallel;
    auto generic = linalg::GenericOp::create(
        rewriter, op.getLoc(), TypeRange{op.getType()},
        ValueRange{op.getLhs(), op.getRhs()},
        ValueRange{l.emptyLike(op.getLhs(), element)},
        ArrayRef<AffineMap>{map, map, map},
        ArrayRef<utils::IteratorType>{parallel, parallel},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Lowering inner{b, loc};
          Value sum = arith::AddFOp::create(b, loc, inner.toF32(args[0]),
                                            inner.toF32(args[1]));
          linalg::YieldOp::create(b, loc, inner.fromF32(sum, element));
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

/// y = (x - mean) * rsqrt(var + eps) * w (+ b); RMSNorm has mean 0 and
/// var = mean(x^2).
template <typename NormOp>
struct LowerNorm : OpRewritePattern<NormOp> {
  using OpRewritePattern<NormOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(NormOp op,
                                PatternRewriter &rewriter) const override {
    constexpr bool isLayerNorm = std::is_same_v<NormOp, LayerNormOp>;
    Location loc = op.getLoc();
    Lowering l{rewriter, loc};
    auto type = cast<RankedTensorType>(op.getType());
    Type element = type.getElementType();
    double width = type.getDimSize(1);
    double epsilon = op.getEpsilon().convertToDouble();

    Value sumSquares = l.rowSum(
        op.getInput(), [](OpBuilder &b, Location loc, Value x) -> Value {
          return arith::MulFOp::create(b, loc, x, x);
        });
    Value sum;
    if constexpr (isLayerNorm)
      sum = l.rowSum(op.getInput(),
                     [](OpBuilder &, Location, Value x) { return x; });

    SmallVector<Value> inputs{op.getInput(), sumSquares, op.getWeight()};
    SmallVector<AffineMap> maps{l.identity(), l.rowMap(), l.columnMap()};
    if constexpr (isLayerNorm) {
      inputs.append({sum, op.getBias()});
      maps.append({l.rowMap(), l.columnMap()});
    }
    maps.push_back(l.identity());
    auto parallel = utils::IteratorType::parallel;
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, inputs,
        ValueRange{l.emptyLike(op.getInput(), element)}, maps,
        ArrayRef<utils::IteratorType>{parallel, parallel},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Lowering inner{b, loc};
          auto constant = [&](double value) -> Value {
            return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
          };
          Value x = inner.toF32(args[0]);
          Value inverseWidth = constant(1.0 / width);
          Value meanSquare = arith::MulFOp::create(b, loc, args[1], inverseWidth);
          Value variance = meanSquare;
          if constexpr (isLayerNorm) {
            Value mean = arith::MulFOp::create(b, loc, args[3], inverseWidth);
            x = arith::SubFOp::create(b, loc, x, mean);
            variance = arith::SubFOp::create(
                b, loc, meanSquare, arith::MulFOp::create(b, loc, mean, mean));
          }
          Value scale = math::RsqrtOp::create(
              b, loc, arith::AddFOp::create(b, loc, variance, constant(epsilon)));
          Value y = arith::MulFOp::create(
              b, loc, arith::MulFOp::create(b, loc, x, scale),
              inner.toF32(args[2]));
          if constexpr (isLayerNorm)
            y = arith::AddFOp::create(b, loc, y, inner.toF32(args[4]));
          linalg::YieldOp::create(b, loc, inner.fromF32(y, element));
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

/// Rotates each pair of a head's dimensions by position * theta^(-2i/d):
/// rotate_half pairs i with i + d/2, interleaved pairs 2i with 2i+1.
struct LowerRope : OpRewritePattern<RopeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RopeOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Lowering l{rewriter, loc};
    auto type = cast<RankedTensorType>(op.getType());
    Type element = type.getElementType();
    int64_t headDim = op.getHeadDim();
    Value input = op.getInput();
    auto parallel = utils::IteratorType::parallel;
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, ValueRange{input, op.getPositions()},
        ValueRange{l.emptyLike(input, element)},
        ArrayRef<AffineMap>{l.identity(), l.rowMap(), l.identity()},
        ArrayRef<utils::IteratorType>{parallel, parallel},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Lowering inner{b, loc};
          Value token = linalg::IndexOp::create(b, loc, 0);
          Value column = linalg::IndexOp::create(b, loc, 1);
          RopePair pair = ropePair(b, loc, op.getRope().getStyle(), headDim,
                                   column);
          Value other = inner.toF32(tensor::ExtractOp::create(
              b, loc, input, ValueRange{token, pair.partner}));
          Value position =
              arith::SIToFPOp::create(b, loc, inner.f32(), args[1]);
          Value self = inner.toF32(args[0]);
          Value y = ropeRotate(b, loc, op.getRope(), headDim, position, pair,
                               self, other);
          linalg::YieldOp::create(b, loc, inner.fromF32(y, element));
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

/// result[i, :] = table[indices[i], :]: a gather of whole rows (token
/// embedding, selecting each sequence's last token). An embedding table that
/// is a vocabulary shard needs the rank's offset and stays for now.
template <typename GatherOp>
struct LowerRowGather : OpRewritePattern<GatherOp> {
  using OpRewritePattern<GatherOp>::OpRewritePattern;

  static Value source(EmbedOp op) { return op.getTable(); }
  static Value indices(EmbedOp op) { return op.getTokens(); }
  static Value part(EmbedOp op) { return op.getPart(); }
  static Value source(GatherTokensOp op) { return op.getInput(); }
  static Value indices(GatherTokensOp op) { return op.getRows(); }
  static Value part(GatherTokensOp) { return {}; }

  LogicalResult matchAndRewrite(GatherOp op,
                                PatternRewriter &rewriter) const override {
    Value table = source(op), rows = indices(op), shard = part(op);
    if (auto weight = table.template getDefiningOp<WeightOp>())
      if (weight.getShardAttr() && !shard)
        return rewriter.notifyMatchFailure(op, "sharded table, no part");
    Location loc = op.getLoc();
    Lowering l{rewriter, loc};
    auto type = cast<RankedTensorType>(op.getType());
    auto parallel = utils::IteratorType::parallel;
    // The result's token dimension comes from the indices.
    SmallVector<Value> sizes;
    if (type.isDynamicDim(0))
      sizes.push_back(tensor::DimOp::create(rewriter, loc, rows, 0));
    Value empty = tensor::EmptyOp::create(rewriter, loc, type.getShape(),
                                          type.getElementType(), sizes);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, ValueRange{rows}, ValueRange{empty},
        ArrayRef<AffineMap>{l.rowMap(), l.identity()},
        ArrayRef<utils::IteratorType>{parallel, parallel},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Value row = arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                                 args[0]);
          Value column = linalg::IndexOp::create(b, loc, 1);
          if (!shard) {
            linalg::YieldOp::create(
                b, loc,
                tensor::ExtractOp::create(b, loc, table,
                                          ValueRange{row, column})
                    .getResult());
            return;
          }
          // Part p holds rows [p * n, (p + 1) * n); other rows are zero.
          auto index = [&](int64_t v) -> Value {
            return arith::ConstantIndexOp::create(b, loc, v);
          };
          int64_t n = cast<ShapedType>(table.getType()).getDimSize(0);
          Value p = arith::IndexCastOp::create(
              b, loc, b.getIndexType(),
              tensor::ExtractOp::create(b, loc, shard, ValueRange{index(0)}));
          Value local = arith::SubIOp::create(
              b, loc, row, arith::MulIOp::create(b, loc, p, index(n)));
          Value inRange = arith::AndIOp::create(
              b, loc,
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, local,
                                    index(0)),
              arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, local,
                                    index(n)));
          Value safe = arith::SelectOp::create(b, loc, inRange, local, index(0));
          Value value = tensor::ExtractOp::create(b, loc, table,
                                                  ValueRange{safe, column});
          Value zero = arith::ConstantOp::create(
              b, loc, b.getZeroAttr(type.getElementType()));
          linalg::YieldOp::create(
              b, loc, arith::SelectOp::create(b, loc, inRange, value, zero)
                          .getResult());
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

/// result[t, d] = sum_j w[t, j] * rows[permutation[t * k + j], d], over a
/// [tokens, d_model, top_k] domain with top_k reduced, accumulated in f32.
struct LowerCombine : OpRewritePattern<CombineOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CombineOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Lowering l{rewriter, loc};
    auto type = cast<RankedTensorType>(op.getType());
    Value weights = op.getRoutingWeights(), rows = op.getExpertOutputs(),
          permutation = op.getPermutation();
    int64_t topK = cast<RankedTensorType>(weights.getType()).getDimSize(1);
    // f32 accumulator [tokens, d_model] of zeros.
    SmallVector<Value> sizes;
    if (type.isDynamicDim(0))
      sizes.push_back(tensor::DimOp::create(rewriter, loc, weights, 0));
    Value accumulator = l.filled(type.getShape(), sizes, 0.0);
    MLIRContext *ctx = rewriter.getContext();
    auto d = [&](unsigned i) { return rewriter.getAffineDimExpr(i); };
    auto parallel = utils::IteratorType::parallel;
    auto sum = linalg::GenericOp::create(
        rewriter, loc, TypeRange{accumulator.getType()}, ValueRange{weights},
        ValueRange{accumulator},
        ArrayRef<AffineMap>{AffineMap::get(3, 0, {d(0), d(2)}, ctx),
                            AffineMap::get(3, 0, {d(0), d(1)}, ctx)},
        ArrayRef<utils::IteratorType>{parallel, parallel,
                                      utils::IteratorType::reduction},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Lowering inner{b, loc};
          Value token = linalg::IndexOp::create(b, loc, 0);
          Value column = linalg::IndexOp::create(b, loc, 1);
          Value slot = linalg::IndexOp::create(b, loc, 2);
          Value copy = arith::AddIOp::create(
              b, loc,
              arith::MulIOp::create(
                  b, loc, token, arith::ConstantIndexOp::create(b, loc, topK)),
              slot);
          Value row = arith::IndexCastOp::create(
              b, loc, b.getIndexType(),
              tensor::ExtractOp::create(b, loc, permutation, ValueRange{copy}));
          Value value = inner.toF32(
              tensor::ExtractOp::create(b, loc, rows, ValueRange{row, column}));
          Value weighted = arith::MulFOp::create(b, loc, args[0], value);
          linalg::YieldOp::create(
              b, loc, arith::AddFOp::create(b, loc, weighted, args[1]).getResult());
        });
    Value result = l.castRows(sum.getResult(0), type, sizes);
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// y[t, o] = sum_i x[t, i] * w[o, i] (weights in [out, in] layout),
/// accumulated in f32: moe.linear and moe.lm_head. The host reference; on
/// the GPU these become cuBLAS calls.
template <typename MatmulOp>
struct LowerMatmul : OpRewritePattern<MatmulOp> {
  using OpRewritePattern<MatmulOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(MatmulOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Lowering l{rewriter, loc};
    auto type = cast<RankedTensorType>(op.getType());
    Value input = op.getInput(), weight = op.getWeight();
    SmallVector<Value> sizes;
    if (type.isDynamicDim(0))
      sizes.push_back(tensor::DimOp::create(rewriter, loc, input, 0));
    Value product = l.contract(input, weight, sizes);
    rewriter.replaceOp(op, l.castRows(product, type, sizes));
    return success();
  }
};

struct ConvertMoEToLinalgPass
    : public moe::impl::ConvertMoEToLinalgBase<ConvertMoEToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMoEToLinalgPatterns(patterns);
    populateMoEExpertsToLinalgPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};
} // namespace

void mlir::moe::populateMoEToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerAdd, LowerNorm<RMSNormOp>, LowerNorm<LayerNormOp>,
               LowerRope, LowerRowGather<EmbedOp>,
               LowerRowGather<GatherTokensOp>, LowerCombine,
               LowerMatmul<LinearOp>, LowerMatmul<LMHeadOp>>(
      patterns.getContext());
}
