//===- Planner.cpp - Choose tensor / pipeline / expert degrees ------------===//

#include "passes/Planner.h"

#include "dialects/moe/MoEOps.h"
#include "passes/ModelReport.h"
#include "passes/PlanReport.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::moe;

/// Divisors of `n` in increasing order.
static SmallVector<int64_t> divisors(int64_t n) {
  SmallVector<int64_t> result;
  for (int64_t d = 1; d <= n; ++d)
    if (n % d == 0)
      result.push_back(d);
  return result;
}

namespace {
/// The shape facts of a model the enumeration needs.
struct ModelShape {
  int64_t layers = 0, experts = 0, expertWidth = 0;
};
} // namespace

static ModelShape getModelShape(ModuleOp graph) {
  ModelShape shape;
  graph.walk([&](Operation *op) {
    if (isa<AttentionOp>(op))
      ++shape.layers;
    if (auto experts = dyn_cast<ExpertsOp>(op)) {
      shape.experts = experts.getNumModelExperts();
      shape.expertWidth = experts.getDown().getType().getDimSize(2);
    }
  });
  return shape;
}

/// Builds `candidate` on a copy of `graph` and measures it at `batch`.
static void evaluate(ModuleOp graph, const moec::ClusterConfig &cluster,
                     const PlannerRequest &request, int64_t context,
                     PlanCandidate &candidate) {
  OwningOpRef<ModuleOp> copy(cast<ModuleOp>(graph->clone()));
  MLIRContext *ctx = graph.getContext();
  std::string firstError;
  ScopedDiagnosticHandler handler(ctx, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Error && firstError.empty())
      firstError = diag.str();
    return success();
  });
  PassManager pm(ctx);
  addPartitionPasses(pm, candidate.options);
  if (failed(pm.run(*copy))) {
    candidate.reason = firstError.empty() ? "the passes failed" : firstError;
    return;
  }

  auto measure = [&](int64_t batch) {
    return summarizePlan(*copy, &cluster, CostContext{batch, context});
  };
  PlanReport plan = measure(request.batch);
  candidate.replicas = plan.replicas;
  candidate.sequences = plan.sequences.value_or(0);
  int64_t stages = candidate.options.pipelineStages;
  if (request.objective == Objective::Latency) {
    if (candidate.sequences < request.batch) {
      candidate.reason = "its KV cache holds " +
                         std::to_string(candidate.sequences) +
                         " sequences of " + std::to_string(context) +
                         " tokens, fewer than the batch of " +
                         std::to_string(request.batch);
      return;
    }
    candidate.feasible = true;
    candidate.batch = request.batch;
    candidate.stepSeconds = plan.stepSeconds;
    candidate.tokensPerSecond = plan.tokensPerSecond;
    return;
  }
  // Throughput with m batches of b sequences in flight through the
  // pipeline (m <= stages, and the KV cache holds m * b sequences): each
  // batch takes the step time to cross the stages and the busiest stage
  // admits one batch per its time, so tokens/s = m b / max(step, m t_max).
  // With m < stages the pipeline has bubbles.
  for (int64_t batch = 1; batch <= request.batch; batch *= 2) {
    int64_t inFlight = std::min<int64_t>(stages, candidate.sequences / batch);
    if (inFlight < 1)
      break;
    PlanReport atBatch = batch == request.batch ? plan : measure(batch);
    if (atBatch.stepSeconds > request.latencyBound)
      break;
    double busiest = 0;
    for (const StageReport &stage : atBatch.stages)
      busiest = std::max(busiest, stage.cost->seconds);
    double tokensPerSecond =
        atBatch.replicas * inFlight * batch /
        std::max(atBatch.stepSeconds, inFlight * busiest);
    if (tokensPerSecond > candidate.tokensPerSecond) {
      candidate.feasible = true;
      candidate.batch = batch;
      candidate.stepSeconds = atBatch.stepSeconds;
      candidate.tokensPerSecond = tokensPerSecond;
    }
  }
  if (!candidate.feasible)
    candidate.reason =
        candidate.sequences < 1
            ? "its KV cache cannot hold one sequence"
            : "even one sequence takes longer than the latency bound";
}

/// Best first: the objective's figure, then fewer ranks per replica (less
/// communication), then whole experts on a rank over experts cut across
/// ranks (fewer, larger GEMMs; the cost model does not tell them apart).
static bool isBetter(const PlanCandidate &a, const PlanCandidate &b,
                     Objective objective) {
  double scoreA =
      objective == Objective::Latency ? -a.stepSeconds : a.tokensPerSecond;
  double scoreB =
      objective == Objective::Latency ? -b.stepSeconds : b.tokensPerSecond;
  if (std::abs(scoreA - scoreB) > 1e-9 * std::max(std::abs(scoreA), 1.0))
    return scoreA > scoreB;
  int64_t ranksA = a.options.pipelineStages * a.options.tensorParallel;
  int64_t ranksB = b.options.pipelineStages * b.options.tensorParallel;
  if (ranksA != ranksB)
    return ranksA < ranksB;
  return a.options.expertParallel > b.options.expertParallel;
}

