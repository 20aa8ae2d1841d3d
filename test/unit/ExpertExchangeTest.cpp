//===- ExpertExchangeTest.cpp - The expert all-to-all ---------------------===//
//
// The routes of runtime/ExpertExchange.h by hand, and the exchange steps run
// by in-process ranks whose buffers hold only what each rank really has
// (everything else poisoned), so a route that is missing or wrong shows.
//
//===----------------------------------------------------------------------===//

#include "runtime/ExpertExchange.h"
#include "runtime/TransferStep.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <thread>

using namespace moert;
using namespace std::chrono_literals;

namespace {

/// What moe.dispatch makes of `indices` [tokens, topK] over `experts`:
/// copies ordered by expert, stable in copy order.
struct Dispatch {
  std::vector<int32_t> offsets, permutation;
};
Dispatch dispatch(const std::vector<int32_t> &indices, int64_t experts) {
  Dispatch d;
  d.permutation.assign(indices.size(), -1);
  d.offsets.push_back(0);
  int32_t row = 0;
  for (int64_t expert = 0; expert < experts; ++expert) {
    for (size_t copy = 0; copy < indices.size(); ++copy)
      if (indices[copy] == expert)
        d.permutation[copy] = row++;
    d.offsets.push_back(row);
  }
  return d;
}

/// Runs `body(rank, comm)` on one thread per rank of `world`.
void runRanks(LocalWorld &world,
              const std::function<void(int64_t, Communicator &)> &body) {
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < world.size(); ++rank)
    threads.emplace_back([&world, &body, rank] {
      std::unique_ptr<Communicator> comm = world.communicator(rank);
      ASSERT_TRUE(comm);
      body(rank, *comm);
      if (::testing::Test::HasFailure())
        world.abort(rank, "test assertion failed");
    });
  for (std::thread &thread : threads)
    thread.join();
}

using Rows = std::vector<std::vector<int64_t>>;

} // namespace

TEST(ExpertExchange, TokenSlicesCoverEveryTokenOnce) {
  for (int64_t tokens = 0; tokens <= 10; ++tokens)
    for (int64_t group = 1; group <= 4; ++group) {
      int64_t next = 0;
      for (int64_t position = 0; position < group; ++position) {
        auto [begin, end] = tokenSlice(tokens, group, position);
        EXPECT_EQ(begin, next) << tokens << " tokens, " << group << " ranks";
        EXPECT_LE(end - begin, (tokens + group - 1) / group);
        next = end;
      }
      EXPECT_EQ(next, tokens);
    }
}

TEST(ExpertExchange, RoutesByHand) {
  // 3 tokens, top-2 over 4 experts, 2 ranks: tokens 0, 1 and experts 0, 1
  // belong to rank 0; token 2 and experts 2, 3 to rank 1.
  Dispatch d = dispatch({0, 2, 3, 1, 2, 0}, 4);
  ASSERT_EQ(d.offsets, (std::vector<int32_t>{0, 2, 3, 5, 6}));
  ASSERT_EQ(d.permutation, (std::vector<int32_t>{0, 3, 5, 2, 4, 1}));
  // Rows: 0 (token 0, expert 0), 1 (2, 0), 2 (1, 1), 3 (0, 2), 4 (2, 2),
  // 5 (1, 3).
  auto route = [&](int64_t position, bool toExperts) {
    ExchangeRoutes routes;
    std::string error;
    EXPECT_TRUE(routeExpertExchange(d.offsets.data(), 4, d.permutation.data(),
                                    3, 2, 2, position, toExperts, routes,
                                    error))
        << error;
    return routes;
  };
  ExchangeRoutes r0 = route(0, true), r1 = route(1, true);
  EXPECT_EQ(r0.send, (Rows{{}, {3, 5}}));
  EXPECT_EQ(r0.recv, (Rows{{}, {1}}));
  EXPECT_EQ(r1.send, (Rows{{1}, {}}));
  EXPECT_EQ(r1.recv, (Rows{{3, 5}, {}}));
  // Back: the reverse.
  ExchangeRoutes b0 = route(0, false), b1 = route(1, false);
  EXPECT_EQ(b0.send, (Rows{{}, {1}}));
  EXPECT_EQ(b0.recv, (Rows{{}, {3, 5}}));
  EXPECT_EQ(b1.send, (Rows{{3, 5}, {}}));
  EXPECT_EQ(b1.recv, (Rows{{1}, {}}));
}

TEST(ExpertExchange, RejectsRoutingThatIsNotADispatch) {
  Dispatch d = dispatch({0, 2, 3, 1, 2, 0}, 4);
  ExchangeRoutes routes;
  std::string error;
  std::vector<int32_t> twice = d.permutation;
  twice[1] = twice[0];
  EXPECT_FALSE(routeExpertExchange(d.offsets.data(), 4, twice.data(), 3, 2, 2,
                                   0, true, routes, error));
  EXPECT_EQ(error, "expert exchange: the dispatch permutation is not a "
                   "permutation of the 6 rows (entry 1 is 0)");
  std::vector<int32_t> short_ = d.offsets;
  short_[4] = 5;
  EXPECT_FALSE(routeExpertExchange(short_.data(), 4, d.permutation.data(), 3,
                                   2, 2, 0, true, routes, error));
  EXPECT_EQ(error, "expert exchange: the dispatch offsets span rows 0 to 5, "
                   "expected 0 to 6");
  EXPECT_FALSE(routeExpertExchange(d.offsets.data(), 4, d.permutation.data(),
                                   3, 2, 3, 0, true, routes, error));
  EXPECT_NE(error.find("4 experts cannot be spread evenly over 3 ranks"),
            std::string::npos)
      << error;
}

