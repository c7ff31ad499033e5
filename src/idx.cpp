// IDX image/label reading (see idx.hpp): plain or gzip, from a file or from memory, reading only what is asked for.
#include "cnnpar/idx.hpp"

#include "cnnpar/input_file.hpp"

// next_in becomes const, so in-memory input needs no const_cast.
#define ZLIB_CONST
#include <zlib.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

namespace cnnpar::embedded {
// Generated at build time by cmake/embed_sample.cmake from data/.
extern const std::uint8_t sample_images_bytes[];
extern const std::size_t sample_images_size;
extern const std::uint8_t sample_labels_bytes[];
extern const std::size_t sample_labels_size;
}  // namespace cnnpar::embedded

namespace cnnpar {
namespace {

// What distinguishes the two IDX flavours we read; the words go into error messages.
struct Kind {
  const char* file_noun;    // "images file '...'"
  const char* item;         // "image index 70"
  const char* items;        // "64 images"
  std::uint32_t magic;
  const char* description;  // what the magic number means
  std::size_t header_bytes;  // magic + one 32-bit size per dimension
};
constexpr Kind kImages{"images", "image", "images", 0x00000803, "an IDX3 unsigned-byte image file", 16};
constexpr Kind kLabels{"labels", "label", "labels", 0x00000801, "an IDX1 unsigned-byte label file", 8};

std::string hex32(std::uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}

// Builds the one-line "<kind> file '<name>': <problem>" errors.
class Context {
 public:
  Context(const Kind& kind, std::string_view name) : kind_(kind), name_(name) {}
  const Kind& kind() const { return kind_; }
  const std::string& name() const { return name_; }
  [[noreturn]] void fail(const std::string& problem) const {
    throw IdxError(std::string(kind_.file_noun) + " file '" + name_ + "': " + problem);
  }

 private:
  const Kind& kind_;
  std::string name_;
};

// A forward-only byte stream. read() returns fewer bytes than asked only at the end of the data (which is how
// truncation shows up) and throws IdxError for data that cannot be decoded.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::size_t read(std::uint8_t* dst, std::size_t n) = 0;
  // Read-and-discard by default: gzip has no random access, and counting what was skipped keeps the truncation
  // message exact.
  virtual std::size_t skip(std::size_t n) {
    std::vector<std::uint8_t> scratch(std::min<std::size_t>(n, std::size_t{1} << 16));
    std::size_t done = 0;
    while (done < n) {
      const std::size_t got = read(scratch.data(), std::min(scratch.size(), n - done));
      done += got;
      if (got == 0) break;
    }
    return done;
  }
};

// A file through zlib's gzread, which decompresses gzip and passes anything else through unchanged.
class GzFileSource final : public ByteSource {
 public:
  explicit GzFileSource(const Context& ctx) : ctx_(ctx) {
    // A FIFO or a terminal would block rank 0 here forever (and leave the other ranks spinning in the broadcast), a
    // directory or a device would read nonsense or forever: regular files only (input_file.hpp).
    int fd = -1;
    try {
      fd = open_regular_file(ctx.name());
    } catch (const InputFileError& e) {
      ctx.fail(e.what());
    }
    errno = 0;
    file_ = gzdopen(fd, "rb");  // owns fd from here (gzclose closes it)
    if (file_ == nullptr) {
      ::close(fd);
      ctx.fail(std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "gzdopen failed"));
    }
    gzbuffer(file_, 1u << 17);  // fewer system calls than the 8 KiB default on the 47 MB training file
  }
  ~GzFileSource() override { gzclose(file_); }
  GzFileSource(const GzFileSource&) = delete;
  GzFileSource& operator=(const GzFileSource&) = delete;

  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    std::size_t done = 0;
    while (done < n) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));  // gzread takes unsigned
      const int got = gzread(file_, dst + done, chunk);
      if (got < 0) fail_read();
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    // zlib reports a cut-off gzip stream as Z_BUF_ERROR after returning what it could: that is plain truncation.
    int err = Z_OK;
    gzerror(file_, &err);
    if (err != Z_OK && err != Z_BUF_ERROR) fail_read();
    return done;
  }

 private:
  [[noreturn]] void fail_read() const {
    int err = Z_OK;
    const char* msg = gzerror(file_, &err);
    if (err == Z_ERRNO) ctx_.fail(std::string("cannot read: ") + std::strerror(errno));
    // zlib prefixes its message with the path, which our message already names.
    std::string_view text = msg;
    if (const std::string prefix = ctx_.name() + ": "; text.starts_with(prefix)) text.remove_prefix(prefix.size());
    ctx_.fail("corrupt gzip data: " + std::string(text));
  }

  const Context& ctx_;
  gzFile file_ = nullptr;
};

