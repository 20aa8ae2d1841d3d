//===- GroupedExperts.h - The routed experts as grouped GEMMs ---*- C++ -*-===//
//
// At prefill a step routes many rows to each expert, and the expert FFN is
// better done as library GEMMs, one per run of rows of an expert, than by
// the graph-safe expert kernel (which reads each weight chunk once per run
// of up to 4 rows). The plan then holds both ways, by the step's token
// count T:
//
//   T < N:  kernel_expert_ffn(x, offsets, gate_up, down[, group]) -> y
//   T >= N: grouped_gemm(x, gate_up) -> gu [rows, (2)F] f32
//           kernel_expert_activation(gu) -> hidden [rows, F]
//           grouped_gemm(hidden, down) -> y
//
// The grouped GEMMs need the rows per expert on the host (a device->host
// copy of the offsets), so they are for prefill steps, never in a CUDA
// graph. This file builds the activation kernel and picks N.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_CODEGEN_GROUPEDEXPERTS_H
#define MOEC_CODEGEN_GROUPEDEXPERTS_H

#include "dialects/moe/MoEOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe {

/// The token count from which `ffn` runs as grouped GEMMs: `requested`
/// when it is 0 (never) or positive, else (-1) the count that routes 16
/// rows to each expert on average, ceil(16 * experts / top_k).
int64_t expertGemmTokens(ExpertFFNOp ffn, int64_t requested);

/// Builds kernel_expert_activation(gu [rows, (2)F] f32, hidden [rows, F])
/// for `ffn` at the end of `module`, named `name`: hidden = act(gate) * up
/// (gate columns first) or act(gu), rounded to the FFN input's element
/// type. Grid form (passes/GridEmitter.h), one block per row, each thread
/// 8 contiguous columns at a time; for the GPU (`gpu`) or, one thread per
/// block, the host.
func::FuncOp buildExpertActivationKernel(ModuleOp module, ExpertFFNOp ffn,
                                         StringRef name, bool gpu,
                                         int64_t threads);

} // namespace mlir::moe

#endif // MOEC_CODEGEN_GROUPEDEXPERTS_H
