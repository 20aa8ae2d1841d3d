// RUN: moec %models/tiny-moe.json -o %t.moe.mlir
// RUN: moec %models/tiny-gqa.json -o %t.gqa.mlir
// RUN: moec %models/tiny-draft.json -o %t.dense.mlir
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=4' | FileCheck %s
// RUN: moe-opt %t.gqa.mlir -moe-partition-tensor='degree=4' | FileCheck %s --check-prefix=GQA
// RUN: moe-opt %t.gqa.mlir -moe-partition-tensor='degree=2' | FileCheck %s --check-prefix=GQA2
// RUN: moe-opt %t.dense.mlir -moe-partition-tensor='degree=2' | FileCheck %s --check-prefix=DENSE
// RUN: moe-opt %t.moe.mlir -moe-partition-pipeline='stages=2' -moe-partition-tensor='degree=2' | FileCheck %s --check-prefix=STAGES
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=4' | moe-opt | FileCheck %s
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=1' | FileCheck %s --check-prefix=ONE
// RUN: not moe-opt %t.moe.mlir -moe-partition-tensor='degree=3' 2>&1 | FileCheck %s --check-prefix=HEADS
// RUN: not moe-opt %t.gqa.mlir -moe-partition-tensor='degree=4' -moe-partition-tensor='degree=2' 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not moe-opt %t.moe.mlir -moe-decompose -moe-partition-tensor='degree=2' 2>&1 | FileCheck %s --check-prefix=DECOMPOSED
// RUN: not moe-opt %t.moe.mlir -moe-partition-tensor='degree=0' 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: not moe-opt %s -split-input-file -moe-partition-tensor='degree=2' 2>&1 | FileCheck %s --check-prefix=INVALID

// tiny-moe: 4 query heads, 1 KV head (MQA), vocabulary 512 over 4 ranks.
// CHECK: moe.tensor_parallel = 4 : i64
// CHECK-LABEL: func.func @forward
// CHECK-SAME: !moe.kv_cache<num_layers = 2, num_kv_heads = 1, head_dim = 32
// CHECK: moe.weight "model.embed_tokens.weight" shard <splits = [4, 1]> : tensor<128x128xbf16>
// Each rank looks up its part of the vocabulary; the parts are summed.
// CHECK: %[[P:.*]] = moe.group_rank group_size 4 : tensor<1xi32>
// CHECK-NEXT: %[[E:.*]] = moe.embed %{{.*}}, %{{.*}} part %[[P]]
// CHECK-NEXT: moe.all_reduce %[[E]] group_size 4 : tensor<?x128xbf16>
// CHECK: moe.weight "model.layers.0.self_attn.q_proj.weight" shard <splits = [4, 1]> : tensor<32x128xbf16>
// The one KV head is replicated: no shard, full size.
// CHECK: moe.weight "model.layers.0.self_attn.k_proj.weight" : tensor<32x128xbf16>
// CHECK: moe.weight "model.layers.0.self_attn.v_proj.weight" : tensor<32x128xbf16>
// CHECK: moe.weight "model.layers.0.self_attn.o_proj.weight" shard <splits = [1, 4]> : tensor<128x32xbf16>
// CHECK: %[[A:.*]], %{{.*}} = moe.attention {{.*}} heads 1 kv_heads 1 head_dim 32
// CHECK-NEXT: %[[R:.*]] = moe.all_reduce %[[A]] group_size 4
// CHECK-NEXT: moe.add %{{.*}}, %[[R]]
// Router and experts are untouched by this pass.
// CHECK: moe.weight "model.layers.0.mlp.gate.weight" : tensor<4x128xbf16>
// CHECK: moe.weight "model.layers.0.mlp.experts.gate_up_proj" : tensor<4x256x128xbf16>
// CHECK: %[[L:.*]] = moe.lm_head %{{.*}}, %{{.*}} : (tensor<?x128xbf16>, tensor<128x128xbf16>) -> tensor<?x128xf32>
// CHECK-NEXT: %[[G:.*]] = moe.all_gather %[[L]] dim 1 group_size 4 : (tensor<?x128xf32>) -> tensor<?x512xf32>
// CHECK-NEXT: return %[[G]]

