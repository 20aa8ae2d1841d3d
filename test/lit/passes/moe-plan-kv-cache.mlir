// RUN: moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8 max-tokens=2 workspace-mib=0' -moe-plan-kv-cache | FileCheck %s
// RUN: moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8 max-tokens=2 workspace-mib=0' -moe-plan-kv-cache='block-size=16 context=40' | FileCheck %s --check-prefix=CTX
// RUN: moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8 max-tokens=2 workspace-mib=0' -moe-plan-kv-cache='block-size=1' | FileCheck %s --check-prefix=ONE
// RUN: not moe-opt %s -moe-plan-kv-cache 2>&1 | FileCheck %s --check-prefix=NOPLAN
// RUN: not moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8' -moe-plan-kv-cache='block-size=0' 2>&1 | FileCheck %s --check-prefix=BLOCK
// RUN: not moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8' -moe-plan-kv-cache='context=0' 2>&1 | FileCheck %s --check-prefix=CONTEXT
// MQA on tensor-parallel ranks: every rank keeps the one KV head.
// RUN: moec %models/gpt4-mini.json --tensor-parallel=8 --cluster=h100-80gb:1x8 --emit=partitioned | FileCheck %s --check-prefix=MQA

// 1 layer x 2 (K, V) x 1 head x 4 x 4 bytes = 32 bytes per token; 16-token
// blocks of 512 bytes in the 83751862048 bytes moe-plan-memory left:
// 163577855 blocks; max_context 4 fits one block, so as many sequences.
// CHECK: moe.kv_plan = #moe.kv_plan<block_size = 16, bytes_per_token = 32, blocks = 163577855, sequence_length = 4, sequences = 163577855>
// A 40-token sequence needs 3 blocks.
// CTX: moe.kv_plan = #moe.kv_plan<block_size = 16, bytes_per_token = 32, blocks = 163577855, sequence_length = 40, sequences = 54525951>
// ONE: moe.kv_plan = #moe.kv_plan<block_size = 1, bytes_per_token = 32, blocks = 2617245689, sequence_length = 4, sequences = 654311422>

// NOPLAN: error: moe-plan-kv-cache needs the memory plan of moe-plan-memory; run that first
// BLOCK: error: moe-plan-kv-cache: block-size must be at least 1, got 0
// CONTEXT: error: moe-plan-kv-cache: context must be at least 1, got 0

// 24 layers x 2 x 1 head x 128 x 2 bytes on each of the 8 ranks.
// MQA: moe.kv_plan = #moe.kv_plan<block_size = 16, bytes_per_token = 12288,

!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 1, head_dim = 4, element_type = f32>
module attributes {moe.max_context = 4 : i64} {
  func.func @forward(%x: tensor<?x8xf32>, %kv: !kv) -> tensor<?x8xf32> {
    %w = moe.weight "w" : tensor<8xf32>
    %a = moe.rms_norm %x, %w eps = 1.0e-5 : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %b = moe.add %a, %x : tensor<?x8xf32>
    %c = moe.add %b, %b : tensor<?x8xf32>
    return %c : tensor<?x8xf32>
  }
}
