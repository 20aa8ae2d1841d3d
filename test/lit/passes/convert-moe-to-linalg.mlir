// RUN: moe-opt %s -convert-moe-to-linalg -split-input-file | FileCheck %s
// Numerics are checked by executing the lowered code: codegen/host-execution.mlir.

// CHECK-LABEL: func.func @add
// CHECK-SAME: (%[[A:.*]]: tensor<?x8xbf16>, %[[B:.*]]: tensor<?x8xbf16>)
// CHECK: %[[N:.*]] = tensor.dim %[[A]], %c0
// CHECK: %[[E:.*]] = tensor.empty(%[[N]]) : tensor<?x8xbf16>
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]{{.*}} ins(%[[A]], %[[B]] : tensor<?x8xbf16>, tensor<?x8xbf16>) outs(%[[E]] : tensor<?x8xbf16>)
// CHECK: arith.extf {{.*}} : bf16 to f32
// CHECK: arith.addf {{.*}} : f32
// CHECK: arith.truncf {{.*}} : f32 to bf16
// CHECK-NOT: moe.add
func.func @add(%a: tensor<?x8xbf16>, %b: tensor<?x8xbf16>) -> tensor<?x8xbf16> {
  %s = moe.add %a, %b : tensor<?x8xbf16>
  return %s : tensor<?x8xbf16>
}

// -----

