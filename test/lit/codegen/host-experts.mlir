// The routed-expert path on the host, executed: router -> dispatch ->
// grouped expert FFN -> combine, lowered by convert-moe-to-linalg and run by
// mlir-runner. Two tokens, three experts, top-2, worked by hand below.
// RUN: moe-opt %s -convert-moe-to-linalg \
// RUN: | mlir-opt -one-shot-bufferize="bufferize-function-boundaries" \
// RUN:     -convert-linalg-to-loops -convert-scf-to-cf -expand-strided-metadata \
// RUN:     -lower-affine -convert-to-llvm -reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN: | FileCheck %s

func.func private @printMemrefF32(tensor<*xf32>)
func.func private @printMemrefI32(tensor<*xi32>)

// Printing through a function boundary keeps bufferization simple.
func.func @printF(%t: tensor<?x?xf32>) {
  %u = tensor.cast %t : tensor<?x?xf32> to tensor<*xf32>
  call @printMemrefF32(%u) : (tensor<*xf32>) -> ()
  return
}
func.func @printI(%t: tensor<?xi32>) {
  %u = tensor.cast %t : tensor<?xi32> to tensor<*xi32>
  call @printMemrefI32(%u) : (tensor<*xi32>) -> ()
  return
}
func.func @printI2(%t: tensor<?x?xi32>) {
  %u = tensor.cast %t : tensor<?x?xi32> to tensor<*xi32>
  call @printMemrefI32(%u) : (tensor<*xi32>) -> ()
  return
}

func.func @main() {
  // Scores: token 0 [1, 0, 0.5], token 1 [0, 1, 0.5]; softmax of token 0 is
  // [0.50648, 0.18632, 0.30720]: top-2 experts 0 and 2, renormalised to
  // 0.62246 and 0.37754 (token 1 mirrors it with experts 1 and 2).
  %x = arith.constant dense<[[1.0, 0.0], [0.0, 1.0]]> : tensor<2x2xf32>
  %gate = arith.constant dense<[[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]> : tensor<3x2xf32>
  %idx, %p = moe.router %x, %gate top_k 2 normalize : (tensor<2x2xf32>, tensor<3x2xf32>) -> (tensor<2x2xi32>, tensor<2x2xf32>)
  // CHECK: [0,   2]
  // CHECK-NEXT: [1,   2]
  %idxu = tensor.cast %idx : tensor<2x2xi32> to tensor<?x?xi32>
  call @printI2(%idxu) : (tensor<?x?xi32>) -> ()
  // CHECK: [0.622459,   0.377541]
  // CHECK-NEXT: [0.622459,   0.377541]
  %pu = tensor.cast %p : tensor<2x2xf32> to tensor<?x?xf32>
  call @printF(%pu) : (tensor<?x?xf32>) -> ()

  // Dispatch: experts 0, 1, 2 get 1, 1 and 2 copies; copy (t, j) sits at
  // row permutation[2t + j].
  %xp, %off, %perm = moe.dispatch %x, %idx experts 3 : (tensor<2x2xf32>, tensor<2x2xi32>) -> (tensor<?x2xf32>, tensor<4xi32>, tensor<?xi32>)
  // CHECK: [0,  1,  2,  4]
  %offu = tensor.cast %off : tensor<4xi32> to tensor<?xi32>
  call @printI(%offu) : (tensor<?xi32>) -> ()
  // CHECK: [0,  2,  1,  3]
  call @printI(%perm) : (tensor<?xi32>) -> ()

  // Expert e computes relu((e + 1) x).
  %up = arith.constant dense<[[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, 3.0]]]> : tensor<3x2x2xf32>
  %down = arith.constant dense<[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]> : tensor<3x2x2xf32>
  %yp = moe.expert_ffn %xp, %off, %up, %down activation relu top_k 2 : (tensor<?x2xf32>, tensor<4xi32>, tensor<3x2x2xf32>, tensor<3x2x2xf32>) -> tensor<?x2xf32>
  // Rows: expert 0 [1, 0], expert 1 [0, 2], expert 2 [3, 0] and [0, 3].
  // CHECK: [1,   0]
  // CHECK-NEXT: [0,   2]
  // CHECK-NEXT: [3,   0]
  // CHECK-NEXT: [0,   3]
  %ypu = tensor.cast %yp : tensor<?x2xf32> to tensor<?x?xf32>
  call @printF(%ypu) : (tensor<?x?xf32>) -> ()

  // Token 0: 0.62246 [1, 0] + 0.37754 [3, 0]; token 1: 0.62246 [0, 2] +
  // 0.37754 [0, 3].
  // CHECK: [1.75508,   0]
  // CHECK-NEXT: [0,   2.37754]
  %y = moe.combine %yp, %perm, %p : (tensor<?x2xf32>, tensor<?xi32>, tensor<2x2xf32>) -> tensor<2x2xf32>
  %yu = tensor.cast %y : tensor<2x2xf32> to tensor<?x?xf32>
  call @printF(%yu) : (tensor<?x?xf32>) -> ()

  // A gated SiLU expert: silu(1 * x) * (2 * x) at x = 1 is 1.46212.
  // CHECK: [1.46212]
  %x1 = arith.constant dense<[[1.0]]> : tensor<1x1xf32>
  %o1 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %gu1 = arith.constant dense<[[[1.0], [2.0]]]> : tensor<1x2x1xf32>
  %dn1 = arith.constant dense<[[[1.0]]]> : tensor<1x1x1xf32>
  %g = moe.expert_ffn %x1, %o1, %gu1, %dn1 activation silu gated top_k 1 : (tensor<1x1xf32>, tensor<2xi32>, tensor<1x2x1xf32>, tensor<1x1x1xf32>) -> tensor<1x1xf32>
  %gu = tensor.cast %g : tensor<1x1xf32> to tensor<?x?xf32>
  call @printF(%gu) : (tensor<?x?xf32>) -> ()
  return
}
