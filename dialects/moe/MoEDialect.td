//===- MoEDialect.td - The moe dialect ---------------------*- tablegen -*-===//
//
// The `moe` dialect describes decoder-only Mixture-of-Experts transformers at
// graph level (one op per model component) and in the decomposed forms the
// fusion, partitioning and code generation passes work on.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_TD
#define MOE_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def MoE_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Sparse Mixture-of-Experts transformer models";
  let description = [{
    Ops for decoder-only transformers with routed experts. Model dimensions
    (d_model, heads, experts, FFN width, vocabulary) are static; the token
    dimension is dynamic (`?`): token count, batch composition and sequence
    lengths are runtime values. Weights are named parameters (`moe.weight`)
    that follow Hugging Face's Mixtral naming. The KV cache is an SSA value of
    type `!moe.kv_cache`; ops that write it return the updated cache.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
}

class MoE_Op<string mnemonic, list<Trait> traits = []>
    : Op<MoE_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def MoE_Activation : I32EnumAttr<"Activation", "FFN activation function", [
    I32EnumAttrCase<"silu", 0>, I32EnumAttrCase<"gelu", 1>,
    I32EnumAttrCase<"relu", 2>]> {
  let cppNamespace = "::mlir::moe";
}

def MoE_RopeStyle : I32EnumAttr<"RopeStyle", "rotary embedding convention", [
    I32EnumAttrCase<"rotate_half", 0>, I32EnumAttrCase<"interleaved", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

def MoE_ExchangeDirection : I32EnumAttr<"ExchangeDirection",
    "which way an expert exchange moves token copies", [
    I32EnumAttrCase<"to_experts", 0>, I32EnumAttrCase<"to_tokens", 1>]> {
  let cppNamespace = "::mlir::moe";
}

def MoE_ParamCategory : I32EnumAttr<"ParamCategory",
    "what a weight counts as in parameter reports", [
    I32EnumAttrCase<"embedding", 0>, I32EnumAttrCase<"attention", 1>,
    I32EnumAttrCase<"norm", 2>, I32EnumAttrCase<"router", 3>,
    I32EnumAttrCase<"experts", 4>, I32EnumAttrCase<"mlp", 5>,
    I32EnumAttrCase<"lm_head", 6>]> {
  let cppNamespace = "::mlir::moe";
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

/// A 64-bit float that prints so that it round-trips exactly.
def MoE_F64Parameter : AttrOrTypeParameter<"::llvm::APFloat", "a 64-bit float"> {
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double value;
    if ($_parser.parseFloat(value))
      return ::mlir::failure();
    return ::llvm::APFloat(value);
  }() }];
  let printer = "$_printer.printFloat($_self)";
}

def MoE_RopeAttr : AttrDef<MoE_Dialect, "Rope"> {
  let mnemonic = "rope";
  let summary = "Rotary position embedding parameters";
  let description = [{
    `theta` is the frequency base, `style` the pairing of dimensions
    (`rotate_half` pairs i with i + head_dim/2, as in Hugging Face's Llama and
    Mixtral; `interleaved` pairs 2i with 2i+1).

    Example: `#moe.rope<theta = 10000.0, style = rotate_half>`
  }];
  let parameters = (ins MoE_F64Parameter:$theta, "RopeStyle":$style);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def MoE_ShardAttr : AttrDef<MoE_Dialect, "Shard"> {
  let mnemonic = "shard";
  let summary = "Which part of a weight each rank of its group holds";
  let description = [{
    Dimension i of the full weight is cut into `splits[i]` equal parts; a
    weight op's type is the shape of one part. The parts are numbered
    row-major over the split dimensions; in a group of G ranks (G a multiple
    of the number of parts P), rank r holds part r * P / G, so that G/P
    consecutive ranks share (replicate) a part. With `chunks`, dimension i is
    first viewed as `chunks[i]` contiguous chunks (e.g. the gate and up halves
    of a fused gate_up weight) and each chunk is cut into `splits[i]` parts; a
    rank's part of dimension i is the concatenation of its part of every
    chunk.

    Examples: `#moe.shard<splits = [8, 1]>` (column-parallel q_proj over 8
    ranks), `#moe.shard<splits = [2, 4, 1], chunks = [1, 2, 1]>` (gated experts
    over 2 expert groups, each expert cut 4 ways).
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$splits,
                        OptionalArrayRefParameter<"int64_t">:$chunks);
  let assemblyFormat = [{
    `<` `splits` `=` `[` $splits `]` (`,` `chunks` `=` `[` $chunks^ `]`)? `>`
  }];
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Number of distinct parts (the product of the splits).
    int64_t getNumParts() const;
    /// Shape of the whole weight given the shape of one part.
    ::llvm::SmallVector<int64_t> getFullShape(::llvm::ArrayRef<int64_t> part) const;
  }];
}

