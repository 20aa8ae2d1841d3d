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
    positions per token, and KV-cache bytes per token. For a partitioned
    model (or with `cluster`), a table per stage follows: ranks, layers,
    parameters and bytes per GPU and per node at 16 and 8 bits, KV bytes per
    token and capacity (when planned), and the predicted decode step. The IR
    is unchanged.
  }];
  let options = [
    Option<"tokens", "tokens", "int64_t", /*default=*/"1",
           "Tokens in the decode step the FLOPs and bytes are for">,
    Option<"context", "context", "int64_t", /*default=*/"-1",
           "Cached positions each token attends to (-1: the module's "
           "moe.max_context)">,
    Option<"outputFile", "output", "std::string", /*default=*/"\"-\"",
           "Where to write the report (- for stdout)">,
    Option<"cluster", "cluster", "std::string", /*default=*/"\"\"",
           "Cluster to predict the decode step on (PRESET:NODESxGPUS or a "
           "file); empty: no prediction">,
    Option<"json", "json", "bool", /*default=*/"false",
           "Write JSON instead of tables">,
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

def MoEPartitionPipeline : Pass<"moe-partition-pipeline", "::mlir::ModuleOp"> {
  let summary = "Cut the forward pass into pipeline stages";
  let description = [{
    Replaces @forward by @forward_stage0 ... @forward_stage<N-1>, each
    holding a contiguous range of layers (the first stage also the
    embedding, the last the final norm and LM head). Values that cross a
    cut (the residual stream) travel by moe.send / moe.recv; each stage has
    a KV cache of its own layers. By default layers are split evenly with the
    remainder on the last stages, so the head stage is never heavier;
    `head-layers` gives the head stage fewer layers (room for the embedding,
    data loading or a draft model). Needs graph-level moe.attention.
  }];
  let dependentDialects = ["::mlir::moe::MoEDialect"];
  let options = [
    Option<"stages", "stages", "int64_t", /*default=*/"1",
           "Number of pipeline stages">,
    Option<"headLayers", "head-layers", "int64_t", /*default=*/"-1",
           "Layers on the first stage (-1: even split)">,
  ];
}

def MoEPartitionTensor : Pass<"moe-partition-tensor", "::mlir::ModuleOp"> {
  let summary = "Split attention, dense FFNs, embedding and LM head over the "
                "ranks of a stage";
  let description = [{
    Megatron-style tensor parallelism over `degree` ranks: q/k/v and gate/up
    column-parallel, o and down row-parallel followed by moe.all_reduce;
    vocabulary-parallel embedding (all-reduce) and LM head (moe.all_gather of
    the logits). KV heads split when the degree divides them, else each rank
    keeps the KV head its query heads use (MQA: replicated). Weights get
    their local shapes and a #moe.shard. Splits that cannot be made (heads,
    ffn width or vocabulary not divisible) fail with a message naming the
    dimension. Needs graph-level ops.
  }];
  let dependentDialects = ["::mlir::moe::MoEDialect"];
  let options = [
    Option<"degree", "degree", "int64_t", /*default=*/"1",
           "Ranks per stage (GPUs of a node)">,
  ];
}

def MoEPartitionExperts : Pass<"moe-partition-experts", "::mlir::ModuleOp"> {
  let summary = "Place routed experts on the ranks of their stage";
  let description = [{
    Every layer's experts are spread over `expert-parallel` groups of
    `expert-tensor-parallel` ranks (their product is the stage's rank count
    from moe-partition-tensor): a group holds num_experts / expert-parallel
    whole experts, cut expert-tensor-parallel ways inside. The experts op
    records the model's expert count (`global_experts`) and an all-reduce
    sums the ranks' shares; with `all-to-all` (each rank holding whole
    experts) the experts op exchanges the tokens itself (`all_to_all` G):
    each rank routes 1/G of the tokens, which moves (2k/G + 1) (G-1)/G
    activations per token instead of the all-reduce's 2 (G-1)/G. Experts
    never leave their stage.
  }];
  let dependentDialects = ["::mlir::moe::MoEDialect"];
  let options = [
    Option<"expertParallel", "expert-parallel", "int64_t", /*default=*/"1",
           "Groups the experts of a layer are spread over">,
    Option<"expertTensorParallel", "expert-tensor-parallel", "int64_t",
           /*default=*/"1", "Ranks each expert is cut over">,
    Option<"allToAll", "all-to-all", "bool", /*default=*/"false",
           "Exchange tokens with all-to-all instead of summing the ranks' "
           "shares with an all-reduce (whole experts per rank only)">,
  ];
}

