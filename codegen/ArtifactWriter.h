//===- ArtifactWriter.h - The compiled artifact -----------------*- C++ -*-===//
//
// Writes the artifact moe-run loads: one JSON document, version 6, keys
// sorted (identical input, identical bytes), with an FNV-1a 64 checksum of
// its own bytes. The format is documented in codegen/README.md; the runtime
// reads it with runtime/Artifact.h.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_CODEGEN_ARTIFACTWRITER_H
#define MOEC_CODEGEN_ARTIFACTWRITER_H

#include "codegen/CudaObject.h"
#include "codegen/ExecutionPlan.h"
#include "models/ModelConfig.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::moe {

/// The artifact format version this compiler writes.
inline constexpr int64_t kArtifactVersion = 6;

/// FNV-1a 64 of `bytes` (the artifact checksum).
uint64_t fnv1a64(llvm::StringRef bytes);

/// Serialises `module` (partitioned or not, after the pipeline) into the
/// artifact text for `target` ("host" or "cuda"). With `host`, the artifact
/// also carries its execution plan and shared object; with `cuda`, its
/// execution plan (with launches) and the kernels' PTX and cubins. Fails with an error on
/// the module if it holds no forward function.
FailureOr<std::string> writeArtifact(ModuleOp module,
                                     const ::moec::ModelConfig &config,
                                     llvm::StringRef target,
                                     const HostCompilation *host = nullptr,
                                     const CudaCompilation *cuda = nullptr);

} // namespace mlir::moe

#endif // MOEC_CODEGEN_ARTIFACTWRITER_H
