//===- Pipelines.cpp - The moec pass pipeline -----------------------------===//

#include "passes/Pipelines.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::moe;

void mlir::moe::addPartitionPasses(OpPassManager &pm,
                                   const PartitionOptions &options) {
  // A degree of 1 needs no pass: the model stays one stage of one rank.
  if (options.pipelineStages != 1)
    pm.addPass(createMoEPartitionPipeline(
        {options.pipelineStages, options.headLayers}));
  if (options.tensorParallel != 1) {
    pm.addPass(createMoEPartitionTensor({options.tensorParallel}));
    pm.addPass(createMoEPartitionExperts(
        {options.expertParallel, options.getExpertTensorParallel(),
         options.expertAllToAll}));
  }
  if (options.cluster.empty())
    return;
  pm.addPass(createMoEPlanMemory({options.cluster, options.maxTokens}));
  pm.addPass(createMoEPlanKVCache({options.blockSize}));
}

void mlir::moe::buildMoEPipeline(OpPassManager &pm, Stage stopAfter,
                                 const PartitionOptions &options) {
  pm.addPass(createCanonicalizerPass());
  if (stopAfter == Stage::Moe)
    return;
  addPartitionPasses(pm, options);
  if (stopAfter == Stage::Partitioned)
    return;
  pm.addPass(createMoEDecompose());
  pm.addPass(createCanonicalizerPass());
  if (stopAfter == Stage::Decomposed)
    return;
  pm.addPass(createMoEFuse());
  pm.addPass(createMoEOutlineKernels());
}

namespace {
struct PipelineOptions : public PassPipelineOptions<PipelineOptions> {
  Option<Stage> stopAfter{
      *this, "stop-after", llvm::cl::desc("Last stage to run"),
      llvm::cl::init(Stage::Decomposed),
      llvm::cl::values(
          clEnumValN(Stage::Moe, "moe", "graph-level moe IR, canonicalized"),
          clEnumValN(Stage::Partitioned, "partitioned",
                     "partitioned and planned"),
          clEnumValN(Stage::Decomposed, "decomposed",
                     "attention and experts decomposed"),
          clEnumValN(Stage::Kernels, "kernels",
                     "fused kernels, outlined and shared"))};
  Option<int64_t> pipelineStages{*this, "pipeline-parallel",
                                 llvm::cl::desc("Pipeline stages"),
                                 llvm::cl::init(1)};
  Option<int64_t> tensorParallel{*this, "tensor-parallel",
                                 llvm::cl::desc("Ranks per stage"),
                                 llvm::cl::init(1)};
  Option<int64_t> expertParallel{
      *this, "expert-parallel",
      llvm::cl::desc("Groups the experts of a layer are spread over"),
      llvm::cl::init(1)};
  Option<int64_t> headLayers{*this, "head-layers",
                             llvm::cl::desc("Layers on the first stage"),
                             llvm::cl::init(-1)};
  Option<std::string> cluster{
      *this, "cluster",
      llvm::cl::desc("Cluster to plan memory for (empty: none)"),
      llvm::cl::init("")};
};
} // namespace

void mlir::moe::registerMoEPipelines() {
  PassPipelineRegistration<PipelineOptions>(
      "moe-pipeline", "The moec pipeline, up to a stage",
      [](OpPassManager &pm, const PipelineOptions &options) {
        PartitionOptions partition;
        partition.pipelineStages = options.pipelineStages;
        partition.tensorParallel = options.tensorParallel;
        partition.expertParallel = options.expertParallel;
        partition.headLayers = options.headLayers;
        partition.cluster = options.cluster;
        buildMoEPipeline(pm, options.stopAfter, partition);
      });
}
