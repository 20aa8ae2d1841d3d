// RUN: moec %models/tiny-gqa.json -o %t.gqa.mlir
// RUN: moec %models/tiny-moe.json -o %t.moe.mlir
// RUN: moe-opt %t.gqa.mlir -moe-partition-tensor='degree=4' -moe-partition-experts='expert-parallel=4' | FileCheck %s
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=4' -moe-partition-experts='expert-parallel=2 expert-tensor-parallel=2' | FileCheck %s --check-prefix=MIXED
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-tensor-parallel=2' | FileCheck %s --check-prefix=ETP
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=4' -moe-partition-experts='expert-parallel=2 expert-tensor-parallel=2' | moe-opt | FileCheck %s --check-prefix=MIXED
// RUN: moe-opt %t.moe.mlir -moe-partition-experts | FileCheck %s --check-prefix=NONE
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-parallel=2 all-to-all=true' | FileCheck %s --check-prefix=A2A
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-parallel=2 all-to-all=true' | moe-opt -moe-decompose | FileCheck %s --check-prefix=A2AD
// RUN: not moe-opt %t.moe.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-tensor-parallel=2 all-to-all=true' 2>&1 | FileCheck %s --check-prefix=A2AETP
// Bytes each rank sends per step of 4 tokens (moe-report): embedding,
// attention and LM head collectives (1024 + 2 x 1024 + 4096) plus, per
// layer, the experts: an all-reduce of 4 x 128 bf16 (1024), or the
// all-to-all exchange of 8 routed copies (2 x 8 x 256 / 2 x 1/2 = 1024) and
// the gather (4 x 256 x 1/2 = 512).
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-parallel=2' -moe-report='cluster=h100-80gb:1x2 tokens=4' -o /dev/null | FileCheck %s --check-prefix=BYTESAR
// RUN: moe-opt %t.moe.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-parallel=2 all-to-all=true' -moe-report='cluster=h100-80gb:1x2 tokens=4' -o /dev/null | FileCheck %s --check-prefix=BYTESA2A
// RUN: not moe-opt %t.moe.mlir -moe-partition-tensor='degree=4' -moe-partition-experts='expert-parallel=2' 2>&1 | FileCheck %s --check-prefix=PRODUCT
// RUN: not moe-opt %t.gqa.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-parallel=1 expert-tensor-parallel=2' -moe-partition-experts='expert-parallel=1 expert-tensor-parallel=2' 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not moe-opt %t.moe.mlir -moe-partition-tensor='degree=8' 2>&1 | FileCheck %s --check-prefix=HEADS
// RUN: not moe-opt %s -split-input-file -moe-partition-experts='expert-parallel=2' 2>&1 | FileCheck %s --check-prefix=INVALID
// RUN: not moe-opt %t.moe.mlir -moe-partition-experts='expert-parallel=0' 2>&1 | FileCheck %s --check-prefix=ZERO

// tiny-gqa: 8 ungated GELU experts over 4 ranks, 2 whole experts each.
// CHECK: moe.weight "model.layers.0.mlp.experts.up_proj" shard <splits = [4, 1, 1]> : tensor<2x256x128xbf16>
// CHECK: moe.weight "model.layers.0.mlp.experts.down_proj" shard <splits = [4, 1, 1]> : tensor<2x128x256xbf16>
// Rank r holds expert group r (the value comes from the runtime).
// CHECK: %[[G:.*]] = moe.group_rank group_size 4 : tensor<1xi32>
// CHECK: %[[Y:.*]] = moe.experts {{.*}} activation gelu global_experts 8 expert_group %[[G]] :
// CHECK-NEXT: moe.all_reduce %[[Y]] group_size 4

// tiny-moe: 4 gated experts, 2 groups of 2 ranks: a group holds 2 experts,
// each cut in 2 (gate and up halves cut separately).
// MIXED: moe.weight "model.layers.0.mlp.experts.gate_up_proj" shard <splits = [2, 2, 1], chunks = [1, 2, 1]> : tensor<2x128x128xbf16>
// MIXED: moe.weight "model.layers.0.mlp.experts.down_proj" shard <splits = [2, 1, 2]> : tensor<2x128x64xbf16>
// Ranks 0, 1 hold expert group 0; ranks 2, 3 group 1.
// MIXED: %[[G:.*]] = moe.group_rank group_size 4 divisor 2 : tensor<1xi32>
// MIXED: moe.experts {{.*}} activation silu gated global_experts 4 expert_group %[[G]] :
// MIXED-NEXT: moe.all_reduce

