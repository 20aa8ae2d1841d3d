//===- MoECommOps.cpp - Communication ops of moe --------------------------===//
//
// Verifiers and costs of all_reduce, all_gather, expert_exchange,
// all_gather_tokens, send and recv. Bytes sent follow the ring algorithms
// NCCL uses: an all-reduce of B bytes over p ranks sends 2 (p-1)/p B per
// rank, an all-gather of a B-byte result (p-1)/p B.
//
//===----------------------------------------------------------------------===//

#include "dialects/moe/MoEOps.h"

using namespace mlir;
using namespace mlir::moe;

static LogicalResult checkGroup(Operation *op, int64_t groupSize) {
  if (groupSize >= 1)
    return success();
  return op->emitOpError() << "group_size must be positive, got " << groupSize;
}

static int64_t ringShare(int64_t bytes, int64_t groupSize) {
  return groupSize <= 1 ? 0 : bytes * (groupSize - 1) / groupSize;
}

//===----------------------------------------------------------------------===//
// all_reduce
//===----------------------------------------------------------------------===//

LogicalResult AllReduceOp::verify() {
  return checkGroup(*this, getGroupSize());
}
int64_t AllReduceOp::getFlops(const CostContext &ctx) {
  auto type = getResult().getType();
  return ctx.numTokens * type.getDimSize(1) * (getGroupSize() - 1);
}
int64_t AllReduceOp::getBytesRead(const CostContext &ctx) {
  return getTensorBytes(getInput().getType(), ctx.numTokens);
}
int64_t AllReduceOp::getBytesWritten(const CostContext &ctx) {
  return getTensorBytes(getResult().getType(), ctx.numTokens);
}
int64_t AllReduceOp::getBytesSent(const CostContext &ctx) {
  return 2 * ringShare(getTensorBytes(getInput().getType(), ctx.numTokens),
                       getGroupSize());
}
bool AllReduceOp::isWithinStage() { return true; }

//===----------------------------------------------------------------------===//
// all_gather
//===----------------------------------------------------------------------===//

LogicalResult AllGatherOp::verify() {
  if (failed(checkGroup(*this, getGroupSize())))
    return failure();
  auto input = getInput().getType();
  auto result = getResult().getType();
  int64_t dim = getDim();
  if (dim < 0 || dim >= input.getRank())
    return emitOpError() << "dim " << dim << " is out of range for rank "
                         << input.getRank();
  SmallVector<int64_t> expected(input.getShape());
  if (!ShapedType::isDynamic(expected[dim]))
    expected[dim] *= getGroupSize();
  if (result.getShape() != ArrayRef<int64_t>(expected) ||
      result.getElementType() != input.getElementType())
    return emitOpError() << "result must be the input with dimension " << dim
                         << " times " << getGroupSize() << " ("
                         << input.clone(expected) << "), got " << result;
  return success();
}
int64_t AllGatherOp::getFlops(const CostContext &) { return 0; }
int64_t AllGatherOp::getBytesRead(const CostContext &ctx) {
  return getTensorBytes(getInput().getType(), ctx.numTokens);
}
int64_t AllGatherOp::getBytesWritten(const CostContext &ctx) {
  return getTensorBytes(getResult().getType(), ctx.numTokens);
}
int64_t AllGatherOp::getBytesSent(const CostContext &ctx) {
  return ringShare(getTensorBytes(getResult().getType(), ctx.numTokens),
                   getGroupSize());
}
bool AllGatherOp::isWithinStage() { return true; }

//===----------------------------------------------------------------------===//
// expert_exchange, all_gather_tokens
//===----------------------------------------------------------------------===//

