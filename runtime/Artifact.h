//===- Artifact.h - Reading compiled moec artifacts -------------*- C++ -*-===//
//
// The artifact is the only contract between the compiler (moec, which writes
// it with codegen/ArtifactWriter.cpp) and the runtime: one JSON document,
// format "moec-artifact", version 6, protected by an FNV-1a 64 checksum of its
// own bytes (with the 16 checksum digits read as '0'). Artifact::open reads
// and validates one completely (types, the checksum and the consistency of
// the plan with its stages and weight shards), so that everything the runtime
// reads from it afterwards can be trusted.
//
// No exception leaves this API: failures are a null return with a one-line
// message naming the file and, for a bad field, its JSON path
// (`$.stages[1].weights[3].local_shape`).
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_ARTIFACT_H
#define MOEC_RUNTIME_ARTIFACT_H

#include "runtime/Safetensors.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moert {

/// The artifact format version this runtime reads.
inline constexpr int64_t kArtifactVersion = 6;

/// FNV-1a 64 of `bytes` (offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3): the artifact checksum.
uint64_t fnv1a64(std::string_view bytes);

/// The artifact spelling of `dtype` (MLIR's: "bf16", "f16", "f32",
/// "f8E4M3FN", "i32", "i64").
const char *artifactDTypeName(DType dtype);
/// Parses an artifact dtype name; false for names not in DType.
bool parseArtifactDType(std::string_view name, DType &dtype);

/// `$.model`: the model the artifact was compiled from.
struct ModelInfo {
  std::string name;
  int64_t vocabSize = 0;
  int64_t dModel = 0;
  int64_t numLayers = 0;
  int64_t maxContext = 0;
  /// Routed experts per MoE layer and experts per token (0 for a dense
  /// model).
  int64_t experts = 0, topK = 0;
  /// Activation type: BF16, F16 or F32.
  DType dtype = DType::BF16;
};

/// `$.plan`: how the model is spread over ranks.
struct PlanInfo {
  int64_t pipelineStages = 1;
  int64_t tensorParallel = 1;
  int64_t expertParallel = 1;
  /// Whether expert tokens are exchanged with an all-to-all.
  bool expertAllToAll = false;
  /// pipelineStages * tensorParallel.
  int64_t ranks = 1;
};

/// One weight a stage binds (`$.stages[s].weights[w]`).
struct WeightInfo {
  /// Checkpoint name.
  std::string name;
  DType dtype = DType::BF16;
  /// Shape of the whole tensor in the checkpoint.
  std::vector<int64_t> shape;
  /// Shape of one rank's part (shape / splits per dimension).
  std::vector<int64_t> localShape;
  /// Parts per dimension; empty = whole tensor.
  std::vector<int64_t> splits;
  /// Contiguous chunks per dimension (see WeightSpec); may be empty.
  std::vector<int64_t> chunks;

  /// The spec WeightLoader::load takes.
  WeightSpec spec() const { return {name, shape, dtype, splits, chunks}; }
  /// Bytes of one rank's part; -1 if that overflows int64_t (never for a
  /// weight of a parsed artifact).
  int64_t localBytes() const {
    int64_t bytes = dtypeSize(dtype);
    for (int64_t extent : localShape)
      if (__builtin_mul_overflow(bytes, extent, &bytes))
        return -1;
    return bytes;
  }
};

/// `$.stages[s].memory`: the compiler's per-rank memory plan, in bytes.
struct MemoryInfo {
  int64_t weights = 0;
  int64_t activations = 0;
  int64_t workspace = 0;
  int64_t kvCache = 0;
  int64_t usable = 0;
};

/// `$.stages[s].kv_cache`: the planned paged KV cache of one rank.
struct KVCacheInfo {
  int64_t blockSize = 0;
  int64_t bytesPerToken = 0;
  int64_t blocks = 0;
  int64_t sequenceLength = 0;
  int64_t sequences = 0;
};

/// One dimension of a plan buffer: `factor` times the run-time size
/// `symbol` ('T' tokens of the step, 'R' logit rows, 'S' KV-cache slots,
/// 'N' sequences, 'M' blocks per sequence), or the constant `factor` when
/// `symbol` is 0.
struct PlanDim {
  char symbol = 0;
  int64_t factor = 0;
  /// Grid sizes only: ceil(factor x symbol / divisor) ("GT/64").
  int64_t divisor = 1;
};

