// A kernel still called: moe-build-row-kernels refuses it (see
// ../moe-build-row-kernels.mlir).
func.func private @kernel_add(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> tensor<?x64xf32> attributes {moe.kernel} {
  %s = moe.add %a, %b : tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}
func.func @caller(%a: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %s = call @kernel_add(%a, %a) : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}

