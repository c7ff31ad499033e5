// Unit tests for the IDX reader: the shipped Fashion-MNIST sample, gzip, the embedded copy, and every error path.
#include "cnnpar/idx.hpp"
#include "cnnpar/input_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace cnnpar {
namespace {

namespace fs = std::filesystem;

const fs::path kDataDir = fs::path(CNNPAR_SOURCE_DIR) / "data";
const std::string kImagesPath = (kDataDir / "fashion-mnist-t10k-first512-images-idx3-ubyte").string();
const std::string kLabelsPath = (kDataDir / "fashion-mnist-t10k-first512-labels-idx1-ubyte").string();
constexpr std::size_t kPixels = 28 * 28;

std::vector<std::uint8_t> slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, std::span<const std::uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const fs::path& path, std::span<const std::uint8_t> bytes) {
  gzFile gz = gzopen(path.string().c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

std::uint8_t pixel(const ImageBatch& batch, std::size_t image, std::size_t row, std::size_t col) {
  return batch.pixels.at((image - batch.first) * batch.rows * batch.cols + row * batch.cols + col);
}

// The IdxError message of `fn`, or a failure if it does not throw one.
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const IdxError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected IdxError";
  return {};
}

// A fresh directory per test, removed afterwards, for the rewritten copies of the sample.
class IdxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    // The pid keeps concurrent runs of the suite (ctest -j, several build dirs) apart.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cnnpar_test_idx_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(IdxImages, ReadsShippedSample) {
  const ImageBatch batch = read_idx_images(kImagesPath, 0, 64);
  EXPECT_EQ(batch.first, 0u);
  EXPECT_EQ(batch.count, 64u);
  EXPECT_EQ(batch.rows, 28u);
  EXPECT_EQ(batch.cols, 28u);
  EXPECT_EQ(batch.images_in_file, 512u);
  ASSERT_EQ(batch.pixels.size(), 64 * kPixels);
  // Values read independently with Python from the raw file.
  EXPECT_EQ(pixel(batch, 0, 0, 0), 0);
  EXPECT_EQ(pixel(batch, 0, 7, 19), 3);
  EXPECT_EQ(pixel(batch, 0, 7, 23), 7);
  EXPECT_EQ(pixel(batch, 0, 21, 27), 11);
  EXPECT_EQ(pixel(batch, 1, 0, 11), 67);
  EXPECT_EQ(pixel(batch, 63, 8, 21), 46);
  unsigned sum0 = 0;
  for (std::size_t i = 0; i < kPixels; ++i) sum0 += batch.pixels[i];
  EXPECT_EQ(sum0, 33456u);
}

TEST(IdxImages, ReadsRangeInTheMiddle) {
  const ImageBatch all = read_idx_images(kImagesPath, 0, 64);
  const ImageBatch mid = read_idx_images(kImagesPath, 30, 4);
  EXPECT_EQ(mid.first, 30u);
  EXPECT_EQ(mid.count, 4u);
  EXPECT_EQ(mid.images_in_file, 512u);
  ASSERT_EQ(mid.pixels.size(), 4 * kPixels);
  EXPECT_TRUE(std::equal(mid.pixels.begin(), mid.pixels.end(), all.pixels.begin() + 30 * kPixels));
  EXPECT_EQ(pixel(mid, 32, 0, 11), 154);

  const ImageBatch last = read_idx_images(kImagesPath, 63, 1);
  EXPECT_EQ(pixel(last, 63, 8, 21), 46);
}

TEST_F(IdxFiles, GzippedFileGivesIdenticalPixels) {
  const fs::path gz = dir_ / "images.gz";
  write_gzip(gz, slurp(kImagesPath));
  EXPECT_EQ(read_idx_images(gz.string(), 0, 64).pixels, read_idx_images(kImagesPath, 0, 64).pixels);
  EXPECT_EQ(read_idx_images(gz.string(), 17, 5).pixels, read_idx_images(kImagesPath, 17, 5).pixels);

  const fs::path labels_gz = dir_ / "labels.gz";
  write_gzip(labels_gz, slurp(kLabelsPath));
  EXPECT_EQ(read_idx_labels(labels_gz.string(), 0, 64), read_idx_labels(kLabelsPath, 0, 64));
}

TEST_F(IdxFiles, GzippedBytesParseLikePlainBytes) {
  const fs::path gz = dir_ / "images.gz";
  write_gzip(gz, slurp(kImagesPath));
  const std::vector<std::uint8_t> gz_bytes = slurp(gz);
  ASSERT_EQ(gz_bytes.at(0), 0x1f);
  EXPECT_EQ(parse_idx_images(gz_bytes, "mem.gz", 40, 24).pixels, read_idx_images(kImagesPath, 40, 24).pixels);
}

