//===- KVCacheKernels.cpp - Kernels over the paged KV cache ---------------===//

#include "codegen/KVCacheKernels.h"

#include "passes/GridEmitter.h"
#include "passes/LinalgBuilder.h"
#include "passes/KernelMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::moe;

namespace {
/// Small builders for loop nests over memrefs.
struct Loops {
  OpBuilder &b;
  Location loc;

  Value index(int64_t value) {
    return arith::ConstantIndexOp::create(b, loc, value);
  }
  Value f32(double value) {
    return arith::ConstantFloatOp::create(b, loc, b.getF32Type(),
                                          APFloat(static_cast<float>(value)));
  }
  /// memref[indices] as an index (from i32).
  Value loadIndex(Value memref, ValueRange indices) {
    Value value = memref::LoadOp::create(b, loc, memref, indices);
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), value);
  }
  /// memref[indices] widened to f32.
  Value loadF32(Value memref, ValueRange indices) {
    LinalgBuilder l{b, loc};
    return l.toF32(memref::LoadOp::create(b, loc, memref, indices));
  }
  void storeFromF32(Value value, Value memref, ValueRange indices) {
    LinalgBuilder l{b, loc};
    Type element = cast<MemRefType>(memref.getType()).getElementType();
    memref::StoreOp::create(b, loc, l.fromF32(value, element), memref,
                            indices);
  }
  /// for (i = lower; i < upper; ++i) body(i), with no loop-carried values.
  void forEach(Value lower, Value upper,
               function_ref<void(OpBuilder &, Location, Value)> body) {
    scf::ForOp::create(b, loc, lower, upper, index(1), ValueRange{},
                       [&](OpBuilder &nb, Location nl, Value i, ValueRange) {
                         body(nb, nl, i);
                         scf::YieldOp::create(nb, nl);
                       });
  }
  /// An f32 reduction: acc = step(acc, i) for i in [lower, upper).
  Value reduce(Value lower, Value upper, Value init,
               function_ref<Value(OpBuilder &, Location, Value, Value)> step) {
    auto loop = scf::ForOp::create(
        b, loc, lower, upper, index(1), ValueRange{init},
        [&](OpBuilder &nb, Location nl, Value i, ValueRange acc) {
          scf::YieldOp::create(nb, nl, step(nb, nl, i, acc[0]));
        });
    return loop.getResult(0);
  }
};
} // namespace

static MemRefType rows(Type element, int64_t width) {
  return MemRefType::get({ShapedType::kDynamic, width}, element);
}

static func::FuncOp createKernel(ModuleOp module, StringRef name,
                                 TypeRange arguments, Location loc) {
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  auto func = func::FuncOp::create(
      b, loc, name, b.getFunctionType(arguments, TypeRange{}));
  func->setAttr("moe.kernel", b.getUnitAttr());
  func.addEntryBlock();
  return func;
}

/// Elements of one token's K (or V) row in the cache of `op`.
static int64_t kvWidth(KVCacheWriteOp op) {
  auto cache = cast<KVCacheType>(op.getKvCache().getType());
  return cache.getNumKvHeads() * cache.getHeadDim();
}

/// positions[t] (an i32) as an f32, the RoPE angle's factor.
static Value positionF32(OpBuilder &b, Location loc, Value positions,
                         Value t) {
  return arith::SIToFPOp::create(
      b, loc, b.getF32Type(), memref::LoadOp::create(b, loc, positions, t));
}

/// An empty kernel_kv_cache_write(keys, values, positions, slot_mapping,
/// k_cache, v_cache) for `op`.
static func::FuncOp createKVCacheWriteKernel(ModuleOp module,
                                             KVCacheWriteOp op,
                                             StringRef name) {
  auto cache = cast<KVCacheType>(op.getKvCache().getType());
  int64_t width = kvWidth(op);
  Type activation = op.getKeys().getType().getElementType();
  auto tokenVector = MemRefType::get(
      {ShapedType::kDynamic}, IntegerType::get(op.getContext(), 32));
  MemRefType input = rows(activation, width);
  MemRefType slots = rows(cache.getElementType(), width);
  return createKernel(module, name,
                      {input, input, tokenVector, tokenVector, slots, slots},
                      op.getLoc());
}

