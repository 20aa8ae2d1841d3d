// RUN: moe-opt %s -moe-host-entry-points -split-input-file -verify-diagnostics | FileCheck %s

// Each C interface wrapper gets a packed entry point: argument i's memref
// descriptor pointer is loaded from args[i].
// CHECK-LABEL: llvm.func @_mlir_ciface_kernel_add
// CHECK-LABEL: llvm.func @moec_kernel_add(
// CHECK-SAME: %[[ARGS:.*]]: !llvm.ptr)
// CHECK: %[[P0:.*]] = llvm.getelementptr %[[ARGS]][0] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[A0:.*]] = llvm.load %[[P0]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[P1:.*]] = llvm.getelementptr %[[ARGS]][1] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[A1:.*]] = llvm.load %[[P1]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[P2:.*]] = llvm.getelementptr %[[ARGS]][2] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[A2:.*]] = llvm.load %[[P2]] : !llvm.ptr -> !llvm.ptr
// CHECK: llvm.call @_mlir_ciface_kernel_add(%[[A0]], %[[A1]], %[[A2]])
// CHECK: llvm.return
// Functions that are not C interface wrappers, and declarations, get none.
// CHECK-NOT: @moec_kernel_helper
// CHECK-NOT: @moec_extern
llvm.func @_mlir_ciface_kernel_add(%a: !llvm.ptr, %b: !llvm.ptr, %c: !llvm.ptr) {
  llvm.return
}
llvm.func @kernel_helper(%a: !llvm.ptr) {
  llvm.return
}
llvm.func @_mlir_ciface_extern(!llvm.ptr)

// -----

// expected-error @below {{a kernel's C interface must take only memref descriptor pointers and return nothing}}
llvm.func @_mlir_ciface_kernel_scalar(%a: !llvm.ptr, %n: i64) {
  llvm.return
}
