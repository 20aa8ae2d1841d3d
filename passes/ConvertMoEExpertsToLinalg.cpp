//===- ConvertMoEExpertsToLinalg.cpp - Expert ops to linalg / scf ---------===//
//
// The host reference of the routed-expert path, part of convert-moe-to-linalg:
//   - moe.router: scores (a contraction), softmax over experts, top-k by k
//     masked arg-max passes (ties to the lower index), optional
//     renormalisation;
//   - moe.dispatch: a counting sort of the token copies by expert (scf loops
//     over tensors), then a row gather;
//   - moe.expert_ffn: one slice of rows per expert (scf loop), its gate/up
//     contraction, activation, down contraction, written back in place.
// Straightforward code that is easy to check; the GPU path will differ.
// Experts placed on ranks (global_experts) need the rank and stay for now.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/LinalgBuilder.h"
#include "passes/KernelMath.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

namespace {
auto parallel = utils::IteratorType::parallel;
auto reduction = utils::IteratorType::reduction;

Value index(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}
Value toIndex(OpBuilder &b, Location loc, Value i32) {
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), i32);
}
Value toI32(OpBuilder &b, Location loc, Value index) {
  return arith::IndexCastOp::create(b, loc, b.getI32Type(), index);
}

struct LowerRouter : OpRewritePattern<RouterOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RouterOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder l{rewriter, loc};
    Value input = op.getInput();
    int64_t topK = op.getTopK();
    SmallVector<Value> rows;
    if (cast<RankedTensorType>(input.getType()).isDynamicDim(0))
      rows.push_back(tensor::DimOp::create(rewriter, loc, input, 0));
    Value scores = l.contract(input, op.getWeight(), rows); // [N, E] f32
    SmallVector<int64_t, 1> rowShape{
        cast<RankedTensorType>(input.getType()).getDimSize(0)};

    // Row maximum and the softmax denominator.
    Value maxima = linalg::GenericOp::create(
                       rewriter, loc,
                       TypeRange{RankedTensorType::get(rowShape, l.f32())},
                       ValueRange{scores},
                       ValueRange{l.filled(rowShape, rows, -INFINITY)},
                       ArrayRef<AffineMap>{l.identity(), l.rowMap()},
                       ArrayRef<utils::IteratorType>{parallel, reduction},
                       [&](OpBuilder &b, Location loc, ValueRange args) {
                         linalg::YieldOp::create(
                             b, loc,
                             arith::MaximumFOp::create(b, loc, args[0],
                                                       args[1])
                                 .getResult());
                       })
                       .getResult(0);
    Value denominators =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{maxima.getType()},
            ValueRange{scores, maxima},
            ValueRange{l.filled(rowShape, rows, 0.0)},
            ArrayRef<AffineMap>{l.identity(), l.rowMap(), l.rowMap()},
            ArrayRef<utils::IteratorType>{parallel, reduction},
            [&](OpBuilder &b, Location loc, ValueRange args) {
              Value e = math::ExpOp::create(
                  b, loc, arith::SubFOp::create(b, loc, args[0], args[1]));
              linalg::YieldOp::create(
                  b, loc, arith::AddFOp::create(b, loc, e, args[2]).getResult());
            })
            .getResult(0);

    // k passes of arg-max, each skipping the experts already chosen.
    SmallVector<Value> chosen, probabilities;
    auto i32Rows = RankedTensorType::get(rowShape, rewriter.getI32Type());
    for (int64_t pass = 0; pass < topK; ++pass) {
      Value zeroIndex = tensor::EmptyOp::create(rewriter, loc, rowShape,
                                                rewriter.getI32Type(), rows);
      Value zeroI32 = arith::ConstantOp::create(
          rewriter, loc, rewriter.getI32IntegerAttr(0));
      zeroIndex =
          linalg::FillOp::create(rewriter, loc, zeroI32, zeroIndex).getResult(0);
      SmallVector<Value> inputs{scores};
      SmallVector<AffineMap> maps{l.identity()};
      for (Value previous : chosen) {
        inputs.push_back(previous);
        maps.push_back(l.rowMap());
      }
      maps.append({l.rowMap(), l.rowMap()});
      auto argmax = linalg::GenericOp::create(
          rewriter, loc, TypeRange{maxima.getType(), i32Rows}, inputs,
          ValueRange{l.filled(rowShape, rows, -INFINITY), zeroIndex}, maps,
          ArrayRef<utils::IteratorType>{parallel, reduction},
          [&](OpBuilder &b, Location loc, ValueRange args) {
            Value expert = toI32(b, loc, linalg::IndexOp::create(b, loc, 1));
            Value candidate = args[0];
            Value best = args[args.size() - 2], bestIndex = args.back();
            Value better = arith::CmpFOp::create(
                b, loc, arith::CmpFPredicate::OGT, candidate, best);
            for (Value previous : args.slice(1, args.size() - 3))
              better = arith::AndIOp::create(
                  b, loc, better,
                  arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                        expert, previous));
            linalg::YieldOp::create(
                b, loc,
                ValueRange{
                    arith::SelectOp::create(b, loc, better, candidate, best),
                    arith::SelectOp::create(b, loc, better, expert,
                                            bestIndex)});
          });
      chosen.push_back(argmax.getResult(1));
      probabilities.push_back(argmax.getResult(0));
    }

    // [N, k] results; probabilities = exp(score - max) / denominator, then
    // renormalised over the k when asked.
    auto indicesType = cast<RankedTensorType>(op.getIndices().getType());
    auto weightsType = cast<RankedTensorType>(op.getRoutingWeights().getType());
    SmallVector<Value> inputs(chosen);
    inputs.append(probabilities);
    inputs.append({maxima, denominators});
    SmallVector<AffineMap> maps(inputs.size(), l.rowMap());
    maps.append({l.identity(), l.identity()});
    bool normalize = op.getNormalize();
    auto results = linalg::GenericOp::create(
        rewriter, loc, TypeRange{indicesType, weightsType}, inputs,
        ValueRange{tensor::EmptyOp::create(rewriter, loc,
                                           indicesType.getShape(),
                                           rewriter.getI32Type(), rows),
                   tensor::EmptyOp::create(rewriter, loc,
                                           weightsType.getShape(), l.f32(),
                                           rows)},
        maps, ArrayRef<utils::IteratorType>{parallel, parallel},
        [&](OpBuilder &b, Location loc, ValueRange args) {
          Value slot = linalg::IndexOp::create(b, loc, 1);
          Value max = args[2 * topK], denominator = args[2 * topK + 1];
          auto probability = [&](Value score) -> Value {
            return arith::DivFOp::create(
                b, loc,
                math::ExpOp::create(b, loc,
                                    arith::SubFOp::create(b, loc, score, max)),
                denominator);
          };
          Value expert = args[0], weight = probability(args[topK]);
          Value total = weight;
          for (int64_t j = 1; j < topK; ++j) {
            Value isSlot = arith::CmpIOp::create(
                b, loc, arith::CmpIPredicate::eq, slot, index(b, loc, j));
            Value p = probability(args[topK + j]);
            expert = arith::SelectOp::create(b, loc, isSlot, args[j], expert);
            weight = arith::SelectOp::create(b, loc, isSlot, p, weight);
            total = arith::AddFOp::create(b, loc, total, p);
          }
          if (normalize)
            weight = arith::DivFOp::create(b, loc, weight, total);
          linalg::YieldOp::create(b, loc, ValueRange{expert, weight});
        });
    rewriter.replaceOp(op, results.getResults());
    return success();
  }
};

