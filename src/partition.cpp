// Block partition arithmetic (see partition.hpp).
#include "cnnpar/partition.hpp"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

namespace cnnpar {

Slice block_slice(std::size_t items, std::size_t ranks, std::size_t rank) {
  const std::size_t base = items / ranks, extra = items % ranks;
  // The first `extra` ranks own base+1 items; everyone after them is shifted by `extra`.
  return Slice{rank * base + (rank < extra ? rank : extra), base + (rank < extra ? 1 : 0)};
}

std::size_t block_owner(std::size_t items, std::size_t ranks, std::size_t item) {
  const std::size_t base = items / ranks, extra = items % ranks;
  const std::size_t big_span = extra * (base + 1);  // items owned by the ranks that hold one more
  if (item < big_span) return item / (base + 1);
  return extra + (item - big_span) / base;  // base > 0 here: otherwise every item is inside big_span
}

Slice intersect(const Slice& a, const Slice& b) {
  const std::size_t begin = std::max(a.begin, b.begin), end = std::min(a.end(), b.end());
  return end > begin ? Slice{begin, end - begin} : Slice{begin, 0};
}

Box intersect(const Box& a, const Box& b) {
  return Box{intersect(a.c, b.c), intersect(a.h, b.h), intersect(a.w, b.w), intersect(a.b, b.b)};
}

std::vector<Box> boxes_of_range(std::size_t channels, std::size_t rows, std::size_t cols, std::size_t batch,
                                Slice range) {
  std::vector<Box> out;
  const Slice samples{0, batch};
  const std::size_t plane = rows * cols;
  std::size_t at = range.begin;
  const std::size_t end = std::min(range.end(), channels * plane);
  auto add = [&](std::size_t c0, std::size_t nc, std::size_t h0, std::size_t nh, std::size_t w0, std::size_t nw) {
    out.push_back(Box{Slice{c0, nc}, Slice{h0, nh}, Slice{w0, nw}, samples});
    at += nc * nh * nw;
  };
  // Head: up to the end of the current row, then of the current plane; body: whole channels; tail likewise.
  if (at < end && at % cols != 0) {
    const std::size_t c = at / plane, h = at % plane / cols, w = at % cols;
    add(c, 1, h, 1, w, std::min(cols - w, end - at));
  }
  if (at < end && at % plane != 0) {
    const std::size_t c = at / plane, h = at % plane / cols;
    const std::size_t nh = std::min(rows - h, (end - at) / cols);
    if (nh > 0) add(c, 1, h, nh, 0, cols);
  }
  if (at < end && at % plane == 0 && (end - at) >= plane) add(at / plane, (end - at) / plane, 0, rows, 0, cols);
  if (at < end && (end - at) >= cols) {
    const std::size_t c = at / plane, h = at % plane / cols;
    add(c, 1, h, (end - at) / cols, 0, cols);
  }
  if (at < end) {
    const std::size_t c = at / plane, h = at % plane / cols, w = at % cols;
    add(c, 1, h, 1, w, end - at);
  }
  return out;
}

std::size_t covered(const std::vector<Box>& outer, const Box& inner) {
  std::size_t n = 0;
  for (const Box& o : outer) n += intersect(o, inner).volume();
  return n;
}

std::size_t BoundaryLayout::elems_received(std::size_t rank) const {
  return item_elems * (items - slices.at(rank).count);
}

std::size_t BoundaryLayout::elems_sent(std::size_t rank) const {
  return item_elems * slices.at(rank).count * (ranks() - 1);
}

BoundaryLayout make_boundary(std::size_t items, std::size_t item_elems, std::size_t ranks) {
  if (ranks == 0) throw std::invalid_argument("make_boundary: zero ranks");
  if (items * item_elems > static_cast<std::size_t>(INT_MAX))
    throw std::overflow_error("a tensor of " + std::to_string(items * item_elems) +
                              " floats exceeds MPI's int count limit; use a smaller batch");
  BoundaryLayout b{items, item_elems, {}, {}, {}};
  b.slices.reserve(ranks);
  for (std::size_t r = 0; r < ranks; ++r) {
    const Slice s = block_slice(items, ranks, r);
    b.slices.push_back(s);
    b.counts.push_back(static_cast<int>(s.count * item_elems));
    b.displs.push_back(static_cast<int>(s.begin * item_elems));
  }
  return b;
}

}  // namespace cnnpar
