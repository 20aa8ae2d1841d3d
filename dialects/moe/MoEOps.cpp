//===- MoEOps.cpp - Verifiers of moe ops ----------------------------------===//
//
// Shape and attribute invariants of every op. Costs are in MoEOpsCost.cpp.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::moe;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

static constexpr int64_t kAny = ShapedType::kDynamic;

static std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text = "[";
  llvm::raw_string_ostream os(text);
  llvm::interleave(
      shape, os,
      [&](int64_t dim) {
        if (ShapedType::isDynamic(dim))
          os << '?';
        else
          os << dim;
      },
      ", ");
  os << ']';
  return text;
}

/// Checks that `value`'s type has `expected` shape (kAny matches any size,
/// and a dynamic size matches anything) and names its meaning `dims`.
static LogicalResult checkShape(Operation *op, StringRef name, Value value,
                                ArrayRef<int64_t> expected, StringRef dims) {
  auto type = cast<RankedTensorType>(value.getType());
  bool ok = type.getRank() == static_cast<int64_t>(expected.size());
  for (auto [dim, want] : llvm::zip(type.getShape(), expected))
    ok = ok && (want == kAny || ShapedType::isDynamic(dim) || dim == want);
  if (ok)
    return success();
  return op->emitOpError() << name << " must have shape "
                           << formatShape(expected) << " (" << dims
                           << "), got " << type;
}

static int64_t dim(Value value, unsigned index) {
  return cast<RankedTensorType>(value.getType()).getDimSize(index);
}

static LogicalResult checkPositive(Operation *op, StringRef name,
                                   int64_t value) {
  if (value > 0)
    return success();
  return op->emitOpError() << name << " must be positive, got " << value;
}

/// Checks that `layer` indexes a layer of `cache`.
static LogicalResult checkLayer(Operation *op, KVCacheType cache,
                                int64_t layer) {
  if (layer >= 0 && layer < cache.getNumLayers())
    return success();
  return op->emitOpError() << "layer " << layer
                           << " is out of range for a cache of "
                           << cache.getNumLayers() << " layers";
}

static LogicalResult checkSameType(Operation *op, StringRef what, Value a,
                                   StringRef other, Value b) {
  if (a.getType() == b.getType())
    return success();
  return op->emitOpError() << what << " type " << a.getType()
                           << " must match the " << other << " type "
                           << b.getType();
}

/// Checks the [experts, rows, d_model] / [experts, d_model, ffn] pair of
/// routed expert weights against `input`, for a gated FFN or not.
static LogicalResult checkExpertWeights(Operation *op, Value input,
                                        Value gateUp, Value down, bool gated) {
  int64_t dModel = dim(input, 1);
  if (failed(checkShape(op, "down", down, {kAny, dModel, kAny},
                        "experts, d_model, ffn")))
    return failure();
  int64_t experts = dim(down, 0), ffn = dim(down, 2);
  int64_t rows = gated ? 2 * ffn : ffn;
  return checkShape(op, "gate_up", gateUp, {experts, rows, dModel},
                    gated ? "experts, 2*ffn, d_model for a gated FFN"
                          : "experts, ffn, d_model");
}

//===----------------------------------------------------------------------===//
// Verifiers
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("name must not be empty");
  ShardAttr shard = getShardAttr();
  if (!shard)
    return success();
  ArrayRef<int64_t> shape = getResult().getType().getShape();
  if (shard.getSplits().size() != shape.size())
    return emitOpError() << "shard splits " << shard.getSplits().size()
                         << " dimensions but the weight has " << shape.size();
  for (auto [index, chunks] : llvm::enumerate(shard.getChunks()))
    if (shape[index] % chunks != 0)
      return emitOpError() << "dimension " << index << " of the part ("
                           << shape[index] << ") is not a multiple of its "
                           << chunks << " chunks";
  return success();
}

RankedTensorType WeightOp::getFullType() {
  RankedTensorType type = getResult().getType();
  if (ShardAttr shard = getShardAttr())
    return type.clone(shard.getFullShape(type.getShape()));
  return type;
}

/// Checks `global_experts` against the `local` experts a rank's weights hold
/// and the `topK` experts each token is routed to.
static LogicalResult checkGlobalExperts(Operation *op,
                                        std::optional<uint64_t> global,
                                        int64_t local, int64_t topK) {
  int64_t experts = global ? static_cast<int64_t>(*global) : local;
  if (global && (experts < local || experts % local != 0))
    return op->emitOpError() << "global_experts (" << experts
                             << ") must be a multiple of the experts the "
                                "weights hold ("
                             << local << ")";
  if (topK < 1 || topK > experts)
    return op->emitOpError() << "top_k (" << topK
                             << ") must be between 1 and the number of "
                                "experts ("
                             << experts << ")";
  return success();
}

