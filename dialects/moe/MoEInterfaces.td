//===- MoEInterfaces.td - Cost interface of moe ops --------*- tablegen -*-===//

#ifndef MOE_INTERFACES_TD
#define MOE_INTERFACES_TD

include "mlir/IR/OpBase.td"

def MoE_CostOpInterface : OpInterface<"CostOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    What an op costs for a given token count: floating-point operations, bytes
    read and written (weights, activations and KV cache), and which weights it
    reads. Planners and reports ask this interface, never op names.

    Costs are for one execution of the op over `ctx.numTokens` tokens, each of
    which attends to `ctx.contextLength` cached positions (a decode step). A
    multiply-add counts as 2 FLOPs. Weight bytes are counted once per
    execution; for routed experts only the experts the tokens are expected to
    touch under uniform routing are counted.
  }];
  let methods = [
    InterfaceMethod<"Floating-point operations for `ctx`.",
      "int64_t", "getFlops", (ins "const ::mlir::moe::CostContext &":$ctx)>,
    InterfaceMethod<"Bytes read from memory (weights, activations, cache).",
      "int64_t", "getBytesRead", (ins "const ::mlir::moe::CostContext &":$ctx)>,
    InterfaceMethod<"Bytes written to memory (activations, cache).",
      "int64_t", "getBytesWritten",
      (ins "const ::mlir::moe::CostContext &":$ctx)>,
    InterfaceMethod<[{
        What the weights this op reads count as in parameter reports, or
        nothing for an op that reads no weights.
      }], "std::optional<::mlir::moe::ParamCategory>", "getParamCategory",
      (ins), [{}], /*defaultImplementation=*/[{ return std::nullopt; }]>,
    InterfaceMethod<[{
        How many experts this op's weights hold (their leading dimension for
        routed experts; 1 for weights every token uses).
      }], "int64_t", "getNumExperts", (ins), [{}],
      /*defaultImplementation=*/[{ return 1; }]>,
    InterfaceMethod<[{
        The fraction of this op's weights one token uses (top_k / experts for
        routed experts, 1 otherwise).
      }], "double", "getActiveWeightFraction", (ins), [{}],
      /*defaultImplementation=*/[{ return 1.0; }]>,
  ];
}

def MoE_CommOpInterface : OpInterface<"CommOpInterface"> {
  let cppNamespace = "::mlir::moe";
  let description = [{
    Communication between ranks: how many bytes each rank sends for a step,
    and whether the traffic stays inside a stage's tensor group (one node,
    NVLink) or crosses between pipeline stages (between nodes).
  }];
  let methods = [
    InterfaceMethod<"Bytes each participating rank sends for `ctx`.",
      "int64_t", "getBytesSent", (ins "const ::mlir::moe::CostContext &":$ctx)>,
    InterfaceMethod<"True for collectives within a stage's tensor group.",
      "bool", "isWithinStage", (ins)>,
  ];
}

#endif // MOE_INTERFACES_TD
