//===- CostModel.cpp - Roofline time of a stage's step --------------------===//

#include "passes/CostModel.h"

#include "dialects/moe/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

StageCost mlir::moe::estimateStage(func::FuncOp func, const CostContext &step,
                                   const moec::ClusterConfig &cluster,
                                   moec::DType type) {
  StageCost cost;
  walkCostOps(func, [&](CostOpInterface op) {
    cost.flops += op.getFlops(step);
    cost.bytes += op.getBytesRead(step) + op.getBytesWritten(step);
  });
  func.walk([&](Operation *op) {
    if (auto comm = dyn_cast<CommOpInterface>(op)) {
      int64_t sent = comm.getBytesSent(step);
      (comm.isWithinStage() ? cost.bytesWithinStage : cost.bytesToNextStage) +=
          sent;
    }
  });
  double peak = cluster.getPeakFlops(type);
  cost.computeSeconds = peak > 0 ? cost.flops / peak : 0;
  cost.memorySeconds = cost.bytes / cluster.gpu.memoryBandwidth;
  cost.commSeconds = cost.bytesWithinStage / cluster.intraNodeBandwidth +
                     cost.bytesToNextStage / cluster.interNodeBandwidth;
  cost.seconds =
      std::max(cost.computeSeconds, cost.memorySeconds) + cost.commSeconds;
  return cost;
}

moec::DType mlir::moe::getWeightDType(ModuleOp module) {
  moec::DType type = moec::DType::BF16;
  module.walk([&](WeightOp weight) {
    Type element = weight.getResult().getType().getElementType();
    if (element.isF16())
      type = moec::DType::F16;
    else if (element.isF32())
      type = moec::DType::F32;
    return WalkResult::interrupt();
  });
  return type;
}