int64_t ExpertsOp::getNumModelExperts() {
  return getGlobalExperts() ? static_cast<int64_t>(*getGlobalExperts())
                            : getDown().getType().getDimSize(0);
}

int64_t ExpertFFNOp::getNumModelExperts() {
  return getGlobalExperts() ? static_cast<int64_t>(*getGlobalExperts())
                            : getDown().getType().getDimSize(0);
}

LogicalResult EmbedOp::verify() {
  if (failed(checkShape(*this, "table", getTable(), {kAny, kAny},
                        "vocab, d_model")))
    return failure();
  if (failed(checkShape(*this, "result", getResult(),
                        {dim(getTokens(), 0), dim(getTable(), 1)},
                        "tokens, d_model")))
    return failure();
  if (getResult().getType().getElementType() !=
      getTable().getType().getElementType())
    return emitOpError("result element type must match the table's");
  if (getPart())
    return checkShape(*this, "part", getPart(), {1}, "one index");
  return success();
}

/// Shared invariants of the norms: result typed as the input, a positive
/// epsilon, and [d_model] weight (and bias).
static LogicalResult verifyNorm(Operation *op, Value input, Value result,
                                llvm::APFloat epsilon, Value weight,
                                Value bias = {}) {
  if (failed(checkSameType(op, "result", result, "input", input)))
    return failure();
  if (!(epsilon.convertToDouble() > 0.0))
    return op->emitOpError("epsilon must be positive");
  if (failed(checkShape(op, "weight", weight, {dim(input, 1)}, "d_model")))
    return failure();
  if (bias && failed(checkShape(op, "bias", bias, {dim(input, 1)}, "d_model")))
    return failure();
  return success();
}

LogicalResult RMSNormOp::verify() {
  return verifyNorm(*this, getInput(), getResult(), getEpsilon(), getWeight());
}

LogicalResult LayerNormOp::verify() {
  return verifyNorm(*this, getInput(), getResult(), getEpsilon(), getWeight(),
                    getBias());
}

LogicalResult AddOp::verify() { return success(); }

LogicalResult AttentionOp::verify() {
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(),
          headDim = getHeadDim();
  if (failed(checkPositive(*this, "num_heads", heads)) ||
      failed(checkPositive(*this, "num_kv_heads", kvHeads)) ||
      failed(checkPositive(*this, "head_dim", headDim)))
    return failure();
  if (heads % kvHeads != 0)
    return emitOpError() << "num_heads (" << heads
                         << ") must be a multiple of num_kv_heads (" << kvHeads
                         << ")";
  if (getRope() && headDim % 2 != 0)
    return emitOpError() << "rope needs an even head_dim, got " << headDim;
  if (failed(checkSameType(*this, "result", getResult(), "input", getInput())))
    return failure();
  if (failed(checkSameType(*this, "new_kv_cache", getNewKvCache(), "kv_cache",
                           getKvCache())))
    return failure();
  KVCacheType cache = getKvCache().getType();
  if (failed(checkLayer(*this, cache, getLayer())))
    return failure();
  if (cache.getNumKvHeads() != kvHeads || cache.getHeadDim() != headDim)
    return emitOpError() << "kv_cache holds " << cache.getNumKvHeads()
                         << " heads of " << cache.getHeadDim()
                         << " but the op has " << kvHeads << " heads of "
                         << headDim;
  int64_t dModel = dim(getInput(), 1);
  if (failed(checkShape(*this, "positions", getPositions(),
                        {dim(getInput(), 0)}, "tokens")) ||
      failed(checkShape(*this, "wq", getWq(), {heads * headDim, dModel},
                        "num_heads*head_dim, d_model")) ||
      failed(checkShape(*this, "wk", getWk(), {kvHeads * headDim, dModel},
                        "num_kv_heads*head_dim, d_model")) ||
      failed(checkShape(*this, "wv", getWv(), {kvHeads * headDim, dModel},
                        "num_kv_heads*head_dim, d_model")) ||
      failed(checkShape(*this, "wo", getWo(), {dModel, heads * headDim},
                        "d_model, num_heads*head_dim")))
    return failure();
  return success();
}

LogicalResult RouterOp::verify() {
  if (failed(checkShape(*this, "weight", getWeight(),
                        {kAny, dim(getInput(), 1)}, "experts, d_model")))
    return failure();
  int64_t experts = dim(getWeight(), 0), topK = getTopK();
  if (topK < 1 || topK > experts)
    return emitOpError() << "top_k (" << topK
                         << ") must be between 1 and the number of experts ("
                         << experts << ")";
  int64_t tokens = dim(getInput(), 0);
  if (failed(checkShape(*this, "indices", getIndices(), {tokens, topK},
                        "tokens, top_k")) ||
      failed(checkShape(*this, "routing_weights", getRoutingWeights(),
                        {tokens, topK}, "tokens, top_k")))
    return failure();
  return success();
}

