//===- ReportPass.cpp - The moe-report pass -------------------------------===//

#include "passes/ModelReport.h"
#include "passes/Partition.h"
#include "passes/Passes.h"
#include "passes/PlanReport.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEREPORT
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct MoEReportPass : public moe::impl::MoEReportBase<MoEReportPass> {
  using MoEReportBase::MoEReportBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (tokens < 1) {
      module.emitError() << "moe-report: tokens must be at least 1, got "
                         << static_cast<int64_t>(tokens);
      return signalPassFailure();
    }
    std::optional<moec::ClusterConfig> clusterConfig;
    if (!cluster.empty()) {
      std::vector<std::string> errors;
      clusterConfig = moec::resolveCluster(cluster, errors);
      if (!clusterConfig) {
        for (const std::string &error : errors)
          module.emitError() << "moe-report: " << error;
        return signalPassFailure();
      }
    }
    CostContext step{tokens, context};
    bool partitioned = !module.lookupSymbol(kForwardFunctionName) ||
                       getTensorParallel(module) > 1;
    if (getForwardFunctions(module).empty()) {
      module.emitError() << "model has no @" << kForwardFunctionName
                         << " function to report on";
      return signalPassFailure();
    }
    std::optional<ModelSummary> summary;
    if (!partitioned) {
      FailureOr<ModelSummary> model = summarizeModel(module, step);
      if (failed(model))
        return signalPassFailure();
      summary = *model;
    }
    std::optional<PlanReport> plan;
    if (partitioned || clusterConfig)
      plan = summarizePlan(
          module, clusterConfig ? &*clusterConfig : nullptr, step);

    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file =
        openOutputFile(outputFile, &error);
    if (!file) {
      module.emitError() << "moe-report: " << error;
      return signalPassFailure();
    }
    if (json) {
      llvm::json::Object object;
      if (summary)
        object["model"] = toJSON(*summary);
      if (plan)
        object["plan"] = toJSON(*plan);
      file->os() << llvm::formatv("{0:2}", llvm::json::Value(std::move(object)))
                 << "\n";
    } else {
      if (summary)
        printModelReport(*summary, file->os());
      if (plan)
        printPlanReport(*plan, file->os());
    }
    file->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
