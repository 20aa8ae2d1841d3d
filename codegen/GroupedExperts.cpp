//===- GroupedExperts.cpp - The routed experts as grouped GEMMs -----------===//

#include "codegen/GroupedExperts.h"

#include "passes/GridEmitter.h"
#include "passes/KernelMath.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

using namespace mlir;
using namespace mlir::moe;

int64_t mlir::moe::expertGemmTokens(ExpertFFNOp ffn, int64_t requested) {
  if (requested >= 0)
    return requested;
  int64_t experts = ffn.getNumModelExperts(), topK = ffn.getTopK();
  return (16 * experts + topK - 1) / topK;
}

func::FuncOp mlir::moe::buildExpertActivationKernel(ModuleOp module,
                                                    ExpertFFNOp ffn,
                                                    StringRef name, bool gpu,
                                                    int64_t threads) {
  MLIRContext *ctx = ffn.getContext();
  Location loc = ffn.getLoc();
  auto down = cast<ShapedType>(ffn.getDown().getType());
  auto gateUp = cast<ShapedType>(ffn.getGateUp().getType());
  int64_t width = down.getDimSize(2);
  bool gated = ffn.getGated();
  Activation activation = ffn.getActivation();
  Type f32 = Float32Type::get(ctx);
  Type element = ffn.getInput().getType().getElementType();
  int64_t dyn = ShapedType::kDynamic;
  auto guType = MemRefType::get({dyn, gateUp.getDimSize(1)}, f32);
  auto hiddenType = MemRefType::get({dyn, width}, element);

  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  auto func = func::FuncOp::create(
      b, loc, name, b.getFunctionType({guType, hiddenType}, TypeRange{}));
  func->setAttr("moe.kernel", b.getUnitAttr());
  func->setAttr("moe.grid_kernel", b.getUnitAttr());
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value gu = entry->getArgument(0), hidden = entry->getArgument(1);
  Value rows = memref::DimOp::create(b, loc, gu, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  emitGrid(b, loc, gpu, rows, one, threads, {},
           [&](GridEmitter &e, Value r, Value, ArrayRef<Value>) {
             Value in = e.aligned(gu), out = e.aligned(hidden);
             // Loads of a chunk (gate, then up) before its arithmetic and
             // stores: 16-byte accesses on the GPU.
             e.chunks(width, [&](ArrayRef<Value> columns) {
               SmallVector<Value> gates, ups;
               for (Value column : columns) {
                 gates.push_back(e.loadF32(in, {r, column}));
                 if (gated)
                   ups.push_back(e.loadF32(
                       in, {r, arith::AddIOp::create(e.b, loc, column,
                                                     e.index(width))}));
               }
               for (size_t i = 0; i < columns.size(); ++i) {
                 Value y = activate(e.b, loc, activation, gates[i]);
                 if (gated)
                   y = arith::MulFOp::create(e.b, loc, y, ups[i]);
                 e.storeF32(y, out, {r, columns[i]});
               }
             });
           });
  func::ReturnOp::create(b, loc);
  return func;
}
