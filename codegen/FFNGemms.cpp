//===- FFNGemms.cpp - FFNs at prefill as library GEMMs --------------------===//

#include "codegen/FFNGemms.h"

#include "passes/GridEmitter.h"
#include "passes/KernelMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <functional>

using namespace mlir;
using namespace mlir::moe;

int64_t mlir::moe::expertGemmTokens(ExpertFFNOp ffn, int64_t requested) {
  if (requested >= 0)
    return requested;
  int64_t experts = ffn.getNumModelExperts(), topK = ffn.getTopK();
  return (16 * experts + topK - 1) / topK;
}

int64_t mlir::moe::ffnGemmTokens(int64_t requested) {
  return requested >= 0 ? requested : 16;
}

/// A kernel `name`(inputs..., hidden [rows, width] of `element`) whose
/// block r writes hidden[r, c] = act(gate(r, c)) * up(r, c), or
/// act(gate(r, c)) without `up`; the loads read the kernel's (aligned)
/// inputs.
using ColumnLoad =
    std::function<Value(GridEmitter &, ArrayRef<Value> in, Value r, Value c)>;
static func::FuncOp buildActivation(ModuleOp module, Location loc,
                                    StringRef name, ArrayRef<Type> inputs,
                                    Type element, int64_t width,
                                    Activation activation, ColumnLoad gate,
                                    ColumnLoad up, bool gpu, int64_t threads) {
  auto hiddenType = MemRefType::get({ShapedType::kDynamic, width}, element);
  SmallVector<Type> arguments(inputs);
  arguments.push_back(hiddenType);
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  auto func = func::FuncOp::create(b, loc, name,
                                   b.getFunctionType(arguments, TypeRange{}));
  func->setAttr("moe.kernel", b.getUnitAttr());
  func->setAttr("moe.grid_kernel", b.getUnitAttr());
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value hidden = entry->getArguments().back();
  Value rows = memref::DimOp::create(b, loc, hidden, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  emitGrid(b, loc, gpu, rows, one, threads, {},
           [&](GridEmitter &e, Value r, Value, ArrayRef<Value>) {
             SmallVector<Value> in;
             for (Value argument : entry->getArguments().drop_back())
               in.push_back(e.aligned(argument));
             Value out = e.aligned(hidden);
             // Loads of a chunk (gate, then up) before its arithmetic and
             // stores: 16-byte accesses on the GPU.
             e.chunks(width, [&](ArrayRef<Value> columns) {
               SmallVector<Value> gates, ups;
               for (Value column : columns) {
                 gates.push_back(gate(e, in, r, column));
                 if (up)
                   ups.push_back(up(e, in, r, column));
               }
               for (size_t i = 0; i < columns.size(); ++i) {
                 Value y = activate(e.b, loc, activation, gates[i]);
                 if (up)
                   y = arith::MulFOp::create(e.b, loc, y, ups[i]);
                 e.storeF32(y, out, {r, columns[i]});
               }
             });
           });
  func::ReturnOp::create(b, loc);
  return func;
}

func::FuncOp mlir::moe::buildExpertActivationKernel(ModuleOp module,
                                                    ExpertFFNOp ffn,
                                                    StringRef name, bool gpu,
                                                    int64_t threads) {
  auto down = cast<ShapedType>(ffn.getDown().getType());
  auto gateUp = cast<ShapedType>(ffn.getGateUp().getType());
  int64_t width = down.getDimSize(2);
  Type f32 = Float32Type::get(ffn.getContext());
  auto guType = MemRefType::get({ShapedType::kDynamic, gateUp.getDimSize(1)},
                                f32);
  // gu's gate columns first, then (gated) the up columns.
  ColumnLoad gate = [](GridEmitter &e, ArrayRef<Value> in, Value r, Value c) {
    return e.loadF32(in[0], {r, c});
  };
  ColumnLoad up;
  if (ffn.getGated())
    up = [width](GridEmitter &e, ArrayRef<Value> in, Value r, Value c) {
      return e.loadF32(
          in[0], {r, arith::AddIOp::create(e.b, e.loc, c, e.index(width))});
    };
  return buildActivation(module, ffn.getLoc(), name, {guType},
                         ffn.getInput().getType().getElementType(), width,
                         ffn.getActivation(), gate, up, gpu, threads);
}

func::FuncOp mlir::moe::buildFFNActivationKernel(ModuleOp module, FFNOp ffn,
                                                 StringRef name, bool gpu,
                                                 int64_t threads) {
  auto down = cast<ShapedType>(ffn.getDown().getType());
  int64_t width = down.getDimSize(1);
  Type f32 = Float32Type::get(ffn.getContext());
  auto rowsType = MemRefType::get({ShapedType::kDynamic, width}, f32);
  ColumnLoad first = [](GridEmitter &e, ArrayRef<Value> in, Value r,
                        Value c) { return e.loadF32(in[0], {r, c}); };
  ColumnLoad second = [](GridEmitter &e, ArrayRef<Value> in, Value r,
                         Value c) { return e.loadF32(in[1], {r, c}); };
  bool gated = static_cast<bool>(ffn.getGate());
  SmallVector<Type> inputs(gated ? 2 : 1, rowsType);
  return buildActivation(module, ffn.getLoc(), name, inputs,
                         ffn.getInput().getType().getElementType(), width,
                         ffn.getActivation(), first,
                         gated ? second : ColumnLoad(), gpu, threads);
}
