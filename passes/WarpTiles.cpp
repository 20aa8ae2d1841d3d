//===- WarpTiles.cpp - Tensor-core tiles of one warp ----------------------===//

#include "passes/WarpTiles.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::moe;

Value WarpTiles::add(Value x, int64_t y) {
  return arith::AddIOp::create(e.b, e.loc, x, e.index(y));
}

Value WarpTiles::group() {
  return arith::DivUIOp::create(e.b, e.loc, e.lane(), e.index(4));
}

Value WarpTiles::quad2() {
  return arith::MulIOp::create(
      e.b, e.loc, arith::RemUIOp::create(e.b, e.loc, e.lane(), e.index(4)),
      e.index(2));
}

Value WarpTiles::row(Value i) {
  if (!e.gpu)
    return i;
  // group + 8 * i
  return arith::AddIOp::create(
      e.b, e.loc, group(), arith::MulIOp::create(e.b, e.loc, i, e.index(8)));
}

Value WarpTiles::column(Value j) {
  if (!e.gpu)
    return j;
  // 2 * quad + j
  return arith::AddIOp::create(e.b, e.loc, quad2(), j);
}

void WarpTiles::repeat(int64_t count, function_ref<void(Value)> body) {
  if (!e.gpu)
    return e.forEach(e.index(0), e.index(count), e.index(1), body);
  for (int64_t i = 0; i < count; ++i)
    body(e.index(i));
}

Value WarpTiles::fold(int64_t count, Value init,
                      function_ref<Value(Value, Value)> body) {
  if (!e.gpu)
    return e
        .loop(e.index(0), e.index(count), e.index(1), {init},
              [&](Value i, ValueRange acc) -> SmallVector<Value> {
                return {body(i, acc[0])};
              })
        .front();
  for (int64_t i = 0; i < count; ++i)
    init = body(e.index(i), init);
  return init;
}

Value WarpTiles::at(Value n, Value i, Value j) {
  // n * elements + i * perRow + j
  OpBuilder &b = e.b;
  return arith::AddIOp::create(
      b, e.loc, arith::MulIOp::create(b, e.loc, n, e.index(elements())),
      arith::AddIOp::create(
          b, e.loc, arith::MulIOp::create(b, e.loc, i, e.index(perRow())), j));
}

Value WarpTiles::columnOf(Value n, Value j) {
  // 8 n + column(j)
  return arith::AddIOp::create(
      e.b, e.loc, arith::MulIOp::create(e.b, e.loc, n, e.index(8)), column(j));
}

Value WarpTiles::foldRow(int64_t tiles, Value i, Value init,
                         function_ref<Value(Value, Value, Value)> body) {
  return fold(tiles, init, [&](Value n, Value acc) {
    return fold(perRow(), acc, [&](Value j, Value a) {
      return body(at(n, i, j), columnOf(n, j), a);
    });
  });
}

void WarpTiles::eachOfRow(int64_t tiles, Value i,
                          function_ref<void(Value, Value)> body) {
  repeat(tiles, [&](Value n) {
    repeat(perRow(), [&](Value j) { body(at(n, i, j), columnOf(n, j)); });
  });
}

/// `value` combined over the 4 lanes of a quad (xor 1, then 2).
static Value overQuad(GridEmitter &e, Value value,
                      function_ref<Value(Value, Value)> combine) {
  if (!e.gpu)
    return value;
  for (int32_t offset : {1, 2}) {
    auto shuffle = gpu::ShuffleOp::create(e.b, e.loc, value, e.i32(offset),
                                          e.i32(32), gpu::ShuffleMode::XOR);
    value = combine(value, shuffle.getShuffleResult());
  }
  return value;
}

Value WarpTiles::rowMax(Value value) {
  return overQuad(e, value, [&](Value x, Value y) -> Value {
    return arith::MaximumFOp::create(e.b, e.loc, x, y);
  });
}

Value WarpTiles::rowSum(Value value) {
  return overQuad(e, value, [&](Value x, Value y) -> Value {
    return arith::AddFOp::create(e.b, e.loc, x, y);
  });
}

Value WarpTiles::pack(Value low, Value high) {
  OpBuilder &b = e.b;
  Type i16 = b.getI16Type(), i32 = b.getI32Type();
  auto widen = [&](Value v) -> Value {
    return arith::ExtUIOp::create(b, e.loc, i32,
                                  arith::BitcastOp::create(b, e.loc, i16, v));
  };
  return arith::OrIOp::create(
      b, e.loc, widen(low),
      arith::ShLIOp::create(b, e.loc, widen(high), e.i32(16)));
}

