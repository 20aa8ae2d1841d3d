// Round-trip of every moe op, type and attribute, in custom and generic form.
// RUN: moe-opt %s | moe-opt | FileCheck %s
// RUN: moe-opt -mlir-print-op-generic %s | moe-opt | FileCheck %s

!kv = !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>

// CHECK-LABEL: func.func @graph
func.func @graph(%tokens: tensor<?xi32>, %pos: tensor<?xi32>, %kv: !kv,
                 %rows: tensor<?xi32>) -> (tensor<?x100xf32>, !kv) {
  // CHECK: %[[TABLE:.*]] = moe.weight "model.embed_tokens.weight" : tensor<100x64xbf16>
  %table = moe.weight "model.embed_tokens.weight" : tensor<100x64xbf16>
  // CHECK: %[[H:.*]] = moe.embed %{{.*}}, %[[TABLE]] : (tensor<?xi32>, tensor<100x64xbf16>) -> tensor<?x64xbf16>
  %h = moe.embed %tokens, %table : (tensor<?xi32>, tensor<100x64xbf16>) -> tensor<?x64xbf16>
  %nw = moe.weight "model.layers.0.input_layernorm.weight" : tensor<64xbf16>
  // CHECK: moe.rms_norm %[[H]], %{{.*}} eps = 1.000000e-05 : (tensor<?x64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  %n = moe.rms_norm %h, %nw eps = 1.0e-5 : (tensor<?x64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  %nb = moe.weight "model.layers.0.input_layernorm.bias" : tensor<64xbf16>
  // CHECK: moe.layer_norm %[[H]], %{{.*}}, %{{.*}} eps = 1.500000e-05 : (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  %ln = moe.layer_norm %h, %nw, %nb eps = 1.5e-5 : (tensor<?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  %wv = moe.weight "v" : tensor<32x64xbf16>
  %wo = moe.weight "o" : tensor<64x64xbf16>
  // CHECK: %{{.*}}, %[[KV1:.*]] = moe.attention %{{.*}}, %{{.*}}, %{{.*}} layer 0 heads 4 kv_heads 2 head_dim 16 causal rope <theta = 1.000000e+04, style = rotate_half> weights(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<?x64xbf16>, tensor<?xi32>, !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>)
  %a, %kv1 = moe.attention %n, %pos, %kv layer 0 heads 4 kv_heads 2 head_dim 16 causal rope <theta = 10000.0, style = rotate_half> weights(%wq, %wk, %wv, %wo) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  // Without rope and causal; interleaved rope on the next one.
  // CHECK: moe.attention %{{.*}} layer 1 heads 4 kv_heads 2 head_dim 16 weights(
  %a2, %kv2 = moe.attention %n, %pos, %kv1 layer 1 heads 4 kv_heads 2 head_dim 16 weights(%wq, %wk, %wv, %wo) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  // CHECK: rope <theta = 5.000000e+05, style = interleaved>
  %a3, %kv3 = moe.attention %n, %pos, %kv1 layer 1 heads 4 kv_heads 2 head_dim 16 rope <theta = 500000.0, style = interleaved> weights(%wq, %wk, %wv, %wo) : (tensor<?x64xbf16>, tensor<?xi32>, !kv, tensor<64x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x64xbf16>) -> (tensor<?x64xbf16>, !kv)
  // CHECK: moe.add %[[H]], %{{.*}} : tensor<?x64xbf16>
  %h1 = moe.add %h, %a : tensor<?x64xbf16>
  %gate = moe.weight "model.layers.0.mlp.gate.weight" : tensor<8x64xbf16>
  // CHECK: %[[IDX:.*]], %[[P:.*]] = moe.router %{{.*}}, %{{.*}} top_k 2 normalize : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  %idx, %p = moe.router %h1, %gate top_k 2 normalize : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  // CHECK: moe.router %{{.*}}, %{{.*}} top_k 1 : (
  %idx1, %p1 = moe.router %h1, %gate top_k 1 : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> (tensor<?x1xi32>, tensor<?x1xf32>)
  %gu = moe.weight "model.layers.0.mlp.experts.gate_up_proj" : tensor<8x256x64xbf16>
  %dn = moe.weight "model.layers.0.mlp.experts.down_proj" : tensor<8x64x128xbf16>
  // CHECK: moe.experts %{{.*}}, %[[IDX]], %[[P]], %{{.*}}, %{{.*}} activation silu gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  %m = moe.experts %h1, %idx, %p, %gu, %dn activation silu gated : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  %up = moe.weight "model.layers.0.mlp.experts.up_proj" : tensor<8x128x64xbf16>
  // CHECK: moe.experts {{.*}} activation gelu : (
  %m2 = moe.experts %h1, %idx, %p, %up, %dn activation gelu : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<8x128x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  %fu = moe.weight "model.layers.0.mlp.up_proj.weight" : tensor<128x64xbf16>
  %fd = moe.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x128xbf16>
  %fg = moe.weight "model.layers.0.mlp.gate_proj.weight" : tensor<128x64xbf16>
  // CHECK: moe.ffn %{{.*}} up %{{.*}} down %{{.*}} gate %{{.*}} activation silu : (tensor<?x64xbf16>, tensor<128x64xbf16>, tensor<64x128xbf16>, tensor<128x64xbf16>) -> tensor<?x64xbf16>
  %f = moe.ffn %h1 up %fu down %fd gate %fg activation silu : (tensor<?x64xbf16>, tensor<128x64xbf16>, tensor<64x128xbf16>, tensor<128x64xbf16>) -> tensor<?x64xbf16>
  // CHECK: moe.ffn %{{.*}} up %{{.*}} down %{{.*}} activation relu : (tensor<?x64xbf16>, tensor<128x64xbf16>, tensor<64x128xbf16>) -> tensor<?x64xbf16>
  %f2 = moe.ffn %h1 up %fu down %fd activation relu : (tensor<?x64xbf16>, tensor<128x64xbf16>, tensor<64x128xbf16>) -> tensor<?x64xbf16>
  %h2 = moe.add %h1, %m : tensor<?x64xbf16>
  // CHECK: %[[SEL:.*]] = moe.gather_tokens %{{.*}}, %{{.*}} : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  %sel = moe.gather_tokens %h2, %rows : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  // CHECK: moe.lm_head %[[SEL]], %[[TABLE]] : (tensor<?x64xbf16>, tensor<100x64xbf16>) -> tensor<?x100xf32>
  %logits = moe.lm_head %sel, %table : (tensor<?x64xbf16>, tensor<100x64xbf16>) -> tensor<?x100xf32>
  return %logits, %kv1 : tensor<?x100xf32>, !kv
}

