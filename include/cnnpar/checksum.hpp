// Output fingerprints: a bit-exact hash for "is this the same result?" and the plain sum for eyeballing.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace cnnpar {

// FNV-1a (64-bit) over the IEEE bit patterns, in order: equal iff the outputs are equal bit for bit (barring a
// 2^-64 collision). -0.0 and 0.0 hash differently, as they should for a bit-for-bit claim.
std::uint64_t fnv1a64(std::span<const float> values);
std::string hex64(std::uint64_t v);  // "0x0123456789abcdef"

struct Comparison {
  double max_abs_diff = 0.0;
  std::size_t mismatches = 0;  // elements whose bit patterns differ
  bool bitwise_equal() const { return mismatches == 0; }
};
// Requires equal sizes.
Comparison compare(std::span<const float> a, std::span<const float> b);

}  // namespace cnnpar
