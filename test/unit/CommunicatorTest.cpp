//===- CommunicatorTest.cpp - In-process collectives and transfers --------===//
//
// Ranks are std::threads over one LocalWorld. Results are checked exactly:
// the values summed are small integers (exact in float) except where the
// test is about summation order.
//
//===----------------------------------------------------------------------===//

#include "runtime/Communicator.h"
#include "runtime/MpiCommunicator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <thread>

using moert::Communicator;
using moert::LocalWorld;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// Runs `body(comm)` on one thread per rank of `world` and joins them. A rank
/// whose body fails an assertion aborts the world so no peer hangs.
void runRanks(LocalWorld &world,
              const std::function<void(Communicator &)> &body) {
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < world.size(); ++rank)
    threads.emplace_back([&world, &body, rank] {
      std::unique_ptr<Communicator> comm = world.communicator(rank);
      ASSERT_TRUE(comm);
      body(*comm);
      if (::testing::Test::HasFailure())
        world.abort(rank, "test assertion failed");
    });
  for (std::thread &thread : threads)
    thread.join();
}

int64_t millisecondsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                               start)
      .count();
}

const std::vector<int64_t> kWorld4 = {0, 1, 2, 3};

} // namespace

TEST(Communicator, AllReduceOverTheWholeWorldRepeatedly) {
  LocalWorld world(4, 5s);
  runRanks(world, [](Communicator &comm) {
    std::string error;
    for (int iteration = 0; iteration < 200; ++iteration) {
      const int64_t count = 1 + iteration % 17;
      std::vector<float> data(count);
      for (int64_t i = 0; i < count; ++i)
        data[i] = float(comm.rank() * 1000 + iteration + i);
      ASSERT_TRUE(comm.allReduceSum(data.data(), count, kWorld4, error))
          << error;
      for (int64_t i = 0; i < count; ++i)
        ASSERT_EQ(data[i], float(6000 + 4 * (iteration + i)))
            << "iteration " << iteration << " element " << i;
    }
  });
}

TEST(Communicator, DisjointGroupsRunConcurrently) {
  LocalWorld world(4, 5s);
  runRanks(world, [](Communicator &comm) {
    std::string error;
    const int64_t rank = comm.rank();
    const std::vector<int64_t> pair =
        rank < 2 ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{2, 3};
    const float pairBase = rank < 2 ? 1.0f : 5.0f; // 0+1, 2+3
    for (int iteration = 0; iteration < 300; ++iteration) {
      // Each pair runs its own sequence; the pairs drift apart in between
      // the occasional whole-world reductions.
      float value[2] = {float(rank), float(rank * iteration)};
      ASSERT_TRUE(comm.allReduceSum(value, 2, pair, error)) << error;
      ASSERT_EQ(value[0], pairBase) << "iteration " << iteration;
      ASSERT_EQ(value[1], pairBase * iteration) << "iteration " << iteration;
      if (rank % 2 == 0 && iteration % 3 == 0)
        std::this_thread::yield();
      if (iteration % 10 == 9) {
        float all = float(rank + iteration);
        ASSERT_TRUE(comm.allReduceSum(&all, 1, kWorld4, error)) << error;
        ASSERT_EQ(all, float(6 + 4 * iteration));
      }
    }
  });
}

