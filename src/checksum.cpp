// Output fingerprints (see checksum.hpp).
#include "cnnpar/checksum.hpp"

#include <bit>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace cnnpar {

std::uint64_t fnv1a64(std::span<const float> values) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const float v : values) {
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
    for (int byte = 0; byte < 4; ++byte) {
      h ^= (bits >> (8 * byte)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  return h;
}

std::string hex64(std::uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Comparison compare(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) throw std::invalid_argument("compare: sizes differ");
  Comparison c;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) ++c.mismatches;
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (d > c.max_abs_diff || std::isnan(d)) c.max_abs_diff = d;
  }
  return c;
}

}  // namespace cnnpar
