//===- MoECommOps.td - Communication ops of moe ------------*- tablegen -*-===//
//
// Collectives inside a stage's tensor group (all-reduce, all-gather, the
// expert all-to-all) and the point-to-point transfers between pipeline
// stages (send, recv). They are not Pure: every rank of a group must reach
// them, in the same order.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_COMM_OPS_TD
#define MOE_COMM_OPS_TD

class MoE_CommOp<string mnemonic, list<Trait> traits = []>
    : MoE_Op<mnemonic, !listconcat(traits, [
        DeclareOpInterfaceMethods<MoE_CostOpInterface>,
        DeclareOpInterfaceMethods<MoE_CommOpInterface>])> {
  let hasVerifier = 1;
}

def MoE_AllReduceOp : MoE_CommOp<"all_reduce", [SameOperandsAndResultType]> {
  let summary = "Sum over the ranks of a stage's tensor group";
  let description = [{
    Every one of the `group_size` ranks of the stage contributes `input`; all
    receive the elementwise sum. Follows row-parallel projections (attention
    output, dense FFN down, vocabulary-parallel embedding) and partitioned
    experts.

    Example:
    ```mlir
    %y = moe.all_reduce %x group_size 8 : tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, I64Attr:$group_size);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = "$input `group_size` $group_size attr-dict `:` type($result)";
}

def MoE_AllGatherOp : MoE_CommOp<"all_gather"> {
  let summary = "Concatenation over the ranks of a stage's tensor group";
  let description = [{
    Concatenates the `group_size` ranks' `input`s along dimension `dim`, in
    rank order; every rank receives the whole. Gathers vocabulary-parallel
    logits.

    Example:
    ```mlir
    %logits = moe.all_gather %part dim 1 group_size 8 : (tensor<?x4000xf32>) -> tensor<?x32000xf32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$dim,
                       I64Attr:$group_size);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = [{
    $input `dim` $dim `group_size` $group_size attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_SendOp : MoE_CommOp<"send"> {
  let summary = "Sends an activation to the next pipeline stage";
  let description = [{
    Each rank of this stage sends `input` to the rank of stage `stage` with
    the same index in its tensor group. Matched by a `moe.recv` there.

    Example:
    ```mlir
    moe.send %h to stage 3 : tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$input, I64Attr:$stage);
  let assemblyFormat = "$input `to` `stage` $stage attr-dict `:` type($input)";
}

def MoE_RecvOp : MoE_CommOp<"recv"> {
  let summary = "Receives an activation from the previous pipeline stage";
  let description = [{
    Receives what the rank of stage `stage` with the same tensor index sent
    with `moe.send`. The token dimension is that of the step.

    Example:
    ```mlir
    %h = moe.recv from stage 2 : tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins I64Attr:$stage);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "`from` `stage` $stage attr-dict `:` type($result)";
}

def MoE_ExpertExchangeOp
    : MoE_CommOp<"expert_exchange", [AllTypesMatch<["rows", "result"]>]> {
  let summary = "Moves routed token copies to their experts' ranks, or back";
  let description = [{
    The all-to-all of expert parallelism over the `group_size` ranks of a
    stage (experts exchanged by all-to-all, see `moe.experts`). `rows`,
    `offsets` and `permutation` are as `moe.dispatch` made them from every
    token of the step, the same on every rank: row r is a copy of token t
    (permutation[t * top_k + j] = r) for expert e (offsets[e] <= r <
    offsets[e + 1]). With T tokens, G ranks and E experts, token t belongs
    to rank t / ceil(T / G) and expert e lives on rank e / (E / G).

    `to_experts`: the result is `rows`, except that the rows of this rank's
    experts whose tokens belong to other ranks are received from them.
    `to_tokens`: the result is `rows`, except that the rows of this rank's
    tokens computed by other ranks' experts are received from them. Each
    rank sends only the copies that cross ranks (about (G-1)/G of its
    T*top_k/G); which rows go where follows from the routing alone, so no
    sizes are exchanged.

    Example:
    ```mlir
    %xe = moe.expert_exchange to_experts %xp, %off, %perm top_k 2 group_size 8 : (tensor<?x4096xbf16>, tensor<17xi32>, tensor<?xi32>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$rows,
                       TensorRankOf<[I32], [1]>:$offsets,
                       MoE_TokenVector:$permutation,
                       MoE_ExchangeDirection:$direction, I64Attr:$top_k,
                       I64Attr:$group_size);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $direction $rows `,` $offsets `,` $permutation `top_k` $top_k
    `group_size` $group_size attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_AllGatherTokensOp
    : MoE_CommOp<"all_gather_tokens", [SameOperandsAndResultType]> {
  let summary = "Every rank's slice of the tokens, gathered on every rank";
  let description = [{
    With T rows and G = `group_size` ranks, rank g contributes rows
    [g * ceil(T / G), min(T, (g + 1) * ceil(T / G))) of its `input`; every
    rank receives all T rows. Ends an expert all-to-all: each rank has
    combined only its own tokens.

    Example:
    ```mlir
    %y = moe.all_gather_tokens %part group_size 8 : tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, I64Attr:$group_size);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = "$input `group_size` $group_size attr-dict `:` type($result)";
}

def MoE_GroupRankOp : MoE_Op<"group_rank", [Pure]> {
  let summary = "This rank's index in its stage's tensor group";
  let description = [{
    The index of the executing rank among the `group_size` ranks of its
    stage, divided by `divisor` (default 1): which part of a sharded weight
    it holds. A vocabulary-parallel `moe.embed` reads it as its `part`;
    experts spread over groups of `divisor` ranks read it as their
    `expert_group`. The runtime supplies the value; one program serves every
    rank of the stage.

    Example:
    ```mlir
    %g = moe.group_rank group_size 8 divisor 2 : tensor<1xi32>
    ```
  }];
  let arguments = (ins I64Attr:$group_size,
                       DefaultValuedAttr<I64Attr, "1">:$divisor);
  let results = (outs TensorOf<[I32]>:$result);
  let assemblyFormat = [{
    `group_size` $group_size (`divisor` $divisor^)? attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

#endif // MOE_COMM_OPS_TD
