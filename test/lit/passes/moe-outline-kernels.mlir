// RUN: moe-opt %s -moe-fuse -moe-outline-kernels | FileCheck %s
// The kernels of a model do not grow with its depth: 2, 24 and 120 layers
// give the same 6 kernels (RoPE is folded into attention and the KV-cache
// write).
// RUN: moec %models/tiny-moe.json --emit=decomposed | moe-opt -moe-fuse -moe-outline-kernels | grep -c 'func.func private @kernel' | FileCheck %s --check-prefix=COUNT
// RUN: moec %models/gpt4-mini.json --emit=decomposed | moe-opt -moe-fuse -moe-outline-kernels | grep -c 'func.func private @kernel' | FileCheck %s --check-prefix=COUNT
// RUN: moec %models/gpt4.json --emit=decomposed | moe-opt -moe-fuse -moe-outline-kernels | grep -c 'func.func private @kernel' | FileCheck %s --check-prefix=COUNT
// COUNT: 6

// Two identical add + norm kernels share one function; a kernel of other
// types gets its own, uniquely named.
// CHECK-LABEL: func.func @forward
// CHECK: %[[A:.*]]:2 = call @kernel_add_rms_norm(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<?x8xbf16>, tensor<?x8xbf16>, tensor<8xbf16>) -> (tensor<?x8xbf16>, tensor<?x8xbf16>)
// CHECK: %[[L:.*]] = moe.linear %[[A]]#1
// CHECK: %[[B:.*]]:2 = call @kernel_add_rms_norm(%[[A]]#0, %[[L]], %{{.*}})
// CHECK: call @kernel_add_rms_norm_0(%{{.*}}, %{{.*}}) : (tensor<?x16xbf16>, tensor<16xbf16>) -> (tensor<?x16xbf16>, tensor<?x16xbf16>)
// CHECK-NOT: moe.fused
// CHECK: func.func private @kernel_add_rms_norm(%[[X:.*]]: tensor<?x8xbf16>, %[[Y:.*]]: tensor<?x8xbf16>, %[[G:.*]]: tensor<8xbf16>) -> (tensor<?x8xbf16>, tensor<?x8xbf16>) attributes {moe.kernel}
// CHECK-NEXT: %[[S:.*]] = moe.add %[[X]], %[[Y]]
// CHECK-NEXT: %[[N:.*]] = moe.rms_norm %[[S]], %[[G]]
// CHECK-NEXT: return %[[S]], %[[N]]
// CHECK: func.func private @kernel_add_rms_norm_0
// CHECK-NOT: func.func private @kernel

func.func @forward(%h: tensor<?x8xbf16>, %a: tensor<?x8xbf16>, %c: tensor<?x16xbf16>) -> (tensor<?x8xbf16>, tensor<?x8xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>) {
  %w1 = moe.weight "n1" : tensor<8xbf16>
  %w2 = moe.weight "n2" : tensor<8xbf16>
  %w3 = moe.weight "n3" : tensor<16xbf16>
  %s1 = moe.add %h, %a : tensor<?x8xbf16>
  %n1 = moe.rms_norm %s1, %w1 eps = 1.0e-5 : (tensor<?x8xbf16>, tensor<8xbf16>) -> tensor<?x8xbf16>
  %wl = moe.weight "l" : tensor<8x8xbf16>
  %l = moe.linear %n1, %wl category mlp : (tensor<?x8xbf16>, tensor<8x8xbf16>) -> tensor<?x8xbf16>
  %s2 = moe.add %s1, %l : tensor<?x8xbf16>
  %n2 = moe.rms_norm %s2, %w2 eps = 1.0e-5 : (tensor<?x8xbf16>, tensor<8xbf16>) -> tensor<?x8xbf16>
  %s3 = moe.add %c, %c : tensor<?x16xbf16>
  %n3 = moe.rms_norm %s3, %w3 eps = 1.0e-5 : (tensor<?x16xbf16>, tensor<16xbf16>) -> tensor<?x16xbf16>
  return %s2, %n2, %s3, %n3 : tensor<?x8xbf16>, tensor<?x8xbf16>, tensor<?x16xbf16>, tensor<?x16xbf16>
}
