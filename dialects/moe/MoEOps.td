//===- MoEOps.td - Ops of the moe dialect ------------------*- tablegen -*-===//
//
// Graph-level ops (one per model component: embed, norms, attention, router,
// experts, dense FFN, residual add, LM head, sampling) and the decomposed
// forms later passes produce (linear, rope, kv_cache_write, attend,
// dispatch, expert_ffn, combine).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_OPS_TD
#define MOE_OPS_TD

include "MoEDialect.td"
include "MoEInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

/// Activations: [tokens, features], tokens usually dynamic.
def MoE_Activations : TensorRankOf<[AnyFloat], [2]>;
/// A named parameter: a statically shaped float tensor.
def MoE_Weight : StaticShapeTensorOf<[AnyFloat]>;
/// One i32 per token (token ids, positions, row indices).
def MoE_TokenVector : TensorRankOf<[I32], [1]>;
/// [tokens, top_k] tensors produced by the router.
def MoE_RoutingIndices : TensorRankOf<[I32], [2]>;
def MoE_RoutingWeights : TensorRankOf<[F32], [2]>;

class MoE_CostOp<string mnemonic, list<Trait> traits = [],
                 list<string> overridden = []>
    : MoE_Op<mnemonic, !listconcat(traits, [Pure,
        DeclareOpInterfaceMethods<MoE_CostOpInterface, overridden>])> {
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

def MoE_WeightOp : MoE_CostOp<"weight"> {
  let summary = "A named model parameter";
  let description = [{
    A weight tensor, named as in a Hugging Face checkpoint of the Mixtral
    family. The runtime binds it by name (from safetensors, or random-seeded).

    After tensor or expert partitioning, `shard` says which part of the
    checkpoint tensor each rank holds and the type is the shape of one part.

    Example:
    ```mlir
    %w = moe.weight "model.layers.0.self_attn.q_proj.weight" : tensor<4096x4096xbf16>
    %q = moe.weight "model.layers.0.self_attn.q_proj.weight" shard <splits = [8, 1]> : tensor<512x4096xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<MoE_ShardAttr>:$shard);
  let results = (outs MoE_Weight:$result);
  let assemblyFormat = [{
    $name (`shard` $shard^)? attr-dict `:` type($result)
  }];
  let builders = [
    OpBuilder<(ins "::mlir::Type":$type, "::llvm::StringRef":$name), [{
      build($_builder, $_state, type, name, ShardAttr());
    }]>,
  ];
  let extraClassDeclaration = [{
    /// The type of the whole checkpoint tensor (the result type when the
    /// weight is not sharded).
    ::mlir::RankedTensorType getFullType();
  }];
}

//===----------------------------------------------------------------------===//
// Graph-level ops
//===----------------------------------------------------------------------===//

def MoE_EmbedOp
    : MoE_CostOp<"embed", [], ["getParamCategory", "getActiveWeightFraction"]> {
  let summary = "Token embedding lookup";
  let description = [{
    Row `tokens[i]` of `table` [vocab, d_model] for every token. Token ids
    outside the vocabulary are a runtime error reported by the runtime.

    With `part` (vocabulary-parallel, a `moe.group_rank`), `table` holds
    rows [p * rows, (p + 1) * rows) of the whole table, p = part[0]: tokens
    outside them give rows of zeros, and the all-reduce that follows sums
    the parts.

    Example:
    ```mlir
    %h = moe.embed %tokens, %table : (tensor<?xi32>, tensor<32000x4096xbf16>) -> tensor<?x4096xbf16>
    %p = moe.embed %tokens, %shard part %g : (tensor<?xi32>, tensor<4000x4096xbf16>, tensor<1xi32>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_TokenVector:$tokens, MoE_Weight:$table,
                       Optional<TensorOf<[I32]>>:$part);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $tokens `,` $table (`part` $part^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_RMSNormOp : MoE_CostOp<"rms_norm", [], ["getParamCategory"]> {
  let summary = "Root-mean-square normalisation";
  let description = [{
    `y = x / sqrt(mean(x^2) + epsilon) * weight` over the feature dimension,
    computed in f32.

    Example:
    ```mlir
    %y = moe.rms_norm %x, %w eps = 1.000000e-05 : (tensor<?x4096xbf16>, tensor<4096xbf16>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_Weight:$weight,
                       F64Attr:$epsilon);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `,` $weight `eps` `=` $epsilon attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_LayerNormOp : MoE_CostOp<"layer_norm", [], ["getParamCategory"]> {
  let summary = "Layer normalisation with scale and bias";
  let description = [{
    `y = (x - mean(x)) / sqrt(var(x) + epsilon) * weight + bias` over the
    feature dimension, computed in f32.

    Example:
    ```mlir
    %y = moe.layer_norm %x, %w, %b eps = 1.000000e-05 : (tensor<?x128xbf16>, tensor<128xbf16>, tensor<128xbf16>) -> tensor<?x128xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_Weight:$weight,
                       MoE_Weight:$bias, F64Attr:$epsilon);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $bias `eps` `=` $epsilon attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_AddOp : MoE_CostOp<"add", [SameOperandsAndResultType, Commutative]> {
  let summary = "Residual addition";
  let description = [{
    Elementwise sum of two activations of the same type.

    Example:
    ```mlir
    %h1 = moe.add %h0, %attn : tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$lhs, MoE_Activations:$rhs);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def MoE_AttentionOp : MoE_CostOp<"attention", [], ["getParamCategory"]> {
  let summary = "Self-attention over the KV cache (MHA, GQA or MQA)";
  let description = [{
    Projects `input` [tokens, d_model] to queries (`wq` [heads*head_dim,
    d_model]), keys and values (`wk`, `wv` [kv_heads*head_dim, d_model]),
    applies the rotary embedding `rope` (if present) at `positions`, appends
    the keys and values to layer `layer` of the cache, attends each query head
    to its KV head (head h uses KV head h / (heads / kv_heads)) over its
    sequence's cached tokens (only earlier positions when `causal`), scales
    scores by 1/sqrt(head_dim), and projects back with `wo` [d_model,
    heads*head_dim]. Returns the output and the updated cache.

    Example:
    ```mlir
    %y, %kv1 = moe.attention %x, %pos, %kv layer 0 heads 32 kv_heads 1 head_dim 128
        causal rope <theta = 1.000000e+04, style = rotate_half>
        weights(%wq, %wk, %wv, %wo) : (tensor<?x4096xbf16>, tensor<?xi32>,
        !moe.kv_cache<...>, tensor<4096x4096xbf16>, tensor<128x4096xbf16>,
        tensor<128x4096xbf16>, tensor<4096x4096xbf16>)
        -> (tensor<?x4096xbf16>, !moe.kv_cache<...>)
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_TokenVector:$positions,
                       MoE_KVCacheType:$kv_cache, MoE_Weight:$wq,
                       MoE_Weight:$wk, MoE_Weight:$wv, MoE_Weight:$wo,
                       I64Attr:$layer, I64Attr:$num_heads,
                       I64Attr:$num_kv_heads, I64Attr:$head_dim,
                       UnitAttr:$causal, OptionalAttr<MoE_RopeAttr>:$rope);
  let results = (outs MoE_Activations:$result,
                      MoE_KVCacheType:$new_kv_cache);
  let assemblyFormat = [{
    $input `,` $positions `,` $kv_cache `layer` $layer `heads` $num_heads
    `kv_heads` $num_kv_heads `head_dim` $head_dim (`causal` $causal^)?
    (`rope` $rope^)? `weights` `(` $wq `,` $wk `,` $wv `,` $wo `)` attr-dict
    `:` functional-type(operands, results)
  }];
}

def MoE_RouterOp : MoE_CostOp<"router", [], ["getParamCategory"]> {
  let summary = "Softmax top-k expert router";
  let description = [{
    Scores each token against every expert (`weight` [experts, d_model]),
    takes the softmax over experts (in f32) and returns the `top_k` expert
    indices and their probabilities, highest first. With `normalize` the k
    probabilities are rescaled to sum to one.

    Example:
    ```mlir
    %idx, %p = moe.router %x, %gate top_k 2 normalize : (tensor<?x4096xbf16>, tensor<16x4096xbf16>) -> (tensor<?x2xi32>, tensor<?x2xf32>)
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_Weight:$weight,
                       I64Attr:$top_k, UnitAttr:$normalize);
  let results = (outs MoE_RoutingIndices:$indices,
                      MoE_RoutingWeights:$routing_weights);
  let assemblyFormat = [{
    $input `,` $weight `top_k` $top_k (`normalize` $normalize^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_ExpertsOp : MoE_CostOp<"experts",
    [DeclareOpInterfaceMethods<MoE_CommOpInterface>],
    ["getParamCategory", "getActiveWeightFraction", "getNumExperts"]> {
  let summary = "Routed expert FFNs with the weighted combine";
  let description = [{
    For each token t: `sum_j routing_weights[t, j] * FFN_e(x[t])` with
    `e = indices[t, j]`. FFN_e(x) = `down[e] · act(gate[e] · x) * (up[e] · x)`
    when `gated` (`gate_up` [experts, 2*ffn, d_model], gate rows first), else
    `down[e] · act(up[e] · x)` (`gate_up` [experts, ffn, d_model]); `down` is
    [experts, d_model, ffn]. SwiGLU is `activation silu gated`.

    After expert partitioning a rank holds only some experts:
    `global_experts` is the model's expert count, the weights hold
    `experts` = their leading dimension, the rank's part of the
    `global_experts / experts` parts (see `#moe.shard`) says which, and the
    result is this rank's share of the sum (an all-reduce follows). Code
    generation needs `expert_group` (a `moe.group_rank`): the rank holds
    experts [g * experts, (g + 1) * experts), g = expert_group[0].

    With `all_to_all` G, the op is itself a collective over the G ranks of
    the stage, each holding global_experts / G whole experts: every rank
    routes its 1/G of the tokens, sends each routed copy to the rank that
    holds its expert (all-to-all), computes the copies it receives, sends the
    results back (all-to-all), combines its tokens, and all ranks gather the
    whole result. The result is complete: no all-reduce follows.

    Example:
    ```mlir
    %y = moe.experts %x, %idx, %p, %gate_up, %down activation silu gated : (tensor<?x4096xbf16>, tensor<?x2xi32>, tensor<?x2xf32>, tensor<16x8192x4096xbf16>, tensor<16x4096x4096xbf16>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_RoutingIndices:$indices,
                       MoE_RoutingWeights:$routing_weights,
                       MoE_Weight:$gate_up, MoE_Weight:$down,
                       MoE_Activation:$activation, UnitAttr:$gated,
                       OptionalAttr<I64Attr>:$global_experts,
                       OptionalAttr<I64Attr>:$all_to_all,
                       Optional<TensorOf<[I32]>>:$expert_group);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `,` $indices `,` $routing_weights `,` $gate_up `,` $down
    `activation` $activation (`gated` $gated^)?
    (`global_experts` $global_experts^)? (`all_to_all` $all_to_all^)?
    (`expert_group` $expert_group^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// Experts of the whole model (global_experts, or the weights' count).
    int64_t getNumModelExperts();
  }];
}

def MoE_FFNOp
    : MoE_CostOp<"ffn", [], ["getParamCategory"]> {
  let summary = "Dense feed-forward block";
  let description = [{
    `down · (act(gate · x) * (up · x))` when `gate` is given, else
    `down · act(up · x)`; `gate`, `up` are [ffn, d_model], `down` is
    [d_model, ffn] (Hugging Face's gate_proj / up_proj / down_proj).

    Example:
    ```mlir
    %y = moe.ffn %x up %wu down %wd gate %wg activation silu : (tensor<?x1024xbf16>, tensor<2816x1024xbf16>, tensor<1024x2816xbf16>, tensor<2816x1024xbf16>) -> tensor<?x1024xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_Weight:$up,
                       MoE_Weight:$down, Optional<MoE_Weight>:$gate,
                       MoE_Activation:$activation);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `up` $up `down` $down (`gate` $gate^)? `activation` $activation
    attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_GatherTokensOp : MoE_CostOp<"gather_tokens"> {
  let summary = "Selects rows of an activation (e.g. each sequence's last token)";
  let description = [{
    `result[i] = input[rows[i]]`. Used before the LM head so that logits are
    computed only for the tokens that are sampled or verified.

    Example:
    ```mlir
    %last = moe.gather_tokens %h, %rows : (tensor<?x4096xbf16>, tensor<?xi32>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_TokenVector:$rows);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `,` $rows attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_LMHeadOp : MoE_CostOp<"lm_head", [], ["getParamCategory"]> {
  let summary = "Output projection to vocabulary logits";
  let description = [{
    `logits = x · weightᵀ` with `weight` [vocab, d_model], accumulated and
    returned in f32.

    Example:
    ```mlir
    %logits = moe.lm_head %x, %w : (tensor<?x4096xbf16>, tensor<32000x4096xbf16>) -> tensor<?x32000xf32>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_Weight:$weight);
  let results = (outs TensorRankOf<[F32], [2]>:$logits);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_SampleOp : MoE_CostOp<"sample"> {
  let summary = "Samples one token per row of logits";
  let description = [{
    Per row: greedy (argmax) when `temperature[i] == 0`; otherwise softmax of
    logits / temperature, restricted to the `top_k[i]` most likely tokens (0 =
    no limit) and to the smallest set whose probability reaches `top_p[i]`,
    sampled with the counter-based generator seeded by `seeds[i]`.

    Example:
    ```mlir
    %next = moe.sample %logits, %t, %k, %p, %s : (tensor<?x32000xf32>, tensor<?xf32>, tensor<?xi32>, tensor<?xf32>, tensor<?xi64>) -> tensor<?xi32>
    ```
  }];
  let arguments = (ins TensorRankOf<[F32], [2]>:$logits,
                       TensorRankOf<[F32], [1]>:$temperature,
                       TensorRankOf<[I32], [1]>:$top_k,
                       TensorRankOf<[F32], [1]>:$top_p,
                       TensorRankOf<[I64], [1]>:$seeds);
  let results = (outs MoE_TokenVector:$tokens);
  let assemblyFormat = [{
    $logits `,` $temperature `,` $top_k `,` $top_p `,` $seeds attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Decomposed forms
//===----------------------------------------------------------------------===//

def MoE_LinearOp : MoE_CostOp<"linear", [], ["getParamCategory"]> {
  let summary = "Matrix product with a weight in [out, in] layout";
  let description = [{
    `y = x · weightᵀ` for `x` [tokens, in] and `weight` [out, in] (Hugging
    Face layout). `category` says what the weight counts as in reports.

    Example:
    ```mlir
    %q = moe.linear %x, %wq category attention : (tensor<?x4096xbf16>, tensor<4096x4096xbf16>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_Weight:$weight,
                       MoE_ParamCategory:$category);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `,` $weight `category` $category attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_RopeOp : MoE_CostOp<"rope"> {
  let summary = "Rotary position embedding of query or key heads";
  let description = [{
    Rotates every `head_dim`-wide head of `input` [tokens, heads*head_dim] by
    the angles `positions[t] * theta^(-2i/head_dim)`, pairing dimensions as
    `rope.style` says.

    Example:
    ```mlir
    %qr = moe.rope %q, %pos head_dim 128 <theta = 1.000000e+04, style = rotate_half> : (tensor<?x4096xbf16>, tensor<?xi32>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_TokenVector:$positions,
                       I64Attr:$head_dim, MoE_RopeAttr:$rope);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `,` $positions `head_dim` $head_dim $rope attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_KVCacheWriteOp : MoE_CostOp<"kv_cache_write"> {
  let summary = "Stores keys and values of new tokens into one cache layer";
  let description = [{
    Writes `keys` and `values` [tokens, kv_heads*head_dim] into layer `layer`
    of the cache at each token's sequence and position (`positions`), and
    returns the updated cache. With `rope`, each key head is first rotated
    as `moe.rope` with the cache's head_dim would rotate it (moe-fuse folds
    a key's RoPE into the write, so one kernel does both).

    Example:
    ```mlir
    %kv1 = moe.kv_cache_write %kv[0], %k, %v, %pos : (!moe.kv_cache<...>, tensor<?x128xbf16>, tensor<?x128xbf16>, tensor<?xi32>) -> !moe.kv_cache<...>
    %kv2 = moe.kv_cache_write %kv[1], %k, %v, %pos rope <theta = 1.000000e+04, style = rotate_half> : (!moe.kv_cache<...>, tensor<?x128xbf16>, tensor<?x128xbf16>, tensor<?xi32>) -> !moe.kv_cache<...>
    ```
  }];
  let arguments = (ins MoE_KVCacheType:$kv_cache, MoE_Activations:$keys,
                       MoE_Activations:$values, MoE_TokenVector:$positions,
                       I64Attr:$layer, OptionalAttr<MoE_RopeAttr>:$rope);
  let results = (outs MoE_KVCacheType:$result);
  let assemblyFormat = [{
    $kv_cache `[` $layer `]` `,` $keys `,` $values `,` $positions
    (`rope` $rope^)? attr-dict `:` functional-type(operands, results)
  }];
}

def MoE_AttendOp : MoE_CostOp<"attend"> {
  let summary = "Scaled dot-product attention of queries over one cache layer";
  let description = [{
    For each token and query head h: softmax(q · Kᵀ / sqrt(head_dim)) · V over
    the token's sequence in layer `layer` of the cache, using KV head
    h / (heads / kv_heads); with `causal`, only cached positions up to the
    token's own position count. `queries` are [tokens, heads*head_dim]. With
    `rope`, each query head is first rotated as `moe.rope` with the cache's
    head_dim would rotate it (moe-fuse folds a query's RoPE into attention,
    which rotates the queries as it loads them).

    Example:
    ```mlir
    %a = moe.attend %q, %kv[0], %pos heads 32 causal : (tensor<?x4096xbf16>, !moe.kv_cache<...>, tensor<?xi32>) -> tensor<?x4096xbf16>
    %b = moe.attend %q, %kv[0], %pos heads 32 causal rope <theta = 1.000000e+04, style = rotate_half> : (tensor<?x4096xbf16>, !moe.kv_cache<...>, tensor<?xi32>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$queries, MoE_KVCacheType:$kv_cache,
                       MoE_TokenVector:$positions, I64Attr:$layer,
                       I64Attr:$num_heads, UnitAttr:$causal,
                       OptionalAttr<MoE_RopeAttr>:$rope);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $queries `,` $kv_cache `[` $layer `]` `,` $positions `heads` $num_heads
    (`causal` $causal^)? (`rope` $rope^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_DispatchOp : MoE_CostOp<"dispatch"> {
  let summary = "Groups token copies by expert";
  let description = [{
    Makes `top_k` copies of each token row and orders them by expert:
    `permuted` [tokens*top_k, d_model], `offsets` [experts+1] (the rows of
    expert e are offsets[e] ..< offsets[e+1]) and `permutation`
    [tokens*top_k]: copy j of token t is row permutation[t * top_k + j] of
    `permuted` (so that the combine is a gather).

    Example:
    ```mlir
    %xp, %off, %perm = moe.dispatch %x, %idx experts 16 : (tensor<?x4096xbf16>, tensor<?x2xi32>) -> (tensor<?x4096xbf16>, tensor<17xi32>, tensor<?xi32>)
    ```
  }];
  let arguments = (ins MoE_Activations:$input, MoE_RoutingIndices:$indices,
                       I64Attr:$num_experts);
  let results = (outs MoE_Activations:$permuted,
                      TensorRankOf<[I32], [1]>:$offsets,
                      MoE_TokenVector:$permutation);
  let assemblyFormat = [{
    $input `,` $indices `experts` $num_experts attr-dict `:`
    functional-type(operands, results)
  }];
}

def MoE_ExpertFFNOp
    : MoE_CostOp<"expert_ffn", [],
      ["getParamCategory", "getActiveWeightFraction", "getNumExperts"]> {
  let summary = "Grouped expert FFN over dispatched rows";
  let description = [{
    Applies expert e's FFN (as in `moe.experts`) to rows offsets[e] ..<
    offsets[e+1] of `input` (offsets has one entry per expert of the model,
    plus one; a rank holding some experts computes only their rows, the
    others are zero). `top_k` is the number of rows each token contributes
    (for cost estimates). `global_experts` and `expert_group` as in
    `moe.experts`.

    Example:
    ```mlir
    %yp = moe.expert_ffn %xp, %off, %gate_up, %down activation silu gated top_k 2 : (tensor<?x4096xbf16>, tensor<17xi32>, tensor<16x8192x4096xbf16>, tensor<16x4096x4096xbf16>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$input, TensorRankOf<[I32], [1]>:$offsets,
                       MoE_Weight:$gate_up, MoE_Weight:$down,
                       MoE_Activation:$activation, UnitAttr:$gated,
                       I64Attr:$top_k, OptionalAttr<I64Attr>:$global_experts,
                       Optional<TensorOf<[I32]>>:$expert_group);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $input `,` $offsets `,` $gate_up `,` $down `activation` $activation
    (`gated` $gated^)? `top_k` $top_k (`global_experts` $global_experts^)?
    (`expert_group` $expert_group^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    /// Experts of the whole model (global_experts, or the weights' count).
    int64_t getNumModelExperts();
  }];
}

def MoE_CombineOp : MoE_CostOp<"combine"> {
  let summary = "Weighted sum of expert outputs back in token order";
  let description = [{
    `result[t] = sum_j routing_weights[t, j] *
    expert_outputs[permutation[t * top_k + j]]`: the rows of the copies of
    token t, as `moe.dispatch` placed them.

    Example:
    ```mlir
    %y = moe.combine %yp, %perm, %p : (tensor<?x4096xbf16>, tensor<?xi32>, tensor<?x2xf32>) -> tensor<?x4096xbf16>
    ```
  }];
  let arguments = (ins MoE_Activations:$expert_outputs,
                       MoE_TokenVector:$permutation,
                       MoE_RoutingWeights:$routing_weights);
  let results = (outs MoE_Activations:$result);
  let assemblyFormat = [{
    $expert_outputs `,` $permutation `,` $routing_weights attr-dict `:`
    functional-type(operands, results)
  }];
}

include "MoECommOps.td"
include "MoEFusionOps.td"

#endif // MOE_OPS_TD
