//===- ExecutionPlan.h - The host execution plan ----------------*- C++ -*-===//
//
// Turns the forward function of a one-rank model, after moe-fuse and
// moe-outline-kernels, into what the runtime executes: a list of buffers
// (inputs, weights, activations, the KV cache of each layer) and a list of
// steps (kernel calls with their buffer arguments, GEMM library calls), and
// compiles the kernels the steps call into a host shared object.
//
// Buffer shapes are symbolic in the sizes only known at run time: "T"
// tokens in the step, "R" logit rows, "S" KV-cache slots, "N" sequences
// and "M" blocks per sequence; "2T" is twice T. The format is documented in
// codegen/README.md.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_CODEGEN_EXECUTIONPLAN_H
#define MOEC_CODEGEN_EXECUTIONPLAN_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/JSON.h"

#include <string>
#include <vector>

namespace mlir::moe {

/// What the host target adds to an artifact.
struct HostCompilation {
  /// `$.stages[s].execution` of each stage: buffers, steps, inputs and
  /// outputs.
  std::vector<llvm::json::Object> executions;
  /// The ELF shared object with the kernels' packed entry points.
  std::string sharedObject;
};

/// How the kernels are written.
enum class KernelForm {
  /// Linalg lowered to loops: the straightforward host code.
  Loops,
  /// The GPU kernels' grid code (passes/GridEmitter.h) with one thread per
  /// block, on the host: how the GPU code's logic is checked without a GPU.
  HostGrid,
  /// The grid code as gpu.launch ops, for the cuda target.
  Gpu,
};

/// Threads per block of the grid kernels, and of attention.
constexpr int64_t kGridThreads = 256;
constexpr int64_t kAttendThreads = 128;

/// The execution plan of every stage and the code of the kernels it calls.
struct PlannedStages {
  /// `$.stages[s].execution` of each stage: buffers, steps, inputs and
  /// outputs.
  std::vector<llvm::json::Object> executions;
  /// One function per kernel on memrefs, in destination-passing style
  /// (inputs, outputs, scratch buffers); for KernelForm::Loops still on
  /// tensors (bufferized by the host back end).
  OwningOpRef<ModuleOp> code;
};

/// How the steps are planned.
struct PlanOptions {
  /// Tokens per KV-cache block.
  int64_t blockSize = 16;
  /// Grid kernels keep up to this many bytes of row buffers in a block's
  /// shared memory (beyond: global scratch buffers).
  int64_t sharedMemoryLimit = 49152;
  /// Steps of at least this many tokens run the routed experts as grouped
  /// library GEMMs (prefill: host-side sizes, no CUDA graph); smaller ones
  /// the graph-safe expert FFN kernel. 0: always the kernel; -1: from 16
  /// routed rows per expert on average, ceil(16 * experts / top_k) tokens.
  int64_t expertGemmTokens = -1;
  /// The same for dense FFNs (plain GEMMs around an activation kernel):
  /// 0: always the FFN kernel; -1: from 16 tokens.
  int64_t ffnGemmTokens = -1;
  /// Grid plans (GPU, host grid) run attention as the tensor-core flash
  /// kernel in steps where some sequence has at least this many tokens (a
  /// prefill or a chunk of one), where it applies
  /// (codegen/KVCacheKernels.h), and as the split-K kernel otherwise
  /// (decode batches of any size): 0: never; -1: from 16.
  int64_t flashAttentionTokens = -1;
};

/// Plans `module` (after moe-outline-kernels; partitioned or not). Ops of
/// the stage functions left outside a kernel (embedding, router, expert
/// FFN) get a kernel each; the KV-cache ops get the kernels of
/// codegen/KVCacheKernels.h; the routed experts also get their grouped
/// GEMM steps, and dense FFNs their GEMM steps (codegen/FFNGemms.h);
/// collectives and pipeline
/// transfers become steps the runtime's communicator carries out. Fails
/// with an error on the module naming what is not supported.
FailureOr<PlannedStages> planStages(ModuleOp module, KernelForm form,
                                    const PlanOptions &options);

/// Plans and compiles `module` for the host: one shared object serves
/// every stage. With `gridKernels`, the kernels are the GPU kernels' code
/// run with one thread per block (KernelForm::HostGrid), so that the
/// runtime executes and checks that logic on the host.
FailureOr<HostCompilation> compileForHost(ModuleOp module, bool gridKernels,
                                          const PlanOptions &options);

} // namespace mlir::moe

#endif // MOEC_CODEGEN_EXECUTIONPLAN_H
