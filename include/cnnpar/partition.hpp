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
