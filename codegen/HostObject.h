//===- HostObject.h - Host kernels to a shared object -----------*- C++ -*-===//
//
// The host target's back end. Kernel functions (linalg on tensors, or loops
// on memrefs) are bufferized in destination-passing style (results become
// trailing out-parameters the caller allocates), lowered to loops and to the
// LLVM dialect, given one packed entry point each, compiled for the CPU and
// linked into an ELF shared object that moe-run loads with dlopen.
//
// The entry point of kernel K is `void moec_K(void **args)`: args[i] points
// to the memref descriptor of argument i ({allocated, aligned, offset,
// sizes[rank], strides[rank]}, MLIR's C interface), inputs first, then
// outputs.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_CODEGEN_HOSTOBJECT_H
#define MOEC_CODEGEN_HOSTOBJECT_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"

#include <string>

namespace mlir::moe {

/// Registers the dialects, bufferization models and LLVM conversion
/// interfaces the host lowering needs.
void registerHostCodegenDialects(DialectRegistry &registry);

/// Lowers `kernels` (a module holding only kernel functions, modified in
/// place) with the moe-lower-host pipeline and returns the bytes of the shared object. Fails with an error
/// on the module when a step fails or no linker (ld.lld) is found.
FailureOr<std::string> compileHostSharedObject(ModuleOp kernels);

} // namespace mlir::moe

#endif // MOEC_CODEGEN_HOSTOBJECT_H