// All experts on every rank, each cut in 2: no global_experts.
// ETP: moe.weight "model.layers.0.mlp.experts.gate_up_proj" shard <splits = [1, 2, 1], chunks = [1, 2, 1]> : tensor<4x128x128xbf16>
// ETP: %[[Y:.*]] = moe.experts {{.*}} activation silu gated :
// ETP-NEXT: moe.all_reduce %[[Y]] group_size 2

// Without tensor parallelism there is nothing to place.
// NONE-NOT: shard
// NONE-NOT: global_experts

// Whole experts, tokens exchanged inside the experts op: no all-reduce after
// it. moe-decompose spells the exchange out (see moe-decompose.mlir).
// A2A: %[[Y:.*]] = moe.experts {{.*}} activation silu gated global_experts 4 all_to_all 2 expert_group %{{.*}} :
// A2A-NOT: moe.all_reduce %[[Y]]
// A2A: moe.add %{{.*}}, %[[Y]]
// A2AD: moe.expert_exchange to_experts {{.*}} top_k 2 group_size 2
// A2AD: moe.expert_exchange to_tokens {{.*}} top_k 2 group_size 2
// A2AD: %[[Y:.*]] = moe.all_gather_tokens %{{.*}} group_size 2
// A2AD-NOT: moe.all_reduce %[[Y]]
// A2AD: moe.add %{{.*}}, %[[Y]]
// A2AETP: error: moe-partition-experts: all-to-all needs whole experts on each rank (expert-tensor-parallel=1), got 2
// BYTESAR: communication per step per rank (most loaded stage): 9216 bytes within the node
// BYTESA2A: communication per step per rank (most loaded stage): 10240 bytes within the node

// PRODUCT: error: moe-partition-experts: expert-parallel (2) x expert-tensor-parallel (1) must equal the ranks of a stage (4, the tensor-parallel degree)
// TWICE: error: weight 'model.layers.0.mlp.experts.up_proj' is already sharded
// HEADS: error: moe-partition-tensor: num_heads (4) is not divisible by the tensor-parallel degree (8)
// ZERO: error: moe-partition-experts: expert-parallel and expert-tensor-parallel must be at least 1, got 0 and 1
// INVALID: error: moe-partition-experts: 3 experts cannot be spread evenly over 2 expert-parallel groups
// INVALID: error: moe-partition-experts needs graph-level moe.experts; run it before moe-decompose

module attributes {moe.tensor_parallel = 2 : i64} {
  func.func @forward(%x: tensor<?x8xbf16>, %i: tensor<?x2xi32>, %p: tensor<?x2xf32>) -> tensor<?x8xbf16> {
    %gu = moe.weight "gu" : tensor<3x16x8xbf16>
    %dn = moe.weight "dn" : tensor<3x8x16xbf16>
    %y = moe.experts %x, %i, %p, %gu, %dn activation gelu : (tensor<?x8xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<3x16x8xbf16>, tensor<3x8x16xbf16>) -> tensor<?x8xbf16>
    return %y : tensor<?x8xbf16>
  }
}

// -----

module attributes {moe.tensor_parallel = 2 : i64} {
  func.func @forward(%x: tensor<?x8xbf16>, %off: tensor<5xi32>) -> tensor<?x8xbf16> {
    %gu = moe.weight "gu" : tensor<4x16x8xbf16>
    %dn = moe.weight "dn" : tensor<4x8x16xbf16>
    %y = moe.expert_ffn %x, %off, %gu, %dn activation gelu top_k 2 : (tensor<?x8xbf16>, tensor<5xi32>, tensor<4x16x8xbf16>, tensor<4x8x16xbf16>) -> tensor<?x8xbf16>
    return %y : tensor<?x8xbf16>
  }
}