/// One buffer of an execution plan (`$.stages[s].execution.buffers[i]`).
struct BufferInfo {
  enum class Kind { Input, Weight, Activation, KCache, VCache, GroupRank };
  Kind kind = Kind::Activation;
  /// GroupRank: the buffer holds the rank's index in its stage / divisor.
  int64_t divisor = 1;
  /// The input's or weight's name; empty otherwise.
  std::string name;
  /// The layer of a K/V cache buffer; -1 otherwise.
  int64_t layer = -1;
  DType dtype = DType::F32;
  std::vector<PlanDim> shape;
};

/// One GPU launch of a kernel step (cuda target): the kernel `function` of
/// GPU module `module`, its grid (in the plan's sizes) and block, and which
/// of the step's `args` each kernel parameter is (a memref parameter is
/// passed as its descriptor, flattened: codegen/README.md).
struct LaunchInfo {
  std::string module, function;
  PlanDim grid[3];
  int64_t block[3] = {1, 1, 1};
  std::vector<int64_t> params;
};

/// What decides which of a plan's guarded steps run: the step's token
/// count, and the most tokens of one sequence in it (1 for a decode step,
/// the chunk for a prefill).
struct StepScale {
  int64_t tokens = 0, run = 0;
};

/// One step of an execution plan (`$.stages[s].execution.steps[i]`).
struct StepInfo {
  enum class Kind {
    Kernel,
    Gemm,
    GroupedGemm,
    AllReduce,
    AllGather,
    ExpertExchange,
    AllGatherTokens,
    Send,
    Recv
  };
  Kind kind = Kind::Kernel;
  /// Kernel: its name and its buffer arguments, inputs then outputs.
  std::string kernel;
  std::vector<int64_t> args;
  /// Kernel, cuda target: its GPU launches, in order.
  std::vector<LaunchInfo> launches;
  /// Gemm: c [M, N] = a [M, K] times b [N, K] transposed. GroupedGemm:
  /// the same per run of rows of one expert (rows offsets[e] ..<
  /// offsets[e + 1] belong to expert e), with b [experts, N, K] the rank's
  /// experts (those of group `group`'s index when `group` >= 0), the rows
  /// of experts it does not hold set to zero. AllReduce: c =
  /// the sum of every group member's a. AllGather: c = the members' a
  /// concatenated along `dim`. Send: a to the same group index of stage
  /// `stage`; Recv: c from there. ExpertExchange: c = a with the rows that
  /// cross ranks exchanged (codegen/README.md); AllGatherTokens: c = every
  /// member's slice of the rows of a.
  int64_t a = -1, b = -1, c = -1;
  int64_t dim = 0;
  int64_t stage = -1;
  /// ExpertExchange: the dispatch's offsets [experts + 1] and permutation
  /// [tokens * topK] (i32 buffers), and the direction.
  int64_t offsets = -1, permutation = -1;
  int64_t topK = 0;
  bool toExperts = true;
  /// GroupedGemm: the group_rank buffer saying which experts the rank
  /// holds; -1 when it holds them all.
  int64_t group = -1;
  /// The step runs when the step's token count T is at least `fromTokens`
  /// and (when `belowTokens` >= 0) below `belowTokens`, and the most tokens
  /// of one sequence in it at least `fromRunTokens` and (when
  /// `belowRunTokens` >= 0) below `belowRunTokens`: a plan may do the
  /// same work two ways, by size (the routed experts: a graph-safe kernel
  /// for decode, library GEMMs for prefill).
  int64_t fromTokens = 0, belowTokens = -1;
  int64_t fromRunTokens = 0, belowRunTokens = -1;
  bool runsAt(const StepScale &scale) const {
    return scale.tokens >= fromTokens &&
           (belowTokens < 0 || scale.tokens < belowTokens) &&
           scale.run >= fromRunTokens &&
           (belowRunTokens < 0 || scale.run < belowRunTokens);
  }
};

/// `$.stages[s].execution`: what the runtime runs for one step of the
/// stage (codegen/README.md). Buffer ids index `buffers`.
struct ExecutionInfo {
  int64_t blockSize = 0;
  int64_t kvLayers = 0;
  /// Elements per cached token and layer (kv_heads * head_dim).
  int64_t kvWidth = 0;
  DType kvDtype = DType::F32;
  std::vector<BufferInfo> buffers;
  std::vector<StepInfo> steps;
  /// The input buffers the runtime fills: tokens, positions, logit_rows,
  /// slot_mapping, token_seq, block_tables.
  int64_t tokens = -1, positions = -1, logitRows = -1, slotMapping = -1,
          tokenSeq = -1, blockTables = -1;
  /// The output: logits [R, vocab] f32; -1 for a stage before the last.
  int64_t logits = -1;
};

