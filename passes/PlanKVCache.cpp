//===- PlanKVCache.cpp - The moe-plan-kv-cache pass -----------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/ModelReport.h"
#include "passes/Partition.h"
#include "passes/Passes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPLANKVCACHE
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct MoEPlanKVCachePass
    : public moe::impl::MoEPlanKVCacheBase<MoEPlanKVCachePass> {
  using MoEPlanKVCacheBase::MoEPlanKVCacheBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (blockSize < 1) {
      module.emitError() << "moe-plan-kv-cache: block-size must be at least "
                            "1, got "
                         << static_cast<int64_t>(blockSize);
      return signalPassFailure();
    }
    int64_t length = context;
    if (length < 0) {
      auto maxContext = module->getAttrOfType<IntegerAttr>(kMaxContextAttr);
      length = maxContext ? maxContext.getInt() : 1;
    }
    if (length < 1) {
      module.emitError() << "moe-plan-kv-cache: context must be at least 1, "
                            "got "
                         << length;
      return signalPassFailure();
    }
    for (func::FuncOp func : getForwardFunctions(module)) {
      auto memory = func->getAttrOfType<MemoryPlanAttr>(kMemoryPlanAttr);
      if (!memory) {
        func.emitError("moe-plan-kv-cache needs the memory plan of "
                       "moe-plan-memory; run that first");
        return signalPassFailure();
      }
      int64_t perToken = getKVBytesPerToken(func);
      int64_t blocks =
          perToken ? memory.getKvCache() / (perToken * blockSize) : 0;
      int64_t blocksPerSequence = (length + blockSize - 1) / blockSize;
      func->setAttr(kKVPlanAttr,
                    KVPlanAttr::get(&getContext(), blockSize, perToken, blocks,
                                    length, blocks / blocksPerSequence));
    }
  }
};
} // namespace
