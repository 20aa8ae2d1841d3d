//===- TransferStep.cpp - Collective and pipeline steps -------------------===//

#include "runtime/TransferStep.h"
#include "runtime/StepShapes.h"

#include <cstring>

using namespace moert;

bool moert::runTransferStep(const StepInfo &step, const RankPlace &place,
                            const float *a, const std::vector<int64_t> &shapeA,
                            float *c, const std::vector<int64_t> &shapeC,
                            int64_t elementBytes, int64_t &within,
                            int64_t &next, std::string &error) {
  if (!place.comm) {
    error = "this plan has collectives: run it with a communicator of its "
            "ranks";
    return false;
  }
  int64_t tp = static_cast<int64_t>(place.group.size());
  switch (step.kind) {
  case StepInfo::Kind::AllReduce:
    within += 2 * elementCount(shapeC) * elementBytes * (tp - 1) / tp;
    std::memcpy(c, a, elementCount(shapeA) * sizeof(float));
    return place.comm->allReduceSum(c, elementCount(shapeC), place.group, error);
  case StepInfo::Kind::AllGather: {
    // Gather whole blocks, then interleave them along `dim`: block g holds
    // this rank's [outer, inner] slab, placed at column g * inner.
    int64_t bytes = elementCount(shapeA) * sizeof(float);
    within += elementCount(shapeC) * elementBytes * (tp - 1) / tp;
    std::vector<char> blocks(bytes * tp);
    if (!place.comm->allGather(a, bytes, blocks.data(), place.group, error))
      return false;
    int64_t outer = 1, inner = sizeof(float);
    for (int64_t d = 0; d < static_cast<int64_t>(shapeA.size()); ++d)
      (d < step.dim ? outer : inner) *= shapeA[d];
    char *out = reinterpret_cast<char *>(c);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t g = 0; g < tp; ++g)
        std::memcpy(out + (o * tp + g) * inner,
                    blocks.data() + g * bytes + o * inner, inner);
    return true;
  }
  // The same index of the tensor group in the other stage.
  case StepInfo::Kind::Send:
    next += elementCount(shapeA) * elementBytes;
    return place.comm->send(a, elementCount(shapeA) * sizeof(float),
                            step.stage * tp + place.rankInStage, error);
  case StepInfo::Kind::Recv:
    return place.comm->recv(c, elementCount(shapeC) * sizeof(float),
                            step.stage * tp + place.rankInStage, error);
  default:
    error = "not a transfer step";
    return false;
  }
}