// Uncompressed bytes already in memory.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const std::uint8_t> bytes) : rest_(bytes) {}
  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    const std::size_t got = skip(n);
    std::copy_n(rest_.data() - got, got, dst);
    return got;
  }
  std::size_t skip(std::size_t n) override {
    const std::size_t got = std::min(n, rest_.size());
    rest_ = rest_.subspan(got);
    return got;
  }

 private:
  std::span<const std::uint8_t> rest_;
};

// A gzip stream in memory, inflated only as far as it is read.
class InflateSource final : public ByteSource {
 public:
  InflateSource(std::span<const std::uint8_t> gz, const Context& ctx) : ctx_(ctx), input_(gz) {
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) ctx.fail("cannot start gzip decompression");  // 16: gzip
  }
  ~InflateSource() override { inflateEnd(&stream_); }
  InflateSource(const InflateSource&) = delete;
  InflateSource& operator=(const InflateSource&) = delete;

  std::size_t read(std::uint8_t* dst, std::size_t n) override {
    std::size_t done = 0;
    while (done < n && !ended_) {
      if (stream_.avail_in == 0) {
        if (input_.empty()) break;  // the stream stops before its end: truncated
        const std::size_t feed = std::min<std::size_t>(input_.size(), UINT_MAX);  // z_stream counts are uInt
        stream_.next_in = input_.data();
        stream_.avail_in = static_cast<uInt>(feed);
        input_ = input_.subspan(feed);
      }
      stream_.next_out = dst + done;
      stream_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - done, UINT_MAX));
      const uInt before = stream_.avail_out;
      const int ret = inflate(&stream_, Z_NO_FLUSH);
      done += before - stream_.avail_out;
      if (ret == Z_STREAM_END) {
        ended_ = true;
      } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
        ctx_.fail(std::string("corrupt gzip data: ") + (stream_.msg != nullptr ? stream_.msg : zError(ret)));
      }
    }
    return done;
  }

 private:
  const Context& ctx_;
  std::span<const std::uint8_t> input_;  // not yet handed to zlib
  z_stream stream_{};
  bool ended_ = false;
};

std::unique_ptr<ByteSource> memory_source(std::span<const std::uint8_t> bytes, const Context& ctx) {
  const bool gzipped = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;  // IDX data starts with 0x00
  if (gzipped) return std::make_unique<InflateSource>(bytes, ctx);
  return std::make_unique<MemorySource>(bytes);
}

std::size_t checked_mul(std::size_t a, std::size_t b, const Context& ctx) {
  std::size_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) ctx.fail("sizes overflow: the header declares absurd dimensions");
  return product;
}

struct Items {
  std::size_t in_file = 0;
  std::size_t rows = 0, cols = 0;  // images only
  std::vector<std::uint8_t> data;
};

