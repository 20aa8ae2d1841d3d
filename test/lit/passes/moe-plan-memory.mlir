// RUN: moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8 max-tokens=2 workspace-mib=0' | FileCheck %s
// RUN: moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8 max-tokens=2' | FileCheck %s --check-prefix=WORKSPACE
// RUN: moec %models/gpt4-mini.json -o %t.mini.mlir
// RUN: not moe-opt %t.mini.mlir -moe-plan-memory='cluster=a100-40gb:1x1' 2>&1 | FileCheck %s --check-prefix=FULL
// RUN: moe-opt %t.mini.mlir -moe-partition-tensor='degree=2' -moe-partition-experts='expert-parallel=2' -moe-plan-memory='cluster=a100-40gb:1x2' | FileCheck %s --check-prefix=TWO
// RUN: not moe-opt %t.mini.mlir -moe-partition-pipeline='stages=2' -moe-partition-tensor='degree=8' -moe-plan-memory='cluster=a100-40gb:1x8' 2>&1 | FileCheck %s --check-prefix=GPUS
// RUN: not moe-opt %s -moe-plan-memory='cluster=a100-40gb:1y8' 2>&1 | FileCheck %s --check-prefix=CLUSTER
// RUN: not moe-opt %s -moe-plan-memory='cluster=h100-80gb:1x8 max-tokens=0' 2>&1 | FileCheck %s --check-prefix=TOKENS

// One rank: weights 32 bytes; activations peak at 3 live [2 x 8] f32 buffers
// (%x, %a, %b while %b is computed) = 192 bytes; the KV cache gets the rest
// of the H100's 78 GiB usable (80 GiB less the 2 GiB reserve).
// CHECK: module attributes {moe.cluster = "h100-80gb-1x8"
// CHECK: func.func @forward
// CHECK-SAME: moe.memory_plan = #moe.memory_plan<weights = 32, activations = 192, workspace = 0, kv_cache = 83751862048, usable = 83751862272>
// WORKSPACE: #moe.memory_plan<weights = 32, activations = 192, workspace = 268435456, kv_cache = 83483426592, usable = 83751862272>

// FULL: error: moe-plan-memory: stage 0 (rank 0) does not fit on A100-SXM4-40GB (38.00 GiB usable): weights 38.04 GiB + activations 1.04 GiB + workspace 0.25 GiB leave -1.33 GiB for the KV cache, 1.42 GiB short of one 8192-token sequence (0.09 GiB)

// Two ranks: each holds half of the embedding, LM head, q/o projections and
// experts (20,394,803,200 parameters) and all of the norms, routers and the
// one KV head's k/v projections (26,939,392): 10,224,340,992 x 2 bytes.
// TWO: moe.memory_plan = #moe.memory_plan<weights = 20448681984,

// GPUS: error: moe-plan-memory: the plan needs 16 GPUs (2 stages x 8 ranks) but cluster a100-40gb-1x8 has 8
// CLUSTER: error: moe-plan-memory: bad cluster "a100-40gb:1y8": expected PRESET:NODESxGPUS, e.g. a100-40gb:16x8
// TOKENS: error: moe-plan-memory: max-tokens must be at least 1 and workspace-mib not negative, got 0 and 256

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
