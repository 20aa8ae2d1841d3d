// moe-lower-cuda: the cuda back end after the grid kernels are built
// (moe-build-row-kernels / moe-build-expert-kernels with target=gpu, or
// moec's KV-cache kernels): each gpu.launch outlined into a gpu.module,
// lowered to NVVM and serialised in-process to PTX for every requested
// chip. moec --target=cuda runs the same passes, then ptxas on each kernel
// (moec/cuda-artifact.test). No math functions here, so no libdevice.
// RUN: moe-opt %s -moe-build-row-kernels='target=gpu' -moe-lower-cuda='chip=sm_90a,sm_80' | FileCheck %s
// RUN: moe-opt %s -moe-build-row-kernels='target=gpu' -moe-lower-cuda | FileCheck %s --check-prefix=DEFAULT

// The host side keeps the launch: grid = the rows of the output, 256
// threads, the kernel's arguments as parameters.
// CHECK-LABEL: func.func private @kernel_add(
// CHECK: %[[ROWS:.*]] = memref.dim %arg2, %c0
// CHECK: gpu.launch_func @kernel_add_kernel::@kernel_add_kernel blocks in (%[[ROWS]], %c1{{.*}}, %c1{{.*}}) threads in (%c256{{.*}}, %c1{{.*}}, %c1{{.*}}) args(%arg0 : memref<?x64xbf16>, %arg1 : memref<?x64xbf16>, %arg2 : memref<?x64xbf16>)
// One object per chip; each memref is passed as its flattened descriptor:
// 3 memrefs x (2 pointers + offset + 2 sizes + 2 strides) = 21 parameters.
// CHECK: gpu.binary @kernel_add_kernel [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// CHECK-SAME: .target sm_90a
// CHECK-SAME: .visible .entry kernel_add_kernel(
// CHECK-SAME: kernel_add_kernel_param_20
// CHECK-NOT: kernel_add_kernel_param_21
// CHECK-SAME: #gpu.object<#nvvm.target<O = 3, chip = "sm_80", features = "+ptx80">
// CHECK-SAME: .target sm_80
// DEFAULT: gpu.binary @kernel_add_kernel [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// DEFAULT-NOT: sm_80
func.func private @kernel_add(%a: tensor<?x64xbf16>, %b: tensor<?x64xbf16>) -> tensor<?x64xbf16> attributes {moe.kernel} {
  %s = moe.add %a, %b : tensor<?x64xbf16>
  return %s : tensor<?x64xbf16>
}
