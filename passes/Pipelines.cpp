//===- Pipelines.cpp - The moec pass pipeline -----------------------------===//

#include "passes/Pipelines.h"
#include "passes/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/ConvertToLLVM/ToLLVMPass.h"
#include "mlir/Conversion/MathToLibm/MathToLibm.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
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

void mlir::moe::buildHostLoweringPipeline(OpPassManager &pm) {
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Results become out-parameters the runtime allocates from the plan;
  // hoisting writes them in place instead of copying.
  bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.modifyPublicFunctions = true;
  outParams.hoistStaticAllocs = true;
  outParams.hoistDynamicAllocs = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outParams));
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createMoECopiesToLinalg());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
  // rsqrt has no libm function: expand it to 1 / sqrt first.
  math::MathExpandOpsPassOptions mathExpand;
  mathExpand.opMnemonics = {"rsqrt"};
  pm.addPass(math::createMathExpandOpsPass(mathExpand));
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createMoEHostEntryPoints());
}

void mlir::moe::addCudaLoweringPasses(OpPassManager &pm,
                                      const CudaLoweringOptions &options) {
  for (const std::string &chip : options.chips) {
    GpuNVVMAttachTargetOptions target;
    target.chip = chip;
    target.features = "+ptx80";
    target.optLevel = 3;
    if (!options.libdevice.empty())
      target.linkLibs.push_back(options.libdevice);
    pm.addPass(createGpuNVVMAttachTarget(target));
  }
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps());
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void mlir::moe::buildCudaLoweringPipeline(OpPassManager &pm,
                                          const CudaLoweringOptions &options) {
  pm.addPass(createGpuKernelOutliningPass());
  addCudaLoweringPasses(pm, options);
}

namespace {
struct CudaPipelineOptions : public PassPipelineOptions<CudaPipelineOptions> {
  ListOption<std::string> chips{*this, "chip",
                                llvm::cl::desc("Chips to generate PTX for "
                                               "(default: sm_90a)")};
  Option<std::string> libdevice{
      *this, "libdevice",
      llvm::cl::desc("libdevice.10.bc for the math functions (default: "
                     "none linked)"),
      llvm::cl::init("")};
};

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
  PassPipelineRegistration<CudaPipelineOptions>(
      "moe-lower-cuda",
      "cuda back end: grid kernels (gpu.launch) outlined and lowered to PTX "
      "in gpu.binary ops",
      [](OpPassManager &pm, const CudaPipelineOptions &options) {
        CudaLoweringOptions lowering;
        if (!options.chips.empty())
          lowering.chips.assign(options.chips.begin(), options.chips.end());
        lowering.libdevice = options.libdevice;
        buildCudaLoweringPipeline(pm, lowering);
      });
  PassPipelineRegistration<>(
      "moe-lower-host",
      "Host back end: kernels to the LLVM dialect with packed entry points",
      buildHostLoweringPipeline);
}
