// The host lowering of the elementwise and norm ops, executed: moe ops ->
// linalg (convert-moe-to-linalg) -> buffers, loops, LLVM (upstream passes)
// -> JIT (mlir-runner). Expected values computed by hand (see each call).
// RUN: moe-opt %s -convert-moe-to-linalg \
// RUN: | mlir-opt -one-shot-bufferize="bufferize-function-boundaries" \
// RUN:     -convert-linalg-to-loops -convert-scf-to-cf -expand-strided-metadata \
// RUN:     -lower-affine -convert-to-llvm -reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN: | FileCheck %s

func.func private @printMemrefF32(tensor<*xf32>)

func.func @print(%t: tensor<1x4xf32>) {
  %u = tensor.cast %t : tensor<1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%u) : (tensor<*xf32>) -> ()
  return
}

func.func @main() {
  %x = arith.constant dense<[[1.0, 2.0, 3.0, 4.0]]> : tensor<1x4xf32>
  %y = arith.constant dense<[[0.5, -2.0, 10.0, 0.25]]> : tensor<1x4xf32>
  %ones = arith.constant dense<1.0> : tensor<4xf32>
  %zeros = arith.constant dense<0.0> : tensor<4xf32>
  %scale = arith.constant dense<[1.0, 2.0, 0.5, -1.0]> : tensor<4xf32>

  // CHECK: {{^}}Unranked Memref{{.*}}
  // CHECK-NEXT: [1.5,   0,   13,   4.25]
  %sum = moe.add %x, %y : tensor<1x4xf32>
  call @print(%sum) : (tensor<1x4xf32>) -> ()

  // x / sqrt(mean(x^2) + eps): mean(x^2) = 7.5, 1/sqrt(7.5) = 0.365148.
  // CHECK: [0.365148,   0.730296,   1.09544,   1.46059]
  %rms = moe.rms_norm %x, %ones eps = 1.0e-5 : (tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  call @print(%rms) : (tensor<1x4xf32>) -> ()
  // With a per-feature scale.
  // CHECK: [0.365148,   1.46059,   0.547722,   -1.46059]
  %rmsw = moe.rms_norm %x, %scale eps = 1.0e-5 : (tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  call @print(%rmsw) : (tensor<1x4xf32>) -> ()

  // (x - 2.5) / sqrt(1.25 + eps) * scale + 1.
  // CHECK: [-0.341635,   0.105576,   1.22361,   -0.341635]
  %ln = moe.layer_norm %x, %scale, %ones eps = 1.0e-5 : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  call @print(%ln) : (tensor<1x4xf32>) -> ()

  // One head of 4 at position 1, theta 10000: pairs (0, 2) rotate by 1 rad,
  // (1, 3) by 0.01 rad. rotate_half: [cos1 - 3 sin1, 2 cos.01 - 4 sin.01,
  // 3 cos1 + sin1, 4 cos.01 + 2 sin.01].
  // CHECK: [-1.98411,   1.9599,   2.46238,   4.0198]
  %pos = arith.constant dense<[1]> : tensor<1xi32>
  %r = moe.rope %x, %pos head_dim 4 <theta = 10000.0, style = rotate_half> : (tensor<1x4xf32>, tensor<1xi32>) -> tensor<1x4xf32>
  call @print(%r) : (tensor<1x4xf32>) -> ()
  // interleaved: pairs (0, 1) by 1 rad, (2, 3) by 0.01 rad.
  // CHECK: [-1.14264,   1.92208,   2.95985,   4.0298]
  %ri = moe.rope %x, %pos head_dim 4 <theta = 10000.0, style = interleaved> : (tensor<1x4xf32>, tensor<1xi32>) -> tensor<1x4xf32>
  call @print(%ri) : (tensor<1x4xf32>) -> ()
  // Position 0 leaves every element as it is.
  // CHECK: [1,   2,   3,   4]
  %pos0 = arith.constant dense<[0]> : tensor<1xi32>
  %r0 = moe.rope %x, %pos0 head_dim 4 <theta = 10000.0, style = rotate_half> : (tensor<1x4xf32>, tensor<1xi32>) -> tensor<1x4xf32>
  call @print(%r0) : (tensor<1x4xf32>) -> ()

  // Row gathers: token embedding (rows 2, 0 of the table) and the selection
  // of rows (row 1 of a 2-row activation).
  // CHECK: [9,   10,   11,   12]
  // CHECK-NEXT: [1,   2,   3,   4]
  %table = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %tokens = arith.constant dense<[2, 0]> : tensor<2xi32>
  %e = moe.embed %tokens, %table : (tensor<2xi32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %eu = tensor.cast %e : tensor<2x4xf32> to tensor<*xf32>
  call @printMemrefF32(%eu) : (tensor<*xf32>) -> ()
  // CHECK: [5,   6,   7,   8]
  %rows = arith.constant dense<[1]> : tensor<1xi32>
  %g = moe.gather_tokens %table, %rows : (tensor<3x4xf32>, tensor<1xi32>) -> tensor<1x4xf32>
  call @print(%g) : (tensor<1x4xf32>) -> ()

  // The expert combine: token 0's copies are rows 2 and 0 (weights 0.75,
  // 0.25): 0.75 [9..12] + 0.25 [1..4].
  // CHECK: [7,   8,   9,   10]
  %perm = arith.constant dense<[2, 0]> : tensor<2xi32>
  %w = arith.constant dense<[[0.75, 0.25]]> : tensor<1x2xf32>
  %c = moe.combine %table, %perm, %w : (tensor<3x4xf32>, tensor<2xi32>, tensor<1x2xf32>) -> tensor<1x4xf32>
  call @print(%c) : (tensor<1x4xf32>) -> ()

  // GEMMs with [out, in] weights: x [1, 4] times the table's rows.
  // [1 2 3 4] . [1 2 3 4], [5 6 7 8], [9 10 11 12] = 30, 70, 110.
  // CHECK: [30,   70,   110]
  %lin = moe.linear %x, %table category mlp : (tensor<1x4xf32>, tensor<3x4xf32>) -> tensor<1x3xf32>
  %linu = tensor.cast %lin : tensor<1x3xf32> to tensor<*xf32>
  call @printMemrefF32(%linu) : (tensor<*xf32>) -> ()
  // CHECK: [30,   70,   110]
  %logits = moe.lm_head %x, %table : (tensor<1x4xf32>, tensor<3x4xf32>) -> tensor<1x3xf32>
  %lu = tensor.cast %logits : tensor<1x3xf32> to tensor<*xf32>
  call @printMemrefF32(%lu) : (tensor<*xf32>) -> ()
  return
}
