//===- MoEInterfaces.h - Cost interface of moe ops --------------*- C++ -*-===//

#ifndef MOEC_DIALECTS_MOE_MOEINTERFACES_H
#define MOEC_DIALECTS_MOE_MOEINTERFACES_H

#include "dialects/moe/MoEDialect.h"
#include "mlir/IR/OpDefinition.h"

namespace mlir::moe {

/// The workload a cost query is about: `numTokens` tokens processed in one
/// step, each attending to `contextLength` cached positions of its sequence.
struct CostContext {
  int64_t numTokens = 1;
  int64_t contextLength = 0;
};

/// Bytes of one element of `type` (at least one byte for sub-byte types).
int64_t getElementBytes(Type type);

/// Bytes of a statically shaped tensor, or of `rows` rows of a tensor whose
/// leading dimension is dynamic.
int64_t getTensorBytes(Type type, int64_t rows = 1);

/// Expected number of distinct experts that `numTokens` tokens routed to
/// `topK` of `numExperts` experts each touch, under uniform routing.
double expectedExpertsTouched(int64_t numExperts, int64_t topK,
                              int64_t numTokens);

} // namespace mlir::moe

#include "dialects/moe/MoEInterfaces.h.inc"

namespace mlir::moe {

/// Calls `fn` on every op under `root` that has a cost, once: a fused kernel
/// counts as a whole (its body is not visited again).
void walkCostOps(Operation *root, llvm::function_ref<void(CostOpInterface)> fn);

} // namespace mlir::moe

#endif // MOEC_DIALECTS_MOE_MOEINTERFACES_H
