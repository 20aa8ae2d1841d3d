// RUN: moec %models/tiny-gqa.json -o %t.mlir
// RUN: moe-opt %t.mlir -moe-partition-pipeline='stages=2' | FileCheck %s
// RUN: moe-opt %t.mlir -moe-partition-pipeline='stages=3' | FileCheck %s --check-prefix=THREE
// RUN: moe-opt %t.mlir -moe-partition-pipeline='stages=2 head-layers=2' | FileCheck %s --check-prefix=HEAD
// RUN: moe-opt %t.mlir -moe-partition-pipeline='stages=1' | FileCheck %s --check-prefix=ONE
// RUN: moe-opt %t.mlir -moe-partition-pipeline='stages=2' | moe-opt | FileCheck %s
// RUN: not moe-opt %t.mlir -moe-partition-pipeline='stages=4' 2>&1 | FileCheck %s --check-prefix=TOOMANY
// RUN: not moe-opt %t.mlir -moe-partition-pipeline='stages=2 head-layers=3' 2>&1 | FileCheck %s --check-prefix=BADHEAD
// RUN: not moe-opt %t.mlir -moe-partition-pipeline='stages=2' -moe-partition-pipeline='stages=2' 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not moe-opt %t.mlir -moe-decompose -moe-partition-pipeline='stages=2' 2>&1 | FileCheck %s --check-prefix=DECOMPOSED

// tiny-gqa: 3 layers, tied embeddings. Even split of 3 over 2: the head
// stage gets 1 layer, the last 2.
// CHECK: module attributes {{{.*}}moe.pipeline_stages = 2 : i64
// CHECK-LABEL: func.func @forward_stage0
// CHECK-SAME: !moe.kv_cache<num_layers = 1, num_kv_heads = 2, head_dim = 32, element_type = bf16>
// CHECK-SAME: -> !moe.kv_cache<num_layers = 1,
// CHECK-SAME: attributes {moe.first_layer = 0 : i64, moe.stage = 0 : i64}
// CHECK: moe.weight "model.embed_tokens.weight"
// CHECK: moe.embed
// CHECK: %{{.*}}, %[[KV:.*]] = moe.attention {{.*}} layer 0
// CHECK-NOT: moe.attention
// CHECK: moe.experts
// CHECK-NEXT: %[[H:.*]] = moe.add
// CHECK-NEXT: moe.send %[[H]] to stage 1 : tensor<?x128xbf16>
// CHECK-NEXT: return %[[KV]]
// CHECK-LABEL: func.func @forward_stage1
// CHECK-SAME: !moe.kv_cache<num_layers = 2,
// CHECK-SAME: -> (tensor<?x512xf32>, !moe.kv_cache<num_layers = 2,
// CHECK-SAME: attributes {moe.first_layer = 1 : i64, moe.stage = 1 : i64}
// CHECK-NEXT: %[[IN:.*]] = moe.recv from stage 0 : tensor<?x128xbf16>
// CHECK: moe.weight "model.layers.1.input_layernorm.weight"
// CHECK: moe.layer_norm %[[IN]]
// CHECK: moe.attention {{.*}} layer 0
// CHECK: moe.attention {{.*}} layer 1
// The tied LM head reads the embedding table, which this stage holds too.
// CHECK: %[[TABLE:.*]] = moe.weight "model.embed_tokens.weight"
// CHECK: moe.lm_head %{{.*}}, %[[TABLE]]
// CHECK-NOT: moe.send
// CHECK: return
// CHECK-LABEL: func.func @sample
// CHECK-NOT: func.func @forward(

// THREE-LABEL: func.func @forward_stage0
// THREE: moe.send {{.*}} to stage 1
// THREE-LABEL: func.func @forward_stage1
// THREE: moe.recv from stage 0
// THREE: moe.attention {{.*}} layer 0
// THREE: moe.send {{.*}} to stage 2
// THREE-LABEL: func.func @forward_stage2
// THREE: moe.recv from stage 1
// THREE: moe.lm_head

// HEAD-LABEL: func.func @forward_stage0
// HEAD-SAME: !moe.kv_cache<num_layers = 2,
// HEAD-LABEL: func.func @forward_stage1
// HEAD-SAME: !moe.kv_cache<num_layers = 1,

// ONE: moe.pipeline_stages = 1 : i64
// ONE: func.func @forward(

// TOOMANY: error: moe-partition-pipeline: stages must be between 1 and the number of layers (3), got 4
// BADHEAD: error: moe-partition-pipeline: head-layers must leave every stage at least one layer: between 1 and 2 for 2 stages of 3 layers, got 3
// TWICE: error: moe-partition-pipeline: the model is already partitioned into stages
// DECOMPOSED: error: moe-partition-pipeline needs graph-level moe.attention ops (one per layer); run it before moe-decompose
