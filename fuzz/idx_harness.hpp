// What the IDX fuzz targets share: one input goes through the in-memory reader and, through a memfd, the file reader
// (zlib's gzread), as images and as labels, at a few index ranges. IdxError is the expected outcome for a bad input;
// anything else (another exception, a sanitizer report, a hang) is a bug.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>

#include "cnnpar/idx.hpp"

namespace cnnpar::fuzz {

inline void read_every_way(const std::uint8_t* data, std::size_t size) {
  static const int fd = memfd_create("cnnpar_fuzz_idx", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)))
    std::abort();
  const std::span<const std::uint8_t> bytes(data, size);
  constexpr std::size_t kRanges[][2] = {{0, 1}, {1, 2}, {3, 1}};
  for (const auto& [first, count] : kRanges) {
    std::optional<ImageBatch> from_memory, from_file;
    try {
      from_memory = parse_idx_images(bytes, "fuzz", first, count);
    } catch (const IdxError&) {
    }
    try {
      from_file = read_idx_images(path, first, count);
    } catch (const IdxError&) {
    }
    for (const auto* batch : {&from_memory, &from_file})
      if (*batch && (*batch)->pixels.size() != count * (*batch)->rows * (*batch)->cols) std::abort();
    // Where both readers succeed on the same bytes, they must agree.
    if (from_memory && from_file && from_memory->pixels != from_file->pixels) std::abort();
    try {
      if (parse_idx_labels(bytes, "fuzz", first, count).size() != count) std::abort();
    } catch (const IdxError&) {
    }
    try {
      if (read_idx_labels(path, first, count).size() != count) std::abort();
    } catch (const IdxError&) {
    }
  }
}

}  // namespace cnnpar::fuzz
