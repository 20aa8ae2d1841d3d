//===- moe-opt.cpp - Pass driver for moe IR -------------------------------===//
//
// mlir-opt with the moe dialect, the moe passes and the upstream dialects and
// passes the moe pipelines use. Every pass `moec` runs can be replayed here.
//
//===----------------------------------------------------------------------===//

#include "codegen/CudaObject.h"
#include "codegen/HostObject.h"
#include "dialects/moe/MoEDialect.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<mlir::moe::MoEDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect,
                  mlir::linalg::LinalgDialect, mlir::math::MathDialect,
                  mlir::scf::SCFDialect,
                  mlir::memref::MemRefDialect, mlir::vector::VectorDialect,
                  mlir::gpu::GPUDialect, mlir::NVVM::NVVMDialect,
                  mlir::LLVM::LLVMDialect>();
  // Bufferization models and LLVM conversion interfaces of the host back end.
  mlir::moe::registerHostCodegenDialects(registry);
  // The NVVM target and LLVM IR translations of the cuda back end.
  mlir::moe::registerCudaCodegenDialects(registry);
  mlir::registerTransformsPasses();
  mlir::moe::registerMoEPasses();
  mlir::moe::registerMoEPipelines();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "moe-opt: the moe pass driver\n", registry));
}
