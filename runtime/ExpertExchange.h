//===- ExpertExchange.h - Routes of the expert all-to-all -------*- C++ -*-===//
//
// Which token copies cross ranks when experts exchange tokens by all-to-all
// (moe.expert_exchange, codegen/README.md). Every rank of a stage holds the
// same dispatch of all T tokens: row r of the permuted rows is a copy of
// token t for expert e. Token t belongs to rank t / ceil(T / G) and expert e
// lives on rank e / (E / G), so each rank can work out on its own which rows
// it sends and receives: no sizes travel with the data.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_RUNTIME_EXPERTEXCHANGE_H
#define MOEC_RUNTIME_EXPERTEXCHANGE_H

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace moert {

/// The rows one rank sends to and receives from each member of its group
/// (by group position), in ascending row order on both sides.
struct ExchangeRoutes {
  std::vector<std::vector<int64_t>> send, recv;
};

/// Rows [begin, end) of `tokens` that group position `position` of
/// `groupSize` owns: slices of ceil(tokens / groupSize), the last ones
/// shorter or empty.
std::pair<int64_t, int64_t> tokenSlice(int64_t tokens, int64_t groupSize,
                                       int64_t position);

/// Computes the routes of group position `position` from a dispatch of
/// `tokens` tokens with `topK` copies each over `experts` experts
/// (`offsets` [experts + 1], `permutation` [tokens * topK]). `toExperts`:
/// copies go from their token's rank to their expert's rank; otherwise
/// back. False with `error` set when the routing buffers are not a valid
/// dispatch or the experts do not spread evenly over the group.
bool routeExpertExchange(const int32_t *offsets, int64_t experts,
                         const int32_t *permutation, int64_t tokens,
                         int64_t topK, int64_t groupSize, int64_t position,
                         bool toExperts, ExchangeRoutes &routes,
                         std::string &error);

} // namespace moert

#endif // MOEC_RUNTIME_EXPERTEXCHANGE_H
