// RUN: moe-opt %s -moe-fuse -split-input-file | FileCheck %s
// RUN: moe-opt %s -moe-fuse -split-input-file | moe-opt -split-input-file | FileCheck %s
// Fusion keeps FLOPs and parameters, and saves bytes.
// RUN: moe-opt %s -split-input-file -moe-report='tokens=4' -o /dev/null | FileCheck %s --check-prefix=BEFORE
// RUN: moe-opt %s -split-input-file -moe-fuse -moe-report='tokens=4' -o /dev/null | FileCheck %s --check-prefix=AFTER

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

// -----

// A RoPE whose only consumer is the KV-cache write or attention at the same
// positions folds into it: no rope kernel, no rotated rows in memory. The
// FLOPs stay (3 per element: (64 + 32) x 3 per token; the report's context
// is 0, so attention adds none); the bytes drop by the rotated rows, 4 x
// (64 + 32) x 2 = 768 bytes written and read again, and the positions the
// two rope kernels read (32).
// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<?x64xbf16>, %[[K:[^:]*]]: tensor<?x32xbf16>, %[[V:[^:]*]]: tensor<?x32xbf16>, %[[P:[^:]*]]: tensor<?xi32>,
// CHECK-NOT: moe.rope
// CHECK: %[[KV:.*]] = moe.kv_cache_write %{{.*}}[0], %[[K]], %[[V]], %[[P]] rope <theta = 1.000000e+04, style = rotate_half>
// CHECK: moe.attend %[[Q]], %[[KV]][0], %[[P]] heads 4 causal rope <theta = 1.000000e+04, style = rotate_half>
// BEFORE: FLOPs per token                {{ *}}288
// BEFORE: bytes read per step            {{ *}}1,856
// BEFORE-NEXT: bytes written per step    {{ *}}1,792
// AFTER: FLOPs per token                {{ *}}288
// AFTER: bytes read per step            {{ *}}1,056
// AFTER-NEXT: bytes written per step    {{ *}}1,024
!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @forward(%q: tensor<?x64xbf16>, %k: tensor<?x32xbf16>, %v: tensor<?x32xbf16>, %pos: tensor<?xi32>, %kv: !kv) -> (tensor<?x64xbf16>, !kv) {
  %qr = moe.rope %q, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  %kr = moe.rope %k, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x32xbf16>, tensor<?xi32>) -> tensor<?x32xbf16>
  %kv1 = moe.kv_cache_write %kv[0], %kr, %v, %pos : (!kv, tensor<?x32xbf16>, tensor<?x32xbf16>, tensor<?xi32>) -> !kv
  %a = moe.attend %qr, %kv1[0], %pos heads 4 causal : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>
  return %a, %kv1 : tensor<?x64xbf16>, !kv
}

// -----

// It stays a kernel of its own when the rotated rows are used elsewhere too,
// when the rotation is at other positions, or when its heads are not the
// cache's.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: %{{[^:]*}}: tensor<?xi32>, %{{[^:]*}}: tensor<?xi32>,
// CHECK: moe.fused
// CHECK-NEXT: ^bb0
// CHECK-NEXT: moe.rope
// CHECK: moe.fused
// CHECK-NEXT: ^bb0
// CHECK-NEXT: moe.rope
// CHECK: moe.fused
// CHECK-NEXT: ^bb0
// CHECK-NEXT: moe.rope
// CHECK: moe.kv_cache_write %{{.*}}[0], %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK: moe.attend {{.*}} heads 4 causal :
// CHECK: moe.attend {{.*}} heads 4 causal :
// BEFORE: FLOPs per token                {{ *}}480
// BEFORE: bytes read per step            {{ *}}2,912
// AFTER: FLOPs per token                {{ *}}480
// AFTER: bytes read per step            {{ *}}2,912
!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 2, head_dim = 16, element_type = bf16>
func.func @forward(%q: tensor<?x64xbf16>, %k: tensor<?x32xbf16>, %v: tensor<?x32xbf16>, %pos: tensor<?xi32>, %other: tensor<?xi32>, %kv: !kv) -> (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<?x64xbf16>, !kv) {
  %qr = moe.rope %q, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  %kr = moe.rope %k, %other head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x32xbf16>, tensor<?xi32>) -> tensor<?x32xbf16>
  %q8 = moe.rope %q, %pos head_dim 8 <theta = 10000.0, style = rotate_half> : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  %kv1 = moe.kv_cache_write %kv[0], %kr, %v, %pos : (!kv, tensor<?x32xbf16>, tensor<?x32xbf16>, tensor<?xi32>) -> !kv
  %a = moe.attend %qr, %kv1[0], %pos heads 4 causal : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>
  %b = moe.attend %q8, %kv1[0], %pos heads 4 causal : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>
  return %a, %b, %qr, %kv1 : tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<?x64xbf16>, !kv
}