LogicalResult ExpertExchangeOp::verify() {
  int64_t group = getGroupSize();
  if (group < 2)
    return emitOpError() << "group_size must be at least 2, got " << group;
  if (getTopK() < 1)
    return emitOpError() << "top_k must be positive, got " << getTopK();
  auto offsets = getOffsets().getType();
  if (offsets.isDynamicDim(0) || offsets.getDimSize(0) < 2)
    return emitOpError() << "offsets must have a static size of experts + 1, "
                            "got "
                         << offsets;
  int64_t experts = offsets.getDimSize(0) - 1;
  if (experts % group != 0)
    return emitOpError() << experts << " experts cannot be spread evenly over "
                         << group << " ranks";
  return success();
}
int64_t ExpertExchangeOp::getFlops(const CostContext &) { return 0; }
int64_t ExpertExchangeOp::getBytesRead(const CostContext &ctx) {
  return getTensorBytes(getRows().getType(), ctx.numTokens * getTopK());
}
int64_t ExpertExchangeOp::getBytesWritten(const CostContext &ctx) {
  return getTensorBytes(getResult().getType(), ctx.numTokens * getTopK());
}
/// A rank sends the copies of its 1/G of the tokens (or of its experts)
/// that cross ranks: (G-1)/G of them with uniform routing.
int64_t ExpertExchangeOp::getBytesSent(const CostContext &ctx) {
  int64_t group = getGroupSize();
  return ringShare(getTensorBytes(getRows().getType(),
                                  ctx.numTokens * getTopK()) /
                       group,
                   group);
}
bool ExpertExchangeOp::isWithinStage() { return true; }

LogicalResult AllGatherTokensOp::verify() {
  return checkGroup(*this, getGroupSize());
}
int64_t AllGatherTokensOp::getFlops(const CostContext &) { return 0; }
int64_t AllGatherTokensOp::getBytesRead(const CostContext &ctx) {
  return getTensorBytes(getInput().getType(), ctx.numTokens) / getGroupSize();
}
int64_t AllGatherTokensOp::getBytesWritten(const CostContext &ctx) {
  return getTensorBytes(getResult().getType(), ctx.numTokens);
}
int64_t AllGatherTokensOp::getBytesSent(const CostContext &ctx) {
  return ringShare(getTensorBytes(getResult().getType(), ctx.numTokens),
                   getGroupSize());
}
bool AllGatherTokensOp::isWithinStage() { return true; }

//===----------------------------------------------------------------------===//
// send / recv
//===----------------------------------------------------------------------===//

static LogicalResult checkStage(Operation *op, int64_t stage) {
  if (stage >= 0)
    return success();
  return op->emitOpError() << "stage must not be negative, got " << stage;
}

LogicalResult GroupRankOp::verify() {
  int64_t size = getGroupSize(), divisor = getDivisor();
  if (size < 1)
    return emitOpError() << "group_size must be at least 1, got " << size;
  if (divisor < 1 || size % divisor != 0)
    return emitOpError() << "divisor must be a positive divisor of "
                            "group_size ("
                         << size << "), got " << divisor;
  auto type = cast<RankedTensorType>(getResult().getType());
  if (type.getRank() != 1 || type.getDimSize(0) != 1 ||
      !type.getElementType().isInteger(32))
    return emitOpError() << "result must be tensor<1xi32>, got " << type;
  return success();
}

LogicalResult SendOp::verify() { return checkStage(*this, getStage()); }
int64_t SendOp::getFlops(const CostContext &) { return 0; }
int64_t SendOp::getBytesRead(const CostContext &ctx) {
  return getTensorBytes(getInput().getType(), ctx.numTokens);
}
int64_t SendOp::getBytesWritten(const CostContext &) { return 0; }
int64_t SendOp::getBytesSent(const CostContext &ctx) {
  return getTensorBytes(getInput().getType(), ctx.numTokens);
}
bool SendOp::isWithinStage() { return false; }

LogicalResult RecvOp::verify() { return checkStage(*this, getStage()); }
int64_t RecvOp::getFlops(const CostContext &) { return 0; }
int64_t RecvOp::getBytesRead(const CostContext &) { return 0; }
int64_t RecvOp::getBytesWritten(const CostContext &ctx) {
  return getTensorBytes(getResult().getType(), ctx.numTokens);
}
/// The sender counts the transfer.
int64_t RecvOp::getBytesSent(const CostContext &) { return 0; }
bool RecvOp::isWithinStage() { return false; }
