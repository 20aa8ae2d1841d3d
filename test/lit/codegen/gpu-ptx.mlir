// The GPU lowering of a fused kernel (residual add + RMSNorm) through
// upstream MLIR: moe -> linalg (convert-moe-to-linalg) -> buffers -> parallel
// loops mapped to GPU blocks -> gpu.module -> NVVM -> PTX for sm_90a (LLVM's
// NVPTX backend, no CUDA needed). Performance work (one launch per fused
// kernel, threads per block, vectorised loads, warp reductions) is still to
// come: today each linalg op becomes its own launch of one-thread blocks.
// RUN: moe-opt %s -convert-moe-to-linalg \
// RUN: | mlir-opt -one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:     -convert-linalg-to-parallel-loops -gpu-map-parallel-loops \
// RUN:     -convert-parallel-loops-to-gpu -lower-affine -gpu-kernel-outlining \
// RUN:     -nvvm-attach-target="chip=sm_90a features=+ptx80" -convert-scf-to-cf \
// RUN:     -expand-strided-metadata -lower-affine -convert-gpu-to-nvvm \
// RUN:     -reconcile-unrealized-casts -gpu-module-to-binary="format=isa" -o %t
// RUN: FileCheck %s < %t
// RUN: FileCheck %s --check-prefix=MATH < %t

// Four launches: the add, the zero fill, the row reduction, the scaling.
// CHECK: func.func @kernel_add_rms_norm
// CHECK-COUNT-4: gpu.launch_func
// CHECK-COUNT-4: gpu.binary @kernel_add_rms_norm_kernel{{.*}}.target sm_90a{{.*}}.visible .entry kernel_add_rms_norm_kernel{{.*}}.maxntid 1, 1, 1
// The arithmetic: bf16 widened to f32, reduced, rsqrt from libdevice,
// rounded back to bf16.
// MATH: cvt.f32.bf16
// MATH: __nv_rsqrtf
// MATH: cvt.rn.bf16.f32

func.func @kernel_add_rms_norm(%a: tensor<?x4096xbf16>, %b: tensor<?x4096xbf16>, %w: tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
  %s = moe.add %a, %b : tensor<?x4096xbf16>
  %n = moe.rms_norm %s, %w eps = 1.000000e-05 : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> tensor<?x4096xbf16>
  return %s, %n : tensor<?x4096xbf16>, tensor<?x4096xbf16>
}
