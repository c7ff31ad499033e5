// Partition invariants swept over many (items, ranks) pairs, and the reference figures of ../shared/REFERENCE.md.
#include <gtest/gtest.h>

#include <climits>
#include <tuple>
#include <vector>

#include "cnnpar/partition.hpp"

using namespace cnnpar;

TEST(Partition, InvariantsHoldForManyCountsAndRankCounts) {
  for (std::size_t items : {0u, 1u, 2u, 3u, 4u, 5u, 7u, 31u, 32u, 33u, 100u, 128u, 169u, 5408u}) {
    for (std::size_t ranks = 1; ranks <= 256; ++ranks) {
      std::size_t next = 0, total = 0, lo = SIZE_MAX, hi = 0;
      for (std::size_t r = 0; r < ranks; ++r) {
        const Slice s = block_slice(items, ranks, r);
        ASSERT_EQ(s.begin, next) << "contiguous and disjoint: items=" << items << " ranks=" << ranks << " r=" << r;
        ASSERT_LE(s.end(), items) << "in bounds";
        if (r > 0) {
          ASSERT_LE(s.count, block_slice(items, ranks, r - 1).count) << "remainder on the lowest ranks";
        }
        for (std::size_t i = s.begin; i < s.end(); ++i) ASSERT_EQ(block_owner(items, ranks, i), r);
        next = s.end();
        total += s.count;
        lo = std::min(lo, s.count);
        hi = std::max(hi, s.count);
      }
      ASSERT_EQ(total, items) << "covering";
      ASSERT_EQ(next, items);
      ASSERT_LE(hi - lo, 1u) << "balanced";
    }
  }
}

TEST(Partition, ReferenceSplits) {
  auto counts = [](std::size_t items, std::size_t ranks) {
    std::vector<std::size_t> c;
    for (std::size_t r = 0; r < ranks; ++r) c.push_back(block_slice(items, ranks, r).count);
    return c;
  };
  EXPECT_EQ(counts(32, 3), (std::vector<std::size_t>{11, 11, 10}));
  EXPECT_EQ(counts(32, 5), (std::vector<std::size_t>{7, 7, 6, 6, 6}));
  EXPECT_EQ(counts(5408, 3), (std::vector<std::size_t>{1803, 1803, 1802}));
  EXPECT_EQ(counts(32, 4), (std::vector<std::size_t>{8, 8, 8, 8}));
  const auto c33 = counts(32, 33);
  EXPECT_EQ(c33.back(), 0u) << "over 33 ranks the last owns nothing";
  EXPECT_EQ(block_slice(32, 33, 32).begin, 32u);
  EXPECT_EQ(block_slice(4, 5, 4), (Slice{4, 0}));
}

TEST(Partition, BoundaryCountsAndDisplacementsInFloats) {
  const BoundaryLayout b = make_boundary(32, 26 * 26, 3);
  ASSERT_EQ(b.ranks(), 3u);
  EXPECT_EQ(b.counts, (std::vector<int>{11 * 676, 11 * 676, 10 * 676}));
  EXPECT_EQ(b.displs, (std::vector<int>{0, 11 * 676, 22 * 676}));
  EXPECT_EQ(b.total_elems(), 32u * 676u);
  // s*(N - n_r) received, s*n_r*(P-1) sent
  EXPECT_EQ(b.elems_received(2), 22u * 676u);
  EXPECT_EQ(b.elems_sent(0), 11u * 676u * 2u);
}

TEST(Partition, ReceivedBytesMatchTheReferenceLedger) {
  // Conv, pool, GELU, linear of the seed network at B=1 (REFERENCE.md): bytes each rank receives over all four.
  auto per_rank = [](std::size_t P) {
    const BoundaryLayout layers[] = {make_boundary(32, 676, P), make_boundary(32, 169, P), make_boundary(5408, 1, P),
                                     make_boundary(128, 1, P)};
    std::vector<std::size_t> bytes(P, 0);
    for (const auto& b : layers)
      for (std::size_t r = 0; r < P; ++r) bytes[r] += b.elems_received(r) * sizeof(float);
    return bytes;
  };
  EXPECT_EQ(per_rank(2), (std::vector<std::size_t>{65152, 65152}));
  const auto p3 = per_rank(3);
  EXPECT_EQ(*std::max_element(p3.begin(), p3.end()), 89128u);
  EXPECT_EQ(*std::min_element(p3.begin(), p3.end()), 85740u);
  EXPECT_EQ(per_rank(4), (std::vector<std::size_t>(4, 97728)));
  const auto p5 = per_rank(5);
  EXPECT_EQ(*std::max_element(p5.begin(), p5.end()), 105600u);
  const auto p8 = per_rank(8);
  EXPECT_EQ(*std::max_element(p8.begin(), p8.end()), 114016u);
}

TEST(Partition, RejectsCountsBeyondMpiInt) {
  EXPECT_THROW(make_boundary(32, static_cast<std::size_t>(INT_MAX), 2), std::overflow_error);
  EXPECT_THROW(make_boundary(32, 1, 0), std::invalid_argument);
}

TEST(Boxes, RangesOfAFlattenedTensorAreCoveredExactlyByTheirBoxes) {
  for (const auto& [C, H, W] : {std::tuple<std::size_t, std::size_t, std::size_t>{3, 4, 5}, {1, 1, 7}, {5, 1, 1},
                                {2, 3, 1}}) {
    const std::size_t N = C * H * W;
    for (std::size_t begin = 0; begin <= N; ++begin)
      for (std::size_t end = begin; end <= N; ++end) {
        const auto boxes = boxes_of_range(C, H, W, 2, Slice{begin, end - begin});
        ASSERT_LE(boxes.size(), 5u);
        std::vector<int> hits(N, 0);
        for (const Box& b : boxes) {
          EXPECT_FALSE(b.empty());
          EXPECT_EQ(b.b, (Slice{0, 2}));
          for (std::size_t c = b.c.begin; c < b.c.end(); ++c)
            for (std::size_t h = b.h.begin; h < b.h.end(); ++h)
              for (std::size_t w = b.w.begin; w < b.w.end(); ++w) ++hits[(c * H + h) * W + w];
        }
        for (std::size_t e = 0; e < N; ++e)
          ASSERT_EQ(hits[e], e >= begin && e < end ? 1 : 0) << C << "x" << H << "x" << W << " [" << begin << ","
                                                            << end << ") element " << e;
      }
  }
}

TEST(Boxes, IntersectionAndCoverage) {
  const Box a{{0, 4}, {2, 3}, {0, 5}, {0, 2}}, b{{2, 4}, {0, 4}, {1, 1}, {1, 1}};
  EXPECT_EQ(intersect(a, b), (Box{{2, 2}, {2, 2}, {1, 1}, {1, 1}}));
  EXPECT_TRUE(intersect(a, Box{{4, 1}, {0, 9}, {0, 9}, {0, 9}}).empty());
  EXPECT_EQ(covered({a}, b), 4u);
  EXPECT_EQ(intersect(Slice{3, 2}, Slice{0, 3}).count, 0u);
}
