//===- Partition.cpp - Shared pieces of the partitioning passes -----------===//

#include "passes/Partition.h"
#include "passes/ModelReport.h"

#include "dialects/moe/MoEOps.h"
#include "mlir/IR/Builders.h"

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
  llvm::sort(funcs, [](func::FuncOp a, func::FuncOp b) {
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

LogicalResult mlir::moe::ShardPlan::add(Value weight, ArrayRef<int64_t> splits,
                                        ArrayRef<int64_t> chunks) {
  auto op = weight.getDefiningOp<WeightOp>();
  if (!op)
    return success(); // Not a named parameter: nothing to shard.
  Entry entry{SmallVector<int64_t>(splits), SmallVector<int64_t>(chunks)};
  auto [it, inserted] = shards.try_emplace(op, entry);
  if (!inserted && (it->second.splits != entry.splits ||
                    it->second.chunks != entry.chunks))
    return op.emitError() << "weight '" << op.getName()
                          << "' is read by ops that need different shards";
  return success();
}

LogicalResult mlir::moe::ShardPlan::apply() {
  for (auto &[operation, entry] : shards) {
    auto op = cast<WeightOp>(operation);
    if (llvm::all_of(entry.splits, [](int64_t s) { return s == 1; }))
      continue; // Replicated: every rank holds the whole weight.
    if (op.getShardAttr())
      return op.emitError() << "weight '" << op.getName()
                            << "' is already sharded";
    RankedTensorType type = op.getResult().getType();
    SmallVector<int64_t> local(type.getShape());
    for (auto [index, split] : llvm::enumerate(entry.splits)) {
      if (local[index] % split != 0)
        return op.emitError() << "dimension " << index << " of weight '"
                              << op.getName() << "' (" << local[index]
                              << ") does not split " << split << " ways";
      local[index] /= split;
    }
    op.getResult().setType(type.clone(local));
    op.setShardAttr(ShardAttr::get(op.getContext(), entry.splits,
                                   entry.chunks));
  }
  return success();
}

void mlir::moe::insertAllReduceAfter(Value value, int64_t groupSize) {
  OpBuilder b(value.getContext());
  b.setInsertionPointAfterValue(value);
  auto reduce = AllReduceOp::create(b, value.getLoc(), value, groupSize);
  value.replaceAllUsesExcept(reduce.getResult(), reduce);
}

void mlir::moe::updateFunctionType(func::FuncOp func) {
  auto returnOp = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  func.setType(FunctionType::get(func.getContext(),
                                 func.getBody().getArgumentTypes(),
                                 returnOp.getOperandTypes()));
}


int64_t mlir::moe::getKVBytesPerToken(func::FuncOp func) {
  int64_t bytes = 0;
  for (Type type : func.getArgumentTypes())
    if (auto cache = dyn_cast<KVCacheType>(type))
      bytes += cache.getBytesPerToken();
  return bytes;
}