/// Counting sort of the token copies by expert: offsets (exclusive prefix
/// sums of the counts), the row of each copy (permutation), and the permuted
/// rows gathered from their tokens.
struct LowerDispatch : OpRewritePattern<DispatchOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(DispatchOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto &b = rewriter;
    Value indices = op.getIndices(), input = op.getInput();
    int64_t experts = op.getNumExperts();
    auto indexType = cast<RankedTensorType>(indices.getType());
    int64_t topK = indexType.getDimSize(1);
    Value tokens = tensor::DimOp::create(b, loc, indices, 0);
    Value copies = arith::MulIOp::create(b, loc, tokens, index(b, loc, topK));
    Type i32 = b.getI32Type();
    auto zerosI32 = [&](ArrayRef<int64_t> shape, ValueRange sizes) -> Value {
      Value empty = tensor::EmptyOp::create(b, loc, shape, i32, sizes);
      Value zeroI32 = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0));
      return linalg::FillOp::create(b, loc, zeroI32, empty).getResult(0);
    };
    Value zero = index(b, loc, 0), one = index(b, loc, 1);
    Value oneI32 = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(1));
    // Loop over every copy (t, j) in order, carrying a tensor.
    auto forEachCopy =
        [&](Value init,
            function_ref<Value(OpBuilder &, Location, Value, Value, Value)>
                body) {
          return scf::ForOp::create(
                     b, loc, zero, tokens, one, ValueRange{init},
                     [&](OpBuilder &b1, Location l1, Value t, ValueRange acc) {
                       auto inner = scf::ForOp::create(
                           b1, l1, zero, index(b1, l1, topK), one, acc,
                           [&](OpBuilder &b2, Location l2, Value j,
                               ValueRange acc2) {
                             scf::YieldOp::create(
                                 b2, l2, body(b2, l2, t, j, acc2[0]));
                           });
                       scf::YieldOp::create(b1, l1, inner.getResults());
                     })
              .getResult(0);
        };
    auto expertOf = [&](OpBuilder &b2, Location l2, Value t, Value j) {
      return toIndex(b2, l2, tensor::ExtractOp::create(b2, l2, indices,
                                                       ValueRange{t, j}));
    };
    // counts[e] = copies routed to expert e.
    Value counts = forEachCopy(
        zerosI32({experts}, {}),
        [&](OpBuilder &b2, Location l2, Value t, Value j, Value acc) -> Value {
          Value e = expertOf(b2, l2, t, j);
          Value c = tensor::ExtractOp::create(b2, l2, acc, e);
          return tensor::InsertOp::create(
              b2, l2, arith::AddIOp::create(b2, l2, c, oneI32), acc, e);
        });
    // offsets[e + 1] = offsets[e] + counts[e].
    Value offsets =
        scf::ForOp::create(
            b, loc, zero, index(b, loc, experts), one,
            ValueRange{zerosI32({experts + 1}, {})},
            [&](OpBuilder &b1, Location l1, Value e, ValueRange acc) {
              Value next = arith::AddIOp::create(b1, l1, e, one);
              Value sum = arith::AddIOp::create(
                  b1, l1, tensor::ExtractOp::create(b1, l1, acc[0], e),
                  tensor::ExtractOp::create(b1, l1, counts, e));
              scf::YieldOp::create(
                  b1, l1,
                  tensor::InsertOp::create(b1, l1, sum, acc[0], next)
                      .getResult());
            })
            .getResult(0);
    // Each copy takes the next free row of its expert; rows also record
    // their token (for the gather).
    Value cursor = tensor::ExtractSliceOp::create(
        b, loc, offsets, ArrayRef<OpFoldResult>{b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(experts)},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
    Value permutation = zerosI32({ShapedType::kDynamic}, copies);
    Value tokenOfRow = zerosI32({ShapedType::kDynamic}, copies);
    auto placed = scf::ForOp::create(
        b, loc, zero, tokens, one,
        ValueRange{cursor, permutation, tokenOfRow},
        [&](OpBuilder &b1, Location l1, Value t, ValueRange acc) {
          auto inner = scf::ForOp::create(
              b1, l1, zero, index(b1, l1, topK), one, acc,
              [&](OpBuilder &b2, Location l2, Value j, ValueRange s) {
                Value e = expertOf(b2, l2, t, j);
                Value row = tensor::ExtractOp::create(b2, l2, s[0], e);
                Value nextCursor = tensor::InsertOp::create(
                    b2, l2, arith::AddIOp::create(b2, l2, row, oneI32), s[0],
                    e);
                Value copy = arith::AddIOp::create(
                    b2, l2,
                    arith::MulIOp::create(b2, l2, t, index(b2, l2, topK)), j);
                Value perm =
                    tensor::InsertOp::create(b2, l2, row, s[1], copy);
                Value owner = tensor::InsertOp::create(
                    b2, l2, toI32(b2, l2, t), s[2], toIndex(b2, l2, row));
                scf::YieldOp::create(b2, l2,
                                     ValueRange{nextCursor, perm, owner});
              });
          scf::YieldOp::create(b1, l1, inner.getResults());
        });
    permutation = placed.getResult(1);
    tokenOfRow = placed.getResult(2);
    // permuted[r] = input[tokenOfRow[r]].
    Value permuted = GatherTokensOp::create(b, loc, op.getPermuted().getType(),
                                            input, tokenOfRow);
    rewriter.replaceOp(op, {permuted, offsets, permutation});
    return success();
  }
};