TEST_F(IdxFiles, TruncatedFileIsReported) {
  std::vector<std::uint8_t> bytes = slurp(kImagesPath);
  bytes.resize(16 + 10 * kPixels + 100);  // ten whole images and part of the eleventh
  const fs::path cut = dir_ / "cut";
  write_file(cut, bytes);
  const std::string msg = error_of([&] { read_idx_images(cut.string(), 0, 64); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ends after 10 images"), std::string::npos) << msg;
  EXPECT_NE(msg.find(cut.string()), std::string::npos) << msg;
  // Images before the cut are still readable; the skip path also reports truncation.
  EXPECT_EQ(read_idx_images(cut.string(), 0, 10).count, 10u);
  EXPECT_NE(error_of([&] { read_idx_images(cut.string(), 30, 1); }).find("ends after 10 images"), std::string::npos);

  const fs::path cut_gz = dir_ / "cut.gz";
  write_gzip(cut_gz, bytes);
  EXPECT_NE(error_of([&] { read_idx_images(cut_gz.string(), 0, 64); }).find("truncated"), std::string::npos);

  bytes.resize(7);  // inside the header
  EXPECT_NE(error_of([&] { parse_idx_images(bytes, "short", 0, 1); }).find("truncated"), std::string::npos);
}

TEST_F(IdxFiles, TruncatedGzipStreamIsReported) {
  const fs::path gz = dir_ / "images.gz";
  write_gzip(gz, slurp(kImagesPath));
  std::vector<std::uint8_t> gz_bytes = slurp(gz);
  gz_bytes.resize(gz_bytes.size() / 2);  // the compressed stream itself is cut off
  const fs::path cut = dir_ / "cut.gz";
  write_file(cut, gz_bytes);
  EXPECT_NE(error_of([&] { read_idx_images(cut.string(), 0, 512); }).find("truncated"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_idx_images(gz_bytes, "cut.gz", 0, 512); }).find("truncated"), std::string::npos);
}

TEST(IdxImages, CorruptGzipIsReported) {
  const std::vector<std::uint8_t> junk{0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff};
  const std::string msg = error_of([&] { parse_idx_images(junk, "junk.gz", 0, 1); });
  EXPECT_NE(msg.find("junk.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gzip"), std::string::npos) << msg;
}

TEST(IdxImages, WrongMagicIsReported) {
  const std::string msg = error_of([] { read_idx_images(kLabelsPath, 0, 1); });
  EXPECT_NE(msg.find("magic"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0x00000801"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0x00000803"), std::string::npos) << msg;
}

// A FIFO would block rank 0 in open(2) forever (and the job with it): refused at once, as are directories.
TEST_F(IdxFiles, FifoAndDirectoryAreRefusedWithoutBlocking) {
  const fs::path fifo = dir_ / "images.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string msg = error_of([&] { read_idx_images(fifo.string(), 0, 1); });
  EXPECT_NE(msg.find("is a FIFO or pipe, not a regular file"), std::string::npos) << msg;
  msg = error_of([&] { read_idx_labels(fifo.string(), 0, 1); });
  EXPECT_NE(msg.find("labels file '" + fifo.string() + "': is a FIFO"), std::string::npos) << msg;
  msg = error_of([&] { read_idx_images(dir_.string(), 0, 1); });
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;
  msg = error_of([&] { read_idx_images("/dev/zero", 0, 1); });
  EXPECT_NE(msg.find("is a character device"), std::string::npos) << msg;
}

// The helper other readers (a --net spec file) use: regular files only, a size cap, the path in the message.
TEST_F(IdxFiles, SmallTextFilesAreReadOnlyFromRegularFiles) {
  const fs::path spec = dir_ / "net.txt";
  std::ofstream(spec) << "conv 3 8\n";
  EXPECT_EQ(read_small_text_file(spec.string(), "--net file"), "conv 3 8\n");
  const fs::path fifo = dir_ / "net.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    read_small_text_file(fifo.string(), "--net file");
    ADD_FAILURE() << "a FIFO was read";
  } catch (const InputFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--net file '" + fifo.string() + "': is a FIFO or pipe", 0), 0u) << e.what();
  }
  EXPECT_THROW(read_small_text_file(spec.string(), "--net file", 4), InputFileError);
  EXPECT_EQ(regular_file_problem(spec.string()), "");
  EXPECT_NE(regular_file_problem(fifo.string()).find("FIFO"), std::string::npos);
}

