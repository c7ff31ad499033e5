// Statistics derived from records: the wait/transfer skew rule, medians, min/avg/max across ranks.
#include <gtest/gtest.h>

#include <cmath>

#include "cnnpar/records.hpp"

using namespace cnnpar;

namespace {
RankRecord record(int rank, double enter, double exit, double offset = 0) {
  RankRecord r;
  r.rank = rank;
  r.iterations = 1;
  r.layers = 1;
  r.clock_offset_s = offset;
  r.compute_s = {0.5};
  r.consolidate_enter_s = {enter};
  r.consolidate_exit_s = {exit};
  r.broadcast_enter_s = {0};
  r.broadcast_exit_s = {0};
  r.forward_s = {1};
  return r;
}
}  // namespace

TEST(Records, WaitIsTimeUntilTheLastRankArrivesTransferIsTheRest) {
  // Rank 1 arrives 3 s late (by rank 0's clock: its own clock is 10 s behind).
  const auto t = derive_times({record(0, 1.0, 5.0), record(1, -6.0, -5.5, 10.0), record(2, 2.0, 4.5)});
  ASSERT_EQ(t.ranks, 3u);
  EXPECT_DOUBLE_EQ(t.wait_s[t.at(0, 0, 0)], 3.0);
  EXPECT_DOUBLE_EQ(t.wait_s[t.at(0, 0, 1)], 0.0);
  EXPECT_DOUBLE_EQ(t.wait_s[t.at(0, 0, 2)], 2.0);
  EXPECT_DOUBLE_EQ(t.transfer_s[t.at(0, 0, 0)], 1.0);
  EXPECT_DOUBLE_EQ(t.transfer_s[t.at(0, 0, 1)], 0.5);
  EXPECT_DOUBLE_EQ(t.transfer_s[t.at(0, 0, 2)], 0.5);
  EXPECT_DOUBLE_EQ(t.compute_s[t.at(0, 0, 2)], 0.5);
}

TEST(Records, BoundariesWithoutACollectiveHaveNoWait) {
  RankRecord a = record(0, 1.0, 1.0), b = record(1, 5.0, 5.0);
  a.collective = b.collective = {0};
  const auto t = derive_times({a, b});
  EXPECT_EQ(t.wait_s[t.at(0, 0, 0)], 0.0);
  EXPECT_EQ(t.transfer_s[t.at(0, 0, 0)], 0.0);
  a.collective = b.collective = {1};
  EXPECT_DOUBLE_EQ(derive_times({a, b}).wait_s[t.at(0, 0, 0)], 4.0);
}

TEST(Records, OffsetErrorsAreClampedAtZero) {
  // Rank 1 appears to leave before the last entry: the offset estimate was off; transfer is 0, not negative.
  const auto t = derive_times({record(0, 1.0, 1.2), record(1, 1.5, 1.6)});
  EXPECT_DOUBLE_EQ(t.transfer_s[t.at(0, 0, 0)], 0.0);
  EXPECT_GE(t.transfer_s[t.at(0, 0, 1)], 0.0);
}

TEST(Records, MismatchedRecordsAreRejected) {
  RankRecord other = record(1, 0, 1);
  other.iterations = 2;
  EXPECT_THROW(derive_times({record(0, 0, 1), other}), std::logic_error);
}

TEST(Records, MedianAndAcrossRanks) {
  EXPECT_EQ(median({}), 0.0);
  EXPECT_EQ(median({3, 1, 2}), 2.0);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  const auto s = across_ranks({2.0, 1.0, 4.0, 1.0});
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.min_rank, 1);
  EXPECT_EQ(s.max, 4.0);
  EXPECT_EQ(s.max_rank, 2);
  EXPECT_EQ(s.avg, 2.0);
  EXPECT_DOUBLE_EQ(s.efficiency(), 0.5);
  EXPECT_NEAR(s.stdev, std::sqrt(1.5), 1e-12);
}