/// What moe.experts and moe.expert_ffn share: the result typed as the
/// input, consistent expert weights, and the expert count vs top_k.
static LogicalResult checkExpertFFN(Operation *op, Value input, Value result,
                                   Value gateUp, Value down, bool gated,
                                   std::optional<uint64_t> globalExperts,
                                   int64_t topK) {
  if (failed(checkSameType(op, "result", result, "input", input)) ||
      failed(checkExpertWeights(op, input, gateUp, down, gated)))
    return failure();
  return checkGlobalExperts(op, globalExperts, dim(down, 0), topK);
}

/// `expert_group` is a [1] tensor and only comes with `global_experts`.
static LogicalResult checkExpertGroup(Operation *op, Value group,
                                      std::optional<uint64_t> globalExperts) {
  if (!group)
    return success();
  if (!globalExperts)
    return op->emitOpError("expert_group needs global_experts");
  return checkShape(op, "expert_group", group, {1}, "one index");
}

LogicalResult ExpertsOp::verify() {
  if (failed(checkExpertFFN(*this, getInput(), getResult(), getGateUp(),
                            getDown(), getGated(), getGlobalExperts(),
                            dim(getIndices(), 1))) ||
      failed(checkExpertGroup(*this, getExpertGroup(), getGlobalExperts())))
    return failure();
  if (std::optional<uint64_t> group = getAllToAll()) {
    int64_t ranks = static_cast<int64_t>(*group);
    int64_t local = dim(getDown(), 0);
    if (ranks < 2)
      return emitOpError() << "all_to_all needs a group of at least 2 ranks, "
                              "got "
                           << ranks;
    if (getNumModelExperts() != local * ranks)
      return emitOpError() << "all_to_all over " << ranks
                           << " ranks needs global_experts = " << ranks
                           << " x the experts a rank holds (" << local
                           << "), got " << getNumModelExperts();
  }
  int64_t topK = dim(getIndices(), 1);
  if (failed(checkShape(*this, "routing_weights", getRoutingWeights(),
                        {dim(getInput(), 0), topK}, "tokens, top_k")))
    return failure();
  return success();
}

LogicalResult FFNOp::verify() {
  if (failed(checkSameType(*this, "result", getResult(), "input", getInput())))
    return failure();
  int64_t dModel = dim(getInput(), 1);
  if (failed(checkShape(*this, "down", getDown(), {dModel, kAny},
                        "d_model, ffn")))
    return failure();
  int64_t ffn = dim(getDown(), 1);
  if (failed(checkShape(*this, "up", getUp(), {ffn, dModel}, "ffn, d_model")))
    return failure();
  if (getGate() && failed(checkShape(*this, "gate", getGate(), {ffn, dModel},
                                     "ffn, d_model")))
    return failure();
  return success();
}

LogicalResult GatherTokensOp::verify() {
  return checkShape(*this, "result", getResult(),
                    {dim(getRows(), 0), dim(getInput(), 1)}, "rows, features");
}

LogicalResult LMHeadOp::verify() {
  if (failed(checkShape(*this, "weight", getWeight(),
                        {kAny, dim(getInput(), 1)}, "vocab, d_model")))
    return failure();
  return checkShape(*this, "logits", getLogits(),
                    {dim(getInput(), 0), dim(getWeight(), 0)},
                    "tokens, vocab");
}

LogicalResult SampleOp::verify() {
  int64_t rows = dim(getLogits(), 0);
  for (auto [name, value] :
       {std::pair<StringRef, Value>{"temperature", getTemperature()},
        {"top_k", getTopK()},
        {"top_p", getTopP()},
        {"seeds", getSeeds()},
        {"tokens", getTokens()}})
    if (failed(checkShape(*this, name, value, {rows}, "rows of logits")))
      return failure();
  return success();
}

LogicalResult LinearOp::verify() {
  if (failed(checkShape(*this, "weight", getWeight(),
                        {kAny, dim(getInput(), 1)}, "out, in")))
    return failure();
  return checkShape(*this, "result", getResult(),
                    {dim(getInput(), 0), dim(getWeight(), 0)}, "tokens, out");
}

