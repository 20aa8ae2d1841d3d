//===- KVBlockManagerTest.cpp - Paged KV-cache accounting -----------------===//

#include "runtime/KVBlockManager.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

using moert::KVBlockManager;

TEST(KVBlockManager, AllocatesWholeBlocksPerSequence) {
  KVBlockManager kv(8, 16);
  std::string error;
  ASSERT_TRUE(kv.addSequence(1, 17, error)) << error;
  EXPECT_EQ(kv.getBlockTable(1).size(), 2u);
  EXPECT_EQ(kv.getNumFreeBlocks(), 6);
  ASSERT_TRUE(kv.addSequence(2, 0, error)) << error;
  EXPECT_TRUE(kv.getBlockTable(2).empty());
  ASSERT_TRUE(kv.appendTokens(2, 1, error)) << error;
  EXPECT_EQ(kv.getBlockTable(2).size(), 1u);
  EXPECT_EQ(kv.getNumTokens(2), 1);
}

TEST(KVBlockManager, AppendFillsTheLastBlockBeforeTakingAnother) {
  KVBlockManager kv(4, 4);
  std::string error;
  ASSERT_TRUE(kv.addSequence(7, 3, error));
  ASSERT_TRUE(kv.appendTokens(7, 1, error));
  EXPECT_EQ(kv.getBlockTable(7).size(), 1u);
  ASSERT_TRUE(kv.appendTokens(7, 1, error));
  EXPECT_EQ(kv.getBlockTable(7).size(), 2u);
  EXPECT_EQ(kv.getNumTokens(7), 5);
}

TEST(KVBlockManager, RefusesWhenShortAndChangesNothing) {
  KVBlockManager kv(2, 4);
  std::string error;
  EXPECT_FALSE(kv.addSequence(1, 9, error));
  EXPECT_EQ(error, "sequence 1 needs 3 blocks but 2 are free");
  EXPECT_FALSE(kv.hasSequence(1));
  EXPECT_EQ(kv.getNumFreeBlocks(), 2);

  ASSERT_TRUE(kv.addSequence(1, 8, error));
  EXPECT_FALSE(kv.appendTokens(1, 1, error));
  EXPECT_EQ(error, "sequence 1 needs 1 more blocks but 0 are free");
  EXPECT_EQ(kv.getNumTokens(1), 8);
  EXPECT_EQ(kv.getBlockTable(1).size(), 2u);
}

TEST(KVBlockManager, RejectsBadRequests) {
  KVBlockManager kv(4, 4);
  std::string error;
  EXPECT_FALSE(kv.appendTokens(3, 1, error));
  EXPECT_EQ(error, "unknown sequence 3");
  ASSERT_TRUE(kv.addSequence(3, 1, error));
  EXPECT_FALSE(kv.addSequence(3, 1, error));
  EXPECT_EQ(error, "sequence 3 already exists");
  EXPECT_FALSE(kv.addSequence(4, -1, error));
  EXPECT_EQ(error, "sequence 4: negative token count -1");
  EXPECT_FALSE(kv.appendTokens(3, -2, error));
  EXPECT_FALSE(kv.fork(9, 10, error));
  EXPECT_EQ(error, "unknown sequence 9");
  EXPECT_FALSE(kv.fork(3, 3, error));
  kv.freeSequence(42); // unknown: no-op
  EXPECT_EQ(kv.getNumFreeBlocks(), 3);
}

TEST(KVBlockManager, ForkSharesBlocksAndCopiesOnWrite) {
  KVBlockManager kv(8, 4);
  std::string error;
  ASSERT_TRUE(kv.addSequence(1, 6, error)); // blocks: full + half-full
  ASSERT_TRUE(kv.fork(1, 2, error));
  EXPECT_EQ(kv.getBlockTable(1), kv.getBlockTable(2));
  EXPECT_EQ(kv.getNumFreeBlocks(), 6);
  int32_t shared = kv.getBlockTable(1)[1];
  EXPECT_EQ(kv.getRefCount(shared), 2);

  // Writing into the shared half-full block copies it first.
  ASSERT_TRUE(kv.appendTokens(2, 1, error));
  auto copies = kv.takePendingCopies();
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].source, shared);
  EXPECT_EQ(copies[0].destination, kv.getBlockTable(2)[1]);
  EXPECT_NE(kv.getBlockTable(2)[1], shared);
  EXPECT_EQ(kv.getBlockTable(2)[0], kv.getBlockTable(1)[0]);
  EXPECT_EQ(kv.getRefCount(shared), 1);
  EXPECT_TRUE(kv.takePendingCopies().empty());

  // Freeing one owner keeps the blocks the other still uses.
  int32_t first = kv.getBlockTable(1)[0];
  kv.freeSequence(1);
  EXPECT_EQ(kv.getRefCount(first), 1);
  kv.freeSequence(2);
  EXPECT_EQ(kv.getNumFreeBlocks(), 8);
}

TEST(KVBlockManager, ForkOfFullBlocksNeedsNoCopy) {
  KVBlockManager kv(4, 4);
  std::string error;
  ASSERT_TRUE(kv.addSequence(1, 4, error));
  ASSERT_TRUE(kv.fork(1, 2, error));
  ASSERT_TRUE(kv.appendTokens(2, 1, error));
  EXPECT_TRUE(kv.takePendingCopies().empty());
  EXPECT_EQ(kv.getBlockTable(2).size(), 2u);
}

/// Random traffic: no block is ever owned by two sequences unless shared by
/// a fork, and the free count always balances.
TEST(KVBlockManager, RandomTrafficKeepsAccountsBalanced) {
  KVBlockManager kv(64, 8);
  std::mt19937 rng(1234);
  std::set<int64_t> live;
  std::string error;
  for (int step = 0; step < 5000; ++step) {
    int64_t id = rng() % 32;
    switch (rng() % 3) {
    case 0:
      if (kv.addSequence(id, rng() % 40, error))
        live.insert(id);
      break;
    case 1:
      kv.appendTokens(id, rng() % 10, error);
      break;
    case 2:
      kv.freeSequence(id);
      live.erase(id);
      break;
    }
    int64_t used = 0;
    std::set<int32_t> seen;
    for (int64_t seq : live) {
      EXPECT_EQ(static_cast<int64_t>(kv.getBlockTable(seq).size()),
                kv.blocksFor(kv.getNumTokens(seq)));
      for (int32_t block : kv.getBlockTable(seq)) {
        EXPECT_TRUE(seen.insert(block).second) << "block shared without fork";
        ++used;
      }
    }
    ASSERT_EQ(used + kv.getNumFreeBlocks(), kv.getNumBlocks());
  }
}
