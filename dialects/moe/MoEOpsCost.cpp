//===- MoEOpsCost.cpp - CostOpInterface of moe ops ------------------------===//
//
// FLOPs and bytes of every op for a CostContext. A multiply-add is 2 FLOPs;
// elementwise work is counted roughly (a few FLOPs per element) since it is
// memory-bound. Weights are read once per execution.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

/// Bytes of `value` when its dynamic (token) dimension has `rows` rows.
static int64_t bytes(Value value, int64_t rows) {
  return getTensorBytes(value.getType(), rows);
}

/// Bytes of a statically shaped value (a weight).
static int64_t bytes(Value value) { return getTensorBytes(value.getType()); }

static int64_t dim(Value value, unsigned index) {
  return cast<RankedTensorType>(value.getType()).getDimSize(index);
}

/// FLOPs of one token through one expert or dense FFN.
static int64_t ffnFlopsPerToken(int64_t dModel, int64_t ffn, bool gated) {
  return 2 * dModel * ffn * (gated ? 3 : 2) + (gated ? 2 : 1) * ffn;
}

/// Bytes of the experts `numTokens` tokens are expected to touch among the
/// ones `gateUp` and `down` hold (routing is over `modelExperts` experts).
static int64_t touchedExpertBytes(Value gateUp, Value down, int64_t topK,
                                  int64_t modelExperts, int64_t numTokens) {
  int64_t local = dim(down, 0);
  double touched = expectedExpertsTouched(modelExperts, topK, numTokens) *
                   local / modelExperts;
  return static_cast<int64_t>(touched * (bytes(gateUp) + bytes(down)) /
                              local);
}

//===----------------------------------------------------------------------===//
// Graph-level ops
//===----------------------------------------------------------------------===//

// A weight costs nothing by itself: its readers count its bytes.
int64_t WeightOp::getFlops(const CostContext &) { return 0; }
int64_t WeightOp::getBytesRead(const CostContext &) { return 0; }
int64_t WeightOp::getBytesWritten(const CostContext &) { return 0; }

int64_t EmbedOp::getFlops(const CostContext &) { return 0; }
int64_t EmbedOp::getBytesRead(const CostContext &ctx) {
  return bytes(getTokens(), ctx.numTokens) + bytes(getResult(), ctx.numTokens);
}
int64_t EmbedOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}
std::optional<ParamCategory> EmbedOp::getParamCategory() {
  return ParamCategory::embedding;
}
double EmbedOp::getActiveWeightFraction() {
  // A token reads one row of the table.
  return 1.0 / dim(getTable(), 0);
}

int64_t RMSNormOp::getFlops(const CostContext &ctx) {
  return 4 * ctx.numTokens * dim(getInput(), 1);
}
int64_t RMSNormOp::getBytesRead(const CostContext &ctx) {
  return bytes(getInput(), ctx.numTokens) + bytes(getWeight());
}
int64_t RMSNormOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}
std::optional<ParamCategory> RMSNormOp::getParamCategory() {
  return ParamCategory::norm;
}

int64_t LayerNormOp::getFlops(const CostContext &ctx) {
  return 7 * ctx.numTokens * dim(getInput(), 1);
}
int64_t LayerNormOp::getBytesRead(const CostContext &ctx) {
  return bytes(getInput(), ctx.numTokens) + bytes(getWeight()) +
         bytes(getBias());
}
int64_t LayerNormOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}
std::optional<ParamCategory> LayerNormOp::getParamCategory() {
  return ParamCategory::norm;
}

int64_t AddOp::getFlops(const CostContext &ctx) {
  return ctx.numTokens * dim(getResult(), 1);
}
int64_t AddOp::getBytesRead(const CostContext &ctx) {
  return 2 * bytes(getResult(), ctx.numTokens);
}
int64_t AddOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}

int64_t AttentionOp::getFlops(const CostContext &ctx) {
  int64_t n = ctx.numTokens, dModel = dim(getInput(), 1);
  int64_t qWidth = getNumHeads() * getHeadDim();
  int64_t kvWidth = getNumKvHeads() * getHeadDim();
  int64_t projections = 2 * n * dModel * (2 * qWidth + 2 * kvWidth);
  int64_t scores = 2 * 2 * n * qWidth * ctx.contextLength;
  int64_t rope = getRope() ? 3 * n * (qWidth + kvWidth) : 0;
  return projections + scores + rope;
}
int64_t AttentionOp::getBytesRead(const CostContext &ctx) {
  int64_t kvPerToken = getKvCache().getType().getBytesPerToken() /
                       getKvCache().getType().getNumLayers();
  return bytes(getWq()) + bytes(getWk()) + bytes(getWv()) + bytes(getWo()) +
         bytes(getInput(), ctx.numTokens) +
         bytes(getPositions(), ctx.numTokens) +
         ctx.numTokens * ctx.contextLength * kvPerToken;
}
int64_t AttentionOp::getBytesWritten(const CostContext &ctx) {
  int64_t kvPerToken = getKvCache().getType().getBytesPerToken() /
                       getKvCache().getType().getNumLayers();
  return bytes(getResult(), ctx.numTokens) + ctx.numTokens * kvPerToken;
}
std::optional<ParamCategory> AttentionOp::getParamCategory() {
  return ParamCategory::attention;
}

