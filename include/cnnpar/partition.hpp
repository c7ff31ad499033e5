// Block partition of N items over P ranks, remainder on the lowest ranks: rank r owns
// [begin(r), begin(r) + count(r)) with count(r) = N/P + (r < N%P). Pure integer math, no MPI; the counts and
// displacements it produces are what the consolidation layer hands to MPI_Allgatherv.
#pragma once

#include <cstddef>
#include <vector>

namespace cnnpar {

struct Slice {
  std::size_t begin = 0, count = 0;
  std::size_t end() const { return begin + count; }
  bool empty() const { return count == 0; }
  bool operator==(const Slice&) const = default;
};

// The slice of `items` owned by `rank` of `ranks`. Requires ranks > 0 and rank < ranks.
Slice block_slice(std::size_t items, std::size_t ranks, std::size_t rank);

// The rank that owns `item` (item < items).
std::size_t block_owner(std::size_t items, std::size_t ranks, std::size_t item);

// The overlap of two slices (empty when they do not meet; its begin is then meaningless).
Slice intersect(const Slice& a, const Slice& b);

// A box of the 4-D activation [C][H][W][B] (kernels.hpp's C,H,W,B layout): channels x rows x columns x samples.
// The regions of the spatial and sample splits are boxes; so are channel and feature slices (every row, column and
// sample), and a flat element range is a few boxes (boxes_of_range).
struct Box {
  Slice c, h, w, b;
  std::size_t volume() const { return c.count * h.count * w.count * b.count; }
  bool empty() const { return volume() == 0; }
  bool operator==(const Box&) const = default;
};
Box intersect(const Box& a, const Box& b);
// The boxes that make up elements [range.begin, range.end()) of a C x H x W tensor flattened in C,H,W order, every
// sample: at most five (a partial row, partial plane, whole channels, partial plane, partial row).
std::vector<Box> boxes_of_range(std::size_t channels, std::size_t rows, std::size_t cols, std::size_t batch,
                                Slice range);
// Elements of `inner` covered by the (disjoint) boxes `outer`.
std::size_t covered(const std::vector<Box>& outer, const Box& inner);

// A layer boundary: how one tensor of `items * item_elems` floats is divided among ranks, in floats.
struct BoundaryLayout {
  std::size_t items = 0;       // channels / elements / features
  std::size_t item_elems = 0;  // floats per item (per-image item size times batch)
  std::vector<Slice> slices;   // per rank, in items
  std::vector<int> counts;     // per rank, in floats (MPI's int counts)
  std::vector<int> displs;     // per rank, in floats

  std::size_t total_elems() const { return items * item_elems; }
  std::size_t ranks() const { return slices.size(); }
  // Floats rank r must receive to hold the whole tensor: item_elems * (items - owned(r)).
  std::size_t elems_received(std::size_t rank) const;
  // Floats of rank r's slice delivered to the other ranks: item_elems * owned(r) * (P - 1).
  std::size_t elems_sent(std::size_t rank) const;
};

// Throws std::overflow_error when a count or displacement exceeds INT_MAX (MPI's int counts).
BoundaryLayout make_boundary(std::size_t items, std::size_t item_elems, std::size_t ranks);

}  // namespace cnnpar
