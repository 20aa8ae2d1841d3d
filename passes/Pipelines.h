//===- Pipelines.h - The moec pass pipeline ---------------------*- C++ -*-===//
//
// The stages moec runs, in order. `moec --emit=STAGE` stops after STAGE;
// `moe-opt --moe-pipeline='stop-after=STAGE ...'` replays the same passes.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_PIPELINES_H
#define MOEC_PASSES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

#include <string>
#include <vector>

namespace mlir::moe {

/// Pipeline stages, in the order they run.
enum class Stage {
  /// Graph-level moe IR, verified and canonicalized.
  Moe,
  /// Partitioned into stages and ranks, memory and KV cache planned.
  Partitioned,
  /// Attention and experts decomposed into their steps.
  Decomposed,
  /// Memory-bound ops fused into kernels, outlined and shared by layers.
  Kernels,
};

/// How to partition and plan a model. Degrees of 1 and an empty cluster
/// leave the model whole and unplanned.
struct PartitionOptions {
  int64_t pipelineStages = 1;
  int64_t tensorParallel = 1;
  /// Groups the experts of a layer are spread over; each expert is cut
  /// tensorParallel / expertParallel ways.
  int64_t expertParallel = 1;
  int64_t headLayers = -1;
  /// Experts exchange tokens by all-to-all instead of an all-reduce (needs
  /// expertParallel == tensorParallel).
  bool expertAllToAll = false;
  /// PRESET:NODESxGPUS or a cluster file; empty: no memory/KV planning.
  std::string cluster;
  int64_t maxTokens = 8192;
  int64_t blockSize = 16;

  /// Ranks each expert is cut over.
  int64_t getExpertTensorParallel() const {
    return tensorParallel / expertParallel;
  }
};

/// Adds the partitioning passes the degrees call for (none for 1), then
/// (with a cluster) the planning passes.
void addPartitionPasses(OpPassManager &pm, const PartitionOptions &options);

/// Adds the passes that take imported moe IR to `stopAfter`.
void buildMoEPipeline(OpPassManager &pm, Stage stopAfter,
                      const PartitionOptions &options = {});

/// Adds the host back end's passes: kernels as linalg on tensors (or loops
/// on memrefs) -> bufferized in destination-passing style (results become
/// trailing out-parameters, temporaries freed) -> loops -> the LLVM dialect
/// with a packed entry point per kernel (moe-host-entry-points). Kernels
/// must be public and marked `llvm.emit_c_interface`.
void buildHostLoweringPipeline(OpPassManager &pm);

/// Options of the cuda back end's lowering.
struct CudaLoweringOptions {
  /// Chips to generate PTX for ("sm_90a", "sm_80").
  std::vector<std::string> chips = {"sm_90a"};
  /// libdevice.10.bc, linked for the math functions; empty: none.
  std::string libdevice;
};

/// The cuda back end after kernel outlining: gpu.modules (the grid kernels'
/// launches, outlined) lowered to NVVM and serialised to PTX, one object per
/// chip in each gpu.binary (nvvm-attach-target, convert-gpu-to-nvvm,
/// gpu-module-to-binary format=isa).
void addCudaLoweringPasses(OpPassManager &pm,
                           const CudaLoweringOptions &options);

/// The whole cuda lowering of grid kernels (gpu.launch inside kernel
/// functions): outlining, then addCudaLoweringPasses. Registered as
/// `moe-lower-cuda`.
void buildCudaLoweringPipeline(OpPassManager &pm,
                               const CudaLoweringOptions &options);

/// Registers `moe-pipeline` (options: stop-after, the partition degrees and
/// the cluster) and `moe-lower-host` with the pass registry.
void registerMoEPipelines();

} // namespace mlir::moe

#endif // MOEC_PASSES_PIPELINES_H
