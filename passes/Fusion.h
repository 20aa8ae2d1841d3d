//===- Fusion.h - Building moe.fused kernels --------------------*- C++ -*-===//
//
// The one place that turns a list of ops into a moe.fused op; the moe-fuse
// pass and the host code generator (which gives every op left outside a
// kernel its own) both use it.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_PASSES_FUSION_H
#define MOEC_PASSES_FUSION_H

#include "dialects/moe/MoEOps.h"

namespace mlir::moe {

/// Replaces `ops` (of one block, in program order, each reading only values
/// defined before the first) by one moe.fused op placed where the first op
/// was. Its inputs are the values the ops read from outside, its results the
/// values used outside them.
FusedOp fuseOps(ArrayRef<Operation *> ops);

} // namespace mlir::moe

#endif // MOEC_PASSES_FUSION_H
