//===- KVCacheKernels.h - Kernels over the paged KV cache -------*- C++ -*-===//
//
// moe.kv_cache_write and moe.attend index the paged cache, whose blocks and
// block tables exist only at run time. The code generator gives each its own
// kernel function on memrefs, in destination-passing style, that takes the
// cache of one layer and the block tables as arguments (so one kernel serves
// every layer):
//
//   kernel_kv_cache_write(keys [T, C], values [T, C], positions [T] i32,
//                         slot_mapping [T] i32, k_cache [S, C],
//                         v_cache [S, C])
//     row t of keys/values goes to slot slot_mapping[t] (block * block_size +
//     offset); a negative slot skips the token. With the op's `rope`, each
//     key head is rotated at positions[t] first.
//   kernel_attend(queries [T, H*D], positions [T] i32, token_seq [T] i32,
//                 block_tables [N, M] i32, k_cache [S, C], v_cache [S, C],
//                 out [T, H*D])
//     token t of sequence token_seq[t] attends to the cached positions
//     0..positions[t] of that sequence; position j lives in slot
//     block_tables[seq][j / block_size] * block_size + j % block_size.
//     With the op's `rope`, each query head is rotated at positions[t] as it
//     is loaded.
//
// C = kv_heads * head_dim. The bodies are plain loops (scf + memref),
// accumulating in f32: the host reference.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_CODEGEN_KVCACHEKERNELS_H
#define MOEC_CODEGEN_KVCACHEKERNELS_H

#include "dialects/moe/MoEOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::moe {

/// Builds the kernel of `op` at the end of `module`, named `name`.
func::FuncOp buildKVCacheWriteKernel(ModuleOp module, KVCacheWriteOp op,
                                     StringRef name);
/// Builds the kernel of `op` at the end of `module`, named `name`, for
/// blocks of `blockSize` tokens.
func::FuncOp buildAttendKernel(ModuleOp module, AttendOp op, StringRef name,
                               int64_t blockSize);

/// The grid forms of the same kernels (passes/GridEmitter.h), for the GPU
/// (`gpu`) or, with one thread per block, for the host:
///   kv_cache_write: one block per token, the threads striding over C (8
///     contiguous columns at a time; keys one column at a time when they
///     are rotated, each thread computing its own angle).
///   attend (codegen/AttentionKernel.cpp): split-K paged attention, each
///     block serving a tile of the query heads of one KV head from one read
///     of its K/V, then a log-sum-exp merge of the splits.
func::FuncOp buildGridKVCacheWriteKernel(ModuleOp module, KVCacheWriteOp op,
                                         StringRef name, bool gpu,
                                         int64_t threads);
func::FuncOp buildGridAttendKernel(ModuleOp module, AttendOp op,
                                   StringRef name, int64_t blockSize, bool gpu,
                                   int64_t threads);

/// Splits of each sequence's positions in the grid attend kernel.
constexpr int64_t kAttendSplits = 4;

/// Whether `op` can run as kernel_flash_attend: a head dimension that is a
/// multiple of 16 and at most 256, bf16 queries and cache; with
/// `roundF32` (the host grid form, when asked for the flash kernel) f32 ones
/// too, rounded to bf16 as they are loaded, so that the host computes what
/// the GPU computes on bf16 data. (An f32 plan otherwise keeps the split-K
/// kernel, as the f32 cuda plan it mirrors does.)
bool flashAttentionApplies(AttendOp op, bool roundF32);

/// The tokens of one sequence in a step from which attention runs as
/// kernel_flash_attend (where it applies): `requested` when it is 0 (never)
/// or positive, else (-1) 16, a warp's rows of one head. Decode batches,
/// one token per sequence, keep the split-K kernel however large: it
/// spreads each sequence over several blocks, where the flash kernel would
/// give a block 64 rows and leave most of the GPU idle.
int64_t flashAttentionTokens(int64_t requested);

/// Builds kernel_flash_attend (codegen/FlashAttention.cpp), the grid form of
/// attend for steps of many tokens, with kernel_attend's arguments (no
/// scratch): ceil(T x G / 64) x kv_heads blocks of 4 warps, each warp 16
/// (token, query head) rows, S = Q K^T and O += P V on the tensor cores
/// over chunks of 32 cached positions with an online softmax. For the GPU
/// (`gpu`) or, one thread per block emulating the warps' tiles in f32, the
/// host.
func::FuncOp buildFlashAttendKernel(ModuleOp module, AttendOp op,
                                    StringRef name, int64_t blockSize,
                                    bool gpu);

} // namespace mlir::moe

#endif // MOEC_CODEGEN_KVCACHEKERNELS_H
