//===- Partition.cpp - Shared pieces of the partitioning passes -----------===//

#include "passes/Partition.h"
#include "passes/ModelReport.h"

#include "llvm/Support/Format.h"

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

std::string mlir::moe::describeRanks(int64_t stage, int64_t tensorParallel) {
  int64_t first = stage * tensorParallel;
  if (tensorParallel == 1)
    return "rank " + std::to_string(first);
  return "ranks " + std::to_string(first) + "-" +
         std::to_string(first + tensorParallel - 1);
}

std::string mlir::moe::formatGiB(int64_t bytes) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format("%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  return text;
}