int64_t RouterOp::getFlops(const CostContext &ctx) {
  int64_t experts = dim(getWeight(), 0);
  return ctx.numTokens * (2 * dim(getInput(), 1) * experts + 5 * experts);
}
int64_t RouterOp::getBytesRead(const CostContext &ctx) {
  return bytes(getInput(), ctx.numTokens) + bytes(getWeight());
}
int64_t RouterOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getIndices(), ctx.numTokens) +
         bytes(getRoutingWeights(), ctx.numTokens);
}
std::optional<ParamCategory> RouterOp::getParamCategory() {
  return ParamCategory::router;
}

/// Of `numTokens` tokens' routed copies, those that go to the `local` of
/// `global` experts a rank holds (all of them when not partitioned).
static double localRows(int64_t numTokens, int64_t topK, int64_t local,
                        int64_t global) {
  return static_cast<double>(numTokens) * topK * local / global;
}

int64_t ExpertsOp::getFlops(const CostContext &ctx) {
  int64_t topK = dim(getIndices(), 1), dModel = dim(getInput(), 1);
  double rows = localRows(ctx.numTokens, topK, dim(getDown(), 0),
                          getNumModelExperts());
  return static_cast<int64_t>(
      rows * (ffnFlopsPerToken(dModel, dim(getDown(), 2), getGated()) +
              2 * dModel));
}
int64_t ExpertsOp::getBytesRead(const CostContext &ctx) {
  return touchedExpertBytes(getGateUp(), getDown(), dim(getIndices(), 1),
                            getNumModelExperts(), ctx.numTokens) +
         bytes(getInput(), ctx.numTokens) +
         bytes(getIndices(), ctx.numTokens) +
         bytes(getRoutingWeights(), ctx.numTokens);
}
int64_t ExpertsOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}
std::optional<ParamCategory> ExpertsOp::getParamCategory() {
  return ParamCategory::experts;
}
int64_t ExpertsOp::getNumExperts() { return getNumModelExperts(); }
/// With all_to_all G: each rank sends its 1/G of the tokens' routed copies
/// to their experts' ranks and gets the results back ((G-1)/G of them leave
/// the rank each way), then the ranks all-gather the result.
int64_t ExpertsOp::getBytesSent(const CostContext &ctx) {
  std::optional<uint64_t> group = getAllToAll();
  if (!group)
    return 0;
  int64_t ranks = static_cast<int64_t>(*group);
  int64_t rowBytes = bytes(getInput(), 1);
  int64_t copies = ctx.numTokens * dim(getIndices(), 1);
  int64_t exchange = 2 * copies * rowBytes / ranks * (ranks - 1) / ranks;
  int64_t gather = ctx.numTokens * rowBytes * (ranks - 1) / ranks;
  return exchange + gather;
}
bool ExpertsOp::isWithinStage() { return true; }
double ExpertsOp::getActiveWeightFraction() {
  return static_cast<double>(dim(getIndices(), 1)) / getNumModelExperts();
}

int64_t FFNOp::getFlops(const CostContext &ctx) {
  return ctx.numTokens * ffnFlopsPerToken(dim(getInput(), 1),
                                          dim(getDown(), 1), bool(getGate()));
}
int64_t FFNOp::getBytesRead(const CostContext &ctx) {
  int64_t weights = bytes(getUp()) + bytes(getDown());
  if (getGate())
    weights += bytes(getGate());
  return weights + bytes(getInput(), ctx.numTokens);
}
int64_t FFNOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}
std::optional<ParamCategory> FFNOp::getParamCategory() {
  return ParamCategory::mlp;
}

int64_t GatherTokensOp::getFlops(const CostContext &) { return 0; }
int64_t GatherTokensOp::getBytesRead(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens) + bytes(getRows(), ctx.numTokens);
}
int64_t GatherTokensOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}

int64_t LMHeadOp::getFlops(const CostContext &ctx) {
  return 2 * ctx.numTokens * dim(getWeight(), 0) * dim(getWeight(), 1);
}
int64_t LMHeadOp::getBytesRead(const CostContext &ctx) {
  return bytes(getWeight()) + bytes(getInput(), ctx.numTokens);
}
int64_t LMHeadOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getLogits(), ctx.numTokens);
}
std::optional<ParamCategory> LMHeadOp::getParamCategory() {
  return ParamCategory::lm_head;
}

int64_t SampleOp::getFlops(const CostContext &ctx) {
  return 5 * ctx.numTokens * dim(getLogits(), 1);
}
int64_t SampleOp::getBytesRead(const CostContext &ctx) {
  return bytes(getLogits(), ctx.numTokens) +
         ctx.numTokens * (4 + 4 + 4 + 8);
}
int64_t SampleOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getTokens(), ctx.numTokens);
}

