//===- GridEmitter.cpp - Kernels written for a grid of blocks -------------===//

#include "passes/GridEmitter.h"
#include "passes/LinalgBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::moe;

Value GridEmitter::index(int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}
Value GridEmitter::f32(double value) {
  return arith::ConstantOp::create(
      b, loc, b.getF32FloatAttr(static_cast<float>(value)));
}
Value GridEmitter::i32(int32_t value) {
  return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(value));
}

Value GridEmitter::loadF32(Value memref, ValueRange at) {
  LinalgBuilder l{b, loc};
  return l.toF32(memref::LoadOp::create(b, loc, memref, at));
}
void GridEmitter::storeF32(Value value, Value memref, ValueRange at) {
  LinalgBuilder l{b, loc};
  Type element = cast<MemRefType>(memref.getType()).getElementType();
  memref::StoreOp::create(b, loc, l.fromF32(value, element), memref, at);
}
Value GridEmitter::loadIndex(Value memref, ValueRange at) {
  return arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                    memref::LoadOp::create(b, loc, memref, at));
}

void GridEmitter::forEach(Value lower, Value upper, Value step,
                          function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(b, loc, lower, upper, step);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getBody()->getTerminator());
  body(loop.getInductionVar());
}

SmallVector<Value>
GridEmitter::loop(Value lower, Value upper, Value step, ValueRange init,
                  function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto loop = scf::ForOp::create(b, loc, lower, upper, step, init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(loop.getBody());
    SmallVector<Value> next =
        body(loop.getInductionVar(), loop.getRegionIterArgs());
    scf::YieldOp::create(b, loc, next);
  }
  return SmallVector<Value>(loop.getResults());
}

SmallVector<Value>
GridEmitter::ifElse(Value condition, function_ref<SmallVector<Value>()> then,
                    function_ref<SmallVector<Value>()> otherwise) {
  auto branch = [&](function_ref<SmallVector<Value>()> emit) {
    return [&, emit](OpBuilder &nb, Location) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      SmallVector<Value> results = emit();
      scf::YieldOp::create(b, loc, results);
    };
  };
  auto op =
      scf::IfOp::create(b, loc, condition, branch(then), branch(otherwise));
  return SmallVector<Value>(op.getResults());
}

void GridEmitter::when(Value condition, function_ref<void()> then) {
  auto op = scf::IfOp::create(b, loc, condition, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(op.thenBlock()->getTerminator());
  then();
}

void GridEmitter::onFirstThread(function_ref<void()> then) {
  if (!gpu)
    return then();
  when(
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, thread, index(0)),
      then);
}

void GridEmitter::strided(Value start, Value upper, Value stride,
                          function_ref<void(Value)> body) {
  forEach(start, upper, stride, body);
}

Value GridEmitter::stridedSum(Value start, Value upper, Value stride,
                              function_ref<Value(Value)> term) {
  return loop(start, upper, stride, {f32(0)},
              [&](Value i, ValueRange acc) -> SmallVector<Value> {
                return {arith::AddFOp::create(b, loc, acc[0], term(i))};
              })
      .front();
}

/// The `chunk` columns from `c` on.
static SmallVector<Value> chunkColumns(GridEmitter &e, Value c,
                                       int64_t chunk) {
  SmallVector<Value> columns{c};
  for (int64_t i = 1; i < chunk; ++i)
    columns.push_back(arith::AddIOp::create(e.b, e.loc, c, e.index(i)));
  return columns;
}

void GridEmitter::chunks(int64_t length,
                         function_ref<void(ArrayRef<Value>)> body) {
  int64_t chunk = chunkOf(length);
  strided(arith::MulIOp::create(b, loc, thread, index(chunk)), index(length),
          arith::MulIOp::create(b, loc, threads, index(chunk)),
          [&](Value c) { body(chunkColumns(*this, c, chunk)); });
}

Value GridEmitter::warp() {
  return gpu ? arith::DivUIOp::create(b, loc, thread, index(lanes()))
                   .getResult()
             : index(0);
}

Value GridEmitter::lane() {
  return gpu ? arith::RemUIOp::create(b, loc, thread, index(lanes()))
                   .getResult()
             : index(0);
}

