// libFuzzer target: the IDX reader on gzip data (zlib's inflate in memory, gzread from a file): damaged headers,
// deflate streams, trailers, and valid streams of damaged IDX data.
#include "idx_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || data[0] != 0x1f || data[1] != 0x8b) return -1;  // gzip only
  cnnpar::fuzz::read_every_way(data, size);
  return 0;
}
