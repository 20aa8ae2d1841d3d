// A kernel still called: moe-build-expert-kernels refuses it (see
// ../moe-build-expert-kernels.mlir).
func.func private @kernel_router(%x: tensor<?x64xf32>, %w: tensor<4x64xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>) attributes {moe.kernel} {
  %i, %p = moe.router %x, %w top_k 2 normalize : (tensor<?x64xf32>, tensor<4x64xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %i, %p : tensor<?x2xi32>, tensor<?x2xf32>
}
func.func @caller(%x: tensor<?x64xf32>, %w: tensor<4x64xf32>) -> tensor<?x2xi32> {
  %i, %p = call @kernel_router(%x, %w) : (tensor<?x64xf32>, tensor<4x64xf32>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
  return %i : tensor<?x2xi32>
}
