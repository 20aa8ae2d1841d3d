//===- TransferStep.cpp - Collective and pipeline steps -------------------===//

#include "runtime/TransferStep.h"
#include "runtime/ExpertExchange.h"
#include "runtime/StepShapes.h"

#include <cstring>

using namespace moert;

namespace {

/// c = a with the rows that cross ranks exchanged (see ExpertExchange.h).
bool exchangeRows(const StepInfo &step, const RankPlace &place,
                  const TransferBuffers &buffers, int64_t elementBytes,
                  int64_t &within, std::string &error) {
  const int64_t rows = buffers.shapeA[0], width = buffers.shapeA[1];
  const int64_t groupSize = static_cast<int64_t>(place.group.size());
  if (rows % step.topK != 0) {
    error = "expert exchange: " + std::to_string(rows) +
            " rows are not a whole number of tokens with top_k " +
            std::to_string(step.topK);
    return false;
  }
  ExchangeRoutes routes;
  if (!routeExpertExchange(buffers.offsets, buffers.experts,
                           buffers.permutation, rows / step.topK, step.topK,
                           groupSize, place.rankInStage, step.toExperts,
                           routes, error))
    return false;
  if (buffers.c != buffers.a)
    std::memcpy(buffers.c, buffers.a, rows * width * sizeof(float));
  const int64_t rowBytes = width * static_cast<int64_t>(sizeof(float));
  std::vector<int64_t> sendBytes, recvBytes;
  std::vector<float> sent;
  int64_t receivedRows = 0;
  for (int64_t peer = 0; peer < groupSize; ++peer) {
    sendBytes.push_back(routes.send[peer].size() * rowBytes);
    recvBytes.push_back(routes.recv[peer].size() * rowBytes);
    receivedRows += static_cast<int64_t>(routes.recv[peer].size());
    for (int64_t row : routes.send[peer])
      sent.insert(sent.end(), buffers.a + row * width,
                  buffers.a + (row + 1) * width);
  }
  within += static_cast<int64_t>(sent.size()) * elementBytes;
  std::vector<float> received(receivedRows * width);
  if (!place.comm->allToAll(sent.data(), sendBytes, received.data(),
                            recvBytes, place.group, error))
    return false;
  const float *next = received.data();
  for (const std::vector<int64_t> &from : routes.recv)
    for (int64_t row : from) {
      std::memcpy(buffers.c + row * width, next, rowBytes);
      next += width;
    }
  return true;
}

/// c = every member's slice of the rows of a (see tokenSlice).
bool gatherTokens(const RankPlace &place, const TransferBuffers &buffers,
                  int64_t elementBytes, int64_t &within, std::string &error) {
  const int64_t tokens = buffers.shapeA[0], width = buffers.shapeA[1];
  const int64_t groupSize = static_cast<int64_t>(place.group.size());
  const int64_t slice = (tokens + groupSize - 1) / groupSize;
  within += tokens * width * elementBytes * (groupSize - 1) / groupSize;
  // Equal blocks of `slice` rows; the last members' are padded.
  std::vector<float> mine(slice * width, 0.0f), all(groupSize * slice * width);
  auto [begin, end] = tokenSlice(tokens, groupSize, place.rankInStage);
  if (end > begin)
    std::memcpy(mine.data(), buffers.a + begin * width,
                (end - begin) * width * sizeof(float));
  if (!place.comm->allGather(mine.data(),
                             slice * width * static_cast<int64_t>(sizeof(float)),
                             all.data(), place.group, error))
    return false;
  if (tokens > 0)
    std::memcpy(buffers.c, all.data(), tokens * width * sizeof(float));
  return true;
}

} // namespace

void moert::countTransferBytes(const StepInfo &step, int64_t groupSize,
                               const std::vector<int64_t> &shapeA,
                               const std::vector<int64_t> &shapeC,
                               int64_t elementBytes, int64_t &within,
                               int64_t &next) {
  switch (step.kind) {
  case StepInfo::Kind::AllReduce:
    within += 2 * elementCount(shapeC) * elementBytes * (groupSize - 1) /
              groupSize;
    return;
  case StepInfo::Kind::AllGather:
    within += elementCount(shapeC) * elementBytes * (groupSize - 1) / groupSize;
    return;
  case StepInfo::Kind::Send:
    next += elementCount(shapeA) * elementBytes;
    return;
  default:
    return;
  }
}

bool moert::runTransferStep(const StepInfo &step, const RankPlace &place,
                            const TransferBuffers &buffers,
                            int64_t elementBytes, int64_t &within,
                            int64_t &next, std::string &error) {
  if (!place.comm) {
    error = "this plan has collectives: run it with a communicator of its "
            "ranks";
    return false;
  }
  const float *a = buffers.a;
  float *c = buffers.c;
  const std::vector<int64_t> &shapeA = buffers.shapeA, &shapeC = buffers.shapeC;
  int64_t tp = static_cast<int64_t>(place.group.size());
  countTransferBytes(step, tp, shapeA, shapeC, elementBytes, within, next);
  switch (step.kind) {
  case StepInfo::Kind::AllReduce:
    std::memcpy(c, a, elementCount(shapeA) * sizeof(float));
    return place.comm->allReduceSum(c, elementCount(shapeC), place.group, error);
  case StepInfo::Kind::AllGather: {
    // Gather whole blocks, then interleave them along `dim`: block g holds
    // this rank's [outer, inner] slab, placed at column g * inner.
    int64_t bytes = elementCount(shapeA) * sizeof(float);
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
  case StepInfo::Kind::ExpertExchange:
    return exchangeRows(step, place, buffers, elementBytes, within, error);
  case StepInfo::Kind::AllGatherTokens:
    return gatherTokens(place, buffers, elementBytes, within, error);
  // The same index of the tensor group in the other stage.
  case StepInfo::Kind::Send:
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