def MoEPlanMemory : Pass<"moe-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Plan each rank's device memory; fail if a stage does not fit";
  let description = [{
    For every forward function (stage), one rank's weights (its weight
    parts), activations (the peak of live activation buffers at `max-tokens`
    tokens per step: buffers are reused once their last reader ran), a
    library workspace, and the rest of the GPU's usable memory for the KV
    cache. Records #moe.memory_plan on the function. Fails, naming the stage,
    its ranks and the shortfall, when not even one sequence of the model's
    max_context fits in what is left, or when the plan needs more GPUs than
    the cluster has.
  }];
  let dependentDialects = ["::mlir::moe::MoEDialect"];
  let options = [
    Option<"cluster", "cluster", "std::string", /*default=*/"\"a100-80gb:1x8\"",
           "PRESET:NODESxGPUS or a cluster description file">,
    Option<"maxTokens", "max-tokens", "int64_t", /*default=*/"8192",
           "Most tokens in one step (decode batch plus prefill chunks)">,
    Option<"workspaceMiB", "workspace-mib", "int64_t", /*default=*/"256",
           "Library workspace per rank (cuBLAS, attention scratch), MiB">,
  ];
}

def MoEPlanKVCache : Pass<"moe-plan-kv-cache", "::mlir::ModuleOp"> {
  let summary = "Lay out the paged KV cache in the memory left for it";
  let description = [{
    Cuts each stage's KV-cache budget (from moe-plan-memory) into blocks of
    `block-size` tokens and records #moe.kv_plan: bytes per token on a rank,
    blocks, and sequences of `context` tokens that fit.
  }];
  let dependentDialects = ["::mlir::moe::MoEDialect"];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"16",
           "Tokens per KV-cache block">,
    Option<"context", "context", "int64_t", /*default=*/"-1",
           "Sequence length for the capacity in sequences (-1: max_context)">,
  ];
}

def MoEFuse : Pass<"moe-fuse", "::mlir::ModuleOp"> {
  let summary = "Group the memory-bound ops between GEMMs into fused kernels";
  let description = [{
    Wraps runs of memory-bound ops (residual add, norms, RoPE, token
    dispatch, expert combine, row gather, sampling) into moe.fused ops.
    First a RoPE whose only consumer is attention (queries) or a KV-cache
    write (keys) is folded into that op as its `rope` attribute, so the
    rotation happens where the rows are loaded anyway. Then an
    op joins the kernel of one of its producers when everything else it
    reads was computed before that kernel starts; so residual add + RMSNorm
    become one kernel, and the expert combine + residual add + the next
    layer's input norm another. Weights move to the top of the function
    first (they are constants). GEMMs, attention over the cache, cache
    writes and collectives stay outside.
  }];
  let dependentDialects = ["::mlir::moe::MoEDialect"];
}

