// The moe-report pass: figures computed by hand from the cost model
// (dialects/moe/MoEOpsCost.cpp) for this toy model: d_model 8, vocab 16,
// 2 query heads x 4, 1 KV head, 4 SwiGLU experts of width 8, top-2.
// RUN: moe-opt %s -moe-report -o /dev/null | FileCheck %s
// RUN: moe-opt %s -moe-report='tokens=4 context=2' -o /dev/null | FileCheck %s --check-prefix=FOUR
// RUN: moe-opt %s -moe-report='output=%t.txt' | FileCheck %s --check-prefix=IR
// RUN: FileCheck %s < %t.txt
// RUN: not moe-opt %s -moe-report='tokens=0' -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADTOKENS
// RUN: echo 'module {}' | not moe-opt -moe-report -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOFORWARD

!kv = !moe.kv_cache<num_layers = 1, num_kv_heads = 1, head_dim = 4, element_type = bf16>
module attributes {moe.model = "toy", moe.max_context = 10 : i64} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>, %kv: !kv,
                     %rows: tensor<?xi32>) -> (tensor<?x16xf32>, !kv) {
    %emb = moe.weight "model.embed_tokens.weight" : tensor<16x8xbf16>
    %h = moe.embed %tokens, %emb : (tensor<?xi32>, tensor<16x8xbf16>) -> tensor<?x8xbf16>
    %nw = moe.weight "model.layers.0.input_layernorm.weight" : tensor<8xbf16>
    %n = moe.rms_norm %h, %nw eps = 1.0e-5 : (tensor<?x8xbf16>, tensor<8xbf16>) -> tensor<?x8xbf16>
    %wq = moe.weight "q" : tensor<8x8xbf16>
    %wk = moe.weight "k" : tensor<4x8xbf16>
    %wv = moe.weight "v" : tensor<4x8xbf16>
    %wo = moe.weight "o" : tensor<8x8xbf16>
    %a, %kv1 = moe.attention %n, %pos, %kv layer 0 heads 2 kv_heads 1 head_dim 4 causal weights(%wq, %wk, %wv, %wo) : (tensor<?x8xbf16>, tensor<?xi32>, !kv, tensor<8x8xbf16>, tensor<4x8xbf16>, tensor<4x8xbf16>, tensor<8x8xbf16>) -> (tensor<?x8xbf16>, !kv)
    %h1 = moe.add %h, %a : tensor<?x8xbf16>
    %g = moe.weight "g" : tensor<4x8xbf16>
    %i, %p = moe.router %h1, %g top_k 2 normalize : (tensor<?x8xbf16>, tensor<4x8xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
    %gu = moe.weight "gu" : tensor<4x16x8xbf16>
    %dn = moe.weight "dn" : tensor<4x8x8xbf16>
    %m = moe.experts %h1, %i, %p, %gu, %dn activation silu gated : (tensor<?x8xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<4x16x8xbf16>, tensor<4x8x8xbf16>) -> tensor<?x8xbf16>
    %h2 = moe.add %h1, %m : tensor<?x8xbf16>
    %head = moe.weight "lm_head.weight" : tensor<16x8xbf16>
    %logits = moe.lm_head %h2, %head : (tensor<?x8xbf16>, tensor<16x8xbf16>) -> tensor<?x16xf32>
    return %logits, %kv1 : tensor<?x16xf32>, !kv
  }
}

// CHECK-LABEL: model toy
// CHECK:      embeddings                 128 {{.*}} 256 B
// CHECK-NEXT: attention (shared)         192 {{.*}} 384 B
// CHECK-NEXT: norms                        8 {{.*}}  16 B
// CHECK-NEXT: routers                     32 {{.*}}  64 B
// CHECK-NEXT: lm head                    128 {{.*}} 256 B
// CHECK-NEXT: experts, all 4             768 {{.*}} 1.54 kB
// CHECK-NEXT: experts, one (all layers)  192 {{.*}} 384 B
// CHECK-NEXT: total                    1,256 {{.*}} 2.51 kB
// Active: one embedding row (8) + norm 8 + attention 192 + router 32 +
// half the experts (384) + lm head 128.
// CHECK-NEXT: active parameters per token  752
// CHECK-NEXT: step: 1 token(s), each attending to 10 cached positions
// rms 32 + attention (384 projections + 320 scores) + adds 16 + router 84 +
// experts 832 + lm head 256.
// CHECK-NEXT: FLOPs per token            1,924
// CHECK-NEXT: without the context        1,604
// CHECK-NEXT: bytes read per step        1,832
// CHECK-NEXT: bytes written per step       192
// CHECK-NEXT: kv cache bytes per token      16
// CHECK-NEXT: = 1 layers x 2 (K, V) x 1 kv heads x 4 x 2 bytes

// Four tokens at context 2: the experts read 4 * (1 - 0.5^4) = 3.75 of the 4
// experts' 384 weight bytes.
// FOUR: step: 4 token(s), each attending to 2 cached positions
// FOUR-NEXT: FLOPs per token            1,668
// FOUR-NEXT: without the context        1,604
// FOUR-NEXT: bytes read per step        3,024
// FOUR-NEXT: bytes written per step       768

// IR: module attributes {moe.max_context = 10 : i64, moe.model = "toy"}
// IR: moe.experts

// BADTOKENS: error: moe-report: tokens must be at least 1, got 0
// NOFORWARD: error: model has no @forward function to report on

// A partitioned model gets the per-stage table; with a cluster, the
// predicted step; json=true writes the same as JSON.
// RUN: moec %models/tiny-moe.json --tensor-parallel=2 --pipeline-parallel=2 --expert-parallel=2 -o %t.part.mlir
// RUN: moe-opt %t.part.mlir -moe-report -o /dev/null | FileCheck %s --check-prefix=PART
// RUN: moe-opt %t.part.mlir -moe-report='cluster=a100-80gb:2x2 tokens=4' -o /dev/null | FileCheck %s --check-prefix=COST
// RUN: moe-opt %t.part.mlir -moe-report='json=true' -o /dev/null | FileCheck %s --check-prefix=JSON
// RUN: not moe-opt %t.part.mlir -moe-report='cluster=nowhere:1x1' -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADCLUSTER
// PART-NOT: model tiny-moe
// PART: plan: 2 pipeline stage(s) x 2 tensor-parallel rank(s) = 4 GPUs
// PART-NEXT: experts: 4 per layer in 2 group(s) of 1 rank(s), inside each stage (node)
// PART-NEXT: stage ranks    layers     params/GPU   GB/GPU   @8bit  GB/node   @8bit  KV B/tok
// PART-NEXT: 0     0-1      0            156.42 K
// PART-NEXT: 1     2-3      1            156.54 K
// COST: plan: 2 pipeline stage(s) x 2 tensor-parallel rank(s) = 4 GPUs of A100-SXM4-80GB (a100-80gb-2x2)
// COST: decode step, 4 sequence(s) at context 256:
// COST-NEXT: communication per step per rank (most loaded stage): 6144 bytes within the node, 1024 bytes to the next stage
// JSON: "plan": {
// JSON: "pipeline_stages": 2,
// JSON: "params_per_gpu": 156416,
// BADCLUSTER: error: moe-report: unknown cluster preset "nowhere"
