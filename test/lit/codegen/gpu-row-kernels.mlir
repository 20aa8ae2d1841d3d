// The GPU row kernels (moe-build-row-kernels target=gpu: one block per token
// row, 256 threads striding over the features, block-wide reductions by
// warp shuffles and shared memory) lowered through upstream MLIR to PTX for
// sm_90a and assembled by ptxas: every kernel assembles, with no stack
// frame and no spills (ptxas -v). Their logic runs on the host with one
// thread (moec --grid-kernels) and matches the reference model
// (test/unit/HostExecutionTest, *_grid). Needs the CUDA toolkit.
// REQUIRES: ptxas, libdevice
// RUN: moe-opt %s -moe-build-row-kernels='target=gpu' \
// RUN: | mlir-opt -gpu-kernel-outlining \
// RUN:     -nvvm-attach-target="chip=sm_90a features=+ptx80 l=%libdevice" \
// RUN:     -convert-scf-to-cf -expand-strided-metadata -lower-affine \
// RUN:     -convert-gpu-to-nvvm -reconcile-unrealized-casts \
// RUN:     -gpu-module-to-binary="format=isa" -o %t
// RUN: FileCheck %s < %t
// RUN: %python %S/Inputs/ptxas_report.py %t ptxas sm_90a | FileCheck %s --check-prefix=PTXAS

// CHECK: gpu.binary @kernel_add_rms_norm_kernel{{.*}}.maxntid 256, 1, 1
// 16-byte loads and stores (8 bf16 columns per thread at a time).
// CHECK-SAME: ld.global.v4.b32
// CHECK-SAME: st.global.v4.b32
// The sum of squares: a butterfly over the warp, then across warps.
// CHECK-SAME: shfl.sync.bfly
// CHECK-SAME: bar.sync
// bf16 in and out, f32 inside.
// CHECK-SAME: cvt.f32.bf16
// CHECK-SAME: cvt.rn.bf16x2.f32
// CHECK: gpu.binary @kernel_combine_add_rms_norm_gather_tokens_kernel
// CHECK: gpu.binary @kernel_rope_kernel
// CHECK: gpu.binary @kernel_embed_kernel
// CHECK: gpu.binary @kernel_add_layer_norm_kernel

// PTXAS: kernel_add_rms_norm_kernel: {{[0-9]+}} registers, stack 0, spill stores 0, spill loads 0
// PTXAS: kernel_combine_add_rms_norm_gather_tokens_kernel: {{[0-9]+}} registers, stack 0, spill stores 0, spill loads 0, smem 32896
// PTXAS: kernel_rope_kernel: {{[0-9]+}} registers, stack 0, spill stores 0, spill loads 0
// PTXAS: kernel_embed_kernel: {{[0-9]+}} registers, stack 0, spill stores 0, spill loads 0
// PTXAS: kernel_add_layer_norm_kernel: {{[0-9]+}} registers, stack 0, spill stores 0, spill loads 0
// PTXAS-NOT: FAILED

// gpt4-mini's shapes (d_model 4096, 32 heads x 128, bf16).
func.func private @kernel_add_rms_norm(%a: tensor<?x4096xbf16>, %b: tensor<?x4096xbf16>, %w: tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>) attributes {moe.kernel} {
  %s = moe.add %a, %b : tensor<?x4096xbf16>
  %n = moe.rms_norm %s, %w eps = 1.0e-5 : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> tensor<?x4096xbf16>
  return %s, %n : tensor<?x4096xbf16>, tensor<?x4096xbf16>
}
func.func private @kernel_combine_add_rms_norm_gather_tokens(%eo: tensor<?x4096xbf16>, %perm: tensor<?xi32>, %pw: tensor<?x2xf32>, %res: tensor<?x4096xbf16>, %w: tensor<4096xbf16>, %rows: tensor<?xi32>) -> tensor<?x4096xbf16> attributes {moe.kernel} {
  %c = moe.combine %eo, %perm, %pw : (tensor<?x4096xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x4096xbf16>
  %s = moe.add %res, %c : tensor<?x4096xbf16>
  %n = moe.rms_norm %s, %w eps = 1.0e-5 : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> tensor<?x4096xbf16>
  %g = moe.gather_tokens %n, %rows : (tensor<?x4096xbf16>, tensor<?xi32>) -> tensor<?x4096xbf16>
  return %g : tensor<?x4096xbf16>
}
func.func private @kernel_rope(%q: tensor<?x4096xbf16>, %pos: tensor<?xi32>) -> tensor<?x4096xbf16> attributes {moe.kernel} {
  %r = moe.rope %q, %pos head_dim 128 <theta = 10000.0, style = rotate_half> : (tensor<?x4096xbf16>, tensor<?xi32>) -> tensor<?x4096xbf16>
  return %r : tensor<?x4096xbf16>
}
func.func private @kernel_embed(%t: tensor<?xi32>, %table: tensor<4000x4096xbf16>, %part: tensor<1xi32>) -> tensor<?x4096xbf16> attributes {moe.kernel} {
  %h = moe.embed %t, %table part %part : (tensor<?xi32>, tensor<4000x4096xbf16>, tensor<1xi32>) -> tensor<?x4096xbf16>
  return %h : tensor<?x4096xbf16>
}
func.func private @kernel_add_layer_norm(%a: tensor<?x4096xbf16>, %b: tensor<?x4096xbf16>, %w: tensor<4096xbf16>, %bias: tensor<4096xbf16>) -> tensor<?x4096xbf16> attributes {moe.kernel} {
  %s = moe.add %a, %b : tensor<?x4096xbf16>
  %n = moe.layer_norm %s, %w, %bias eps = 1.0e-5 : (tensor<?x4096xbf16>, tensor<4096xbf16>, tensor<4096xbf16>) -> tensor<?x4096xbf16>
  return %n : tensor<?x4096xbf16>
}
