//===- OutlineKernels.cpp - The moe-outline-kernels pass ------------------===//
//
// Turns every moe.fused op into a call of a kernel function, one function per
// distinct kernel: identical layers share their kernels, so their number does
// not grow with the model's depth.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEOUTLINEKERNELS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

/// Marks the functions this pass makes.
static constexpr llvm::StringLiteral kKernelAttr = "moe.kernel";

/// "kernel_combine_add_rms_norm": the kernel's ops, in order.
static std::string kernelName(func::FuncOp kernel) {
  std::string name = "kernel";
  for (Operation &op : kernel.getBody().front().without_terminator())
    name += "_" + op.getName().stripDialect().str();
  return name;
}

namespace {
struct MoEOutlineKernelsPass
    : public moe::impl::MoEOutlineKernelsBase<MoEOutlineKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<FusedOp> fusedOps;
    module.walk([&](FusedOp op) { fusedOps.push_back(op); });

    OpBuilder b(&getContext());
    SymbolTable symbols(module);
    llvm::StringMap<func::FuncOp> kernels; // body text -> kernel
    for (FusedOp fused : fusedOps) {
      // A candidate kernel with the fused body; its text identifies it.
      b.setInsertionPointToEnd(module.getBody());
      auto type = b.getFunctionType(fused.getInputs().getTypes(),
                                    fused.getResultTypes());
      auto kernel =
          func::FuncOp::create(b, fused.getLoc(), "kernel", type);
      kernel.setPrivate();
      kernel->setAttr(kKernelAttr, b.getUnitAttr());
      kernel.getBody().takeBody(fused.getBody());
      Operation *yield = kernel.getBody().front().getTerminator();
      b.setInsertionPoint(yield);
      func::ReturnOp::create(b, yield->getLoc(), yield->getOperands());
      yield->erase();

      std::string key;
      llvm::raw_string_ostream os(key);
      kernel.print(os, OpPrintingFlags().useLocalScope());
      auto [it, inserted] = kernels.try_emplace(key, kernel);
      if (inserted) {
        // A readable name, made unique by the symbol table.
        kernel.setName(kernelName(it->second));
        symbols.insert(kernel);
      } else {
        kernel.erase();
      }
      b.setInsertionPoint(fused);
      auto call = func::CallOp::create(b, fused.getLoc(), it->second,
                                       fused.getInputs());
      fused.replaceAllUsesWith(call.getResults());
      fused.erase();
    }
  }
};
} // namespace
