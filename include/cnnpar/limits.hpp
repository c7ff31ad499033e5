// Sizes checked before anything is allocated: overflow-safe byte arithmetic, MPI's int count limit, and a memory
// budget per rank. A request that cannot fit ends with one message naming the option and the bytes it would need,
// instead of a wrapped-around size, std::bad_alloc on every rank, or the kernel's OOM killer.
//
// Two checks, because one is a pure function of the arguments and one depends on the machine:
//  - check_sizes (every rank, identically): every tensor's and weight's size computed without overflow, and every
//    layer boundary within MPI's int counts.
//  - check_memory (rank 0, then agreed): the estimated bytes one rank holds against memory_budget().
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnnpar/cli.hpp"
#include "cnnpar/network.hpp"

namespace cnnpar {

class LimitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A byte (or element) count that saturates instead of wrapping: once a product or sum overflows 64 bits it stays
// `overflow`, and compares greater than any budget.
struct Bytes {
  std::uint64_t value = 0;
  bool overflow = false;
};
Bytes operator*(Bytes a, std::uint64_t b);
Bytes operator+(Bytes a, Bytes b);
inline bool operator>(Bytes a, std::uint64_t b) { return a.overflow || a.value > b; }
// "1,234,567 B", or "more than 18,446,744,073,709,551,615 B" for an overflowed count.
std::string to_string(Bytes b);
std::string with_thousands(std::uint64_t n);

// How much memory one rank may use: the smallest of physical memory (/proc/meminfo MemTotal), the cgroup limit
// (memory.max) and RLIMIT_AS / RLIMIT_DATA, divided by the ranks sharing the node. The environment variable
// CNNPAR_MEMORY_BUDGET (bytes per rank) replaces it.
struct MemoryBudget {
  std::uint64_t bytes = 0;
  std::string source;  // "25,276,510,208 B of physical memory / 3 ranks on this node"
};
MemoryBudget memory_budget(std::size_t ranks_on_node);

// One part of a rank's memory and the options that size it.
struct MemoryNeed {
  std::string what;     // "timing records"
  std::string options;  // "--iterations 1000000000000"
  Bytes bytes;
};

// The parts of the largest rank's (rank 0's) memory for this job: activations (whole tensors of every layer, per
// combination, plus the serial reference's), weights (whole, on rank 0, plus a slice per combination), timing
// records and communication matrices (every rank's, gathered on rank 0). An upper-bound estimate; shapes from `layers` (describe()).
std::vector<MemoryNeed> job_memory(const Options& opt, const std::vector<LayerInfo>& layers, std::size_t batch,
                                   std::size_t ranks, std::size_t combinations);

// Every rank, before the plans are made: throws LimitError when a tensor or weight size overflows 64 bits or a
// layer boundary exceeds MPI's int count (2^31 - 1 floats), naming the options that make it so.
void check_sizes(const Options& opt, const std::vector<LayerInfo>& layers, std::size_t batch);

// Rank 0: throws LimitError when the needs add up to more than the budget, naming the largest need's options, e.g.
// "--iterations 1000000000000 needs 56,000,000,000,000 B of timing records on rank 0 (the job 56,000,001,234,112 B),
// more than the memory budget of 8,425,503,402 B per rank (25,276,510,208 B of physical memory / 3 ranks on this
// node; CNNPAR_MEMORY_BUDGET=bytes sets another)".
void check_memory(const std::vector<MemoryNeed>& needs, const MemoryBudget& budget);

}  // namespace cnnpar
