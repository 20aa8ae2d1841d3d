//===- Pipelines.h - The moec pass pipeline ---------------------*- C++ -*-===//
//
// The stages moec runs, in order. `moec --emit=STAGE` stops after STAGE;
// `moe-opt --moe-pipeline=stop-after=STAGE` replays the same passes.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_PIPELINES_H
#define MOEC_PASSES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

namespace mlir::moe {

/// Pipeline stages, in the order they run.
enum class Stage {
  /// Graph-level moe IR, verified and canonicalized.
  Moe,
  /// Attention and experts decomposed into their steps.
  Decomposed,
};

/// Adds the passes that take imported moe IR to `stopAfter`.
void buildMoEPipeline(OpPassManager &pm, Stage stopAfter);

/// Registers `moe-pipeline` (option `stop-after`) with the pass registry.
void registerMoEPipelines();

} // namespace mlir::moe

#endif // MOEC_PASSES_PIPELINES_H
