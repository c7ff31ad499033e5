// Statistics derived from records: the wait/transfer skew rule, medians, min/avg/max across ranks.
#include <gtest/gtest.h>

#include <cmath>

#include "cnnpar/records.hpp"

using namespace cnnpar;

namespace {
// One iteration of one step (stage 1); the broadcast (stage 0) at time 0.
RankRecord record(int rank, double enter, double exit, double offset = 0) {
  RankRecord r(1, 1);
  r.rank = rank;
  r.clock_offset_s = offset;
  r.stamp(0, 1, Event::compute, enter - 0.5, enter);
  r.stamp_boundary(0, 1, enter, exit);
  r.forward_s = {1};
  return r;
}
double wait(const DerivedTimes& t, std::size_t rank) { return t.seconds(0, 1, Event::wait, rank); }
double transfer(const DerivedTimes& t, std::size_t rank) { return t.seconds(0, 1, Event::transfer, rank); }
}  // namespace

TEST(Records, WaitIsTimeUntilTheLastRankArrivesTransferIsTheRest) {
  // Rank 1 arrives 3 s late (by rank 0's clock: its own clock is 10 s behind).
  const auto t = derive_times({record(0, 1.0, 5.0), record(1, -6.0, -5.5, 10.0), record(2, 2.0, 4.5)});
  ASSERT_EQ(t.ranks, 3u);
  EXPECT_DOUBLE_EQ(wait(t, 0), 3.0);
  EXPECT_DOUBLE_EQ(wait(t, 1), 0.0);
  EXPECT_DOUBLE_EQ(wait(t, 2), 2.0);
  EXPECT_DOUBLE_EQ(transfer(t, 0), 1.0);
  EXPECT_DOUBLE_EQ(transfer(t, 1), 0.5);
  EXPECT_DOUBLE_EQ(transfer(t, 2), 0.5);
  EXPECT_DOUBLE_EQ(t.seconds(0, 1, Event::compute, 2), 0.5);
  // The events sit on rank 0's clock: rank 1's wait begins where it entered, 10 s later than its own clock says.
  EXPECT_DOUBLE_EQ(t.begin_s[t.at(0, 1, Event::wait, 1)], 4.0);
  EXPECT_DOUBLE_EQ(t.begin_s[t.at(0, 1, Event::transfer, 0)], 4.0) << "transfer begins when the last rank entered";
}

TEST(Records, BoundariesWithoutACollectiveHaveNoWait) {
  RankRecord a = record(0, 1.0, 1.0), b = record(1, 5.0, 5.0);
  a.collective = b.collective = {1, 0};
  const auto t = derive_times({a, b});
  EXPECT_EQ(wait(t, 0), 0.0);
  EXPECT_EQ(transfer(t, 0), 0.0);
  a.collective = b.collective = {1, 1};
  EXPECT_DOUBLE_EQ(wait(derive_times({a, b}), 0), 4.0);
}

TEST(Records, OffsetErrorsAreClampedAtZero) {
  // Rank 1 appears to leave before the last entry: the offset estimate was off; transfer is 0, not negative.
  const auto t = derive_times({record(0, 1.0, 1.2), record(1, 1.5, 1.6)});
  EXPECT_DOUBLE_EQ(transfer(t, 0), 0.0);
  EXPECT_GE(transfer(t, 1), 0.0);
}

TEST(Records, MismatchedRecordsAreRejected) {
  RankRecord other(2, 1);
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

TEST(Records, TheStatisticIsTheSlowestRankPerIterationThenTheMedian) {
  // Three iterations, two ranks: compute 1,5,2 on rank 0 and 4,1,3 on rank 1. Slowest per iteration 4,5,3 -> 4;
  // the per-rank medians are 2 and 3, whose max (3) is a different statistic and not what the summary reports.
  std::vector<RankRecord> records(2, RankRecord(3, 1));
  const double compute[2][3] = {{1, 5, 2}, {4, 1, 3}};
  for (std::size_t q = 0; q < 2; ++q)
    for (std::size_t i = 0; i < 3; ++i) {
      records[q].stamp(i, 1, Event::compute, 10.0 * double(i), 10.0 * double(i) + compute[q][i]);
      records[q].forward_s[i] = compute[q][i] + 1;
    }
  const auto t = derive_times(records);
  EXPECT_DOUBLE_EQ(slowest_median(t, 1, {Event::compute}), 4.0);
  EXPECT_EQ(median_per_rank(t, 1, Event::compute), (std::vector<double>{2.0, 3.0}));
  EXPECT_DOUBLE_EQ(slowest_forward_median(t), 5.0);
  EXPECT_DOUBLE_EQ(slowest_median(t, 1, {Event::compute, Event::wait, Event::transfer}), 4.0);
}
