//===- MoEDialect.cpp - The moe dialect -----------------------------------===//

#include "dialects/moe/MoEDialect.h"
#include "dialects/moe/MoEOps.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;

#include "dialects/moe/MoEDialect.cpp.inc"
#include "dialects/moe/MoEEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/moe/MoEAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/moe/MoETypes.cpp.inc"

void MoEDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/moe/MoEOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/moe/MoEAttrs.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/moe/MoETypes.cpp.inc"
      >();
}

LogicalResult RopeAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               llvm::APFloat theta, RopeStyle style) {
  if (!(theta.convertToDouble() > 1.0))
    return emitError() << "rope theta must be greater than 1, got "
                       << theta.convertToDouble();
  return success();
}

LogicalResult KVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  int64_t numLayers, int64_t numKVHeads,
                                  int64_t headDim, Type elementType) {
  if (numLayers <= 0 || numKVHeads <= 0 || headDim <= 0)
    return emitError() << "kv_cache num_layers, num_kv_heads and head_dim "
                          "must be positive, got "
                       << numLayers << ", " << numKVHeads << ", " << headDim;
  if (!isa<FloatType>(elementType))
    return emitError() << "kv_cache element_type must be a float type, got "
                       << elementType;
  return success();
}

int64_t KVCacheType::getBytesPerToken() const {
  return 2 * getNumLayers() * getNumKvHeads() * getHeadDim() *
         getElementBytes(getElementType());
}

LogicalResult ShardAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                ArrayRef<int64_t> splits,
                                ArrayRef<int64_t> chunks) {
  if (llvm::any_of(splits, [](int64_t s) { return s < 1; }))
    return emitError() << "shard splits must be positive";
  if (!chunks.empty() && chunks.size() != splits.size())
    return emitError() << "shard has " << splits.size() << " splits but "
                       << chunks.size() << " chunks";
  if (llvm::any_of(chunks, [](int64_t c) { return c < 1; }))
    return emitError() << "shard chunks must be positive";
  return success();
}

int64_t ShardAttr::getNumParts() const {
  int64_t parts = 1;
  for (int64_t split : getSplits())
    parts *= split;
  return parts;
}

SmallVector<int64_t> ShardAttr::getFullShape(ArrayRef<int64_t> part) const {
  SmallVector<int64_t> full(part);
  for (auto [dim, split] : llvm::zip(full, getSplits()))
    dim *= split;
  return full;
}
