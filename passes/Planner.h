//===- Planner.h - Choose tensor / pipeline / expert degrees ----*- C++ -*-===//
//
// Tries every partitioning of a model that fits a cluster's shape, builds
// each with the real passes (so the plan judged is the plan compiled), and
// picks the best for an objective with the roofline cost model:
//   - latency: the shortest decode step at a given batch;
//   - throughput: the most tokens/s whose decode step stays under a latency
//     bound (the batch grows in powers of two; with as many batches in
//     flight as the stages and the KV cache allow, fewer leaving bubbles).
// Explicit degrees narrow the search to plans that have them.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_PLANNER_H
#define MOEC_PASSES_PLANNER_H

#include "models/ClusterConfig.h"
#include "passes/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

enum class Objective { Latency, Throughput };

/// What the user asks of the planner.
struct PlannerRequest {
  Objective objective = Objective::Latency;
  /// Sequences decoded together (latency), or the largest batch to try
  /// (throughput).
  int64_t batch = 1;
  /// Throughput: the longest decode step allowed, in seconds.
  double latencyBound = 0.1;
  /// Context each sequence attends to (-1: the model's max_context).
  int64_t context = -1;
  /// Degrees fixed on the command line.
  std::optional<int64_t> pipelineStages, tensorParallel, expertParallel;
  /// Expert token exchange fixed on the command line (all-to-all or not).
  std::optional<bool> expertAllToAll;
  int64_t headLayers = -1;
  int64_t maxTokens = 8192;
  int64_t blockSize = 16;
};

/// One partitioning the planner looked at.
struct PlanCandidate {
  PartitionOptions options;
  int64_t replicas = 1;
  /// Whether the model has routed experts (expertParallel means something).
  bool hasExperts = false;
  bool feasible = false;
  /// Why it does not fit (the first error of the passes), when it does not.
  std::string reason;
  int64_t batch = 0;
  double stepSeconds = 0, tokensPerSecond = 0;
  int64_t sequences = 0;
};

struct PlannerResult {
  PlannerRequest request;
  int64_t context = 0;
  std::vector<PlanCandidate> candidates;
  /// Index of the chosen candidate in `candidates`.
  size_t chosen = 0;
};

/// Searches the partitionings of `graph` (graph-level moe IR, not yet
/// partitioned) for `cluster`. Fails with an error on `graph` when no
/// candidate fits, listing why the closest ones did not.
FailureOr<PlannerResult> choosePlan(ModuleOp graph,
                                    const moec::ClusterConfig &cluster,
                                    const std::string &clusterSpec,
                                    const PlannerRequest &request);

/// Explains the choice: the objective, the best candidates side by side, and
/// why others were rejected.
void printPlannerExplanation(const PlannerResult &result,
                             llvm::raw_ostream &os);

} // namespace mlir::moe

#endif // MOEC_PASSES_PLANNER_H
