// Block partition arithmetic (see partition.hpp).
#include "cnnpar/partition.hpp"

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
