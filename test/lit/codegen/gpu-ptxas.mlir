// The PTX of the fused RMSNorm and RoPE kernels assembles for sm_90a: ptxas
// runs inside gpu-module-to-binary (format=bin) and fails the pipeline if it
// rejects the code. libdevice supplies the math functions (rsqrt, exp, sin,
// cos). Needs the CUDA toolkit; skipped (UNSUPPORTED) without it.
// REQUIRES: ptxas, libdevice
// RUN: moe-opt %s -convert-moe-to-linalg \
// RUN: | mlir-opt -one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:     -convert-linalg-to-parallel-loops -gpu-map-parallel-loops \
// RUN:     -convert-parallel-loops-to-gpu -lower-affine -gpu-kernel-outlining \
// RUN:     -nvvm-attach-target="chip=sm_90a features=+ptx80 l=%libdevice" -convert-scf-to-cf \
// RUN:     -expand-strided-metadata -lower-affine -convert-gpu-to-nvvm \
// RUN:     -reconcile-unrealized-casts -gpu-module-to-binary="format=bin" \
// RUN: | FileCheck %s

// CHECK-COUNT-4: gpu.binary @kernel_add_rms_norm_kernel{{.*}}ISAToBinaryTimeInMs
// CHECK: gpu.binary @kernel_rope_kernel{{.*}}ISAToBinaryTimeInMs

func.func @kernel_add_rms_norm(%a: tensor<?x4096xbf16>, %b: tensor<?x4096xbf16>, %w: tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
  %s = moe.add %a, %b : tensor<?x4096xbf16>
  %n = moe.rms_norm %s, %w eps = 1.000000e-05 : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> tensor<?x4096xbf16>
  return %s, %n : tensor<?x4096xbf16>, tensor<?x4096xbf16>
}

func.func @kernel_rope(%x: tensor<?x4096xbf16>, %p: tensor<?xi32>) -> tensor<?x4096xbf16> {
  %y = moe.rope %x, %p head_dim 128 <theta = 10000.0, style = rotate_half> : (tensor<?x4096xbf16>, tensor<?xi32>) -> tensor<?x4096xbf16>
  return %y : tensor<?x4096xbf16>
}
