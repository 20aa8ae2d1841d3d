// RUN: moe-opt %s -moe-decompose -split-input-file | FileCheck %s
// RUN: moe-opt %s -moe-decompose='experts=false' -split-input-file | FileCheck %s --check-prefix=NOEXPERTS
// RUN: moe-opt %s -moe-decompose='attention=false' -split-input-file | FileCheck %s --check-prefix=NOATTN
// The pipeline stage of moec replays the pass.
// RUN: moe-opt %s -moe-pipeline='stop-after=decomposed' -split-input-file | FileCheck %s
// RUN: moe-opt %s -moe-pipeline='stop-after=moe' -split-input-file | FileCheck %s --check-prefix=GRAPH

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>

// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xbf16>, %[[POS:.*]]: tensor<?xi32>, %[[KV:.*]]: !moe.kv_cache
// CHECK-DAG: %[[WQ:.*]] = moe.weight "q"
// CHECK-DAG: %[[WK:.*]] = moe.weight "k"
// CHECK-DAG: %[[WV:.*]] = moe.weight "v"
// CHECK-DAG: %[[WO:.*]] = moe.weight "o"
// CHECK: %[[Q:.*]] = moe.linear %[[X]], %[[WQ]] category attention : (tensor<?x64xbf16>, tensor<64x64xbf16>) -> tensor<?x64xbf16>
// CHECK: %[[K:.*]] = moe.linear %[[X]], %[[WK]] category attention : (tensor<?x64xbf16>, tensor<32x64xbf16>) -> tensor<?x32xbf16>
// CHECK: %[[V:.*]] = moe.linear %[[X]], %[[WV]] category attention
// CHECK: %[[QR:.*]] = moe.rope %[[Q]], %[[POS]] head_dim 16 <theta = 1.000000e+04, style = rotate_half>
// CHECK: %[[KR:.*]] = moe.rope %[[K]], %[[POS]] head_dim 16
// CHECK: %[[KV1:.*]] = moe.kv_cache_write %[[KV]][1], %[[KR]], %[[V]], %[[POS]]
// CHECK: %[[A:.*]] = moe.attend %[[QR]], %[[KV1]][1], %[[POS]] heads 4 causal
// CHECK: %[[O:.*]] = moe.linear %[[A]], %[[WO]] category attention
// CHECK: return %[[O]], %[[KV1]]
// CHECK-NOT: moe.attention
// NOEXPERTS-LABEL: func.func @attention
// NOEXPERTS: moe.attend
// NOATTN-LABEL: func.func @attention
// NOATTN: moe.attention
// GRAPH-LABEL: func.func @attention
// GRAPH: moe.attention
func.func @attention(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) -> (tensor<?x64xbf16>, !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  %wv = moe.weight "v" : tensor<32x64xbf16>
  %wo = moe.weight "o" : tensor<64x64xbf16>
  %a, %kv1 = moe.attention %x, %pos, %kv layer 1 heads 4 kv_heads 2 head_dim 16 causal rope <theta = 10000.0, style = rotate_half> weights(%wq, %wk, %wv, %wo) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  return %a, %kv1 : tensor<?x64xbf16>, !kv
}

// -----

!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 1, head_dim = 16, element_type = bf16>

// Without rope there is no moe.rope; without causal, no causal attend.
// CHECK-LABEL: func.func @attention_plain
// CHECK-NOT: moe.rope
// CHECK: moe.attend %{{.*}}, %{{.*}}[0], %{{.*}} heads 4 :
func.func @attention_plain(%x: tensor<8x64xbf16>, %pos: tensor<8xi32>, %kv: !kv) -> tensor<8x64xbf16> {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<16x64xbf16>
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 4 kv_heads 1 head_dim 16 weights(%wq, %wk, %wk, %wq) : (tensor<8x64xbf16>, tensor<8xi32>, !kv, tensor<64x64xbf16>, tensor<16x64xbf16>, tensor<16x64xbf16>, tensor<64x64xbf16>) -> (tensor<8x64xbf16>, !kv)
  return %a : tensor<8x64xbf16>
}

// -----