// CHECK-LABEL: func.func @sample
func.func @sample(%logits: tensor<?x100xf32>, %t: tensor<?xf32>, %k: tensor<?xi32>,
                  %p: tensor<?xf32>, %s: tensor<?xi64>) -> tensor<?xi32> {
  // CHECK: moe.sample %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<?x100xf32>, tensor<?xf32>, tensor<?xi32>, tensor<?xf32>, tensor<?xi64>) -> tensor<?xi32>
  %next = moe.sample %logits, %t, %k, %p, %s : (tensor<?x100xf32>, tensor<?xf32>, tensor<?xi32>, tensor<?xf32>, tensor<?xi64>) -> tensor<?xi32>
  return %next : tensor<?xi32>
}

// CHECK-LABEL: func.func @decomposed
func.func @decomposed(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %kv: !kv) -> (tensor<?x64xbf16>, !kv) {
  %wq = moe.weight "q" : tensor<64x64xbf16>
  %wk = moe.weight "k" : tensor<32x64xbf16>
  %wv = moe.weight "v" : tensor<32x64xbf16>
  // CHECK: %[[Q:.*]] = moe.linear %{{.*}}, %{{.*}} category attention : (tensor<?x64xbf16>, tensor<64x64xbf16>) -> tensor<?x64xbf16>
  %q = moe.linear %x, %wq category attention : (tensor<?x64xbf16>, tensor<64x64xbf16>) -> tensor<?x64xbf16>
  %k = moe.linear %x, %wk category attention : (tensor<?x64xbf16>, tensor<32x64xbf16>) -> tensor<?x32xbf16>
  %v = moe.linear %x, %wv category attention : (tensor<?x64xbf16>, tensor<32x64xbf16>) -> tensor<?x32xbf16>
  // CHECK: %[[QR:.*]] = moe.rope %[[Q]], %{{.*}} head_dim 16 <theta = 1.000000e+04, style = rotate_half> : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  %qr = moe.rope %q, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x64xbf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  %kr = moe.rope %k, %pos head_dim 16 <theta = 10000.0, style = rotate_half> : (tensor<?x32xbf16>, tensor<?xi32>) -> tensor<?x32xbf16>
  // CHECK: %[[KV1:.*]] = moe.kv_cache_write %{{.*}}[1], %{{.*}}, %{{.*}}, %{{.*}} : (!moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>, tensor<?x32xbf16>, tensor<?x32xbf16>, tensor<?xi32>) -> !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>
  %kv1 = moe.kv_cache_write %kv[1], %kr, %v, %pos : (!kv, tensor<?x32xbf16>, tensor<?x32xbf16>, tensor<?xi32>) -> !kv
  // CHECK: moe.attend %[[QR]], %[[KV1]][1], %{{.*}} heads 4 causal : (tensor<?x64xbf16>, !moe.kv_cache<num_layers = 2, num_kv_heads = 2, head_dim = 16, element_type = bf16>, tensor<?xi32>) -> tensor<?x64xbf16>
  %att = moe.attend %qr, %kv1[1], %pos heads 4 causal : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>
  // CHECK: moe.attend %{{.*}}[0], %{{.*}} heads 4 : (
  %att2 = moe.attend %qr, %kv1[0], %pos heads 4 : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>
  // A folded RoPE: the write rotates the keys, attention the queries.
  // CHECK: %[[KV2:.*]] = moe.kv_cache_write %{{.*}}[0], %{{.*}}, %{{.*}}, %{{.*}} rope <theta = 5.000000e+05, style = interleaved> : (
  %kv2 = moe.kv_cache_write %kv1[0], %k, %v, %pos rope <theta = 500000.0, style = interleaved> : (!kv, tensor<?x32xbf16>, tensor<?x32xbf16>, tensor<?xi32>) -> !kv
  // CHECK: moe.attend %[[Q]], %[[KV2]][0], %{{.*}} heads 4 causal rope <theta = 5.000000e+05, style = interleaved> : (
  %att3 = moe.attend %q, %kv2[0], %pos heads 4 causal rope <theta = 500000.0, style = interleaved> : (tensor<?x64xbf16>, !kv, tensor<?xi32>) -> tensor<?x64xbf16>

  %gate = moe.weight "g" : tensor<8x64xbf16>
  %idx, %p = moe.router %att, %gate top_k 2 normalize : (tensor<?x64xbf16>, tensor<8x64xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  // CHECK: %[[XP:.*]], %[[OFF:.*]], %[[PERM:.*]] = moe.dispatch %{{.*}}, %{{.*}} experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>)
  %xp, %off, %perm = moe.dispatch %att, %idx experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>) -> (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>)
  %gu = moe.weight "gu" : tensor<8x256x64xbf16>
  %dn = moe.weight "dn" : tensor<8x64x128xbf16>
  // CHECK: %[[YP:.*]] = moe.expert_ffn %[[XP]], %[[OFF]], %{{.*}}, %{{.*}} activation silu gated top_k 2 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  %yp = moe.expert_ffn %xp, %off, %gu, %dn activation silu gated top_k 2 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<8x256x64xbf16>, tensor<8x64x128xbf16>) -> tensor<?x64xbf16>
  // CHECK: moe.combine %[[YP]], %[[PERM]], %{{.*}} : (tensor<?x64xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x64xbf16>
  %y = moe.combine %yp, %perm, %p : (tensor<?x64xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x64xbf16>
  return %y, %kv1 : tensor<?x64xbf16>, !kv
}

// Static token counts are allowed too (e.g. a fixed decode batch).
// CHECK-LABEL: func.func @static_tokens
func.func @static_tokens(%tokens: tensor<4xi32>) -> tensor<4x64xf32> {
  %table = moe.weight "model.embed_tokens.weight" : tensor<100x64xf32>
  // CHECK: moe.embed %{{.*}}, %{{.*}} : (tensor<4xi32>, tensor<100x64xf32>) -> tensor<4x64xf32>
  %h = moe.embed %tokens, %table : (tensor<4xi32>, tensor<100x64xf32>) -> tensor<4x64xf32>
  return %h : tensor<4x64xf32>
}

// Partitioned forms: sharded weights, placed experts, collectives, stages.
// CHECK-LABEL: func.func @partitioned
func.func @partitioned(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) -> tensor<?x100xf32> {
  // CHECK: moe.weight "q" shard <splits = [8, 1]> : tensor<8x64xbf16>
  %q = moe.weight "q" shard <splits = [8, 1]> : tensor<8x64xbf16>
  // CHECK: moe.weight "gu" shard <splits = [2, 2, 1], chunks = [1, 2, 1]> : tensor<4x64x64xbf16>
  %gu = moe.weight "gu" shard <splits = [2, 2, 1], chunks = [1, 2, 1]> : tensor<4x64x64xbf16>
  %dn = moe.weight "dn" shard <splits = [2, 1, 2]> : tensor<4x64x32xbf16>
  // CHECK: %[[Y:.*]] = moe.experts {{.*}} activation silu gated global_experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x64x64xbf16>, tensor<4x64x32xbf16>) -> tensor<?x64xbf16>
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated global_experts 8 : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x64x64xbf16>, tensor<4x64x32xbf16>) -> tensor<?x64xbf16>
  // CHECK: %[[G:.*]] = moe.group_rank group_size 4 divisor 2 : tensor<1xi32>
  %g2 = moe.group_rank group_size 4 divisor 2 : tensor<1xi32>
  // CHECK: moe.experts {{.*}} global_experts 8 expert_group %[[G]] : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x64x64xbf16>, tensor<4x64x32xbf16>, tensor<1xi32>) -> tensor<?x64xbf16>
  %y2 = moe.experts %x, %i, %p, %gu, %dn activation silu gated global_experts 8 expert_group %g2 : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x64x64xbf16>, tensor<4x64x32xbf16>, tensor<1xi32>) -> tensor<?x64xbf16>
  // CHECK: %[[V:.*]] = moe.group_rank group_size 4 : tensor<1xi32>
  %v = moe.group_rank group_size 4 : tensor<1xi32>
  %t = arith.constant dense<[1, 2]> : tensor<2xi32>
  %e = moe.weight "model.embed_tokens.weight" shard <splits = [4, 1]> : tensor<25x64xbf16>
  // CHECK: moe.embed %{{.*}}, %{{.*}} part %[[V]] : (tensor<2xi32>, tensor<25x64xbf16>, tensor<1xi32>) -> tensor<2x64xbf16>
  %h = moe.embed %t, %e part %v : (tensor<2xi32>, tensor<25x64xbf16>, tensor<1xi32>) -> tensor<2x64xbf16>
  // CHECK: %[[S:.*]] = moe.all_reduce %[[Y]] group_size 4 : tensor<?x64xbf16>
  %s = moe.all_reduce %y group_size 4 : tensor<?x64xbf16>
  // CHECK: moe.send %[[S]] to stage 3 : tensor<?x64xbf16>
  moe.send %s to stage 3 : tensor<?x64xbf16>
  // CHECK: %[[R:.*]] = moe.recv from stage 1 : tensor<?x64xbf16>
  %r = moe.recv from stage 1 : tensor<?x64xbf16>
  %w = moe.weight "lm_head.weight" shard <splits = [4, 1]> : tensor<25x64xbf16>
  %l = moe.lm_head %r, %w : (tensor<?x64xbf16>, tensor<25x64xbf16>) -> tensor<?x25xf32>
  // CHECK: moe.all_gather %{{.*}} dim 1 group_size 4 : (tensor<?x25xf32>) -> tensor<?x100xf32>
  %g = moe.all_gather %l dim 1 group_size 4 : (tensor<?x25xf32>) -> tensor<?x100xf32>
  return %g : tensor<?x100xf32>
}

