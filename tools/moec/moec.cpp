//===- moec.cpp - The moec compiler driver --------------------------------===//
//
//   moec MODEL.json [--emit=moe] [--report] [-o FILE]
//
// Reads a model description, imports it to moe IR, runs the pipeline and
// writes the requested stage. See README.md and models/README.md.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEDialect.h"
#include "models/ModelConfig.h"
#include "passes/ModelReport.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"
#include "tools/moec/Importer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

namespace {

cl::OptionCategory moecCategory("moec options");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.json>"),
                               cl::Required, cl::cat(moecCategory));
cl::opt<std::string> outputFile("o", cl::desc("Output file (default: stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(moecCategory));
cl::opt<moe::Stage> emit(
    "emit", cl::desc("Stage to stop after and write (default: moe)"),
    cl::values(clEnumValN(moe::Stage::Moe, "moe",
                          "graph-level moe IR, verified and canonicalized"),
               clEnumValN(moe::Stage::Decomposed, "decomposed",
                          "attention and experts decomposed into their "
                          "steps (moe-decompose)")),
    cl::init(moe::Stage::Moe), cl::cat(moecCategory));
cl::opt<bool> report(
    "report",
    cl::desc("Print parameters by category, active parameters, FLOPs per "
             "token and KV-cache bytes per token (IR is written only when "
             "--emit is also given)"),
    cl::cat(moecCategory));
cl::opt<int64_t> reportTokens(
    "report-tokens", cl::desc("Tokens per decode step in the report"),
    cl::init(1), cl::cat(moecCategory));
cl::opt<int64_t> reportContext(
    "report-context",
    cl::desc("Cached positions each token attends to in the report "
             "(default: the model's max_context)"),
    cl::init(-1), cl::cat(moecCategory));
} // namespace

/// Prints the pipeline's errors the way compilers do: `FILE: error: MSG`.
static int failWith(llvm::ArrayRef<std::string> errors) {
  for (const std::string &error : errors)
    llvm::errs() << inputFile << ": error: " << error << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  cl::HideUnrelatedOptions(moecCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "moec: compiles Mixture-of-Experts model descriptions\n\n"
      "  moec MODEL.json --report          parameters, FLOPs, KV cache\n"
      "  moec MODEL.json --emit=moe -o F   the moe IR after the pipeline\n\n"
      "MLIR's options (--mlir-timing, --mlir-print-ir-after-all, ...) are\n"
      "accepted too; --help-hidden lists them.\n");

  std::vector<std::string> errors;
  std::optional<::moec::ModelConfig> config =
      ::moec::loadModelConfig(inputFile, errors);
  if (!config)
    return failWith(errors);
  if (reportTokens < 1)
    return failWith({"--report-tokens must be at least 1, got " +
                     std::to_string(reportTokens)});

  DialectRegistry registry;
  registry.insert<mlir::moe::MoEDialect, func::FuncDialect>();
  MLIRContext context(registry);
  OwningOpRef<ModuleOp> module =
      mlir::moe::importModel(*config, &context, inputFile);

  PassManager pm(&context);
  DefaultTimingManager timing;
  applyDefaultTimingManagerCLOptions(timing);
  TimingScope timingScope = timing.getRootScope();
  pm.enableTiming(timingScope);
  if (failed(applyPassManagerCLOptions(pm)))
    return 1;
  mlir::moe::buildMoEPipeline(pm, emit);
  if (failed(pm.run(*module)))
    return failWith({"the moe pipeline failed (see the diagnostics above)"});

  if (report) {
    FailureOr<mlir::moe::ModelSummary> summary = mlir::moe::summarizeModel(
        *module, mlir::moe::CostContext{reportTokens, reportContext});
    if (failed(summary))
      return 1;
    mlir::moe::printModelReport(*summary, llvm::outs());
    if (emit.getNumOccurrences() == 0)
      return 0;
  }

  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> output =
      openOutputFile(outputFile, &error);
  if (!output)
    return failWith({error});
  module->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}
