//===- CostModel.h - Roofline time of a stage's step ------------*- C++ -*-===//
//
// Predicts how long one rank of a stage takes for a step from what its ops
// report through CostOpInterface and CommOpInterface, on a cluster's GPUs:
//   time = max(FLOPs / peak, bytes / HBM bandwidth)
//        + bytes sent within the stage / NVLink bandwidth
//        + bytes sent to the next stage / inter-node bandwidth.
// A roofline bound with no overlap of communication: real kernels reach
// ~90% of bandwidth at best, so treat the figures as lower bounds.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_COSTMODEL_H
#define MOEC_PASSES_COSTMODEL_H

#include "dialects/moe/MoEInterfaces.h"
#include "models/ClusterConfig.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe {

/// What one rank of a stage does in one step, and how long it takes.
struct StageCost {
  int64_t flops = 0;
  int64_t bytes = 0;            ///< read + written
  int64_t bytesWithinStage = 0; ///< sent over NVLink (collectives)
  int64_t bytesToNextStage = 0; ///< sent between stages
  double computeSeconds = 0;
  double memorySeconds = 0;
  double commSeconds = 0;
  /// max(compute, memory) + communication.
  double seconds = 0;
};

/// Costs `func` (one stage) for `step` on `cluster` with arithmetic in
/// `type`.
StageCost estimateStage(func::FuncOp func, const CostContext &step,
                        const moec::ClusterConfig &cluster, moec::DType type);

/// The element type of a model's weights (bf16 unless the IR says otherwise).
moec::DType getWeightDType(ModuleOp module);

} // namespace mlir::moe

#endif // MOEC_PASSES_COSTMODEL_H
