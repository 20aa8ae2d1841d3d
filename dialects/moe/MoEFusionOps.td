//===- MoEFusionOps.td - Fused kernels of moe --------------*- tablegen -*-===//
//
// The memory-bound work between GEMMs grouped into one kernel: a region that
// reads its inputs once and writes only the values used outside it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_FUSION_OPS_TD
#define MOE_FUSION_OPS_TD

include "mlir/Interfaces/ControlFlowInterfaces.td"

def MoE_FusedOp : MoE_Op<"fused", [IsolatedFromAbove,
    SingleBlockImplicitTerminator<"YieldOp">,
    DeclareOpInterfaceMethods<MoE_CostOpInterface>]> {
  let summary = "A fused kernel: memory-bound ops that run as one launch";
  let description = [{
    The body's ops run as one kernel over the step's tokens. The region is
    isolated: its arguments are the op's `inputs` (activations and weights),
    and `moe.yield` returns the values used after the kernel; intermediate
    values never reach memory. Its cost is the body's FLOPs, and the bytes its
    ops move less those of the intermediate values.

    Example (residual add + RMSNorm):
    ```mlir
    %sum, %normed = moe.fused ins(%h, %attn, %w) : (tensor<?x4096xbf16>, tensor<?x4096xbf16>, tensor<4096xbf16>) -> (tensor<?x4096xbf16>, tensor<?x4096xbf16>) {
    ^bb0(%a: tensor<?x4096xbf16>, %b: tensor<?x4096xbf16>, %g: tensor<4096xbf16>):
      %s = moe.add %a, %b : tensor<?x4096xbf16>
      %n = moe.rms_norm %s, %g eps = 1.000000e-05 : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> tensor<?x4096xbf16>
      moe.yield %s, %n : tensor<?x4096xbf16>, tensor<?x4096xbf16>
    }
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$inputs);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `ins` `(` $inputs `)` attr-dict `:` functional-type($inputs, results)
    $body
  }];
  let hasVerifier = 1;
}

def MoE_YieldOp : MoE_Op<"yield", [Pure, Terminator, HasParent<"FusedOp">,
                                   ReturnLike]> {
  let summary = "Returns the values a fused kernel writes";
  let description = [{
    Terminates a `moe.fused` body; its operands become the fused op's results.

    Example: `moe.yield %s, %n : tensor<?x4096xbf16>, tensor<?x4096xbf16>`
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ /* no values */ }]>];
}

#endif // MOE_FUSION_OPS_TD