FailureOr<PlannerResult> mlir::moe::choosePlan(
    ModuleOp graph, const moec::ClusterConfig &cluster,
    const std::string &clusterSpec, const PlannerRequest &request) {
  PlannerResult result;
  result.request = request;
  auto maxContext = graph->getAttrOfType<IntegerAttr>(kMaxContextAttr);
  result.context = request.context >= 0
                       ? request.context
                       : (maxContext ? maxContext.getInt() : 0);
  ModelShape shape = getModelShape(graph);
  int64_t gpus = cluster.getNumGPUs();

  for (int64_t tp : divisors(cluster.gpusPerNode)) {
    if (request.tensorParallel && tp != *request.tensorParallel)
      continue;
    for (int64_t pp : divisors(gpus / tp)) {
      if (pp > shape.layers ||
          (request.pipelineStages && pp != *request.pipelineStages))
        continue;
      for (int64_t ep : divisors(tp)) {
        if (request.expertParallel ? ep != *request.expertParallel
                                   : (shape.experts
                                          ? shape.experts % ep != 0 ||
                                                shape.expertWidth % (tp / ep)
                                          : ep != 1))
          continue;
        // Whole experts on every rank may also exchange tokens by
        // all-to-all instead of summing with an all-reduce.
        bool canExchange = shape.experts > 0 && ep == tp && tp > 1;
        for (bool allToAll : {false, true}) {
          if ((allToAll && !canExchange) ||
              (request.expertAllToAll && *request.expertAllToAll != allToAll))
            continue;
          PlanCandidate candidate;
          candidate.options.pipelineStages = pp;
          candidate.options.tensorParallel = tp;
          candidate.options.expertParallel = ep;
          candidate.options.expertAllToAll = allToAll;
          candidate.options.headLayers = request.headLayers;
          candidate.options.cluster = clusterSpec;
          candidate.options.maxTokens = request.maxTokens;
          candidate.options.blockSize = request.blockSize;
          candidate.replicas = gpus / (tp * pp);
          candidate.hasExperts = shape.experts > 0;
          evaluate(graph, cluster, request, result.context, candidate);
          result.candidates.push_back(candidate);
        }
      }
    }
  }

  auto better = [&](const PlanCandidate &a, const PlanCandidate &b) {
    return isBetter(a, b, request.objective);
  };
  std::optional<size_t> best;
  for (auto [index, candidate] : llvm::enumerate(result.candidates))
    if (candidate.feasible &&
        (!best || better(candidate, result.candidates[*best])))
      best = index;
  if (!best) {
    InFlightDiagnostic diag = graph.emitError()
                              << "no partitioning of the model fits "
                              << cluster.name << " (" << gpus << " x "
                              << cluster.gpu.name << ")";
    for (const PlanCandidate &candidate :
         llvm::ArrayRef(result.candidates).take_back(3))
      diag.attachNote() << "tensor " << candidate.options.tensorParallel
                        << " x pipeline " << candidate.options.pipelineStages
                        << ": " << candidate.reason;
    return failure();
  }
  result.chosen = *best;
  return result;
}

static std::string describe(const PlanCandidate &c) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "tensor " << c.options.tensorParallel << " x pipeline "
     << c.options.pipelineStages;
  if (c.hasExperts)
    os << ", experts " << c.options.expertParallel << "x"
       << c.options.getExpertTensorParallel()
       << (c.options.expertAllToAll ? " all-to-all" : "");
  if (c.replicas > 1)
    os << ", " << c.replicas << " replicas";
  return text;
}

void mlir::moe::printPlannerExplanation(const PlannerResult &result,
                                        llvm::raw_ostream &os) {
  const PlannerRequest &request = result.request;
  os << "planner: ";
  if (request.objective == Objective::Latency)
    os << "lowest decode-step latency at batch " << request.batch;
  else
    os << "highest throughput with a decode step under "
       << llvm::format("%.1f", request.latencyBound * 1e3) << " ms";
  os << ", context " << result.context << "\n";

  SmallVector<const PlanCandidate *> feasible, rejected;
  for (const PlanCandidate &c : result.candidates)
    (c.feasible ? feasible : rejected).push_back(&c);
  const PlanCandidate &chosen = result.candidates[result.chosen];
  // Ties keep the order in which candidates were tried (their addresses in
  // `candidates`), so the listing is deterministic.
  llvm::sort(feasible, [&](const PlanCandidate *a, const PlanCandidate *b) {
    if (isBetter(*a, *b, request.objective))
      return true;
    if (isBetter(*b, *a, request.objective))
      return false;
    return a < b;
  });
  os << "  " << result.candidates.size() << " partitionings tried, "
     << feasible.size() << " fit; the best:\n";
  for (const PlanCandidate *c : llvm::ArrayRef(feasible).take_front(5))
    os << (c == &chosen ? "  * " : "    ") << llvm::left_justify(describe(*c), 54)
       << llvm::format("batch %4lld  step %9.3f ms  %11.1f tokens/s  KV "
                       "%lld seqs\n",
                       static_cast<long long>(c->batch), c->stepSeconds * 1e3,
                       c->tokensPerSecond,
                       static_cast<long long>(c->sequences));
  os << "  chose " << describe(chosen) << ": ";
  if (request.objective == Objective::Latency)
    os << "the shortest predicted step";
  else
    os << "the most tokens/s within the latency bound";
  os << " (roofline: weights and KV bytes over HBM bandwidth, FLOPs over "
        "peak, collectives over NVLink, stage hand-offs over the network)\n";
  size_t shown = 0;
  for (const PlanCandidate *c : rejected) {
    if (shown++ == 4) {
      os << "  ... and " << rejected.size() - 4 << " more rejected\n";
      break;
    }
    os << "  rejected " << describe(*c) << ": " << c->reason << "\n";
  }
}