func::FuncOp mlir::moe::buildKVCacheWriteKernel(ModuleOp module,
                                                KVCacheWriteOp op,
                                                StringRef name) {
  int64_t width = kvWidth(op);
  func::FuncOp func = createKVCacheWriteKernel(module, op, name);
  Block &entry = func.getBody().front();
  OpBuilder b = OpBuilder::atBlockBegin(&entry);
  Location loc = op.getLoc();
  Loops l{b, loc};
  Value keys = entry.getArgument(0), values = entry.getArgument(1),
        positions = entry.getArgument(2), slotMapping = entry.getArgument(3),
        kCache = entry.getArgument(4), vCache = entry.getArgument(5);
  Value tokens = memref::DimOp::create(b, loc, keys, 0);
  RopeAttr rope = op.getRopeAttr();
  int64_t headDim =
      cast<KVCacheType>(op.getKvCache().getType()).getHeadDim();
  l.forEach(l.index(0), tokens, [&](OpBuilder &b, Location loc, Value t) {
    Value slot = memref::LoadOp::create(b, loc, slotMapping, t);
    Value zero = arith::ConstantIntOp::create(b, loc, b.getI32Type(), 0);
    Value valid = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                        slot, zero);
    scf::IfOp::create(b, loc, valid, [&](OpBuilder &b, Location loc) {
      Loops l{b, loc};
      Value row = arith::IndexCastOp::create(b, loc, b.getIndexType(), slot);
      Value position = rope ? positionF32(b, loc, positions, t) : Value();
      l.forEach(l.index(0), l.index(width),
                [&](OpBuilder &b, Location loc, Value c) {
                  Loops l{b, loc};
                  auto load = [&](Value column) {
                    return l.loadF32(keys, {t, column});
                  };
                  Value key = rope ? ropeLoad(b, loc, rope, headDim, position,
                                              c, load)
                                   : load(c);
                  l.storeFromF32(key, kCache, {row, c});
                  l.storeFromF32(l.loadF32(values, {t, c}), vCache, {row, c});
                });
      scf::YieldOp::create(b, loc);
    });
  });
  func::ReturnOp::create(b, loc);
  return func;
}