//===----------------------------------------------------------------------===//
// Decomposed forms
//===----------------------------------------------------------------------===//

int64_t LinearOp::getFlops(const CostContext &ctx) {
  return 2 * ctx.numTokens * dim(getWeight(), 0) * dim(getWeight(), 1);
}
int64_t LinearOp::getBytesRead(const CostContext &ctx) {
  return bytes(getWeight()) + bytes(getInput(), ctx.numTokens);
}
int64_t LinearOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}
std::optional<ParamCategory> LinearOp::getParamCategory() {
  return getCategory();
}

int64_t RopeOp::getFlops(const CostContext &ctx) {
  return 3 * ctx.numTokens * dim(getInput(), 1);
}
int64_t RopeOp::getBytesRead(const CostContext &ctx) {
  return bytes(getInput(), ctx.numTokens) + bytes(getPositions(), ctx.numTokens);
}
int64_t RopeOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}

int64_t KVCacheWriteOp::getFlops(const CostContext &ctx) {
  // A folded RoPE costs what moe.rope would.
  return getRope() ? 3 * ctx.numTokens * dim(getKeys(), 1) : 0;
}
int64_t KVCacheWriteOp::getBytesRead(const CostContext &ctx) {
  return bytes(getKeys(), ctx.numTokens) + bytes(getValues(), ctx.numTokens) +
         bytes(getPositions(), ctx.numTokens);
}
int64_t KVCacheWriteOp::getBytesWritten(const CostContext &ctx) {
  KVCacheType cache = getKvCache().getType();
  return ctx.numTokens * cache.getBytesPerToken() / cache.getNumLayers();
}

int64_t AttendOp::getFlops(const CostContext &ctx) {
  int64_t rope = getRope() ? 3 * ctx.numTokens * dim(getQueries(), 1) : 0;
  return 2 * 2 * ctx.numTokens * dim(getQueries(), 1) * ctx.contextLength +
         rope;
}
int64_t AttendOp::getBytesRead(const CostContext &ctx) {
  KVCacheType cache = getKvCache().getType();
  return bytes(getQueries(), ctx.numTokens) +
         bytes(getPositions(), ctx.numTokens) +
         ctx.numTokens * ctx.contextLength * cache.getBytesPerToken() /
             cache.getNumLayers();
}
int64_t AttendOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}

int64_t DispatchOp::getFlops(const CostContext &) { return 0; }
int64_t DispatchOp::getBytesRead(const CostContext &ctx) {
  return bytes(getInput(), ctx.numTokens) + bytes(getIndices(), ctx.numTokens);
}
int64_t DispatchOp::getBytesWritten(const CostContext &ctx) {
  int64_t rows = ctx.numTokens * dim(getIndices(), 1);
  return bytes(getPermuted(), rows) + bytes(getOffsets()) +
         bytes(getPermutation(), rows);
}

int64_t ExpertFFNOp::getFlops(const CostContext &ctx) {
  double rows = localRows(ctx.numTokens, getTopK(), dim(getDown(), 0),
                          getNumModelExperts());
  return static_cast<int64_t>(
      rows *
      ffnFlopsPerToken(dim(getInput(), 1), dim(getDown(), 2), getGated()));
}
int64_t ExpertFFNOp::getBytesRead(const CostContext &ctx) {
  int64_t rows = static_cast<int64_t>(localRows(
      ctx.numTokens, getTopK(), dim(getDown(), 0), getNumModelExperts()));
  return touchedExpertBytes(getGateUp(), getDown(), getTopK(),
                            getNumModelExperts(), ctx.numTokens) +
         bytes(getInput(), rows) + bytes(getOffsets());
}
int64_t ExpertFFNOp::getBytesWritten(const CostContext &ctx) {
  int64_t rows = static_cast<int64_t>(localRows(
      ctx.numTokens, getTopK(), dim(getDown(), 0), getNumModelExperts()));
  return bytes(getResult(), rows);
}
std::optional<ParamCategory> ExpertFFNOp::getParamCategory() {
  return ParamCategory::experts;
}
int64_t ExpertFFNOp::getNumExperts() { return getNumModelExperts(); }
double ExpertFFNOp::getActiveWeightFraction() {
  return static_cast<double>(getTopK()) / getNumModelExperts();
}

int64_t CombineOp::getFlops(const CostContext &ctx) {
  return 2 * ctx.numTokens * dim(getRoutingWeights(), 1) *
         dim(getExpertOutputs(), 1);
}
int64_t CombineOp::getBytesRead(const CostContext &ctx) {
  int64_t rows = ctx.numTokens * dim(getRoutingWeights(), 1);
  return bytes(getExpertOutputs(), rows) + bytes(getPermutation(), rows) +
         bytes(getRoutingWeights(), ctx.numTokens);
}
int64_t CombineOp::getBytesWritten(const CostContext &ctx) {
  return bytes(getResult(), ctx.numTokens);
}
