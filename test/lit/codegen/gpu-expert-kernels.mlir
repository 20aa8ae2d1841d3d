// The routed-expert FFN kernels (moe-build-expert-kernels target=gpu)
// lowered to PTX: each lane reads 8 contiguous bf16 weights (and 8
// activations) at a time from buffers assumed 16-byte aligned, so both
// launches issue 16-byte loads (ld.global.v4) and no 2-byte ones. ReLU keeps
// libdevice out of the test.
// RUN: moe-opt %s -moe-build-expert-kernels='target=gpu' -moe-lower-cuda='chip=sm_90a' -o %t
// RUN: FileCheck %s < %t
// RUN: FileCheck %s --check-prefix=NARROW < %t

// The gate/up launch: activations and weights 16 bytes at a time.
// CHECK: gpu.binary @kernel_expert_ffn_kernel [
// CHECK-SAME: .visible .entry kernel_expert_ffn_kernel(
// CHECK-SAME: ld.global.v4.b32
// CHECK-SAME: ld.global.v4.b32
// The down launch: the f32 hidden row (two 16-byte loads per 8) and the
// bf16 weights.
// CHECK: gpu.binary @kernel_expert_ffn_kernel_0 [
// CHECK-SAME: ld.global.v4
// NARROW-NOT: ld.global.u16
// NARROW-NOT: ld.global.b16
// NARROW-NOT: ld.global.nc.u16
func.func private @kernel_expert_ffn(%x: tensor<?x256xbf16>, %off: tensor<5xi32>, %gu: tensor<4x512x256xbf16>, %d: tensor<4x256x256xbf16>) -> tensor<?x256xbf16> attributes {moe.kernel} {
  %y = moe.expert_ffn %x, %off, %gu, %d activation relu gated top_k 2 : (tensor<?x256xbf16>, tensor<5xi32>, tensor<4x512x256xbf16>, tensor<4x256x256xbf16>) -> tensor<?x256xbf16>
  return %y : tensor<?x256xbf16>
}

