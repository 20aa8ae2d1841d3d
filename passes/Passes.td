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

def MoEDecompose : Pass<"moe-decompose"> {
  let summary = "Decompose attention and routed experts into their steps";
  let description = [{
    Rewrites graph-level ops into the forms fusion and code generation work
    on:
      - `moe.attention` -> `moe.linear` (q, k, v) -> `moe.rope` (q, k; when the
        op has rope) -> `moe.kv_cache_write` -> `moe.attend` -> `moe.linear` (o);
      - `moe.experts` -> `moe.dispatch` -> `moe.expert_ffn` -> `moe.combine`.
    FLOPs and parameters (as the cost interface reports them) are unchanged.
  }];
  let dependentDialects = ["::mlir::moe::MoEDialect"];
  let options = [
    Option<"attention", "attention", "bool", /*default=*/"true",
           "Decompose moe.attention">,
    Option<"experts", "experts", "bool", /*default=*/"true",
           "Decompose moe.experts">,
  ];
}

#endif // MOE_PASSES_TD
