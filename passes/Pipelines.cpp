//===- Pipelines.cpp - The moec pass pipeline -----------------------------===//

#include "passes/Pipelines.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::moe;

void mlir::moe::buildMoEPipeline(OpPassManager &pm, Stage stopAfter) {
  pm.addPass(createCanonicalizerPass());
  if (stopAfter == Stage::Moe)
    return;
  pm.addPass(createMoEDecompose());
  pm.addPass(createCanonicalizerPass());
}

namespace {
struct PipelineOptions : public PassPipelineOptions<PipelineOptions> {
  Option<Stage> stopAfter{
      *this, "stop-after", llvm::cl::desc("Last stage to run"),
      llvm::cl::init(Stage::Decomposed),
      llvm::cl::values(
          clEnumValN(Stage::Moe, "moe", "graph-level moe IR, canonicalized"),
          clEnumValN(Stage::Decomposed, "decomposed",
                     "attention and experts decomposed"))};
};
} // namespace

void mlir::moe::registerMoEPipelines() {
  PassPipelineRegistration<PipelineOptions>(
      "moe-pipeline", "The moec pipeline, up to a stage",
      [](OpPassManager &pm, const PipelineOptions &options) {
        buildMoEPipeline(pm, options.stopAfter);
      });
}
