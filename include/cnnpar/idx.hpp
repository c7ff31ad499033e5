// IDX image and label files (the MNIST / Fashion-MNIST container format), plain or gzip-compressed.
// Reading is a pure function of the bytes: no MPI; rank 0 reads and broadcasts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cnnpar {

// Thrown for a missing, unreadable, truncated or malformed file; what() names the file and the problem.
class IdxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `count` images starting at `first`, row-major 8-bit pixels, image after image.
struct ImageBatch {
  std::size_t first = 0;          // index of the first image in the file
  std::size_t count = 0;          // images held in `pixels`
  std::size_t rows = 0, cols = 0;  // per image
  std::size_t images_in_file = 0;  // as the header declares
  std::vector<std::uint8_t> pixels;  // count * rows * cols
};

// Reads images [first, first + count) of an IDX3 unsigned-byte file (magic 0x00000803), gzipped or not (detected
// from the content, not the name). Throws IdxError for: file missing/unreadable, wrong magic, index range outside
// the declared image count, or data ending before the requested images.
ImageBatch read_idx_images(const std::string& path, std::size_t first, std::size_t count);

// The same over bytes already in memory (the embedded default sample); `name` is used in error messages.
ImageBatch parse_idx_images(std::span<const std::uint8_t> bytes, std::string_view name, std::size_t first,
                            std::size_t count);

// Labels [first, first + count) of an IDX1 unsigned-byte file (magic 0x00000801), gzipped or not.
std::vector<std::uint8_t> read_idx_labels(const std::string& path, std::size_t first, std::size_t count);
std::vector<std::uint8_t> parse_idx_labels(std::span<const std::uint8_t> bytes, std::string_view name,
                                           std::size_t first, std::size_t count);

// The sample compiled into the binary: the first 512 Fashion-MNIST test images and their labels.
std::span<const std::uint8_t> embedded_sample_images();
std::span<const std::uint8_t> embedded_sample_labels();
inline constexpr std::string_view kEmbeddedSampleName = "embedded:fashion-mnist-t10k[0:512]";

// Fashion-MNIST class names, index = label.
std::string_view fashion_mnist_class_name(std::uint8_t label);

// An image as ASCII art, one text line per pixel row (a 10-step intensity ramp, blank = 0), each line ending in '\n'.
// Every pixel is printed as two characters, since a terminal cell is about twice as tall as it is wide: the picture
// keeps its aspect ratio. Requires image.size() == rows * cols.
std::string ascii_art(std::span<const std::uint8_t> image, std::size_t rows, std::size_t cols);

}  // namespace cnnpar