TEST(Communicator, AllReduceIsBitIdenticalAcrossMembers) {
  const int64_t count = 512;
  // Values of mixed magnitude and sign: their float sum depends on order.
  auto contribution = [&](int64_t rank, int iteration) {
    std::mt19937 generator(uint32_t(rank * 7919 + iteration));
    std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
    std::uniform_int_distribution<int> exponent(-10, 20);
    std::vector<float> values(count);
    for (float &value : values)
      value = std::ldexp(mantissa(generator), exponent(generator));
    return values;
  };
  // The test is only meaningful if the order matters for these values.
  {
    int orderMatters = 0;
    std::vector<std::vector<float>> inputs;
    for (int64_t rank = 0; rank < 4; ++rank)
      inputs.push_back(contribution(rank, 0));
    for (int64_t i = 0; i < count; ++i) {
      float forward =
          ((inputs[0][i] + inputs[1][i]) + inputs[2][i]) + inputs[3][i];
      float backward =
          ((inputs[3][i] + inputs[2][i]) + inputs[1][i]) + inputs[0][i];
      orderMatters += forward != backward;
    }
    ASSERT_GT(orderMatters, 10);
  }

  const int iterations = 40;
  std::vector<std::vector<std::vector<float>>> results(
      4, std::vector<std::vector<float>>(iterations));
  LocalWorld world(4, 5s);
  runRanks(world, [&](Communicator &comm) {
    std::string error;
    for (int iteration = 0; iteration < iterations; ++iteration) {
      std::vector<float> data = contribution(comm.rank(), iteration);
      ASSERT_TRUE(comm.allReduceSum(data.data(), count, kWorld4, error))
          << error;
      results[comm.rank()][iteration] = std::move(data);
    }
  });
  for (int iteration = 0; iteration < iterations; ++iteration) {
    std::vector<float> expected = contribution(0, iteration);
    for (int64_t rank = 1; rank < 4; ++rank) {
      std::vector<float> term = contribution(rank, iteration);
      for (int64_t i = 0; i < count; ++i)
        expected[i] += term[i];
    }
    for (int64_t rank = 0; rank < 4; ++rank)
      ASSERT_EQ(std::memcmp(results[rank][iteration].data(), expected.data(),
                            count * sizeof(float)),
                0)
          << "rank " << rank << " iteration " << iteration;
  }
}

TEST(Communicator, AllGatherPlacesBlocksInGroupOrder) {
  LocalWorld world(4, 5s);
  runRanks(world, [](Communicator &comm) {
    std::string error;
    const int64_t rank = comm.rank();
    for (int iteration = 0; iteration < 50; ++iteration) {
      const int64_t bytes = iteration % 9; // Includes empty blocks.
      std::vector<uint8_t> block(bytes);
      for (int64_t i = 0; i < bytes; ++i)
        block[i] = uint8_t(rank * 50 + iteration + i);
      std::vector<uint8_t> all(4 * bytes, 0xEE);
      ASSERT_TRUE(
          comm.allGather(block.data(), bytes, all.data(), kWorld4, error))
          << error;
      for (int64_t member = 0; member < 4; ++member)
        for (int64_t i = 0; i < bytes; ++i)
          ASSERT_EQ(all[member * bytes + i],
                    uint8_t(member * 50 + iteration + i));

      // A sub-group: ranks 1 and 3 gather, 0 and 2 gather, concurrently.
      const std::vector<int64_t> group =
          rank % 2 ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{0, 2};
      int32_t mine = int32_t(rank * 100 + iteration);
      int32_t both[2] = {-1, -1};
      ASSERT_TRUE(comm.allGather(&mine, sizeof(mine), both, group, error))
          << error;
      EXPECT_EQ(both[0], int32_t(group[0] * 100 + iteration));
      EXPECT_EQ(both[1], int32_t(group[1] * 100 + iteration));
    }
  });
}

TEST(Communicator, AllGatherInPlaceAndSingleMemberGroups) {
  LocalWorld world(2, 5s);
  runRanks(world, [](Communicator &comm) {
    std::string error;
    const int64_t rank = comm.rank();
    // The input is this rank's own block of the output (MPI_IN_PLACE style).
    int64_t blocks[2] = {0, 0};
    blocks[rank] = 10 + rank;
    ASSERT_TRUE(
        comm.allGather(&blocks[rank], sizeof(int64_t), blocks, {0, 1}, error))
        << error;
    EXPECT_EQ(blocks[0], 10);
    EXPECT_EQ(blocks[1], 11);
    // A group of one: the sum is the input, the gather a copy.
    float value = 2.5f;
    ASSERT_TRUE(comm.allReduceSum(&value, 1, {rank}, error)) << error;
    EXPECT_EQ(value, 2.5f);
    int16_t in = 7, out = 0;
    ASSERT_TRUE(comm.allGather(&in, sizeof(in), &out, {rank}, error)) << error;
    EXPECT_EQ(out, 7);
  });
}

