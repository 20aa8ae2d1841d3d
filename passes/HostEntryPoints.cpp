//===- HostEntryPoints.cpp - The moe-host-entry-points pass ---------------===//
//
// Adds `moec_K(void **args)` beside each `_mlir_ciface_K` of the lowered
// host kernels (see codegen/HostObject.h for the calling convention).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEHOSTENTRYPOINTS
#include "passes/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

static constexpr llvm::StringLiteral kCInterfacePrefix = "_mlir_ciface_";

namespace {
struct MoEHostEntryPointsPass
    : public moe::impl::MoEHostEntryPointsBase<MoEHostEntryPointsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<LLVM::LLVMFuncOp> wrappers;
    for (auto func : module.getOps<LLVM::LLVMFuncOp>())
      if (func.getName().starts_with(kCInterfacePrefix) && !func.isExternal())
        wrappers.push_back(func);

    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToEnd(module.getBody());
    auto ptr = LLVM::LLVMPointerType::get(&getContext());
    for (LLVM::LLVMFuncOp wrapper : wrappers) {
      LLVM::LLVMFunctionType type = wrapper.getFunctionType();
      if (!llvm::all_of(type.getParams(),
                        [&](Type param) { return param == ptr; }) ||
          !isa<LLVM::LLVMVoidType>(type.getReturnType())) {
        wrapper.emitError("a kernel's C interface must take only memref "
                          "descriptor pointers and return nothing");
        return signalPassFailure();
      }
      std::string name =
          "moec_" +
          wrapper.getName().drop_front(kCInterfacePrefix.size()).str();
      Location loc = wrapper.getLoc();
      auto entry = LLVM::LLVMFuncOp::create(
          b, loc, name,
          LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(&getContext()),
                                      {ptr}));
      Block *body = entry.addEntryBlock(b);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(body);
      SmallVector<Value> args;
      for (unsigned i = 0, e = type.getNumParams(); i < e; ++i) {
        Value slot = LLVM::GEPOp::create(
            b, loc, ptr, ptr, body->getArgument(0),
            ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
        args.push_back(LLVM::LoadOp::create(b, loc, ptr, slot));
      }
      LLVM::CallOp::create(b, loc, wrapper, args);
      LLVM::ReturnOp::create(b, loc, ValueRange{});
    }
  }
};
} // namespace
