//===- MoEFusionOps.cpp - Fused kernels of moe ----------------------------===//

#include "dialects/moe/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

LogicalResult FusedOp::verify() {
  Block &body = getBody().front();
  if (body.getArgumentTypes() != getInputs().getTypes())
    return emitOpError("body arguments must have the types of the inputs");
  auto yield = cast<YieldOp>(body.getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError("yielded values must have the types of the results");
  return success();
}

int64_t FusedOp::getFlops(const CostContext &ctx) {
  int64_t flops = 0;
  getBody().walk([&](CostOpInterface op) { flops += op.getFlops(ctx); });
  return flops;
}

/// Bytes the kernel reads and writes: what its ops read and write, less the
/// intermediate values that stay on chip (a result counts as written only if
/// the kernel yields it, and reading it inside the kernel is free). A result
/// of a multi-result op is charged an equal share of that op's writes.
static std::pair<int64_t, int64_t> kernelBytes(FusedOp fused,
                                               const CostContext &ctx) {
  int64_t read = 0, written = 0;
  for (Operation &op : fused.getBody().front().without_terminator()) {
    auto costly = dyn_cast<CostOpInterface>(op);
    if (!costly)
      continue;
    read += costly.getBytesRead(ctx);
    if (op.getNumResults() == 0)
      continue;
    int64_t share = costly.getBytesWritten(ctx) / op.getNumResults();
    for (Value result : op.getResults()) {
      bool yielded = false, usedInside = false;
      for (Operation *user : result.getUsers())
        (isa<YieldOp>(user) ? yielded : usedInside) = true;
      if (yielded)
        written += share;
      if (usedInside)
        read -= share;
    }
  }
  return {read, written};
}

int64_t FusedOp::getBytesRead(const CostContext &ctx) {
  return kernelBytes(*this, ctx).first;
}

int64_t FusedOp::getBytesWritten(const CostContext &ctx) {
  return kernelBytes(*this, ctx).second;
}