// CHECK-LABEL: func.func @expert_all_to_all
func.func @expert_all_to_all(%x: tensor<?x64xbf16>, %off: tensor<9xi32>, %perm: tensor<?xi32>) -> tensor<?x64xbf16> {
  // CHECK: %[[E:.*]] = moe.expert_exchange to_experts %{{.*}}, %{{.*}}, %{{.*}} top_k 2 group_size 4 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
  %e = moe.expert_exchange to_experts %x, %off, %perm top_k 2 group_size 4 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
  // CHECK: %[[T:.*]] = moe.expert_exchange to_tokens %[[E]], {{.*}} top_k 2 group_size 4
  %t = moe.expert_exchange to_tokens %e, %off, %perm top_k 2 group_size 4 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<?xi32>) -> tensor<?x64xbf16>
  // CHECK: moe.all_gather_tokens %[[T]] group_size 4 : tensor<?x64xbf16>
  %g = moe.all_gather_tokens %t group_size 4 : tensor<?x64xbf16>
  return %g : tensor<?x64xbf16>
}

// CHECK-LABEL: func.func @placed_expert_ffn
func.func @placed_expert_ffn(%x: tensor<?x64xbf16>, %off: tensor<9xi32>) -> tensor<?x64xbf16> {
  %gu = moe.weight "gu" shard <splits = [4, 1, 1]> : tensor<2x256x64xbf16>
  %dn = moe.weight "dn" shard <splits = [4, 1, 1]> : tensor<2x64x128xbf16>
  // CHECK: moe.expert_ffn {{.*}} activation silu gated top_k 2 global_experts 8 :
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 global_experts 8 : (tensor<?x64xbf16>, tensor<9xi32>, tensor<2x256x64xbf16>, tensor<2x64x128xbf16>) -> tensor<?x64xbf16>
  return %y : tensor<?x64xbf16>
}

