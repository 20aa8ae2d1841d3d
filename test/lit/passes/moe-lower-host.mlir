// RUN: moe-opt %s -convert-moe-to-linalg -moe-lower-host | FileCheck %s
// The host back end end to end on one kernel: results become trailing
// out-parameters written in place, temporaries are freed, everything is LLVM,
// and the packed entry point calls the C interface. Numerics are checked by
// running whole models against the reference (test/unit/HostExecutionTest).

// The kernel itself: inputs, then the two outputs (5 memref descriptors).
// CHECK-LABEL: llvm.func @kernel_add_rms_norm(
// CHECK-NOT: llvm.call @memrefCopy
// The row sums of the norm are a temporary, allocated and freed inside.
// CHECK: llvm.call @malloc
// CHECK: llvm.call @free
// CHECK: llvm.return
// CHECK-LABEL: llvm.func @_mlir_ciface_kernel_add_rms_norm(
// CHECK-SAME: %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// CHECK-LABEL: llvm.func @moec_kernel_add_rms_norm(
// CHECK: llvm.getelementptr %{{.*}}[4]
// CHECK: llvm.call @_mlir_ciface_kernel_add_rms_norm(
// Nothing of the moe, func, linalg or memref dialects is left.
// CHECK-NOT: moe.
// CHECK-NOT: linalg.
// CHECK-NOT: memref.
func.func @kernel_add_rms_norm(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>, %w: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) attributes {llvm.emit_c_interface} {
  %s = moe.add %x, %y : tensor<?x8xf32>
  %n = moe.rms_norm %s, %w eps = 1.0e-5 : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return %s, %n : tensor<?x8xf32>, tensor<?x8xf32>
}
