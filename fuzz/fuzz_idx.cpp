// libFuzzer target: the IDX reader on plain (uncompressed) data. Inputs that start like gzip go to fuzz_idx_gzip.
#include "idx_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return -1;  // not for this target's corpus
  cnnpar::fuzz::read_every_way(data, size);
  return 0;
}