// CHECK-LABEL: func.func @fused
func.func @fused(%h: tensor<?x64xbf16>, %a: tensor<?x64xbf16>) -> tensor<?x64xbf16> {
  %w = moe.weight "n" : tensor<64xbf16>
  // CHECK: %[[F:.*]]:2 = moe.fused ins(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?x64xbf16>) {
  // CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<?x64xbf16>, %[[Y:.*]]: tensor<?x64xbf16>, %[[G:.*]]: tensor<64xbf16>):
  // CHECK-NEXT: %[[S:.*]] = moe.add %[[X]], %[[Y]] : tensor<?x64xbf16>
  // CHECK-NEXT: %[[N:.*]] = moe.rms_norm %[[S]], %[[G]]
  // CHECK-NEXT: moe.yield %[[S]], %[[N]] : tensor<?x64xbf16>, tensor<?x64xbf16>
  %f:2 = moe.fused ins(%h, %a, %w) : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<64xbf16>) -> (tensor<?x64xbf16>, tensor<?x64xbf16>) {
  ^bb0(%x: tensor<?x64xbf16>, %y: tensor<?x64xbf16>, %g: tensor<64xbf16>):
    %s = moe.add %x, %y : tensor<?x64xbf16>
    %n = moe.rms_norm %s, %g eps = 1.0e-5 : (tensor<?x64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
    moe.yield %s, %n : tensor<?x64xbf16>, tensor<?x64xbf16>
  }
  return %f#1 : tensor<?x64xbf16>
}

// CHECK-LABEL: func.func @experts_all_to_all
func.func @experts_all_to_all(%x: tensor<?x64xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) -> tensor<?x64xbf16> {
  %gu = moe.weight "gu" shard <splits = [4, 1, 1]> : tensor<2x256x64xbf16>
  %dn = moe.weight "dn" shard <splits = [4, 1, 1]> : tensor<2x64x128xbf16>
  // CHECK: moe.experts {{.*}} activation silu gated global_experts 8 all_to_all 4 :
  %y = moe.experts %x, %i, %p, %gu, %dn activation silu gated global_experts 8 all_to_all 4 : (tensor<?x64xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<2x256x64xbf16>, tensor<2x64x128xbf16>) -> tensor<?x64xbf16>
  return %y : tensor<?x64xbf16>
}
