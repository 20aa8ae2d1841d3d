//===- LinalgBuilder.h - Helpers of the moe-to-linalg lowering --*- C++ -*-===//
//
// Small builders shared by the patterns that lower moe ops to linalg on
// tensors: empty and zero tensors shaped after an activation, f32
// conversions, the maps of [tokens, features] iteration spaces, row
// reductions and f32-accumulated contractions.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_LINALGBUILDER_H
#define MOEC_PASSES_LINALGBUILDER_H

#include "mlir/IR/Builders.h"

namespace mlir::moe {

struct LinalgBuilder {
  OpBuilder &b;
  Location loc;

  Type f32() { return b.getF32Type(); }

  /// An empty tensor shaped like `like` (dynamic sizes read from it).
  Value emptyLike(Value like, Type element);
  /// A [rows of `rows`] f32 tensor of zeros, for row reductions.
  Value zeroRows(Value rows);
  /// A `shape` f32 tensor (dynamic sizes `sizes`) filled with `value`.
  Value filled(ArrayRef<int64_t> shape, ValueRange sizes, double value);

  Value toF32(Value value);
  Value fromF32(Value value, Type type);

  /// Maps of a 2-d [token, feature] iteration space.
  AffineMap rowMap();
  AffineMap columnMap();
  AffineMap identity();

  /// Per row of `input`, the f32 sum over features of term(x).
  Value rowSum(Value input,
               function_ref<Value(OpBuilder &, Location, Value)> term);

  /// `value` (f32, shaped like `type`) rounded to `type`'s element type.
  Value castRows(Value value, RankedTensorType type, ValueRange sizes);

  /// x [rows, in] times weight [out, in] transposed, accumulated in f32:
  /// [rows, out] f32. `rows` is the dynamic row count (if any).
  Value contract(Value x, Value weight, ValueRange rows);
};

} // namespace mlir::moe

#endif // MOEC_PASSES_LINALGBUILDER_H