TEST(Communicator, AllToAllDeliversEachBlockToItsMember) {
  LocalWorld world(4, 5s);
  // Member i sends member j blockSize(i, j, iteration) bytes, empty blocks
  // and blocks to itself included.
  auto blockSize = [](int64_t i, int64_t j, int iteration) {
    return int64_t((i * 3 + j + iteration) % 5);
  };
  auto byte = [](int64_t i, int64_t j, int iteration, int64_t k) {
    return uint8_t(i * 64 + j * 16 + iteration + k);
  };
  runRanks(world, [&](Communicator &comm) {
    std::string error;
    const int64_t rank = comm.rank();
    for (int iteration = 0; iteration < 40; ++iteration) {
      std::vector<int64_t> sendBytes, recvBytes;
      std::vector<uint8_t> input;
      for (int64_t peer = 0; peer < 4; ++peer) {
        sendBytes.push_back(blockSize(rank, peer, iteration));
        recvBytes.push_back(blockSize(peer, rank, iteration));
        for (int64_t k = 0; k < sendBytes.back(); ++k)
          input.push_back(byte(rank, peer, iteration, k));
      }
      int64_t total = 0;
      for (int64_t size : recvBytes)
        total += size;
      std::vector<uint8_t> output(total + 1, 0xEE);
      ASSERT_TRUE(comm.allToAll(input.data(), sendBytes, output.data(),
                                recvBytes, kWorld4, error))
          << error;
      int64_t at = 0;
      for (int64_t peer = 0; peer < 4; ++peer)
        for (int64_t k = 0; k < recvBytes[peer]; ++k, ++at)
          ASSERT_EQ(output[at], byte(peer, rank, iteration, k))
              << "block from " << peer << " byte " << k;
      ASSERT_EQ(output[total], 0xEE) << "wrote past the blocks";

      // Two pairs exchange concurrently: each sends its partner 4 bytes
      // and itself 1.
      const std::vector<int64_t> group =
          rank % 2 ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{0, 2};
      const bool first = rank == group[0];
      uint8_t mine[5] = {uint8_t(rank), uint8_t(rank), uint8_t(rank),
                         uint8_t(rank), uint8_t(100 + rank)};
      const std::vector<int64_t> sizes =
          first ? std::vector<int64_t>{1, 4} : std::vector<int64_t>{4, 1};
      uint8_t got[5] = {};
      // The first member's input is [self, partner]; the second's
      // [partner, self]: put the 1-byte self block where it belongs.
      uint8_t ordered[5];
      if (first) {
        ordered[0] = mine[4];
        std::memcpy(ordered + 1, mine, 4);
      } else {
        std::memcpy(ordered, mine, 4);
        ordered[4] = mine[4];
      }
      ASSERT_TRUE(
          comm.allToAll(ordered, sizes, got, sizes, group, error))
          << error;
      const int64_t partner = first ? group[1] : group[0];
      const uint8_t *fromPartner = first ? got + 1 : got;
      const uint8_t self = first ? got[0] : got[4];
      EXPECT_EQ(self, uint8_t(100 + rank));
      for (int k = 0; k < 4; ++k)
        EXPECT_EQ(fromPartner[k], uint8_t(partner));
    }
  });
}

TEST(Communicator, AllToAllSizeMismatchFailsEveryMember) {
  LocalWorld world(2, 5s);
  std::string errors[2];
  runRanks(world, [&](Communicator &comm) {
    char input[8] = {}, output[8] = {};
    // Rank 0 sends 4 bytes to rank 1, which expects 2.
    std::vector<int64_t> sendBytes{0, comm.rank() ? 0 : 4};
    std::vector<int64_t> recvBytes{comm.rank() ? 2 : 0, 0};
    EXPECT_FALSE(comm.allToAll(input, sendBytes, output, recvBytes, {0, 1},
                               errors[comm.rank()]));
    // The group's next collective is unaffected.
    std::string error;
    std::vector<int64_t> ones{1, 1};
    EXPECT_TRUE(comm.allToAll(input, ones, output, ones, {0, 1}, error))
        << error;
  });
  for (const std::string &error : errors)
    EXPECT_NE(error.find("allToAll #0 over group {0,1}: rank 0 sends 4 bytes "
                         "to rank 1, which expects 2"),
              std::string::npos)
        << error;
}

TEST(Communicator, SendRecvAroundARing) {
  LocalWorld world(4, 5s);
  runRanks(world, [](Communicator &comm) {
    std::string error;
    const int64_t rank = comm.rank();
    const int64_t next = (rank + 1) % 4, previous = (rank + 3) % 4;
    for (int round = 0; round < 100; ++round) {
      // 0 -> 1 -> 2 -> 3 -> 0; each rank adds its number to every element.
      std::vector<int32_t> token(3, 0);
      if (rank == 0) {
        for (int32_t &value : token)
          value = round;
        ASSERT_TRUE(comm.send(token.data(), 12, next, error)) << error;
        ASSERT_TRUE(comm.recv(token.data(), 12, previous, error)) << error;
        for (int32_t value : token)
          ASSERT_EQ(value, round + 1 + 2 + 3);
      } else {
        ASSERT_TRUE(comm.recv(token.data(), 12, previous, error)) << error;
        for (int32_t &value : token)
          value += int32_t(rank);
        ASSERT_TRUE(comm.send(token.data(), 12, next, error)) << error;
      }
    }
  });
}

