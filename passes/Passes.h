//===- Passes.h - moe passes ------------------------------------*- C++ -*-===//

#ifndef MOEC_PASSES_PASSES_H
#define MOEC_PASSES_PASSES_H

#include "dialects/moe/MoEDialect.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace mlir::moe {

/// Patterns that rewrite moe.attention into linear/rope/kv_cache_write/attend.
void populateDecomposeAttentionPatterns(RewritePatternSet &patterns);
/// Patterns that rewrite moe.experts into dispatch/expert_ffn/combine.
void populateDecomposeExpertsPatterns(RewritePatternSet &patterns);

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::moe

#endif // MOEC_PASSES_PASSES_H