// GQA with 2 KV heads over 4 ranks: ranks 0-1 keep KV head 0, ranks 2-3 KV
// head 1. Tied embeddings: one shard serves embed and LM head.
// GQA: moe.weight "model.embed_tokens.weight" shard <splits = [4, 1]>
// GQA: moe.weight "model.layers.0.self_attn.k_proj.weight" shard <splits = [2, 1]> : tensor<32x128xbf16>
// GQA: moe.attention {{.*}} heads 1 kv_heads 1 head_dim 32
// GQA-SAME: !moe.kv_cache<num_layers = 3, num_kv_heads = 1,
// GQA2: moe.weight "model.layers.0.self_attn.k_proj.weight" shard <splits = [2, 1]> : tensor<32x128xbf16>
// GQA2: moe.attention {{.*}} heads 2 kv_heads 1 head_dim 32

// DENSE: moe.weight "model.layers.0.mlp.gate_proj.weight" shard <splits = [2, 1]> : tensor<64x64xbf16>
// DENSE: moe.weight "model.layers.0.mlp.up_proj.weight" shard <splits = [2, 1]> : tensor<64x64xbf16>
// DENSE: moe.weight "model.layers.0.mlp.down_proj.weight" shard <splits = [1, 2]> : tensor<64x64xbf16>
// DENSE: %[[F:.*]] = moe.ffn
// DENSE-NEXT: moe.all_reduce %[[F]] group_size 2

// STAGES-LABEL: func.func @forward_stage0
// STAGES: moe.all_reduce
// STAGES-LABEL: func.func @forward_stage1
// STAGES: moe.all_gather

// ONE: moe.tensor_parallel = 1 : i64
// ONE-NOT: shard

// HEADS: error: moe-partition-tensor: vocabulary (512) is not divisible by the tensor-parallel degree (3)
// TWICE: error: moe-partition-tensor: the model is already partitioned for tensor parallelism
// DECOMPOSED: error: moe-partition-tensor needs graph-level ops; run it before moe-decompose
// ZERO: error: moe-partition-tensor: degree must be at least 1, got 0
// INVALID: error: moe-partition-tensor: num_kv_heads (3) and the tensor-parallel degree (2): one must divide the other
// INVALID: error: moe-partition-tensor: ffn width (101) is not divisible by the tensor-parallel degree (2)
// INVALID: error: moe-partition-tensor: vocabulary (101) is not divisible by the tensor-parallel degree (2)
// INVALID: error: moe-partition-tensor: vocabulary (99) is not divisible by the tensor-parallel degree (2)

!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 3, head_dim = 8, element_type = bf16>
func.func @forward(%x: tensor<?x48xbf16>, %pos: tensor<?xi32>, %kv: !kv) -> tensor<?x48xbf16> {
  %wq = moe.weight "q" : tensor<48x48xbf16>
  %wk = moe.weight "k" : tensor<24x48xbf16>
  %wo = moe.weight "o" : tensor<48x48xbf16>
  %a, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 6 kv_heads 3 head_dim 8 weights(%wq, %wk, %wk, %wo) : (tensor<?x48xbf16>, tensor<?xi32>, !kv, tensor<48x48xbf16>, tensor<24x48xbf16>, tensor<24x48xbf16>, tensor<48x48xbf16>) -> (tensor<?x48xbf16>, !kv)
  return %a : tensor<?x48xbf16>
}

// -----

func.func @forward(%x: tensor<?x48xbf16>) -> tensor<?x48xbf16> {
  %u = moe.weight "u" : tensor<101x48xbf16>
  %d = moe.weight "d" : tensor<48x101xbf16>
  %y = moe.ffn %x up %u down %d activation relu : (tensor<?x48xbf16>, tensor<101x48xbf16>, tensor<48x101xbf16>) -> tensor<?x48xbf16>
  return %y : tensor<?x48xbf16>
}

// -----

func.func @forward(%t: tensor<?xi32>) -> tensor<?x48xbf16> {
  %e = moe.weight "e" : tensor<101x48xbf16>
  %h = moe.embed %t, %e : (tensor<?xi32>, tensor<101x48xbf16>) -> tensor<?x48xbf16>
  return %h : tensor<?x48xbf16>
}

// -----

func.func @forward(%x: tensor<?x48xbf16>) -> tensor<?x99xf32> {
  %w = moe.weight "lm_head.weight" : tensor<99x48xbf16>
  %l = moe.lm_head %x, %w : (tensor<?x48xbf16>, tensor<99x48xbf16>) -> tensor<?x99xf32>
  return %l : tensor<?x99xf32>
}