TEST(Communicator, ManyMessagesArriveInOrder) {
  LocalWorld world(3, 5s);
  const int messages = 1000;
  auto sizeOf = [](int i) { return int64_t(8 + 4 * (i % 5)); };
  runRanks(world, [&](Communicator &comm) {
    std::string error;
    if (comm.rank() == 2)
      return; // Not involved.
    std::vector<int32_t> buffer(8);
    for (int i = 0; i < messages; ++i) {
      if (comm.rank() == 0) {
        std::fill(buffer.begin(), buffer.end(), i);
        ASSERT_TRUE(comm.send(buffer.data(), sizeOf(i), 1, error)) << error;
      } else {
        std::fill(buffer.begin(), buffer.end(), -1);
        ASSERT_TRUE(comm.recv(buffer.data(), sizeOf(i), 0, error)) << error;
        for (int64_t j = 0; j < sizeOf(i) / 4; ++j)
          ASSERT_EQ(buffer[j], i);
        ASSERT_EQ(buffer[sizeOf(i) / 4], -1) << "wrote past the message";
      }
    }
  });
}

TEST(Communicator, SizeMismatchFailsBothSides) {
  LocalWorld world(2, 5s);
  std::string errors[2];
  runRanks(world, [&](Communicator &comm) {
    std::string error;
    char buffer[8] = {};
    if (comm.rank() == 0) {
      EXPECT_FALSE(comm.send(buffer, 8, 1, errors[0]));
      // The pair still works afterwards.
      EXPECT_TRUE(comm.send(buffer, 4, 1, error)) << error;
    } else {
      EXPECT_FALSE(comm.recv(buffer, 4, 0, errors[1]));
      EXPECT_TRUE(comm.recv(buffer, 4, 0, error)) << error;
    }
  });
  EXPECT_EQ(errors[0], "rank 0: send of 8 bytes to rank 1: rank 1 posted a "
                       "receive of 4 bytes");
  EXPECT_EQ(errors[1],
            "rank 1: recv of 4 bytes from rank 0: rank 0 sent 8 bytes");
}

TEST(Communicator, CollectiveMismatchFailsEveryMember) {
  LocalWorld world(2, 5s);
  std::string errors[2];
  runRanks(world, [&](Communicator &comm) {
    std::vector<float> data(8, 1.0f);
    EXPECT_FALSE(comm.allReduceSum(data.data(), comm.rank() ? 8 : 4, {0, 1},
                                   errors[comm.rank()]));
    // The group's next collective is unaffected.
    std::string error;
    EXPECT_TRUE(comm.allReduceSum(data.data(), 8, {0, 1}, error)) << error;
    EXPECT_EQ(data[7], 2.0f);
  });
  for (const std::string &error : errors) {
    EXPECT_NE(error.find("allReduceSum #0 over group {0,1}"), std::string::npos)
        << error;
    EXPECT_NE(error.find("of 4 floats"), std::string::npos) << error;
    EXPECT_NE(error.find("of 8 floats"), std::string::npos) << error;
  }
}

TEST(Communicator, MissingRankTimesOutNamingIt) {
  LocalWorld world(4, 200ms);
  std::string errors[4];
  int64_t elapsed[4] = {};
  // From before the first arrival: the first to arrive waits the whole
  // timeout, the others may be woken by its failure.
  const Clock::time_point start = Clock::now();
  runRanks(world, [&](Communicator &comm) {
    const int64_t rank = comm.rank();
    if (rank == 3)
      return; // Never arrives.
    float value = 1.0f;
    EXPECT_FALSE(comm.allReduceSum(&value, 1, kWorld4, errors[rank]));
    elapsed[rank] = millisecondsSince(start);
  });
  for (int64_t rank = 0; rank < 3; ++rank) {
    EXPECT_NE(errors[rank].find("rank 3 did not arrive"), std::string::npos)
        << errors[rank];
    EXPECT_NE(errors[rank].find("timed out after 200 ms"), std::string::npos)
        << errors[rank];
    EXPECT_GE(elapsed[rank], 200);
    EXPECT_LT(elapsed[rank], 1500);
  }

  // Point to point: a receive from a rank that never sends.
  std::unique_ptr<Communicator> comm = world.communicator(1);
  std::string error;
  const Clock::time_point recvStart = Clock::now();
  char byte;
  EXPECT_FALSE(comm->recv(&byte, 1, 2, error));
  EXPECT_EQ(error, "rank 1: recv of 1 bytes from rank 2: timed out after 200 "
                   "ms; rank 2 did not send");
  EXPECT_GE(millisecondsSince(recvStart), 200);
  EXPECT_LT(millisecondsSince(recvStart), 1500);
}