// Validates the header, checks the request against it, then reads items [first, first + count).
Items read_items(ByteSource& src, const Context& ctx, std::size_t first, std::size_t count) {
  const Kind& kind = ctx.kind();
  if (count == 0) ctx.fail(std::string("requested 0 ") + kind.items + " (count must be at least 1)");

  std::array<std::uint8_t, 16> header{};
  const std::size_t header_got = src.read(header.data(), kind.header_bytes);
  if (header_got < kind.header_bytes) {
    ctx.fail("truncated: the data ends after " + std::to_string(header_got) + " bytes, inside the " +
             std::to_string(kind.header_bytes) + "-byte IDX header");
  }
  const auto be32 = [&](std::size_t at) {  // IDX stores sizes big-endian
    return std::uint32_t{header[at]} << 24 | std::uint32_t{header[at + 1]} << 16 | std::uint32_t{header[at + 2]} << 8 |
           std::uint32_t{header[at + 3]};
  };
  if (const std::uint32_t magic = be32(0); magic != kind.magic) {
    std::string problem = "wrong magic number " + hex32(magic) + " (expected " + hex32(kind.magic) + ", " +
                          kind.description;
    for (const Kind* other : {&kImages, &kLabels}) {
      if (magic == other->magic) problem += "; " + hex32(magic) + " is " + other->description;
    }
    ctx.fail(problem + ")");
  }

  Items out;
  out.in_file = be32(4);
  std::size_t item_bytes = 1;
  if (kind.magic == kImages.magic) {
    out.rows = be32(8);
    out.cols = be32(12);
    if (out.rows == 0 || out.cols == 0) {
      ctx.fail("header declares an image size of " + std::to_string(out.rows) + "x" + std::to_string(out.cols) +
               " (rows and columns must be at least 1)");
    }
    item_bytes = checked_mul(out.rows, out.cols, ctx);
  }
  if (out.in_file == 0) ctx.fail(std::string("header declares 0 ") + kind.items);
  if (first >= out.in_file || count > out.in_file - first) {
    const std::string holds = ": the file holds " + std::to_string(out.in_file) + " " + kind.items + " (0-" +
                              std::to_string(out.in_file - 1) + ")";
    if (first >= out.in_file) {
      ctx.fail(std::string(kind.item) + " index " + std::to_string(first) + " out of range" + holds);
    }
    ctx.fail("requested " + std::to_string(count) + " " + kind.items + " starting at index " + std::to_string(first) +
             ", out of range" + holds);
  }

  const auto truncated = [&](std::size_t complete_items) {
    std::string declared = std::to_string(out.in_file) + " " + kind.items;
    if (kind.magic == kImages.magic) declared += " of " + std::to_string(out.rows) + "x" + std::to_string(out.cols);
    ctx.fail("truncated: header declares " + declared + " but the data ends after " +
             std::to_string(complete_items) + " " + kind.items);
  };
  const std::size_t skip_bytes = checked_mul(first, item_bytes, ctx);
  if (const std::size_t skipped = src.skip(skip_bytes); skipped < skip_bytes) truncated(skipped / item_bytes);

  // Grow in chunks rather than trusting the header with one big allocation: a corrupt size then fails as
  // "truncated" instead of exhausting memory.
  const std::size_t want = checked_mul(count, item_bytes, ctx);
  constexpr std::size_t kChunk = std::size_t{1} << 22;
  while (out.data.size() < want) {
    const std::size_t have = out.data.size();
    out.data.resize(have + std::min(kChunk, want - have));
    const std::size_t got = src.read(out.data.data() + have, out.data.size() - have);
    if (have + got < out.data.size()) truncated(first + (have + got) / item_bytes);
  }
  return out;
}

ImageBatch to_batch(Items items, std::size_t first, std::size_t count) {
  ImageBatch batch;
  batch.first = first;
  batch.count = count;
  batch.rows = items.rows;
  batch.cols = items.cols;
  batch.images_in_file = items.in_file;
  batch.pixels = std::move(items.data);
  return batch;
}

}  // namespace

ImageBatch read_idx_images(const std::string& path, std::size_t first, std::size_t count) {
  const Context ctx(kImages, path);
  GzFileSource src(ctx);
  return to_batch(read_items(src, ctx, first, count), first, count);
}

ImageBatch parse_idx_images(std::span<const std::uint8_t> bytes, std::string_view name, std::size_t first,
                            std::size_t count) {
  const Context ctx(kImages, name);
  return to_batch(read_items(*memory_source(bytes, ctx), ctx, first, count), first, count);
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path, std::size_t first, std::size_t count) {
  const Context ctx(kLabels, path);
  GzFileSource src(ctx);
  return read_items(src, ctx, first, count).data;
}

std::vector<std::uint8_t> parse_idx_labels(std::span<const std::uint8_t> bytes, std::string_view name,
                                           std::size_t first, std::size_t count) {
  const Context ctx(kLabels, name);
  return read_items(*memory_source(bytes, ctx), ctx, first, count).data;
}

std::span<const std::uint8_t> embedded_sample_images() {
  return {embedded::sample_images_bytes, embedded::sample_images_size};
}

std::span<const std::uint8_t> embedded_sample_labels() {
  return {embedded::sample_labels_bytes, embedded::sample_labels_size};
}

std::string_view fashion_mnist_class_name(std::uint8_t label) {
  static constexpr std::array<std::string_view, 10> kNames{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                           "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return label < kNames.size() ? kNames[label] : "unknown";
}

std::string ascii_art(std::span<const std::uint8_t> image, std::size_t rows, std::size_t cols) {
  if (image.size() != rows * cols) throw std::invalid_argument("ascii_art: image size does not match rows x cols");
  static constexpr std::string_view kRamp = " .:-=+*#%@";
  std::string art;
  art.reserve(rows * (2 * cols + 1));
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      // Two characters per pixel: terminal cells are about twice as tall as wide, so the image keeps its shape.
      art.append(2, kRamp[image[r * cols + c] * kRamp.size() / 256]);
    }
    art += '\n';
  }
  return art;
}

}  // namespace cnnpar
