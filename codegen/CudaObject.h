//===- CudaObject.h - The cuda target's back end ----------------*- C++ -*-===//
//
// The cuda target plans the stages like the host target, with the kernels
// in their GPU grid form (KernelForm::Gpu: moe-build-row-kernels and
// moe-build-expert-kernels with target=gpu, and the grid KV-cache kernels).
// Each kernel function holds one or more gpu.launch ops; they are outlined
// (one gpu.module per launch), lowered through upstream MLIR
// (convert-gpu-to-nvvm, gpu-module-to-binary) to PTX for each requested
// chip, and, when ptxas is found, assembled into cubins whose resource
// usage (registers, shared memory, stack, spills) is recorded.
//
// Each kernel step of the plan gets its launches: the gpu.func to call, the
// grid (sizes in the plan's symbols: "T", "2T", ...) and block, and which of
// the step's buffers each kernel parameter is. A memref parameter is passed
// as MLIR's descriptor, flattened: allocated pointer, aligned pointer,
// offset, sizes[rank], strides[rank] (64-bit integers).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_CODEGEN_CUDAOBJECT_H
#define MOEC_CODEGEN_CUDAOBJECT_H

#include "codegen/ExecutionPlan.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "llvm/Support/JSON.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::moe {

/// Registers what the cuda back end needs beyond the host's: the GPU and
/// NVVM dialects, the NVVM target and the LLVM IR translations.
void registerCudaCodegenDialects(DialectRegistry &registry);

/// Options of the cuda back end.
struct CudaOptions {
  /// Chips to compile for ("sm_90a", "sm_80"); the first is the one the
  /// kernels are assembled for and checked on.
  std::vector<std::string> chips = {"sm_90a"};
  /// libdevice.10.bc (the math functions); empty: none linked.
  std::string libdevice;
  /// ptxas to assemble each kernel with; empty: do not assemble.
  std::string ptxas;
  /// Where a kernel ptxas rejects is kept for the reproduction command.
  std::string failureDir;
  /// The plan's options (KV-cache blocks, the shared memory of row
  /// buffers, limited to 48 KiB of static shared memory, the grouped
  /// experts).
  PlanOptions plan;
};

/// The resources ptxas reports for one kernel.
struct PtxasReport {
  int64_t registers = 0, sharedBytes = 0, stackBytes = 0, spillStores = 0,
          spillLoads = 0;
};

/// One outlined kernel (gpu.module) and its code per chip.
struct CudaKernel {
  /// The gpu.module's and the gpu.func's names.
  std::string module, function;
  /// Chip -> PTX text; chip -> cubin bytes (when assembled).
  std::vector<std::pair<std::string, std::string>> ptx, cubin;
  std::optional<PtxasReport> report;
};

/// What the cuda target adds to an artifact.
struct CudaCompilation {
  std::vector<llvm::json::Object> executions;
  std::vector<CudaKernel> kernels;
  std::vector<std::string> chips;
};

/// Plans and compiles `module` for the cuda target. Fails with an error
/// naming the kernel (and, for ptxas, a command that reproduces it).
FailureOr<CudaCompilation> compileForCuda(ModuleOp module,
                                          const CudaOptions &options);

/// The libdevice and ptxas of the CUDA toolkit in $CUDA_HOME,
/// /usr/local/cuda or on the PATH; empty strings for what is not found.
std::string findLibdevice();
std::string findPtxas();

/// Parses `ptxas -v` output for `function`.
std::optional<PtxasReport> parsePtxasReport(StringRef output,
                                            StringRef function);

} // namespace mlir::moe

#endif // MOEC_CODEGEN_CUDAOBJECT_H
