//===- PlanReport.h - Per-stage report of a partitioned model ---*- C++ -*-===//
//
// What each stage (one node's ranks) of a partitioned model holds and costs:
// layers, parameters and bytes per GPU and per node at 16 and 8 bits, the KV
// cache (bytes per token, capacity), and the predicted decode step.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_PLANREPORT_H
#define MOEC_PASSES_PLANREPORT_H

#include "dialects/moe/MoEDialect.h"
#include "passes/CostModel.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

/// One stage: every one of its ranks runs the same program on its own part
/// of the weights.
struct StageReport {
  int64_t stage = 0, firstRank = 0, ranks = 1;
  int64_t firstLayer = 0, layers = 0;
  /// Parameters one rank holds (its weight parts).
  int64_t paramsPerRank = 0;
  /// Bytes one rank's weights take as stored (e.g. bf16).
  int64_t weightBytesPerRank = 0;
  int64_t kvBytesPerToken = 0; ///< per rank
  std::optional<MemoryPlanAttr> memory;
  std::optional<KVPlanAttr> kv;
  std::optional<StageCost> cost; ///< with a cluster
};

/// A partitioned model.
struct PlanReport {
  std::string model;
  int64_t pipelineStages = 1, tensorParallel = 1;
  /// Expert placement inside a stage: groups x ranks per expert.
  int64_t expertParallel = 1, expertTensorParallel = 1, experts = 0;
  /// Whether the experts exchange tokens by all-to-all (else all-reduce).
  bool expertAllToAll = false;
  /// Copies of the whole pipeline the cluster holds (data parallel).
  int64_t replicas = 1;
  std::string clusterName, gpuName;
  CostContext step;
  std::vector<StageReport> stages;
  /// Decode step of `step.numTokens` sequences through every stage, and the
  /// tokens/s of the whole cluster with every stage busy (one batch of
  /// step.numTokens per stage in flight, every replica).
  double stepSeconds = 0, tokensPerSecond = 0;
  /// Sequences of the model's max_context every stage can hold (KV plan).
  std::optional<int64_t> sequences;
};

/// Summarises a partitioned (or not) module. With `cluster`, predicts the
/// decode step with the roofline cost model; the KV and memory columns come
/// from moe-plan-memory / moe-plan-kv-cache when they ran.
PlanReport summarizePlan(ModuleOp module,
                         const moec::ClusterConfig *cluster, CostContext step);

/// Prints `plan` as a table.
void printPlanReport(const PlanReport &plan, llvm::raw_ostream &os);

/// `plan` as JSON (the same figures; bytes and seconds unscaled).
llvm::json::Value toJSON(const PlanReport &plan);

} // namespace mlir::moe

#endif // MOEC_PASSES_PLANREPORT_H