func::FuncOp mlir::moe::buildAttendKernel(ModuleOp module, AttendOp op,
                                          StringRef name, int64_t blockSize) {
  auto cache = cast<KVCacheType>(op.getKvCache().getType());
  int64_t headDim = cache.getHeadDim();
  int64_t kvWidth = cache.getNumKvHeads() * headDim;
  int64_t heads = op.getNumHeads();
  int64_t group = heads / cache.getNumKvHeads();
  Type activation = op.getQueries().getType().getElementType();
  Type i32 = IntegerType::get(op.getContext(), 32);
  auto tokenVector = MemRefType::get({ShapedType::kDynamic}, i32);
  auto table =
      MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic}, i32);
  MemRefType queries = rows(activation, heads * headDim);
  MemRefType slots = rows(cache.getElementType(), kvWidth);
  func::FuncOp func = createKernel(
      module, name,
      {queries, tokenVector, tokenVector, table, slots, slots, queries},
      op.getLoc());
  Block &entry = func.getBody().front();
  OpBuilder b = OpBuilder::atBlockBegin(&entry);
  Location loc = op.getLoc();
  Loops l{b, loc};
  Value q = entry.getArgument(0), positions = entry.getArgument(1),
        tokenSeq = entry.getArgument(2), blockTables = entry.getArgument(3),
        kCache = entry.getArgument(4), vCache = entry.getArgument(5),
        out = entry.getArgument(6);
  // One head's f32 accumulator and (rotated) query, reused by every
  // (token, head).
  Value acc = memref::AllocaOp::create(
      b, loc, MemRefType::get({headDim}, b.getF32Type()));
  Value query = memref::AllocaOp::create(
      b, loc, MemRefType::get({headDim}, b.getF32Type()));
  RopeAttr rope = op.getRopeAttr();
  Value tokens = memref::DimOp::create(b, loc, q, 0);
  double scale = 1.0 / std::sqrt(static_cast<double>(headDim));

  l.forEach(l.index(0), tokens, [&](OpBuilder &b, Location loc, Value t) {
    Loops l{b, loc};
    Value position = l.loadIndex(positions, t);
    Value ropePosition = rope ? positionF32(b, loc, positions, t) : Value();
    Value seq = l.loadIndex(tokenSeq, t);
    Value context = arith::AddIOp::create(b, loc, position, l.index(1));
    l.forEach(l.index(0), l.index(heads), [&](OpBuilder &b, Location loc,
                                               Value h) {
      Loops l{b, loc};
      Value kvHead = arith::DivUIOp::create(b, loc, h, l.index(group));
      Value qBase = arith::MulIOp::create(b, loc, h, l.index(headDim));
      Value kBase = arith::MulIOp::create(b, loc, kvHead, l.index(headDim));
      l.forEach(l.index(0), l.index(headDim),
                [&](OpBuilder &b, Location loc, Value d) {
                  Loops l{b, loc};
                  Value column = arith::AddIOp::create(b, loc, qBase, d);
                  auto load = [&](Value at) { return l.loadF32(q, {t, at}); };
                  Value value = rope ? ropeLoad(b, loc, rope, headDim,
                                                ropePosition, column, load)
                                     : load(column);
                  memref::StoreOp::create(b, loc, value, query, d);
                });
      // The cache slot of position j of this token's sequence.
      auto slotOf = [&](OpBuilder &b, Location loc, Value j) {
        Loops l{b, loc};
        Value bs = l.index(blockSize);
        Value blockIndex = arith::DivUIOp::create(b, loc, j, bs);
        Value block = l.loadIndex(blockTables, {seq, blockIndex});
        Value offset = arith::RemUIOp::create(b, loc, j, bs);
        return arith::AddIOp::create(
            b, loc, arith::MulIOp::create(b, loc, block, bs), offset);
      };
      auto scoreOf = [&](OpBuilder &b, Location loc, Value slot) {
        Loops l{b, loc};
        Value dot = l.reduce(
            l.index(0), l.index(headDim), l.f32(0.0),
            [&](OpBuilder &b, Location loc, Value d, Value sum) -> Value {
              Loops l{b, loc};
              Value qi = memref::LoadOp::create(b, loc, query, d);
              Value ki = l.loadF32(
                  kCache, {slot, arith::AddIOp::create(b, loc, kBase, d)});
              return arith::AddFOp::create(
                  b, loc, sum, arith::MulFOp::create(b, loc, qi, ki));
            });
        return arith::MulFOp::create(b, loc, dot, l.f32(scale)).getResult();
      };
      // Pass 1: the largest score, for a stable softmax.
      Value max = l.reduce(
          l.index(0), context, l.f32(-std::numeric_limits<float>::infinity()),
          [&](OpBuilder &b, Location loc, Value j, Value best) -> Value {
            Value score = scoreOf(b, loc, slotOf(b, loc, j));
            return arith::MaximumFOp::create(b, loc, best, score);
          });
      // Pass 2: weights exp(s - max), their sum, and the weighted values.
      l.forEach(l.index(0), l.index(headDim),
                [&](OpBuilder &b, Location loc, Value d) {
                  memref::StoreOp::create(b, loc, Loops{b, loc}.f32(0.0), acc,
                                          d);
                });
      Value sum = l.reduce(
          l.index(0), context, l.f32(0.0),
          [&](OpBuilder &b, Location loc, Value j, Value total) -> Value {
            Loops l{b, loc};
            Value slot = slotOf(b, loc, j);
            Value weight = math::ExpOp::create(
                b, loc,
                arith::SubFOp::create(b, loc, scoreOf(b, loc, slot), max));
            l.forEach(l.index(0), l.index(headDim),
                      [&](OpBuilder &b, Location loc, Value d) {
                        Loops l{b, loc};
                        Value v = l.loadF32(
                            vCache,
                            {slot, arith::AddIOp::create(b, loc, kBase, d)});
                        Value old = memref::LoadOp::create(b, loc, acc, d);
                        Value updated = arith::AddFOp::create(
                            b, loc, old,
                            arith::MulFOp::create(b, loc, weight, v));
                        memref::StoreOp::create(b, loc, updated, acc, d);
                      });
            return arith::AddFOp::create(b, loc, total, weight);
          });
      l.forEach(l.index(0), l.index(headDim),
                [&](OpBuilder &b, Location loc, Value d) {
                  Loops l{b, loc};
                  Value value = arith::DivFOp::create(
                      b, loc, memref::LoadOp::create(b, loc, acc, d), sum);
                  l.storeFromF32(value, out,
                                 {t, arith::AddIOp::create(b, loc, qBase, d)});
                });
    });
  });
  func::ReturnOp::create(b, loc);
  return func;
}