/// One pipeline stage; it runs on ranks [firstRank, firstRank + ranks).
struct StageInfo {
  int64_t stage = 0;
  int64_t firstRank = 0;
  int64_t ranks = 0;
  int64_t firstLayer = 0;
  int64_t layers = 0;
  /// The weights every rank of the stage loads (its own part of each).
  std::vector<WeightInfo> weights;
  std::optional<MemoryInfo> memory;
  std::optional<KVCacheInfo> kvCache;
  /// The stage's compiled program (MLIR text).
  std::string program;
  /// What the runtime executes (present for the host target).
  std::optional<ExecutionInfo> execution;

  /// Bytes of one rank's part of every weight (checked by parsing not to
  /// overflow).
  int64_t weightBytes() const {
    int64_t total = 0;
    for (const WeightInfo &weight : weights)
      total += weight.localBytes();
    return total;
  }
};

/// One compiled kernel (`$.kernels[k]`).
struct KernelInfo {
  std::string name;
  std::string mlir;
};

/// One GPU module of a cuda artifact (`$.cuda.modules[m]`): its kernel
/// function, PTX per chip and, where moec assembled it, cubin per chip.
struct CudaModuleInfo {
  std::string module, function;
  std::map<std::string, std::string> ptx, cubin;
};

/// A validated artifact, held in memory.
class Artifact {
public:
  /// Reads and validates the artifact at `path`. On failure returns null and
  /// sets `error` to one line naming the file, e.g. "cannot read 'x': No such
  /// file or directory" or "'x' is not a moec artifact".
  static std::unique_ptr<Artifact> open(const std::string &path,
                                        std::string &error);
  /// Validates artifact `text`; messages name it `name`.
  static std::unique_ptr<Artifact> parse(std::string_view text,
                                         std::string &error,
                                         const std::string &name = "artifact");

  /// "host" or "cuda".
  const std::string &target() const { return targetName; }
  /// The model the artifact was compiled from.
  const ModelInfo &model() const { return modelInfo; }
  /// The parallel plan.
  const PlanInfo &plan() const { return planInfo; }
  /// The stages, in order; stages()[s].stage == s.
  const std::vector<StageInfo> &stages() const { return stageInfos; }
  /// The compiled kernels.
  const std::vector<KernelInfo> &kernels() const { return kernelInfos; }
  /// The host kernels' shared object (ELF bytes); empty for cuda.
  const std::string &hostObject() const { return hostObjectBytes; }
  /// cuda target: the chips the kernels were compiled for (first: the one
  /// ptxas checked) and the GPU modules; empty when moec generated none.
  const std::vector<std::string> &cudaChips() const { return chips; }
  const std::vector<CudaModuleInfo> &cudaModules() const { return modules; }
  /// The stored checksum, "fnv1a64:<16 hex digits>".
  const std::string &checksum() const { return checksumText; }

  /// Whether a runtime built for `runtimeTarget` ("host"/"cuda") may run rank
  /// `rank` of `worldSize` started ranks: "" or the reason it may not, e.g.
  /// "the plan needs 16 ranks but 8 were started".
  std::string checkLaunch(const std::string &runtimeTarget, int64_t rank,
                          int64_t worldSize) const;

  /// The stage `rank` belongs to. A rank outside [0, plan().ranks) gets an
  /// empty stage (stage -1, no ranks, no weights).
  const StageInfo &stageOfRank(int64_t rank) const;
  /// The weights `rank` loads, for WeightLoader::load(spec,
  /// rankInStage(rank), groupSize(rank), ...). Empty for a rank out of range.
  std::vector<WeightSpec> weightsForRank(int64_t rank) const;
  /// `rank`'s index within its stage (rank - first_rank).
  int64_t rankInStage(int64_t rank) const;
  /// Ranks of `rank`'s stage (the tensor-parallel group).
  int64_t groupSize(int64_t rank) const;

private:
  Artifact() = default;
  friend class ArtifactReader;

  std::string targetName;
  std::string checksumText;
  ModelInfo modelInfo;
  PlanInfo planInfo;
  std::vector<StageInfo> stageInfos;
  std::vector<KernelInfo> kernelInfos;
  std::string hostObjectBytes;
  std::vector<std::string> chips;
  std::vector<CudaModuleInfo> modules;
};

} // namespace moert

#endif // MOEC_RUNTIME_ARTIFACT_H
