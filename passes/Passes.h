//===- Passes.h - moe passes ------------------------------------*- C++ -*-===//

#ifndef MOEC_PASSES_PASSES_H
#define MOEC_PASSES_PASSES_H

#include "dialects/moe/MoEDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace mlir::moe {

/// Patterns that rewrite moe.attention into linear/rope/kv_cache_write/attend.
void populateDecomposeAttentionPatterns(RewritePatternSet &patterns);
/// Patterns that rewrite moe.experts into dispatch/expert_ffn/combine.
void populateDecomposeExpertsPatterns(RewritePatternSet &patterns);
/// Patterns that fold a moe.rope into the attention or KV-cache write that
/// alone consumes it (moe-fuse).
void populateFoldRopePatterns(RewritePatternSet &patterns);
/// Patterns that lower moe elementwise and norm ops to linalg.generic.
void populateMoEToLinalgPatterns(RewritePatternSet &patterns);
/// Patterns that lower the router, dispatch and grouped expert FFN to
/// linalg and scf on tensors (the host reference).
void populateMoEExpertsToLinalgPatterns(RewritePatternSet &patterns);

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::moe

#endif // MOEC_PASSES_PASSES_H
