//===- Partition.h - Shared pieces of the partitioning passes ---*- C++ -*-===//
//
// How a partitioned model is laid out in IR:
//   - module attribute `moe.pipeline_stages` = P; the forward pass is either
//     @forward (P = 1) or @forward_stage0 ... @forward_stage<P-1>, each with
//     `moe.stage` and `moe.first_layer` attributes;
//   - module attribute `moe.tensor_parallel` = T: every stage runs on T ranks
//     (one node's GPUs) as one SPMD program; sharded weights carry
//     #moe.shard and collectives carry group_size T;
//   - stage s runs on ranks [s*T, (s+1)*T).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_PARTITION_H
#define MOEC_PASSES_PARTITION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::moe {

inline constexpr llvm::StringLiteral kPipelineStagesAttr = "moe.pipeline_stages";
inline constexpr llvm::StringLiteral kTensorParallelAttr = "moe.tensor_parallel";
inline constexpr llvm::StringLiteral kStageAttr = "moe.stage";
inline constexpr llvm::StringLiteral kFirstLayerAttr = "moe.first_layer";
inline constexpr llvm::StringLiteral kMemoryPlanAttr = "moe.memory_plan";
inline constexpr llvm::StringLiteral kKVPlanAttr = "moe.kv_plan";
/// Module attribute naming the cluster moe-plan-memory planned for.
inline constexpr llvm::StringLiteral kClusterAttr = "moe.cluster";

/// Layers per stage for `layers` layers over `stages` stages. With
/// `headLayers` < 0 the split is even and the remainder goes to the last
/// stages; otherwise stage 0 gets `headLayers` and the rest is split evenly.
SmallVector<int64_t> assignLayersToStages(int64_t layers, int64_t stages,
                                          int64_t headLayers);

/// The functions that hold the forward pass: @forward, or the stage
/// functions in stage order.
SmallVector<func::FuncOp> getForwardFunctions(ModuleOp module);

/// The stage of `func` (0 for an unpartitioned @forward).
int64_t getStage(func::FuncOp func);

/// Ranks each stage runs on (the module's moe.tensor_parallel, default 1).
int64_t getTensorParallel(ModuleOp module);

/// KV-cache bytes per token one rank of `func`'s stage stores (its cache
/// argument's layers and heads).
int64_t getKVBytesPerToken(func::FuncOp func);

/// "ranks 8-15" (or "rank 3") for stage `stage` of `tensorParallel` ranks.
std::string describeRanks(int64_t stage, int64_t tensorParallel);

/// Bytes as GiB with two decimals: "37.25 GiB".
std::string formatGiB(int64_t bytes);

/// The shards a partitioning pass gives to weights: collected for every op
/// first (so that a conflict or an impossible split is reported before
/// anything changes), then applied.
class ShardPlan {
public:
  /// Records that the moe.weight defining `weight` is cut as `splits` (and
  /// `chunks`, see #moe.shard). Fails, with an error, if another reader of the
  /// same weight asked for a different shard.
  LogicalResult add(Value weight, ArrayRef<int64_t> splits,
                    ArrayRef<int64_t> chunks = {});
  /// Gives every recorded weight its local type and #moe.shard. Fails if a
  /// weight is already sharded or a dimension does not split evenly.
  LogicalResult apply();

private:
  struct Entry {
    SmallVector<int64_t> splits, chunks;
  };
  llvm::MapVector<Operation *, Entry> shards;
};

/// Sums `value` over a group of `groupSize` ranks: inserts a moe.all_reduce
/// after its definition and makes every other user read the sum.
void insertAllReduceAfter(Value value, int64_t groupSize);

/// Sets `func`'s type from its block arguments and return operands.
void updateFunctionType(func::FuncOp func);

} // namespace mlir::moe

#endif // MOEC_PASSES_PARTITION_H