TEST(Communicator, AbortWakesBlockedRanks) {
  LocalWorld world(3, 60s);
  std::string errors[3];
  int64_t elapsed[3] = {};
  runRanks(world, [&](Communicator &comm) {
    const int64_t rank = comm.rank();
    Clock::time_point start = Clock::now();
    char buffer[4];
    if (rank == 0) {
      std::this_thread::sleep_for(50ms);
      world.abort(0, "weights failed to load");
      // Later operations fail at once, too.
      EXPECT_FALSE(comm.send(buffer, 4, 1, errors[0]));
    } else if (rank == 1) {
      EXPECT_FALSE(comm.recv(buffer, 4, 0, errors[1])); // Blocked on rank 0.
    } else {
      float value = 0;
      EXPECT_FALSE(comm.allReduceSum(&value, 1, {0, 1, 2}, errors[2]));
    }
    elapsed[rank] = millisecondsSince(start);
  });
  for (int64_t rank = 0; rank < 3; ++rank) {
    EXPECT_NE(
        errors[rank].find("world aborted by rank 0: weights failed to load"),
        std::string::npos)
        << errors[rank];
    EXPECT_LT(elapsed[rank], 2000);
  }
}

TEST(Communicator, RejectsBadArguments) {
  LocalWorld world(2, 200ms);
  EXPECT_EQ(world.size(), 2);
  EXPECT_FALSE(world.communicator(2));
  EXPECT_FALSE(world.communicator(-1));
  std::unique_ptr<Communicator> comm = world.communicator(0);
  ASSERT_TRUE(comm);
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 2);
  std::string error;
  float data[4] = {};
  char out[16];

  EXPECT_FALSE(comm->allReduceSum(data, 4, {1}, error));
  EXPECT_EQ(error, "rank 0: allReduceSum: group {1} does not contain rank 0");
  EXPECT_FALSE(comm->allReduceSum(data, 4, {0, 2}, error));
  EXPECT_EQ(error, "rank 0: allReduceSum: group {0,2} has rank 2 outside the "
                   "world of 2 ranks");
  EXPECT_FALSE(comm->allReduceSum(data, 4, {1, 0}, error));
  EXPECT_EQ(error, "rank 0: allReduceSum: group {1,0} is not sorted ascending "
                   "without repeats");
  EXPECT_FALSE(comm->allGather(data, 4, out, {0, 0}, error));
  EXPECT_EQ(error, "rank 0: allGather: group {0,0} is not sorted ascending "
                   "without repeats");
  EXPECT_FALSE(comm->allGather(data, 4, out, {}, error));
  EXPECT_EQ(error, "rank 0: allGather: group {} does not contain rank 0");
  EXPECT_FALSE(comm->allReduceSum(data, -1, {0, 1}, error));
  EXPECT_EQ(error, "rank 0: allReduceSum: negative count -1");
  EXPECT_FALSE(comm->allGather(data, -4, out, {0, 1}, error));
  EXPECT_EQ(error, "rank 0: allGather: negative size -4");
  EXPECT_FALSE(comm->allGather(data, 4, nullptr, {0, 1}, error));
  EXPECT_EQ(error, "rank 0: allGather: null buffer for 4 bytes");
  EXPECT_FALSE(comm->allReduceSum(data, int64_t(1) << 62, {0, 1}, error));
  EXPECT_NE(error.find("too large"), std::string::npos) << error;
  EXPECT_FALSE(comm->allToAll(data, {4}, out, {4, 0}, {0, 1}, error));
  EXPECT_EQ(error, "rank 0: allToAll: 1 send and 2 receive sizes for a group "
                   "of 2");
  EXPECT_FALSE(comm->allToAll(data, {4, -1}, out, {4, 0}, {0, 1}, error));
  EXPECT_EQ(error, "rank 0: allToAll: block size -1 is negative or too large");
  EXPECT_FALSE(comm->allToAll(data, {4}, out, {2}, {0}, error));
  EXPECT_EQ(error, "rank 0: allToAll: sends 4 bytes to itself but expects 2");

  EXPECT_FALSE(comm->send(data, 4, 0, error));
  EXPECT_EQ(error, "rank 0: send of 4 bytes to rank 0: peer 0 is this rank");
  EXPECT_FALSE(comm->recv(data, 4, 5, error));
  EXPECT_EQ(error, "rank 0: recv of 4 bytes from rank 5: peer 5 is outside "
                   "the world of 2 ranks");
  EXPECT_FALSE(comm->send(data, -2, 1, error));
  EXPECT_EQ(error, "rank 0: send of -2 bytes to rank 1: negative size");
  EXPECT_FALSE(comm->recv(nullptr, 4, 1, error));
  EXPECT_EQ(error, "rank 0: recv of 4 bytes from rank 1: null buffer");

  // Rejected calls consume no sequence number: the first real collective
  // of {0,1} still matches.
  runRanks(world, [](Communicator &member) {
    std::string message;
    float value = 1.0f;
    EXPECT_TRUE(member.allReduceSum(&value, 1, {0, 1}, message)) << message;
    EXPECT_EQ(value, 2.0f);
  });
}

