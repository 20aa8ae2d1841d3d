//===- WarpTiles.h - Tensor-core tiles of one warp --------------*- C++ -*-===//
//
// The m16n8k16 matrix multiply of the tensor cores (bf16 operands, f32
// accumulators) as GridEmitter code. On the GPU it is `mma.sync`: the 32
// lanes of a warp each hold a part of every tile, in the fragment layout of
// the PTX ISA (lane = 4 * group + quad):
//
//   A (16 x 16, row): a[i] at row group + 8 * ((i / 2) % 2),
//                           column 2 * quad + i % 2 + 8 * (i / 4)
//   B (16 x 8, col):  b[i] at row 2 * quad + i % 2 + 8 * (i / 2),
//                           column group
//   C (16 x 8):       c[i] at row group + 8 * (i / 2), column 2 * quad + i % 2
//
// On the host (one thread per block) the thread holds whole tiles and a
// multiply is a loop nest in f32, so a kernel written with these tiles
// runs its tiling, masking and softmax logic, and is checked against the
// reference model, on any machine; only the fragment layout above is
// GPU-only.
//
// Accumulators live in private f32 arrays, elements() per 16 x 8 tile. The
// lane's element k of a tile is at row row(k / perRow()), column
// column(k % perRow()). On the GPU the loops over a lane's elements are
// unrolled, every index into the arrays is a constant, and the arrays
// become registers.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_WARPTILES_H
#define MOEC_PASSES_WARPTILES_H

#include "passes/GridEmitter.h"

namespace mlir::moe {

struct WarpTiles {
  GridEmitter &e;

  /// Rows of a 16 x 8 tile a lane holds (GPU 2, host 16), and elements of
  /// each (GPU 2, host 8), for code written for the GPU (`gpu`) or the
  /// host; the accumulator elements per tile and lane. Static, as a kernel
  /// sizes its private arrays before its grid (and emitter) exists.
  static int64_t rowsOf(bool gpu) { return gpu ? 2 : 16; }
  static int64_t perRowOf(bool gpu) { return gpu ? 2 : 8; }
  static int64_t elementsOf(bool gpu) { return rowsOf(gpu) * perRowOf(gpu); }
  int64_t rows() const { return rowsOf(e.gpu); }
  int64_t perRow() const { return perRowOf(e.gpu); }
  int64_t elements() const { return elementsOf(e.gpu); }

  /// The tile row of this lane's `i`-th row, the tile column of its `j`-th
  /// element of a row.
  Value row(Value i);
  Value column(Value j);

  /// for (i = 0; i < count; ++i) body(i): unrolled on the GPU (constant
  /// indices), a loop on the host.
  void repeat(int64_t count, function_ref<void(Value)> body);
  /// acc = init; for (i = 0; i < count; ++i) acc = body(i, acc); the same
  /// way.
  Value fold(int64_t count, Value init, function_ref<Value(Value, Value)> body);

  /// The maximum and the sum of `value` over the lanes holding the same
  /// rows (GPU: the 4 lanes of a quad; host: the thread itself).
  Value rowMax(Value value);
  Value rowSum(Value value);

  /// acc = init; then for each of `tiles` tiles side by side and each of
  /// this lane's elements in its `i`-th row: acc = body(at, column, acc),
  /// `at` the element's index in an accumulator array, `column` its column
  /// among the tiles' 8 * tiles.
  Value foldRow(int64_t tiles, Value i, Value init,
                function_ref<Value(Value at, Value column, Value acc)> body);
  /// The same without an accumulator.
  void eachOfRow(int64_t tiles, Value i,
                 function_ref<void(Value at, Value column)> body);

  /// acc[tile] += A x B for one 16 x 8 x 16 step, where `a(row, k)` and
  /// `b(k, column)` give the bf16 operands at tile coordinates and `acc`
  /// is a private f32 array of tiles of elements() elements.
  void mma(Value acc, Value tile, function_ref<Value(Value, Value)> a,
           function_ref<Value(Value, Value)> b);
  /// The same with A made of accumulator tiles `first` and `first + 1` of
  /// `from` (16 x 8 each, side by side), rounded to bf16: a softmax's
  /// weights as the left operand of the next multiply, without leaving the
  /// registers on the GPU.
  void mmaFromTiles(Value acc, Value tile, Value from, Value first,
                    function_ref<Value(Value, Value)> b);

private:
  Value add(Value x, int64_t y);
  /// Element (i, j) of tile n of an accumulator array, and its column among
  /// the tiles.
  Value at(Value n, Value i, Value j);
  Value columnOf(Value n, Value j);
  /// GPU: this lane's group (lane / 4) and twice its place in the quad.
  Value group();
  Value quad2();
  /// GPU: the two packed registers of B (16 x 8) from `b(k, column)`.
  SmallVector<Value> bRegisters(function_ref<Value(Value, Value)> b);
  /// The GPU multiply of 4 + 2 packed operand registers into acc[tile].
  void mmaSync(Value acc, Value tile, ArrayRef<Value> a, ArrayRef<Value> b);
  /// Two bf16 values in one i32, `low` in the low half.
  Value pack(Value low, Value high);
};

} // namespace mlir::moe

#endif // MOEC_PASSES_WARPTILES_H