def MoEOutlineKernels : Pass<"moe-outline-kernels", "::mlir::ModuleOp"> {
  let summary = "Outline fused kernels into functions shared by identical "
                "layers";
  let description = [{
    Replaces every moe.fused op by a func.call of a private function marked
    `moe.kernel`; fused ops with identical bodies and types share one
    function, so 120 identical layers compile their kernels once.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def ConvertMoEToLinalg : Pass<"convert-moe-to-linalg"> {
  let summary = "Lower moe elementwise and norm ops to linalg on tensors";
  let description = [{
    moe.add, moe.rms_norm, moe.layer_norm and moe.rope become linalg.generic
    ops (row reductions for the norms), computing in f32 and rounding once
    to the activation type; moe.gather_tokens and moe.embed (unsharded
    table) become row gathers, moe.combine a gather with a weighted sum, and
    moe.linear / moe.lm_head f32-accumulated contractions (the host
    reference; the GPU path will call cuBLAS). The router (softmax, top-k by
    masked arg-max, renormalisation), the token dispatch (a counting sort in
    scf loops) and the grouped expert FFN (an scf loop over experts) lower
    too, for experts not placed on ranks, and so does the dense FFN (two
    contractions, the activation, one contraction). The host back end
    (moe-lower-host) and the GPU pipeline take it from there (bufferization,
    loops or GPU mapping, LLVM). The KV-cache ops get their own kernels from
    the code generator (codegen/KVCacheKernels.h); other moe ops are left.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect"];
}

def MoEHostEntryPoints : Pass<"moe-host-entry-points", "::mlir::ModuleOp"> {
  let summary = "Give every lowered host kernel a packed entry point";
  let description = [{
    Runs on the LLVM dialect, after func-to-llvm made the C interface
    wrapper `_mlir_ciface_K` of each kernel K (`llvm.emit_c_interface`). Adds
    `llvm.func @moec_K(%args: !llvm.ptr)` that loads argument i's memref
    descriptor pointer from `args[i]` and calls the wrapper, so that the
    runtime calls every kernel the same way whatever its arguments.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def MoECopiesToLinalg : Pass<"moe-copies-to-linalg"> {
  let summary = "Rewrite memref.copy as linalg.copy";
  let description = [{
    Bufferization copies between buffers with memref.copy, which the LLVM
    lowering turns into a call of MLIR's runtime library (`memrefCopy`) when
    a side is strided. The host kernels must depend on no MLIR library, so
    the host pipeline rewrites every memref.copy into a linalg.copy, which
    becomes plain loops.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def MoEBuildRowKernels : Pass<"moe-build-row-kernels", "::mlir::ModuleOp"> {
  let summary = "Generate row kernels for the fused row-wise kernels";
  let description = [{
    Rewrites every kernel function (`moe.kernel`) whose ops all work row by
    row (moe.add, moe.rms_norm, moe.layer_norm, moe.rope, moe.combine,
    moe.embed, and a final moe.gather_tokens) into a function on memrefs in
    destination-passing style (inputs, then one output per result) that
    computes one token row per block: `target=gpu` emits a `gpu.launch` of
    one block per row and `threads` threads striding over the features,
    with block-wide `gpu.all_reduce` for the norms and `gpu.barrier`
    between ops; `target=host` emits the same code as loops over rows with
    one thread, which is how the GPU code's logic is checked on a machine
    without a GPU. Intermediate rows live in workgroup memory (host: stack),
    in f32, up to `shared-memory-limit` bytes; beyond, in trailing f32
    scratch arguments [rows, width] (`moe.scratch_args` says how many,
    `moe.scratch_rows_arg` which argument's rows they have). Other kernels
    are left as they are.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"host\"",
           "host (loops) or gpu (gpu.launch, one block per row)">,
    Option<"threads", "threads", "int64_t", /*default=*/"256",
           "Threads per block (gpu)">,
    Option<"sharedMemoryLimit", "shared-memory-limit", "int64_t",
           /*default=*/"49152",
           "Bytes of row buffers a block may keep in shared memory; wider "
           "kernels keep them in global scratch arguments">,
  ];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::arith::ArithDialect"];
}

def MoEBuildExpertKernels
    : Pass<"moe-build-expert-kernels", "::mlir::ModuleOp"> {
  let summary = "Generate grid kernels for the router, dispatch and FFNs";
  let description = [{
    Rewrites every kernel function (`moe.kernel`) that computes one
    moe.router, moe.dispatch, moe.expert_ffn or moe.ffn into a function on
    memrefs in destination-passing style (inputs, then one output per
    result, then for the FFNs an f32 scratch [rows, ffn] marked by the
    `moe.scratch_args` and `moe.scratch_rows_arg` attributes) written for a
    grid of thread blocks:
    the router takes one block per token (block-wide dot products, then
    one thread for the softmax and top-k), dispatch one block (a counting
    sort by one thread, then the block copies the rows), and the expert FFN
    two launches, gate/up then down, with one warp per output feature of a
    row, reading only the weights of the row's expert (the dense FFN: the
    same with one expert). `target=gpu` emits
    `gpu.launch`es; `target=host` the same code with one thread per block,
    which is how the GPU code's logic is checked without a GPU.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"host\"",
           "host (loops) or gpu (gpu.launch)">,
    Option<"threads", "threads", "int64_t", /*default=*/"256",
           "Threads per block (gpu; a multiple of 32)">,
  ];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif // MOE_PASSES_TD