// CHECK-LABEL: func.func @experts
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xbf16>, %[[I:.*]]: tensor<?x2xi32>, %[[P:.*]]: tensor<?x2xf32>)
// CHECK: %[[XP:.*]], %[[OFF:.*]], %[[PERM:.*]] = moe.dispatch %[[X]], %[[I]] experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>)
// CHECK: %[[YP:.*]] = moe.expert_ffn %[[XP]], %[[OFF]], %{{.*}}, %{{.*}} activation silu gated top_k 2
// CHECK: %[[Y:.*]] = moe.combine %[[YP]], %[[PERM]], %[[P]] : (tensor<?x64xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x64xbf16>
// CHECK: return %[[Y]]
// NOEXPERTS-LABEL: func.func @experts
// NOEXPERTS: moe.experts
// NOATTN-LABEL: func.func @experts
// NOATTN: moe.expert_ffn
// GRAPH-LABEL: func.func @experts
// GRAPH: moe.experts
func.func @experts(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) -> tensor<?x64xbf16> {
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  return %y : tensor<?x64xbf16>
}

// -----

// Experts spread over 4 ranks that exchange tokens by all-to-all: every rank
// dispatches every token, the copies go to their experts' ranks and come
// back, each rank combines its own tokens and the ranks gather them; no
// all-reduce is needed.
// CHECK-LABEL: func.func @experts_all_to_all
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xbf16>, %[[I:.*]]: tensor<?x2xi32>, %[[P:.*]]: tensor<?x2xf32>)
// CHECK: %[[G:.*]] = moe.group_rank group_size 4
// CHECK: %[[XP:.*]], %[[OFF:.*]], %[[PERM:.*]] = moe.dispatch %[[X]], %[[I]] experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>)
// CHECK: %[[XE:.*]] = moe.expert_exchange to_experts %[[XP]], %[[OFF]], %[[PERM]] top_k 2 group_size 4 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
// CHECK: %[[YE:.*]] = moe.expert_ffn %[[XE]], %[[OFF]], %{{.*}}, %{{.*}} activation silu gated top_k 2 global_experts 8 expert_group %[[G]]
// CHECK: %[[YP:.*]] = moe.expert_exchange to_tokens %[[YE]], %[[OFF]], %[[PERM]] top_k 2 group_size 4
// CHECK: %[[Y:.*]] = moe.combine %[[YP]], %[[PERM]], %[[P]]
// CHECK: %[[R:.*]] = moe.all_gather_tokens %[[Y]] group_size 4 : tensor<?x64xbf16>
// CHECK: return %[[R]]
// NOEXPERTS-LABEL: func.func @experts_all_to_all
// NOEXPERTS: moe.experts {{.*}} all_to_all 4
func.func @experts_all_to_all(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) -> tensor<?x64xbf16> {
  %gu = moe.weight "gu" shard <splits = [4, 1, 1]> : tensor<2x256x64xbf16>
  %dn = moe.weight "dn" shard <splits = [4, 1, 1]> : tensor<2x64x128xbf16>
  %g = moe.group_rank group_size 4 : tensor<1xi32>
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated global_experts 8 all_to_all 4 expert_group %g : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<2x256x64xbf16>, tensor<2x64x128xbf16>, tensor<1xi32>) -> tensor<?x64xbf16>
  return %y : tensor<?x64xbf16>
}

// A static token count gives static row counts (tokens * top_k).
// CHECK-LABEL: func.func @experts_static
// CHECK: moe.dispatch {{.*}} -> (tensor<12x64xbf16>, tensor<5xi32>, tensor<12xi32>)
// CHECK: moe.expert_ffn {{.*}} activation gelu top_k 3 : (tensor<12x64xbf16>, tensor<5xi32>, tensor<4x128x64xbf16>, tensor<4x64x128xbf16>) -> tensor<12x64xbf16>
// CHECK: moe.combine {{.*}} -> tensor<4x64xbf16>
func.func @experts_static(%x: tensor<4x64xbf16>, %i: tensor<4x3xi32>, %p: tensor<4x3xf32>) -> tensor<4x64xbf16> {
  %up = moe.weight "up" : tensor<4x128x64xbf16>
  %dn = moe.weight "dn" : tensor<4x64x128xbf16>
  %y = moe.experts %x, %i, %p, %up, %dn activation gelu : (tensor<4x64xbf16>, tensor<4x3xi32>, tensor<4x3xf32>, tensor<4x128x64xbf16>, tensor<4x64x128xbf16>) -> tensor<4x64xbf16>
  return %y : tensor<4x64xbf16>
}