TEST(ExpertExchange, EachRankGetsExactlyTheRowsItLacks) {
  // 7 tokens (slices of 3, 3, 1), top-2 over 6 experts, 3 ranks. A rank's
  // buffer holds real values only where the rank has them; NaN elsewhere.
  const int64_t tokens = 7, topK = 2, experts = 6, group = 3, width = 5;
  std::mt19937 random(5);
  std::vector<int32_t> indices;
  for (int64_t t = 0; t < tokens; ++t) {
    int32_t first = random() % experts;
    indices.push_back(first);
    indices.push_back((first + 1 + random() % (experts - 1)) % experts);
  }
  Dispatch d = dispatch(indices, experts);
  const int64_t rows = tokens * topK;
  std::vector<int64_t> tokenOf(rows), expertOf(rows);
  for (int64_t copy = 0; copy < rows; ++copy) {
    tokenOf[d.permutation[copy]] = copy / topK;
    expertOf[d.permutation[copy]] = indices[copy];
  }
  auto value = [](int64_t row, int64_t col, float scale) {
    return scale * float(row * 10 + col);
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto ownerOf = [&](int64_t token) { return token / 3; };
  auto holderOf = [&](int64_t expert) { return expert / 2; };

  LocalWorld world(group, 5s);
  std::vector<int64_t> sentBytes(group, 0);
  runRanks(world, [&](int64_t rank, Communicator &comm) {
    RankPlace place{&comm, {0, 1, 2}, rank};
    std::string error;
    int64_t within = 0, next = 0;
    StepInfo step;
    step.kind = StepInfo::Kind::ExpertExchange;
    step.topK = topK;
    TransferBuffers buffers;
    buffers.shapeA = buffers.shapeC = {rows, width};
    buffers.offsets = d.offsets.data();
    buffers.experts = experts;
    buffers.permutation = d.permutation.data();

    // To the experts: a rank has the copies of its own tokens.
    std::vector<float> mine(rows * width), atExperts(rows * width, -1.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c)
        mine[r * width + c] =
            ownerOf(tokenOf[r]) == rank ? value(r, c, 1.0f) : nan;
    buffers.a = mine.data();
    buffers.c = atExperts.data();
    ASSERT_TRUE(runTransferStep(step, place, buffers, 4, within, next, error))
        << error;
    for (int64_t r = 0; r < rows; ++r)
      if (holderOf(expertOf[r]) == rank)
        for (int64_t c = 0; c < width; ++c)
          ASSERT_EQ(atExperts[r * width + c], value(r, c, 1.0f))
              << "rank " << rank << " row " << r;

    // Back: a rank has the results of its own experts.
    std::vector<float> results(rows * width), atTokens(rows * width, -1.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c)
        results[r * width + c] =
            holderOf(expertOf[r]) == rank ? value(r, c, 2.0f) : nan;
    step.toExperts = false;
    buffers.a = results.data();
    buffers.c = atTokens.data();
    ASSERT_TRUE(runTransferStep(step, place, buffers, 4, within, next, error))
        << error;
    for (int64_t r = 0; r < rows; ++r)
      if (ownerOf(tokenOf[r]) == rank)
        for (int64_t c = 0; c < width; ++c)
          ASSERT_EQ(atTokens[r * width + c], value(r, c, 2.0f))
              << "rank " << rank << " row " << r;
    sentBytes[rank] = within;
    EXPECT_EQ(next, 0);

    // Gathering the tokens: a rank has combined only its own.
    step.kind = StepInfo::Kind::AllGatherTokens;
    std::vector<float> combined(tokens * width), all(tokens * width, -1.0f);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < width; ++c)
        combined[t * width + c] = ownerOf(t) == rank ? value(t, c, 3.0f) : nan;
    buffers.shapeA = buffers.shapeC = {tokens, width};
    buffers.a = combined.data();
    buffers.c = all.data();
    ASSERT_TRUE(runTransferStep(step, place, buffers, 4, within, next, error))
        << error;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < width; ++c)
        ASSERT_EQ(all[t * width + c], value(t, c, 3.0f)) << "token " << t;
  });
  // Each crossing copy is counted once by its sender, each way.
  int64_t crossing = 0;
  for (int64_t r = 0; r < rows; ++r)
    crossing += ownerOf(tokenOf[r]) != holderOf(expertOf[r]);
  EXPECT_EQ(sentBytes[0] + sentBytes[1] + sentBytes[2],
            2 * crossing * width * 4);
}
