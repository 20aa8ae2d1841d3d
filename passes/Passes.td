//===- Passes.td - moe passes ------------------------------*- tablegen -*-===//

#ifndef MOE_PASSES_TD
#define MOE_PASSES_TD

include "mlir/Pass/PassBase.td"

def MoEReport : Pass<"moe-report", "::mlir::ModuleOp"> {
  let summary = "Print parameters, FLOPs and KV-cache bytes of a model";
  let description = [{
    Walks the `@forward` function and asks every op's CostOpInterface for
    its weights' category, FLOPs and bytes, then prints a report: parameters
    by category (embeddings, attention, norms, router, experts in all and per
    expert, dense MLP, LM head), the total, the parameters one token uses,
    FLOPs and bytes per decode step at `tokens` tokens and `context` cached
    positions per token, and KV-cache bytes per token. The IR is unchanged.
  }];
  let options = [
    Option<"tokens", "tokens", "int64_t", /*default=*/"1",
           "Tokens in the decode step the FLOPs and bytes are for">,
    Option<"context", "context", "int64_t", /*default=*/"-1",
           "Cached positions each token attends to (-1: the module's "
           "moe.max_context)">,
    Option<"outputFile", "output", "std::string", /*default=*/"\"-\"",
           "Where to write the report (- for stdout)">,
  ];
}

#endif // MOE_PASSES_TD
