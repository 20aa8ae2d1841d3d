//===- KernelMath.cpp - Scalar arithmetic the kernels share ---------------===//

#include "passes/KernelMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

RopePair mlir::moe::ropePair(OpBuilder &b, Location loc, RopeStyle style,
                             int64_t headDim, Value column) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  Value inHead = arith::RemUIOp::create(b, loc, column, index(headDim));
  // Pairs are `step` columns apart; the first of a pair has inHead % (2 step)
  // below `step`.
  int64_t step = style == RopeStyle::rotate_half ? headDim / 2 : 1;
  RopePair pair;
  if (style == RopeStyle::rotate_half) {
    pair.first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                       inHead, index(step));
    pair.index = arith::RemUIOp::create(b, loc, inHead, index(step));
  } else {
    Value odd = arith::RemUIOp::create(b, loc, inHead, index(2));
    pair.first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, odd,
                                       index(0));
    pair.index = arith::DivUIOp::create(b, loc, inHead, index(2));
  }
  pair.partner = arith::SelectOp::create(
      b, loc, pair.first, arith::AddIOp::create(b, loc, column, index(step)),
      arith::SubIOp::create(b, loc, column, index(step)));
  return pair;
}

Value mlir::moe::ropeRotate(OpBuilder &b, Location loc, RopeAttr rope,
                            int64_t headDim, Value position,
                            const RopePair &pair, Value x, Value other) {
  Type f32 = b.getF32Type();
  double logTheta = std::log(rope.getTheta().convertToDouble());
  Value i = arith::UIToFPOp::create(
      b, loc, f32,
      arith::IndexCastUIOp::create(b, loc, b.getI32Type(), pair.index));
  // angle = position * exp(-2 i / d * ln(theta)).
  Value frequency = math::ExpOp::create(
      b, loc,
      arith::MulFOp::create(
          b, loc, i,
          arith::ConstantOp::create(
              b, loc, b.getF32FloatAttr(-2.0 * logTheta / headDim))));
  Value angle = arith::MulFOp::create(b, loc, position, frequency);
  // The angle reduced to about [-pi, pi] (2 pi split in two parts, the
  // first exact in few bits so that n times it is exact), so that sine and
  // cosine may take their fast forms (afn): on the GPU sin.approx and
  // cos.approx rather than libdevice's slow path for large arguments, whose
  // local array made the attention kernel spill.
  auto constant = [&](double value) -> Value {
    return arith::ConstantOp::create(
        b, loc, b.getF32FloatAttr(static_cast<float>(value)));
  };
  const double twoPiHigh = 6.28125, twoPiLow = 2 * M_PI - twoPiHigh;
  Value turns = math::RoundEvenOp::create(
      b, loc, arith::MulFOp::create(b, loc, angle, constant(0.5 / M_PI)));
  Value reduced = arith::SubFOp::create(
      b, loc,
      arith::SubFOp::create(b, loc, angle,
                            arith::MulFOp::create(b, loc, turns,
                                                  constant(twoPiHigh))),
      arith::MulFOp::create(b, loc, turns, constant(twoPiLow)));
  auto fast = arith::FastMathFlagsAttr::get(b.getContext(),
                                            arith::FastMathFlags::afn);
  Value cos = math::CosOp::create(b, loc, reduced, fast);
  Value sin = math::SinOp::create(b, loc, reduced, fast);
  Value otherSin = arith::MulFOp::create(b, loc, other, sin);
  Value signedSin = arith::SelectOp::create(
      b, loc, pair.first, arith::NegFOp::create(b, loc, otherSin), otherSin);
  return arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, x, cos),
                               signedSin);
}

Value mlir::moe::ropeLoad(OpBuilder &b, Location loc, RopeAttr rope,
                          int64_t headDim, Value position, Value column,
                          function_ref<Value(Value column)> load) {
  RopePair pair = ropePair(b, loc, rope.getStyle(), headDim, column);
  Value x = load(column);
  Value other = load(pair.partner);
  return ropeRotate(b, loc, rope, headDim, position, pair, x, other);
}

Value mlir::moe::activate(OpBuilder &b, Location loc, Activation activation,
                          Value x) {
  auto f32 = [&](double value) -> Value {
    return arith::ConstantOp::create(
        b, loc, b.getF32FloatAttr(static_cast<float>(value)));
  };
  switch (activation) {
  case Activation::silu: {
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, x));
    return arith::DivFOp::create(b, loc, x,
                                 arith::AddFOp::create(b, loc, f32(1), e));
  }
  case Activation::gelu: {
    Value erf = math::ErfOp::create(
        b, loc, arith::MulFOp::create(b, loc, x, f32(M_SQRT1_2)));
    return arith::MulFOp::create(b, loc,
                                 arith::MulFOp::create(b, loc, f32(0.5), x),
                                 arith::AddFOp::create(b, loc, f32(1), erf));
  }
  case Activation::relu:
    return arith::MaximumFOp::create(b, loc, x, f32(0));
  }
  llvm_unreachable("unknown activation");
}
