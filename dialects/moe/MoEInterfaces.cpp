//===- MoEInterfaces.cpp - Cost interface of moe ops ----------------------===//

#include "dialects/moe/MoEInterfaces.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

#include "dialects/moe/MoEInterfaces.cpp.inc"

int64_t mlir::moe::getElementBytes(Type type) {
  return std::max<int64_t>(1, (type.getIntOrFloatBitWidth() + 7) / 8);
}

int64_t mlir::moe::getTensorBytes(Type type, int64_t rows) {
  auto tensor = cast<RankedTensorType>(type);
  int64_t elements = 1;
  for (int64_t dim : tensor.getShape())
    elements *= ShapedType::isDynamic(dim) ? rows : dim;
  return elements * getElementBytes(tensor.getElementType());
}

double mlir::moe::expectedExpertsTouched(int64_t numExperts, int64_t topK,
                                         int64_t numTokens) {
  // Each token picks topK distinct experts; an expert is missed by one token
  // with probability 1 - topK/numExperts.
  double miss = 1.0 - static_cast<double>(topK) / numExperts;
  return numExperts * (1.0 - std::pow(miss, static_cast<double>(numTokens)));
}

void mlir::moe::walkCostOps(Operation *root,
                            llvm::function_ref<void(CostOpInterface)> fn) {
  root->walk<WalkOrder::PreOrder>([&](Operation *op) {
    auto costly = dyn_cast<CostOpInterface>(op);
    if (!costly)
      return WalkResult::advance();
    fn(costly);
    // A fused kernel's cost covers its body.
    return op->getNumRegions() ? WalkResult::skip() : WalkResult::advance();
  });
}
