//===- KernelMath.h - Scalar arithmetic the kernels share -------*- C++ -*-===//
//
// Every kernel that rotates by RoPE (the rope row kernel, its linalg form,
// the KV-cache write and attention with a folded RoPE) or applies an FFN
// activation (the linalg and grid expert FFNs, the grouped experts'
// activation kernel) builds the same f32 arithmetic from here, so they
// agree to the bit.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_KERNELMATH_H
#define MOEC_PASSES_KERNELMATH_H

#include "dialects/moe/MoEOps.h"

#include "mlir/IR/Builders.h"

namespace mlir::moe {

/// Where a column's RoPE partner is.
struct RopePair {
  /// i1: the column is the first of its pair (it takes x·cos − other·sin;
  /// the second takes x·cos + other·sin).
  Value first;
  /// The other column of the pair (an index in the same row).
  Value partner;
  /// The pair's index in its head, which sets its frequency.
  Value index;
};

/// The pair of `column` (an index into a row of heads `headDim` wide):
/// rotate_half pairs i with i + headDim/2, interleaved 2i with 2i + 1.
RopePair ropePair(OpBuilder &b, Location loc, RopeStyle style,
                  int64_t headDim, Value column);

/// x rotated with its partner's value `other` (both f32) at `position` (an
/// f32): the angle is position · theta^(−2·index/headDim), reduced to about
/// [−π, π] before its (approximate, `afn`) sine and cosine.
Value ropeRotate(OpBuilder &b, Location loc, RopeAttr rope, int64_t headDim,
                 Value position, const RopePair &pair, Value x, Value other);

/// The element at `column` of a row rotated at `position` (an f32): x and
/// its partner loaded with `load` (in that order, each as an f32), then
/// ropeRotate.
Value ropeLoad(OpBuilder &b, Location loc, RopeAttr rope, int64_t headDim,
               Value position, Value column,
               function_ref<Value(Value column)> load);

/// act(x) in f32: silu x / (1 + e^-x), the exact GELU 0.5 x (1 + erf(x /
/// sqrt 2)), or relu.
Value activate(OpBuilder &b, Location loc, Activation activation, Value x);

} // namespace mlir::moe

#endif // MOEC_PASSES_KERNELMATH_H