TEST(IdxImages, MissingFileIsReported) {
  const std::string path = (kDataDir / "no-such-file-idx3-ubyte").string();
  const std::string msg = error_of([&] { read_idx_images(path, 0, 1); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot open"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(IdxImages, IndexOutOfRangeIsReported) {
  const std::string msg = error_of([] { read_idx_images(kImagesPath, 600, 1); });
  EXPECT_NE(msg.find("index 600 out of range"), std::string::npos) << msg;
  EXPECT_NE(msg.find("512 images (0-511)"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { read_idx_images(kImagesPath, 508, 10); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([] { read_idx_images(kImagesPath, 1, SIZE_MAX); }).find("out of range"), std::string::npos);
}

TEST(IdxImages, ZeroCountIsRejected) {
  EXPECT_NE(error_of([] { read_idx_images(kImagesPath, 0, 0); }).find("0 images"), std::string::npos);
  EXPECT_NE(error_of([] { read_idx_labels(kLabelsPath, 0, 0); }).find("0 labels"), std::string::npos);
}

TEST(IdxImages, EmptyHeaderDimensionsAreRejected) {
  std::vector<std::uint8_t> bytes = parse_idx_images(embedded_sample_images(), "x", 0, 1).pixels;
  bytes.insert(bytes.begin(), {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28});
  EXPECT_EQ(parse_idx_images(bytes, "one", 0, 1).count, 1u);  // the well-formed baseline

  bytes[7] = 0;  // 0 images
  EXPECT_NE(error_of([&] { parse_idx_images(bytes, "none", 0, 1); }).find("declares 0 images"), std::string::npos);
  bytes[7] = 1;
  bytes[11] = 0;  // 0 rows
  EXPECT_NE(error_of([&] { parse_idx_images(bytes, "flat", 0, 1); }).find("0x28"), std::string::npos);
  bytes[11] = 28;
  bytes[15] = 0;  // 0 columns
  EXPECT_NE(error_of([&] { parse_idx_images(bytes, "thin", 0, 1); }).find("28x0"), std::string::npos);
}

TEST(IdxEmbedded, MatchesDataFiles) {
  EXPECT_EQ(parse_idx_images(embedded_sample_images(), kEmbeddedSampleName, 0, 64).pixels,
            read_idx_images(kImagesPath, 0, 64).pixels);
  EXPECT_EQ(parse_idx_labels(embedded_sample_labels(), kEmbeddedSampleName, 0, 64),
            read_idx_labels(kLabelsPath, 0, 64));
  const std::string msg = error_of([] { parse_idx_images(embedded_sample_images(), kEmbeddedSampleName, 512, 1); });
  EXPECT_NE(msg.find(kEmbeddedSampleName), std::string::npos) << msg;
}

TEST(IdxLabels, ReadsShippedLabels) {
  const std::vector<std::uint8_t> first10 = read_idx_labels(kLabelsPath, 0, 10);
  EXPECT_EQ(first10, (std::vector<std::uint8_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  EXPECT_EQ(read_idx_labels(kLabelsPath, 60, 4), (std::vector<std::uint8_t>{7, 7, 8, 5}));

  const std::string magic = error_of([] { read_idx_labels(kImagesPath, 0, 1); });
  EXPECT_NE(magic.find("labels file"), std::string::npos) << magic;
  EXPECT_NE(magic.find("magic"), std::string::npos) << magic;
  const std::string range = error_of([] { read_idx_labels(kLabelsPath, 512, 1); });
  EXPECT_NE(range.find("label index 512 out of range"), std::string::npos) << range;
}

TEST(IdxClassNames, MatchFashionMnist) {
  EXPECT_EQ(fashion_mnist_class_name(0), "T-shirt/top");
  EXPECT_EQ(fashion_mnist_class_name(1), "Trouser");
  EXPECT_EQ(fashion_mnist_class_name(5), "Sandal");
  EXPECT_EQ(fashion_mnist_class_name(9), "Ankle boot");
  EXPECT_EQ(fashion_mnist_class_name(10), "unknown");
  EXPECT_EQ(fashion_mnist_class_name(255), "unknown");
}

TEST(IdxAsciiArt, OneLinePerRowTwoCharactersPerPixel) {
  const ImageBatch batch = read_idx_images(kImagesPath, 0, 1);
  const std::string art = ascii_art(batch.pixels, 28, 28);
  std::istringstream lines(art);
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line); ++count) EXPECT_EQ(line.size(), 56u) << "line " << count;
  EXPECT_EQ(count, 28u);
  EXPECT_EQ(art.back(), '\n');

  const std::vector<std::uint8_t> ramp{0, 25, 26, 255};
  EXPECT_EQ(ascii_art(ramp, 2, 2), "    \n..@@\n");  // value*10/256: 25 -> 0 (blank), 26 -> 1, 255 -> 9
}

}  // namespace
}  // namespace cnnpar