LogicalResult RopeOp::verify() {
  int64_t headDim = getHeadDim();
  if (failed(checkPositive(*this, "head_dim", headDim)))
    return failure();
  if (headDim % 2 != 0)
    return emitOpError() << "head_dim must be even, got " << headDim;
  int64_t width = dim(getInput(), 1);
  if (!ShapedType::isDynamic(width) && width % headDim != 0)
    return emitOpError() << "input width " << width
                         << " is not a multiple of head_dim " << headDim;
  if (failed(checkSameType(*this, "result", getResult(), "input", getInput())))
    return failure();
  return checkShape(*this, "positions", getPositions(), {dim(getInput(), 0)},
                    "tokens");
}

LogicalResult KVCacheWriteOp::verify() {
  KVCacheType cache = getKvCache().getType();
  if (failed(checkLayer(*this, cache, getLayer())))
    return failure();
  if (failed(checkSameType(*this, "result", getResult(), "kv_cache",
                           getKvCache())))
    return failure();
  int64_t width = cache.getNumKvHeads() * cache.getHeadDim();
  int64_t tokens = dim(getKeys(), 0);
  if (failed(checkShape(*this, "keys", getKeys(), {kAny, width},
                        "tokens, num_kv_heads*head_dim")) ||
      failed(checkShape(*this, "values", getValues(), {tokens, width},
                        "tokens, num_kv_heads*head_dim")) ||
      failed(checkShape(*this, "positions", getPositions(), {tokens},
                        "tokens")))
    return failure();
  if (getRope() && cache.getHeadDim() % 2 != 0)
    return emitOpError() << "rope needs an even head_dim, got "
                         << cache.getHeadDim();
  return success();
}

LogicalResult AttendOp::verify() {
  KVCacheType cache = getKvCache().getType();
  if (failed(checkLayer(*this, cache, getLayer())))
    return failure();
  int64_t heads = getNumHeads();
  if (failed(checkPositive(*this, "num_heads", heads)))
    return failure();
  if (heads % cache.getNumKvHeads() != 0)
    return emitOpError() << "num_heads (" << heads
                         << ") must be a multiple of the cache's num_kv_heads ("
                         << cache.getNumKvHeads() << ")";
  if (failed(checkShape(*this, "queries", getQueries(),
                        {kAny, heads * cache.getHeadDim()},
                        "tokens, num_heads*head_dim")))
    return failure();
  if (failed(checkSameType(*this, "result", getResult(), "queries",
                           getQueries())))
    return failure();
  if (getRope() && cache.getHeadDim() % 2 != 0)
    return emitOpError() << "rope needs an even head_dim, got "
                         << cache.getHeadDim();
  return checkShape(*this, "positions", getPositions(), {dim(getQueries(), 0)},
                    "tokens");
}

LogicalResult DispatchOp::verify() {
  int64_t experts = getNumExperts();
  if (failed(checkPositive(*this, "num_experts", experts)))
    return failure();
  int64_t topK = dim(getIndices(), 1);
  if (topK > experts)
    return emitOpError() << "tokens are routed to " << topK
                         << " experts but there are only " << experts;
  if (failed(checkShape(*this, "indices", getIndices(),
                        {dim(getInput(), 0), kAny}, "tokens, top_k")) ||
      failed(checkShape(*this, "permuted", getPermuted(),
                        {kAny, dim(getInput(), 1)}, "tokens*top_k, d_model")) ||
      failed(checkShape(*this, "offsets", getOffsets(), {experts + 1},
                        "experts+1")) ||
      failed(checkShape(*this, "permutation", getPermutation(),
                        {dim(getPermuted(), 0)}, "tokens*top_k")))
    return failure();
  if (getPermuted().getType().getElementType() !=
      getInput().getType().getElementType())
    return emitOpError("permuted element type must match the input's");
  return success();
}

LogicalResult ExpertFFNOp::verify() {
  if (failed(checkExpertFFN(*this, getInput(), getResult(), getGateUp(),
                            getDown(), getGated(), getGlobalExperts(),
                            getTopK())) ||
      failed(checkExpertGroup(*this, getExpertGroup(), getGlobalExperts())))
    return failure();
  return checkShape(*this, "offsets", getOffsets(),
                    {getNumModelExperts() + 1}, "experts+1");
}

LogicalResult CombineOp::verify() {
  int64_t tokens = dim(getRoutingWeights(), 0);
  int64_t topK = dim(getRoutingWeights(), 1);
  int64_t rows = ShapedType::isDynamic(tokens) ? kAny : tokens * topK;
  if (failed(checkShape(*this, "permutation", getPermutation(), {rows},
                        "tokens*top_k")))
    return failure();
  return checkShape(*this, "result", getResult(),
                    {tokens, dim(getExpertOutputs(), 1)}, "tokens, d_model");
}

#define GET_OP_CLASSES
#include "dialects/moe/MoEOps.cpp.inc"