SmallVector<Value>
GridEmitter::chunkedDots(Value worker, int64_t workers, int64_t length,
                         int64_t count,
                         function_ref<Value(int64_t, Value)> left,
                         function_ref<Value(Value)> right) {
  int64_t chunk = chunkOf(length);
  SmallVector<Value> init(count, f32(0));
  return loop(
      arith::MulIOp::create(b, loc, worker, index(chunk)), index(length),
      index(workers * chunk), init,
      [&](Value c, ValueRange acc) -> SmallVector<Value> {
        SmallVector<Value> columns = chunkColumns(*this, c, chunk), shared;
        for (Value column : columns)
          shared.push_back(right(column));
        SmallVector<Value> next;
        for (int64_t i = 0; i < count; ++i) {
          SmallVector<Value> own;
          for (Value column : columns)
            own.push_back(left(i, column));
          Value sum = acc[i];
          for (int64_t j = 0; j < chunk; ++j)
            sum = arith::AddFOp::create(
                b, loc, sum, arith::MulFOp::create(b, loc, own[j], shared[j]));
          next.push_back(sum);
        }
        return next;
      });
}

Value GridEmitter::aligned(Value memref) {
  if (!gpu || !memref)
    return memref;
  return memref::AssumeAlignmentOp::create(b, loc, memref, 16).getResult();
}

Value GridEmitter::blockReduce(Value value, gpu::AllReduceOperation operation) {
  if (!gpu)
    return value;
  return gpu::AllReduceOp::create(
      b, loc, value,
      gpu::AllReduceOperationAttr::get(b.getContext(), operation),
      /*uniform=*/true);
}

/// A butterfly over the warp's lanes combining with `combine`.
static Value butterfly(GridEmitter &e, Value value,
                       function_ref<Value(Value, Value)> combine) {
  if (!e.gpu)
    return value;
  Value width = e.i32(32);
  for (int32_t offset = 16; offset > 0; offset /= 2) {
    auto shuffle = gpu::ShuffleOp::create(e.b, e.loc, value, e.i32(offset),
                                          width, gpu::ShuffleMode::XOR);
    value = combine(value, shuffle.getShuffleResult());
  }
  return value;
}

Value GridEmitter::warpSum(Value value) {
  return butterfly(*this, value, [&](Value a, Value c) -> Value {
    return arith::AddFOp::create(b, loc, a, c);
  });
}

Value GridEmitter::warpMax(Value value) {
  return butterfly(*this, value, [&](Value a, Value c) -> Value {
    return arith::MaximumFOp::create(b, loc, a, c);
  });
}

void GridEmitter::barrier() {
  if (gpu)
    gpu::BarrierOp::create(b, loc);
}

void mlir::moe::emitGrid(
    OpBuilder &b, Location loc, bool gpu, Value gridX, Value gridY,
    int64_t threads, ArrayRef<MemRefType> shared,
    function_ref<void(GridEmitter &, Value, Value, ArrayRef<Value>)> body,
    ArrayRef<MemRefType> privates) {
  if (gpu) {
    Value one = arith::ConstantIndexOp::create(b, loc, 1);
    Value block = arith::ConstantIndexOp::create(b, loc, threads);
    auto inSpace = [&](ArrayRef<MemRefType> types, gpu::AddressSpace space) {
      auto attr = gpu::AddressSpaceAttr::get(b.getContext(), space);
      SmallVector<Type> placed;
      for (MemRefType type : types)
        placed.push_back(MemRefType::get(type.getShape(),
                                         type.getElementType(),
                                         MemRefLayoutAttrInterface(), attr));
      return placed;
    };
    auto launch = gpu::LaunchOp::create(
        b, loc, gridX, gridY, one, block, one, one, Value(), Type(),
        ValueRange{}, inSpace(shared, gpu::AddressSpace::Workgroup),
        inSpace(privates, gpu::AddressSpace::Private));
    OpBuilder lb = OpBuilder::atBlockBegin(&launch.getBody().front());
    GridEmitter e{lb, loc, true, launch.getThreadIds().x,
                  launch.getBlockSize().x};
    SmallVector<Value> buffers(launch.getWorkgroupAttributions().begin(),
                               launch.getWorkgroupAttributions().end());
    buffers.append(launch.getPrivateAttributions().begin(),
                   launch.getPrivateAttributions().end());
    body(e, launch.getBlockIds().x, launch.getBlockIds().y, buffers);
    gpu::TerminatorOp::create(lb, loc);
    return;
  }
  SmallVector<Value> buffers;
  for (MemRefType type : shared)
    buffers.push_back(memref::AllocaOp::create(b, loc, type));
  for (MemRefType type : privates)
    buffers.push_back(memref::AllocaOp::create(b, loc, type));
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  GridEmitter outer{b, loc, false, zero, one};
  outer.forEach(zero, gridX, one, [&](Value x) {
    outer.forEach(zero, gridY, one, [&](Value y) {
      GridEmitter e{b, loc, false, zero, one};
      body(e, x, y, buffers);
    });
  });
}