func::FuncOp mlir::moe::buildGridKVCacheWriteKernel(ModuleOp module,
                                                    KVCacheWriteOp op,
                                                    StringRef name, bool gpu,
                                                    int64_t threads) {
  int64_t width = kvWidth(op);
  func::FuncOp func = createKVCacheWriteKernel(module, op, name);
  func->setAttr("moe.grid_kernel", UnitAttr::get(op.getContext()));
  Block &entry = func.getBody().front();
  OpBuilder b = OpBuilder::atBlockBegin(&entry);
  Location loc = op.getLoc();
  Value keys = entry.getArgument(0), values = entry.getArgument(1),
        positions = entry.getArgument(2), slotMapping = entry.getArgument(3),
        kCache = entry.getArgument(4), vCache = entry.getArgument(5);
  Value tokens = memref::DimOp::create(b, loc, keys, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  RopeAttr rope = op.getRopeAttr();
  int64_t headDim =
      cast<KVCacheType>(op.getKvCache().getType()).getHeadDim();
  emitGrid(b, loc, gpu, tokens, one, threads, {},
           [&](GridEmitter &e, Value t, Value, ArrayRef<Value>) {
             Value slot = memref::LoadOp::create(e.b, loc, slotMapping, t);
             Value valid = arith::CmpIOp::create(
                 e.b, loc, arith::CmpIPredicate::sge, slot, e.i32(0));
             e.when(valid, [&] {
               Value row = arith::IndexCastOp::create(e.b, loc,
                                                      e.b.getIndexType(), slot);
               // 8 contiguous columns per thread at a time, all loaded
               // before they are stored: 16-byte accesses on the GPU.
               Value k = e.aligned(keys), v = e.aligned(values),
                     kc = e.aligned(kCache), vc = e.aligned(vCache);
               if (rope) {
                 // Rotated keys a column per thread (each loads its
                 // partner); V below still moves in chunks.
                 Value position = positionF32(e.b, loc, positions, t);
                 e.strided(e.thread, e.index(width), e.threads,
                           [&](Value c) {
                             e.storeF32(ropeLoad(e.b, loc, rope, headDim,
                                                 position, c,
                                                 [&](Value at) {
                                                   return e.loadF32(k, {t, at});
                                                 }),
                                        kc, {row, c});
                           });
               }
               e.chunks(width, [&](ArrayRef<Value> columns) {
                 SmallVector<Value> kValues, vValues;
                 for (Value column : columns) {
                   if (!rope)
                     kValues.push_back(e.loadF32(k, {t, column}));
                   vValues.push_back(e.loadF32(v, {t, column}));
                 }
                 // K's stores, then V's: the two caches may alias as far
                 // as the compiler knows, so interleaved stores would not
                 // merge.
                 for (auto [column, value] : llvm::zip(columns, kValues))
                   e.storeF32(value, kc, {row, column});
                 for (auto [column, value] : llvm::zip(columns, vValues))
                   e.storeF32(value, vc, {row, column});
               });
             });
           });
  func::ReturnOp::create(b, loc);
  return func;
}