def MoE_MemoryPlanAttr : AttrDef<MoE_Dialect, "MemoryPlan"> {
  let mnemonic = "memory_plan";
  let summary = "Bytes of device memory one rank of a stage uses";
  let description = [{
    Set by moe-plan-memory on each forward function: `weights` (its weight
    parts), `activations` (peak of the live activation buffers, reused by
    liveness, at the planned tokens per step), `workspace` (library scratch),
    `kv_cache` (what is left for the KV cache) and `usable` (the GPU's memory
    less the runtime's reserve). weights + activations + workspace + kv_cache
    = usable.

    Example: `#moe.memory_plan<weights = 1000, activations = 200, workspace = 100, kv_cache = 700, usable = 2000>`
  }];
  let parameters = (ins "int64_t":$weights, "int64_t":$activations,
                        "int64_t":$workspace, "int64_t":$kv_cache,
                        "int64_t":$usable);
  let assemblyFormat = "`<` struct(params) `>`";
}

def MoE_KVPlanAttr : AttrDef<MoE_Dialect, "KVPlan"> {
  let mnemonic = "kv_plan";
  let summary = "The paged KV cache of one rank of a stage";
  let description = [{
    Set by moe-plan-kv-cache: blocks of `block_size` tokens,
    `bytes_per_token` on this rank (MQA-aware: a replicated KV head counts
    on every rank), `blocks` in the pool, and how many `sequences` of
    `context` tokens fit.

    Example: `#moe.kv_plan<block_size = 16, bytes_per_token = 256, blocks = 100, context = 256, sequences = 6>`
  }];
  let parameters = (ins "int64_t":$block_size, "int64_t":$bytes_per_token,
                        "int64_t":$blocks, "int64_t":$sequence_length,
                        "int64_t":$sequences);
  let assemblyFormat = "`<` struct(params) `>`";
  let extraClassDeclaration = [{
    /// Tokens the pool holds.
    int64_t getTokens() const { return getBlocks() * getBlockSize(); }
  }];
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

def MoE_KVCacheType : TypeDef<MoE_Dialect, "KVCache"> {
  let mnemonic = "kv_cache";
  let summary = "The paged key/value cache of every attention layer";
  let description = [{
    The key/value cache of a model: `num_layers` layers of `num_kv_heads`
    heads of `head_dim` elements for each cached token. How many tokens and
    sequences it holds, its block size and its block tables are runtime
    properties (see the KV-cache planning pass); ops that read it find each
    token's sequence through them.

    Example: `!moe.kv_cache<num_layers = 24, num_kv_heads = 1, head_dim = 128, element_type = bf16>`
  }];
  let parameters = (ins "int64_t":$num_layers, "int64_t":$num_kv_heads,
                        "int64_t":$head_dim, "::mlir::Type":$element_type);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// Bytes of K and V stored per cached token, over all layers.
    int64_t getBytesPerToken() const;
  }];
}

#endif // MOE_DIALECT_TD
