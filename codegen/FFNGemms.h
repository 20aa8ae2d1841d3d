//===- FFNGemms.h - FFNs at prefill as library GEMMs ------------*- C++ -*-===//
//
// At prefill a step has many rows per FFN weight, and the FFN is better done
// as library GEMMs than by the FFN kernels (which read each weight chunk
// once per group of up to 4 rows). The plan then holds both ways, by the
// step's token count T.
//
// Routed experts:
//   T < N:  kernel_expert_ffn(x, offsets, gate_up, down[, group]) -> y
//   T >= N: grouped_gemm(x, gate_up) -> gu [rows, (2)F] f32
//           kernel_expert_activation(gu) -> hidden [rows, F]
//           grouped_gemm(hidden, down) -> y
// The grouped GEMMs need the rows per expert on the host (a device->host
// copy of the offsets), so they are for prefill steps, never in a CUDA
// graph. N: moec --expert-gemm-tokens.
//
// Dense FFNs (the draft models'):
//   T < N:  kernel_ffn(x, up, down[, gate]) -> y
//   T >= N: gemm(x, gate) -> g [T, F] f32 (gated only)
//           gemm(x, up) -> u [T, F] f32
//           kernel_ffn_activation([g,] u) -> hidden [T, F]
//           gemm(hidden, down) -> y
// N: moec --ffn-gemm-tokens.
//
// This file builds the activation kernels and picks the N.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_CODEGEN_FFNGEMMS_H
#define MOEC_CODEGEN_FFNGEMMS_H

#include "dialects/moe/MoEOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe {

/// The token count from which `ffn` runs as grouped GEMMs: `requested`
/// when it is 0 (never) or positive, else (-1) the count that routes 16
/// rows to each expert on average, ceil(16 * experts / top_k).
int64_t expertGemmTokens(ExpertFFNOp ffn, int64_t requested);

/// The token count from which a dense FFN runs as GEMMs: `requested` when
/// it is 0 (never) or positive, else (-1) 16, where the FFN kernel would
/// read every weight four times.
int64_t ffnGemmTokens(int64_t requested);

/// Builds kernel_expert_activation(gu [rows, (2)F] f32, hidden [rows, F])
/// for `ffn` at the end of `module`, named `name`: hidden = act(gate) * up
/// (gate columns first) or act(gu), rounded to the FFN input's element
/// type. Grid form (passes/GridEmitter.h), one block per row, each thread
/// 8 contiguous columns at a time; for the GPU (`gpu`) or, one thread per
/// block, the host.
func::FuncOp buildExpertActivationKernel(ModuleOp module, ExpertFFNOp ffn,
                                         StringRef name, bool gpu,
                                         int64_t threads);

/// Builds kernel_ffn_activation(gate [T, F] f32, up [T, F] f32, hidden
/// [T, F]) for the dense `ffn` (without its gate: (up, hidden)), the same
/// way: hidden = act(gate) * up, or act(up).
func::FuncOp buildFFNActivationKernel(ModuleOp module, FFNOp ffn,
                                      StringRef name, bool gpu,
                                      int64_t threads);

} // namespace mlir::moe

#endif // MOEC_CODEGEN_FFNGEMMS_H
