// RUN: moe-opt %s -moe-fuse | FileCheck %s
// RUN: moe-opt %s -moe-fuse | moe-opt | FileCheck %s
// Fusion keeps FLOPs and parameters, and saves bytes.
// RUN: moe-opt %s -moe-report='tokens=4' -o /dev/null | FileCheck %s --check-prefix=BEFORE
// RUN: moe-opt %s -moe-fuse -moe-report='tokens=4' -o /dev/null | FileCheck %s --check-prefix=AFTER

// The weights move to the top; residual add + norm become one kernel that
// writes both the sum and the normed value; the expert combine, the residual
// add and the next norm another; the GEMM (moe.linear) stays outside.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[H:.*]]: tensor<?x8xbf16>, %[[A:.*]]: tensor<?x8xbf16>, %[[YP:.*]]: tensor<?x8xbf16>, %[[PERM:.*]]: tensor<?xi32>, %[[P:.*]]: tensor<?x2xf32>)
// CHECK-NEXT: %[[W1:.*]] = moe.weight "n1"
// CHECK-NEXT: %[[WL:.*]] = moe.weight "l"
// CHECK-NEXT: %[[W2:.*]] = moe.weight "n2"
// CHECK-NEXT: %[[F1:.*]]:2 = moe.fused ins(%[[H]], %[[A]], %[[W1]]) : (tensor<?x8xbf16>, tensor<?x8xbf16>, tensor<8xbf16>) -> (tensor<?x8xbf16>, tensor<?x8xbf16>) {
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<?x8xbf16>, %[[Y:.*]]: tensor<?x8xbf16>, %[[G:.*]]: tensor<8xbf16>):
// CHECK-NEXT:   %[[S:.*]] = moe.add %[[X]], %[[Y]]
// CHECK-NEXT:   %[[N:.*]] = moe.rms_norm %[[S]], %[[G]]
// CHECK-NEXT:   moe.yield %[[S]], %[[N]] : tensor<?x8xbf16>, tensor<?x8xbf16>
// CHECK-NEXT: }
// CHECK-NEXT: %[[L:.*]] = moe.linear %[[F1]]#1, %[[WL]]
// CHECK-NEXT: %[[F2:.*]] = moe.fused ins(%[[YP]], %[[PERM]], %[[P]], %[[F1]]#0, %[[W2]])
// CHECK: moe.combine
// CHECK-NEXT: moe.add
// CHECK-NEXT: moe.rms_norm
// CHECK-NEXT: moe.yield
// CHECK: return %[[F2]], %[[L]]

// Four tokens: unfused, the ops read 800 bytes; fused, the add + norm
// kernel reads h, a and its weight (144), the linear 192, and the second
// kernel the 8 expert rows (128), permutation (32), routing weights (32),
// the residual (64) and its weight (16): 608.
// BEFORE: FLOPs per token                {{ *}}240
// BEFORE: bytes read per step            {{ *}}800
// BEFORE-NEXT: bytes written per step    {{ *}}384
// AFTER: FLOPs per token                {{ *}}240
// AFTER: bytes read per step            {{ *}}608
// AFTER-NEXT: bytes written per step    {{ *}}256

!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 1, head_dim = 4, element_type = bf16>
func.func @forward(%h: tensor<?x8xbf16>, %a: tensor<?x8xbf16>, %yp: tensor<?x8xbf16>,
                   %perm: tensor<?xi32>, %p: tensor<?x2xf32>) -> (tensor<?x8xbf16>, tensor<?x8xbf16>) {
  %s = moe.add %h, %a : tensor<?x8xbf16>
  %w1 = moe.weight "n1" : tensor<8xbf16>
  %n = moe.rms_norm %s, %w1 eps = 1.0e-5 : (tensor<?x8xbf16>, tensor<8xbf16>) -> tensor<?x8xbf16>
  %wl = moe.weight "l" : tensor<8x8xbf16>
  %l = moe.linear %n, %wl category mlp : (tensor<?x8xbf16>, tensor<8x8xbf16>) -> tensor<?x8xbf16>
  %c = moe.combine %yp, %perm, %p : (tensor<?x8xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x8xbf16>
  %s2 = moe.add %s, %c : tensor<?x8xbf16>
  %w2 = moe.weight "n2" : tensor<8xbf16>
  %n2 = moe.rms_norm %s2, %w2 eps = 1.0e-5 : (tensor<?x8xbf16>, tensor<8xbf16>) -> tensor<?x8xbf16>
  return %n2, %l : tensor<?x8xbf16>, tensor<?x8xbf16>
}