struct LowerExpertFFN : OpRewritePattern<ExpertFFNOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ExpertFFNOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getGlobalExperts() && !op.getExpertGroup())
      return rewriter.notifyMatchFailure(op, "placed experts, no group");
    Location loc = op.getLoc();
    auto &b = rewriter;
    Value input = op.getInput(), offsets = op.getOffsets();
    auto inputType = cast<RankedTensorType>(input.getType());
    auto gateUpType = cast<RankedTensorType>(op.getGateUp().getType());
    auto downType = cast<RankedTensorType>(op.getDown().getType());
    int64_t experts = downType.getDimSize(0), dModel = downType.getDimSize(1),
            width = downType.getDimSize(2), rowsPerExpert =
                                                gateUpType.getDimSize(1);
    bool gated = op.getGated();
    Activation activation = op.getActivation();
    Type element = inputType.getElementType();
    LinalgBuilder l{b, loc};
    Value zero = index(b, loc, 0), one = index(b, loc, 1);
    Value result = l.emptyLike(input, element);
    // Placed experts: this rank holds experts [g * experts, (g + 1) *
    // experts); the rows of the others stay zero (the all-reduce that
    // follows adds the other ranks' rows).
    Value first = zero;
    if (Value group = op.getExpertGroup()) {
      Value g = toIndex(b, loc, tensor::ExtractOp::create(b, loc, group, zero));
      first = arith::MulIOp::create(b, loc, g, index(b, loc, experts));
      Value zeroValue =
          arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
      result = linalg::FillOp::create(b, loc, zeroValue, result).getResult(0);
    }
    auto perExpert = scf::ForOp::create(
        b, loc, zero, index(b, loc, experts), one, ValueRange{result},
        [&](OpBuilder &b1, Location l1, Value e, ValueRange acc) {
          LinalgBuilder inner{b1, l1};
          Value global = arith::AddIOp::create(b1, l1, first, e);
          Value start = toIndex(
              b1, l1, tensor::ExtractOp::create(b1, l1, offsets, global));
          Value next = arith::AddIOp::create(b1, l1, global, one);
          Value end =
              toIndex(b1, l1, tensor::ExtractOp::create(b1, l1, offsets, next));
          Value count = arith::SubIOp::create(b1, l1, end, start);
          auto dyn = ShapedType::kDynamic;
          auto slice = [&](Value source, ArrayRef<OpFoldResult> offsetsOf,
                           ArrayRef<OpFoldResult> sizes,
                           RankedTensorType type) -> Value {
            SmallVector<OpFoldResult> strides(offsetsOf.size(),
                                              b1.getIndexAttr(1));
            return tensor::ExtractSliceOp::create(b1, l1, type, source,
                                                  offsetsOf, sizes, strides);
          };
          Value rows = slice(input, {start, b1.getIndexAttr(0)},
                             {count, b1.getIndexAttr(dModel)},
                             RankedTensorType::get({dyn, dModel}, element));
          Value gateUp = slice(
              op.getGateUp(), {e, b1.getIndexAttr(0), b1.getIndexAttr(0)},
              {b1.getIndexAttr(1), b1.getIndexAttr(rowsPerExpert),
               b1.getIndexAttr(dModel)},
              RankedTensorType::get({rowsPerExpert, dModel},
                                    gateUpType.getElementType()));
          Value down =
              slice(op.getDown(), {e, b1.getIndexAttr(0), b1.getIndexAttr(0)},
                    {b1.getIndexAttr(1), b1.getIndexAttr(dModel),
                     b1.getIndexAttr(width)},
                    RankedTensorType::get({dModel, width},
                                          downType.getElementType()));
          Value hidden = inner.contract(rows, gateUp, count); // [n, 2I or I]
          // act(gate) * up, or act(up), in f32: [n, I].
          Value activated =
              linalg::GenericOp::create(
                  b1, l1,
                  TypeRange{RankedTensorType::get({dyn, width}, inner.f32())},
                  ValueRange{},
                  ValueRange{tensor::EmptyOp::create(
                      b1, l1, ArrayRef<int64_t>{dyn, width}, inner.f32(),
                      ValueRange{count})},
                  ArrayRef<AffineMap>{inner.identity()},
                  ArrayRef<utils::IteratorType>{parallel, parallel},
                  [&](OpBuilder &b2, Location l2, ValueRange) {
                    Value r = linalg::IndexOp::create(b2, l2, 0);
                    Value c = linalg::IndexOp::create(b2, l2, 1);
                    Value first = tensor::ExtractOp::create(
                        b2, l2, hidden, ValueRange{r, c});
                    Value y = activate(b2, l2, activation, first);
                    if (gated) {
                      Value up = tensor::ExtractOp::create(
                          b2, l2, hidden,
                          ValueRange{r, arith::AddIOp::create(
                                            b2, l2, c, index(b2, l2, width))});
                      y = arith::MulFOp::create(b2, l2, y, up);
                    }
                    linalg::YieldOp::create(b2, l2, y);
                  })
                  .getResult(0);
          Value out = inner.contract(activated, down, count); // [n, D] f32
          Value rounded = inner.castRows(
              out, RankedTensorType::get({dyn, dModel}, element), count);
          SmallVector<OpFoldResult> strides(2, b1.getIndexAttr(1));
          Value updated = tensor::InsertSliceOp::create(
              b1, l1, rounded, acc[0],
              ArrayRef<OpFoldResult>{start, b1.getIndexAttr(0)},
              ArrayRef<OpFoldResult>{count, b1.getIndexAttr(dModel)},
              strides);
          scf::YieldOp::create(b1, l1, updated);
        });
    rewriter.replaceOp(op, perExpert.getResult(0));
    return success();
  }
};
/// The dense FFN: down · (act(gate · x) * (up · x)), or down · act(up · x),
/// accumulated in f32 and rounded once.
struct LowerFFN : OpRewritePattern<FFNOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(FFNOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LinalgBuilder l{rewriter, loc};
    Value input = op.getInput();
    auto type = cast<RankedTensorType>(op.getType());
    SmallVector<Value> rows;
    if (type.isDynamicDim(0))
      rows.push_back(tensor::DimOp::create(rewriter, loc, input, 0));
    Value up = l.contract(input, op.getUp(), rows); // [n, I] f32
    Value gate = op.getGate() ? l.contract(input, op.getGate(), rows) : Value();
    auto hiddenType = cast<RankedTensorType>(up.getType());
    Activation activation = op.getActivation();
    SmallVector<Value> inputs = {up};
    if (gate)
      inputs.push_back(gate);
    SmallVector<AffineMap> maps(inputs.size() + 1, l.identity());
    Value activated =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{hiddenType}, inputs,
            ValueRange{tensor::EmptyOp::create(rewriter, loc,
                                               hiddenType.getShape(), l.f32(),
                                               rows)},
            maps, ArrayRef<utils::IteratorType>{parallel, parallel},
            [&](OpBuilder &b, Location nl, ValueRange args) {
              Value y = gate ? arith::MulFOp::create(
                                   b, nl, activate(b, nl, activation, args[1]),
                                   args[0])
                             : activate(b, nl, activation, args[0]);
              linalg::YieldOp::create(b, nl, y);
            })
            .getResult(0);
    Value out = l.contract(activated, op.getDown(), rows);
    rewriter.replaceOp(op, l.castRows(out, type, rows));
    return success();
  }
};
} // namespace

void mlir::moe::populateMoEExpertsToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerRouter, LowerDispatch, LowerExpertFFN, LowerFFN>(
      patterns.getContext());
}
