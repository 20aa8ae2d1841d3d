//===- LinalgBuilder.cpp - Helpers of the moe-to-linalg lowering ----------===//

#include "passes/LinalgBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::moe;

Value LinalgBuilder::emptyLike(Value like, Type element) {
  auto type = cast<RankedTensorType>(like.getType());
  SmallVector<Value> sizes;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      sizes.push_back(tensor::DimOp::create(b, loc, like, i));
  return tensor::EmptyOp::create(b, loc, type.getShape(), element, sizes);
}

Value LinalgBuilder::filled(ArrayRef<int64_t> shape, ValueRange sizes,
                            double value) {
  Value empty = tensor::EmptyOp::create(b, loc, shape, f32(), sizes);
  Value constant = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
  return linalg::FillOp::create(b, loc, constant, empty).getResult(0);
}

Value LinalgBuilder::zeroRows(Value rows) {
  Value count = tensor::DimOp::create(b, loc, rows, 0);
  return filled({ShapedType::kDynamic}, count, 0.0);
}

Value LinalgBuilder::toF32(Value value) {
  if (value.getType() == f32())
    return value;
  return arith::ExtFOp::create(b, loc, f32(), value);
}

Value LinalgBuilder::fromF32(Value value, Type type) {
  if (type == f32())
    return value;
  return arith::TruncFOp::create(b, loc, type, value);
}

AffineMap LinalgBuilder::rowMap() {
  return AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext());
}
AffineMap LinalgBuilder::columnMap() {
  return AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, b.getContext());
}
AffineMap LinalgBuilder::identity() { return b.getMultiDimIdentityMap(2); }

Value LinalgBuilder::rowSum(
    Value input, function_ref<Value(OpBuilder &, Location, Value)> term) {
  Value zeros = zeroRows(input);
  return linalg::GenericOp::create(
             b, loc, TypeRange{zeros.getType()}, ValueRange{input},
             ValueRange{zeros}, ArrayRef<AffineMap>{identity(), rowMap()},
             ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                           utils::IteratorType::reduction},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               LinalgBuilder inner{nb, nl};
               Value x = inner.toF32(args[0]);
               Value sum =
                   arith::AddFOp::create(nb, nl, term(nb, nl, x), args[1]);
               linalg::YieldOp::create(nb, nl, sum);
             })
      .getResult(0);
}

Value LinalgBuilder::castRows(Value value, RankedTensorType type,
                              ValueRange sizes) {
  Type element = type.getElementType();
  if (element == f32())
    return value;
  auto map = identity();
  auto parallel = utils::IteratorType::parallel;
  Value out = tensor::EmptyOp::create(b, loc, type.getShape(), element, sizes);
  return linalg::GenericOp::create(
             b, loc, TypeRange{type}, ValueRange{value}, ValueRange{out},
             ArrayRef<AffineMap>{map, map},
             ArrayRef<utils::IteratorType>{parallel, parallel},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               LinalgBuilder inner{nb, nl};
               linalg::YieldOp::create(nb, nl,
                                       inner.fromF32(args[0], element));
             })
      .getResult(0);
}

Value LinalgBuilder::contract(Value x, Value weight, ValueRange rows) {
  auto xType = cast<RankedTensorType>(x.getType());
  auto wType = cast<RankedTensorType>(weight.getType());
  Value accumulator =
      filled({xType.getDimSize(0), wType.getDimSize(0)}, rows, 0.0);
  MLIRContext *ctx = b.getContext();
  auto d = [&](unsigned i) { return b.getAffineDimExpr(i); };
  auto parallel = utils::IteratorType::parallel;
  return linalg::GenericOp::create(
             b, loc, TypeRange{accumulator.getType()}, ValueRange{x, weight},
             ValueRange{accumulator},
             ArrayRef<AffineMap>{AffineMap::get(3, 0, {d(0), d(2)}, ctx),
                                 AffineMap::get(3, 0, {d(1), d(2)}, ctx),
                                 AffineMap::get(3, 0, {d(0), d(1)}, ctx)},
             ArrayRef<utils::IteratorType>{parallel, parallel,
                                           utils::IteratorType::reduction},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               LinalgBuilder inner{nb, nl};
               Value term = arith::MulFOp::create(
                   nb, nl, inner.toF32(args[0]), inner.toF32(args[1]));
               linalg::YieldOp::create(
                   nb, nl,
                   arith::AddFOp::create(nb, nl, term, args[2]).getResult());
             })
      .getResult(0);
}