// A row reduction of x^2 into f32, then the scale: x * rsqrt(sum / 8 + eps) * w.
// CHECK-LABEL: func.func @rms_norm
// CHECK-DAG: %[[EPS:.*]] = arith.constant 9.99999974E-6 : f32
// CHECK-DAG: %[[INV:.*]] = arith.constant 1.250000e-01 : f32
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?xf32>)
// CHECK: %[[SQ:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]{{.*}} outs(%[[Z]] : tensor<?xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]{{.*}} ins(%{{.*}}, %[[SQ]], %{{.*}} : tensor<?x8xbf16>, tensor<?xf32>, tensor<8xbf16>)
// CHECK: arith.mulf %{{.*}}, %[[INV]]
// CHECK: arith.addf %{{.*}}, %[[EPS]]
// CHECK: math.rsqrt
func.func @rms_norm(%x: tensor<?x8xbf16>, %w: tensor<8xbf16>) -> tensor<?x8xbf16> {
  %y = moe.rms_norm %x, %w eps = 1.0e-5 : (tensor<?x8xbf16>, tensor<8xbf16>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

// Two row reductions (x^2 and x), then (x - mean) * rsqrt(var + eps) * w + b.
// CHECK-LABEL: func.func @layer_norm
// CHECK: linalg.generic {{.*}}"reduction"
// CHECK: linalg.generic {{.*}}"reduction"
// CHECK: linalg.generic {{.*}}ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x8xf32>, tensor<?xf32>, tensor<8xf32>, tensor<?xf32>, tensor<8xf32>)
// CHECK: arith.subf
// CHECK: math.rsqrt
func.func @layer_norm(%x: tensor<?x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<?x8xf32> {
  %y = moe.layer_norm %x, %w, %b eps = 1.0e-5 : (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Each element reads its pair partner (column +- head_dim/2) and rotates.
// CHECK-LABEL: func.func @rope
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xbf16>, %[[P:.*]]: tensor<?xi32>)
// CHECK: linalg.generic {{.*}} ins(%[[X]], %[[P]] : tensor<?x8xbf16>, tensor<?xi32>)
// CHECK: linalg.index 0
// CHECK: linalg.index 1
// CHECK: arith.remui %{{.*}}, %c4
// CHECK: tensor.extract %[[X]]
// CHECK: math.exp
// CHECK: math.cos
// CHECK: math.sin
func.func @rope(%x: tensor<?x8xbf16>, %p: tensor<?xi32>) -> tensor<?x8xbf16> {
  %y = moe.rope %x, %p head_dim 4 <theta = 10000.0, style = rotate_half> : (tensor<?x8xbf16>, tensor<?xi32>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

// Row gathers read whole rows at the indices.
// CHECK-LABEL: func.func @gather
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xbf16>, %[[R:.*]]: tensor<?xi32>)
// CHECK: %[[N:.*]] = tensor.dim %[[R]], %c0
// CHECK: %[[E:.*]] = tensor.empty(%[[N]]) : tensor<?x8xbf16>
// CHECK: linalg.generic {{.*}} ins(%[[R]] : tensor<?xi32>) outs(%[[E]] : tensor<?x8xbf16>)
// CHECK: arith.index_cast
// CHECK: tensor.extract %[[X]]
func.func @gather(%x: tensor<?x8xbf16>, %r: tensor<?xi32>) -> tensor<?x8xbf16> {
  %y = moe.gather_tokens %x, %r : (tensor<?x8xbf16>, tensor<?xi32>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

// The combine gathers each token's copies through the permutation and sums
// them weighted, in f32 over a [tokens, d_model, top_k] domain.
// CHECK-LABEL: func.func @combine
// CHECK-SAME: (%[[Y:.*]]: tensor<?x8xbf16>, %[[P:.*]]: tensor<?xi32>, %[[W:.*]]: tensor<?x2xf32>)
// CHECK: linalg.fill {{.*}} -> tensor<?x8xf32>
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]{{.*}} ins(%[[W]] : tensor<?x2xf32>)
// CHECK: tensor.extract %[[P]]
// CHECK: tensor.extract %[[Y]]
// CHECK: arith.truncf {{.*}} : f32 to bf16
// CHECK-NOT: moe.combine
func.func @combine(%y: tensor<?x8xbf16>, %p: tensor<?xi32>, %w: tensor<?x2xf32>) -> tensor<?x8xbf16> {
  %c = moe.combine %y, %p, %w : (tensor<?x8xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x8xbf16>
  return %c : tensor<?x8xbf16>
}

// -----

// A vocabulary-sharded table needs the rank's row offset: not lowered yet.
// CHECK-LABEL: func.func @sharded_embed
// CHECK: moe.embed
func.func @sharded_embed(%t: tensor<?xi32>) -> tensor<?x8xbf16> {
  %w = moe.weight "e" shard <splits = [2, 1]> : tensor<50x8xbf16>
  %y = moe.embed %t, %w : (tensor<?xi32>, tensor<50x8xbf16>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

// GEMMs with [out, in] weights: a contraction over the inner dimension,
// accumulated in f32, rounded once.
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.*]]: tensor<?x8xbf16>, %[[W:.*]]: tensor<16x8xbf16>)
// CHECK: %[[Z:.*]] = linalg.fill {{.*}} -> tensor<?x16xf32>
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[X]], %[[W]] : tensor<?x8xbf16>, tensor<16x8xbf16>) outs(%[[Z]] : tensor<?x16xf32>)
// CHECK: arith.truncf {{.*}} : f32 to bf16
// CHECK-NOT: moe.linear
func.func @linear(%x: tensor<?x8xbf16>, %w: tensor<16x8xbf16>) -> tensor<?x16xbf16> {
  %y = moe.linear %x, %w category mlp : (tensor<?x8xbf16>, tensor<16x8xbf16>) -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

// The router: scores, softmax statistics, top_k masked arg-max passes.
// CHECK-LABEL: func.func @router
// CHECK: linalg.generic {{.*}}"reduction"{{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x8xbf16>, tensor<4x8xbf16>)
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<?xf32>, tensor<?xi32>)
// CHECK: linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<?xf32>, tensor<?xi32>)
// CHECK: arith.divf
// CHECK-NOT: moe.router
func.func @router(%x: tensor<?x8xbf16>, %w: tensor<4x8xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>) {
  %i, %p = moe.router %x, %w top_k 2 normalize : (tensor<?x8xbf16>, tensor<4x8xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %i, %p : tensor<?x2xi32>, tensor<?x2xf32>
}

// -----

// The dispatch is a counting sort in scf loops, then a row gather.
// CHECK-LABEL: func.func @dispatch
// CHECK: scf.for
// CHECK: tensor.insert
// CHECK: scf.for
// CHECK: linalg.generic
// CHECK-NOT: moe.dispatch
func.func @dispatch(%x: tensor<?x8xbf16>, %i: tensor<?x2xi32>) -> (tensor<?x8xbf16>, tensor<5xi32>, tensor<?xi32>) {
  %xp, %off, %perm = moe.dispatch %x, %i experts 4 : (tensor<?x8xbf16>, tensor<?x2xi32>) -> (tensor<?x8xbf16>, tensor<5xi32>, tensor<?xi32>)
  return %xp, %off, %perm : tensor<?x8xbf16>, tensor<5xi32>, tensor<?xi32>
}

// -----

// The grouped expert FFN: a loop over experts over their slices of rows.
// CHECK-LABEL: func.func @expert_ffn
// CHECK: scf.for
// CHECK: tensor.extract_slice
// CHECK: math.exp
// CHECK: tensor.insert_slice
// CHECK-NOT: moe.expert_ffn
func.func @expert_ffn(%x: tensor<?x8xbf16>, %off: tensor<5xi32>, %gu: tensor<4x32x8xbf16>, %dn: tensor<4x8x16xbf16>) -> tensor<?x8xbf16> {
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 : (tensor<?x8xbf16>, tensor<5xi32>, tensor<4x32x8xbf16>, tensor<4x8x16xbf16>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}

// -----

// Experts placed on ranks need the rank: left for now, like the sampler.
// CHECK-LABEL: func.func @other
// CHECK: moe.expert_ffn
// CHECK: moe.sample
func.func @other(%x: tensor<?x8xbf16>, %off: tensor<9xi32>, %gu: tensor<4x32x8xbf16>, %dn: tensor<4x8x16xbf16>, %l: tensor<?x16xf32>, %t: tensor<?xf32>, %k: tensor<?xi32>, %p: tensor<?xf32>, %s: tensor<?xi64>) -> (tensor<?x8xbf16>, tensor<?xi32>) {
  %y = moe.expert_ffn %x, %off, %gu, %dn activation silu gated top_k 2 global_experts 8 : (tensor<?x8xbf16>, tensor<9xi32>, tensor<4x32x8xbf16>, tensor<4x8x16xbf16>) -> tensor<?x8xbf16>
  %n = moe.sample %l, %t, %k, %p, %s : (tensor<?x16xf32>, tensor<?xf32>, tensor<?xi32>, tensor<?xf32>, tensor<?xi64>) -> tensor<?xi32>
  return %y, %n : tensor<?x8xbf16>, tensor<?xi32>
}

// -----

// The dense FFN: gate and up contractions in f32, act(gate) * up, the down
// contraction, one rounding.
// CHECK-LABEL: func.func @ffn
// CHECK-COUNT-2: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK: math.exp
// CHECK: arith.mulf
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: arith.truncf {{.*}} : f32 to bf16
// CHECK-NOT: moe.ffn
func.func @ffn(%x: tensor<?x8xbf16>, %up: tensor<16x8xbf16>, %down: tensor<8x16xbf16>, %gate: tensor<16x8xbf16>) -> tensor<?x8xbf16> {
  %y = moe.ffn %x up %up down %down gate %gate activation silu : (tensor<?x8xbf16>, tensor<16x8xbf16>, tensor<8x16xbf16>, tensor<16x8xbf16>) -> tensor<?x8xbf16>
  return %y : tensor<?x8xbf16>
}