void WarpTiles::mmaSync(Value acc, Value tile, ArrayRef<Value> a,
                        ArrayRef<Value> bRegs) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  MLIRContext *ctx = b.getContext();
  Value base = arith::MulIOp::create(b, loc, tile, e.index(4));
  SmallVector<Value> c;
  for (int64_t i = 0; i < 4; ++i)
    c.push_back(memref::LoadOp::create(b, loc, acc, ValueRange{add(base, i)}));
  Type f32 = b.getF32Type();
  auto result = LLVM::LLVMStructType::getLiteral(ctx, {f32, f32, f32, f32});
  auto op = NVVM::MmaOp::create(
      b, loc, result, a, bRegs, c, {16, 8, 16}, std::nullopt, std::nullopt,
      std::array<NVVM::MMATypes, 2>{NVVM::MMATypes::bf16, NVVM::MMATypes::bf16},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  for (int64_t i = 0; i < 4; ++i)
    memref::StoreOp::create(
        b, loc, LLVM::ExtractValueOp::create(b, loc, op.getRes(), i), acc,
        ValueRange{add(base, i)});
}

/// The host multiply: acc[tile][r][n] += sum_k a(r, k) * b(k, n) in f32.
static void hostMma(GridEmitter &e, Value acc, Value tile,
                    function_ref<Value(Value, Value)> a,
                    function_ref<Value(Value, Value)> b) {
  OpBuilder &ob = e.b;
  Location loc = e.loc;
  Type f32 = ob.getF32Type();
  Value base = arith::MulIOp::create(ob, loc, tile, e.index(16 * 8));
  Value zero = e.index(0), one = e.index(1);
  e.forEach(zero, e.index(16), one, [&](Value r) {
    e.forEach(zero, e.index(8), one, [&](Value n) {
      Value at = arith::AddIOp::create(
          ob, loc, base,
          arith::AddIOp::create(
              ob, loc, arith::MulIOp::create(ob, loc, r, e.index(8)), n));
      Value start = memref::LoadOp::create(ob, loc, acc, ValueRange{at});
      Value sum =
          e.loop(zero, e.index(16), one, {start},
                 [&](Value k, ValueRange s) -> SmallVector<Value> {
                   Value x = arith::ExtFOp::create(ob, loc, f32, a(r, k));
                   Value y = arith::ExtFOp::create(ob, loc, f32, b(k, n));
                   return {arith::AddFOp::create(
                       ob, loc, s[0], arith::MulFOp::create(ob, loc, x, y))};
                 })
              .front();
      memref::StoreOp::create(ob, loc, sum, acc, ValueRange{at});
    });
  });
}

SmallVector<Value> WarpTiles::bRegisters(function_ref<Value(Value, Value)> b) {
  // Register r holds rows 2 quad + 8 r and the next (adjacent rows of B,
  // column group).
  Value g = group(), q2 = quad2();
  SmallVector<Value> regs;
  for (int64_t r = 0; r < 2; ++r) {
    Value k = add(q2, 8 * r);
    regs.push_back(pack(b(k, g), b(add(k, 1), g)));
  }
  return regs;
}

void WarpTiles::mma(Value acc, Value tile, function_ref<Value(Value, Value)> a,
                    function_ref<Value(Value, Value)> b) {
  if (!e.gpu)
    return hostMma(e, acc, tile, a, b);
  // Register r holds elements 2r and 2r + 1 (adjacent columns of A).
  Value g = group(), q2 = quad2();
  SmallVector<Value> aRegs;
  for (int64_t r = 0; r < 4; ++r) {
    Value at = add(g, 8 * (r % 2)), k = add(q2, 8 * (r / 2));
    aRegs.push_back(pack(a(at, k), a(at, add(k, 1))));
  }
  SmallVector<Value> bRegs = bRegisters(b);
  mmaSync(acc, tile, aRegs, bRegs);
}

void WarpTiles::mmaFromTiles(Value acc, Value tile, Value from, Value first,
                             function_ref<Value(Value, Value)> b) {
  OpBuilder &ob = e.b;
  Location loc = e.loc;
  Type bf16 = ob.getBF16Type();
  auto rounded = [&](Value at) -> Value {
    return arith::TruncFOp::create(
        ob, loc, bf16, memref::LoadOp::create(ob, loc, from, ValueRange{at}));
  };
  Value tileSize = e.index(elements());
  if (!e.gpu) {
    // A(r, k) is element (r, k % 8) of tile first + k / 8.
    return hostMma(
        e, acc, tile,
        [&](Value r, Value k) -> Value {
          Value t = arith::AddIOp::create(
              ob, loc, first, arith::DivUIOp::create(ob, loc, k, e.index(8)));
          Value in = arith::AddIOp::create(
              ob, loc, arith::MulIOp::create(ob, loc, r, e.index(8)),
              arith::RemUIOp::create(ob, loc, k, e.index(8)));
          return rounded(arith::AddIOp::create(
              ob, loc, arith::MulIOp::create(ob, loc, t, tileSize), in));
        },
        b);
  }
  // A's element i is C element i % 4 of tile first + i / 4: the C layout
  // of two tiles side by side is the A layout.
  Value base = arith::MulIOp::create(ob, loc, first, tileSize);
  SmallVector<Value> aRegs;
  for (int64_t r = 0; r < 4; ++r) {
    int64_t i = 2 * r;
    Value at = add(base, (i / 4) * 4 + i % 4);
    aRegs.push_back(pack(rounded(at), rounded(add(at, 1))));
  }
  SmallVector<Value> bRegs = bRegisters(b);
  mmaSync(acc, tile, aRegs, bRegs);
}
