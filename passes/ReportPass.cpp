//===- ReportPass.cpp - The moe-report pass -------------------------------===//

#include "passes/ModelReport.h"
#include "passes/Passes.h"

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
    if (tokens < 1) {
      getOperation().emitError() << "moe-report: tokens must be at least 1, got "
                                 << static_cast<int64_t>(tokens);
      return signalPassFailure();
    }
    FailureOr<ModelSummary> summary =
        summarizeModel(getOperation(), CostContext{tokens, context});
    if (failed(summary))
      return signalPassFailure();
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file =
        openOutputFile(outputFile, &error);
    if (!file) {
      getOperation().emitError() << "moe-report: " << error;
      return signalPassFailure();
    }
    printModelReport(*summary, file->os());
    file->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
