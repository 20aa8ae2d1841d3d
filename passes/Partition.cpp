//===- Partition.cpp - Shared pieces of the partitioning passes -----------===//

#include "passes/Partition.h"
#include "passes/ModelReport.h"

using namespace mlir;
using namespace mlir::moe;

SmallVector<func::FuncOp> mlir::moe::getForwardFunctions(ModuleOp module) {
  SmallVector<func::FuncOp> funcs;
  if (auto forward = module.lookupSymbol<func::FuncOp>(kForwardFunctionName)) {
    funcs.push_back(forward);
    return funcs;
  }
  for (auto func : module.getOps<func::FuncOp>())
    if (func->hasAttr(kStageAttr))
      funcs.push_back(func);
  llvm::stable_sort(funcs, [](func::FuncOp a, func::FuncOp b) {
    return getStage(a) < getStage(b);
  });
  return funcs;
}

int64_t mlir::moe::getStage(func::FuncOp func) {
  auto stage = func->getAttrOfType<IntegerAttr>(kStageAttr);
  return stage ? stage.getInt() : 0;
}

int64_t mlir::moe::getTensorParallel(ModuleOp module) {
  auto degree = module->getAttrOfType<IntegerAttr>(kTensorParallelAttr);
  return degree ? degree.getInt() : 1;
}
