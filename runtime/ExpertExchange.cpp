//===- ExpertExchange.cpp - Routes of the expert all-to-all ---------------===//

#include "runtime/ExpertExchange.h"

#include <algorithm>

using namespace moert;

std::pair<int64_t, int64_t> moert::tokenSlice(int64_t tokens,
                                              int64_t groupSize,
                                              int64_t position) {
  int64_t slice = groupSize > 0 ? (tokens + groupSize - 1) / groupSize : 0;
  int64_t begin = std::min(tokens, position * slice);
  return {begin, std::min(tokens, begin + slice)};
}

bool moert::routeExpertExchange(const int32_t *offsets, int64_t experts,
                                const int32_t *permutation, int64_t tokens,
                                int64_t topK, int64_t groupSize,
                                int64_t position, bool toExperts,
                                ExchangeRoutes &routes, std::string &error) {
  if (groupSize < 1 || position < 0 || position >= groupSize ||
      experts < 1 || experts % groupSize != 0 || topK < 1 || tokens < 0) {
    error = "expert exchange: " + std::to_string(experts) +
            " experts cannot be spread evenly over " +
            std::to_string(groupSize) + " ranks (position " +
            std::to_string(position) + ", top_k " + std::to_string(topK) +
            ")";
    return false;
  }
  const int64_t rows = tokens * topK;
  if (offsets[0] != 0 || offsets[experts] != rows) {
    error = "expert exchange: the dispatch offsets span rows " +
            std::to_string(offsets[0]) + " to " +
            std::to_string(offsets[experts]) + ", expected 0 to " +
            std::to_string(rows);
    return false;
  }
  // The token of every row, from the permutation (copy i of the tokens is
  // row permutation[i]).
  std::vector<int64_t> tokenOfRow(rows, -1);
  for (int64_t copy = 0; copy < rows; ++copy) {
    int64_t row = permutation[copy];
    if (row < 0 || row >= rows || tokenOfRow[row] >= 0) {
      error = "expert exchange: the dispatch permutation is not a "
              "permutation of the " +
              std::to_string(rows) + " rows (entry " + std::to_string(copy) +
              " is " + std::to_string(row) + ")";
      return false;
    }
    tokenOfRow[row] = copy / topK;
  }
  const int64_t slice = (tokens + groupSize - 1) / groupSize;
  const int64_t expertsPerRank = experts / groupSize;
  routes.send.assign(groupSize, {});
  routes.recv.assign(groupSize, {});
  for (int64_t expert = 0; expert < experts; ++expert) {
    if (offsets[expert + 1] < offsets[expert]) {
      error = "expert exchange: the dispatch offsets decrease at expert " +
              std::to_string(expert);
      return false;
    }
    const int64_t holder = expert / expertsPerRank;
    for (int64_t row = offsets[expert]; row < offsets[expert + 1]; ++row) {
      const int64_t owner = tokenOfRow[row] / slice;
      const int64_t from = toExperts ? owner : holder;
      const int64_t to = toExperts ? holder : owner;
      if (from == to)
        continue;
      if (from == position)
        routes.send[to].push_back(row);
      else if (to == position)
        routes.recv[from].push_back(row);
    }
  }
  return true;
}