TEST(Communicator, LargeBuffers) {
  LocalWorld world(2, 20s);
  const int64_t floats = int64_t(8) << 20; // 32 MiB
  const int64_t bytes = int64_t(64) << 20;
  runRanks(world, [&](Communicator &comm) {
    std::string error;
    std::vector<float> data(floats, float(comm.rank() + 1));
    data[floats - 1] = 10.0f * float(comm.rank());
    ASSERT_TRUE(comm.allReduceSum(data.data(), floats, {0, 1}, error)) << error;
    EXPECT_EQ(data[0], 3.0f);
    EXPECT_EQ(data[floats / 2], 3.0f);
    EXPECT_EQ(data[floats - 1], 10.0f);

    std::vector<uint8_t> payload(bytes);
    if (comm.rank() == 0) {
      for (int64_t i = 0; i < bytes; i += 4096)
        payload[i] = uint8_t(i >> 12);
      payload[bytes - 1] = 0x5A;
      ASSERT_TRUE(comm.send(payload.data(), bytes, 1, error)) << error;
    } else {
      ASSERT_TRUE(comm.recv(payload.data(), bytes, 0, error)) << error;
      for (int64_t i = 0; i < bytes; i += 4096)
        ASSERT_EQ(payload[i], uint8_t(i >> 12));
      EXPECT_EQ(payload[bytes - 1], 0x5A);
    }
  });
}

TEST(Communicator, LauncherRankFromTheEnvironment) {
  // The first launcher variable holding a non-negative integer wins, in the
  // order Open MPI, PMI, PMIx, Slurm; without one the rank is unknown (-1).
  auto rankIn = [](std::map<std::string, std::string> environment) {
    return moert::launcherRank([&](const char *name) -> const char * {
      auto it = environment.find(name);
      return it == environment.end() ? nullptr : it->second.c_str();
    });
  };
  EXPECT_EQ(rankIn({}), -1);
  EXPECT_EQ(rankIn({{"SLURM_PROCID", "5"}}), 5);
  EXPECT_EQ(rankIn({{"PMIX_RANK", "2"}, {"SLURM_PROCID", "5"}}), 2);
  EXPECT_EQ(rankIn({{"PMI_RANK", "1"}, {"PMIX_RANK", "2"}}), 1);
  EXPECT_EQ(rankIn({{"OMPI_COMM_WORLD_RANK", "3"}, {"PMI_RANK", "1"}}), 3);
  EXPECT_EQ(rankIn({{"OMPI_COMM_WORLD_RANK", "0"}}), 0);
  // Empty, negative or non-numeric values are skipped.
  EXPECT_EQ(rankIn({{"OMPI_COMM_WORLD_RANK", ""}, {"PMI_RANK", "7"}}), 7);
  EXPECT_EQ(rankIn({{"OMPI_COMM_WORLD_RANK", "-1"}, {"SLURM_PROCID", "4"}}), 4);
  EXPECT_EQ(rankIn({{"OMPI_COMM_WORLD_RANK", "1x"}}), -1);
}
