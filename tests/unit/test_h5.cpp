// Unit tests for the HDF5 RAII layer (cnnpar/h5.hpp): round trips of every dataset and attribute kind, groups,
// existence checks, type conversion on read, error messages, and write_atomically's temp-then-rename contract.
#include "cnnpar/h5.hpp"
#include "cnnpar/output_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace fs = std::filesystem;
namespace h5 = cnnpar::h5;

namespace {

using cnnpar::OutputFile;

// A fresh directory per test, removed afterwards.
class H5Test : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("cnnpar_h5_") + info->test_suite_name() + "_" + info->name() + "_" +
                       std::to_string(::getpid()) + "_" + std::to_string(counter++);
    for (char& c : name) {
      if (c == '/') c = '_';  // typed tests have "Suite/0" names
    }
    dir_ = fs::temp_directory_path() / name;
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path path(const std::string& name) const { return dir_ / name; }
  std::vector<std::string> dir_entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    return names;
  }

  fs::path dir_;
};

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
  ASSERT_TRUE(out.good()) << p;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The message of the h5::Error `f` throws ("" if it throws nothing, a test failure if it throws something else).
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const h5::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected cnnpar::h5::Error";
  return {};
}

// ----------------------------------------------------------------------------------------------------------------
// Numeric datasets of every element type.

template <class T>
class H5TypedTest : public H5Test {};
using ElementTypes = ::testing::Types<double, float, std::int64_t, std::uint64_t, std::int32_t, std::uint8_t>;
TYPED_TEST_SUITE(H5TypedTest, ElementTypes);

TYPED_TEST(H5TypedTest, NumericDatasetRoundTrip) {
  using T = TypeParam;
  std::vector<T> data;
  for (int i = 0; i < 24; ++i) data.push_back(static_cast<T>(i * 3 + 1));
  data[5] = std::numeric_limits<T>::max();
  data[6] = std::numeric_limits<T>::lowest();
  const fs::path p = this->path("types.h5");
  {
    h5::File f = h5::File::create(p);
    f.write("d", data, {2, 3, 4});
    f.write("flat", data);  // empty dims: 1-D
  }
  h5::File f = h5::File::open_read(p);
  const h5::Dataset d = f.dataset("d");
  EXPECT_EQ(d.dims(), (std::vector<hsize_t>{2, 3, 4}));
  EXPECT_EQ(d.size(), 24u);
  EXPECT_EQ(d.read<T>(), data);
  EXPECT_EQ(f.dataset("flat").dims(), (std::vector<hsize_t>{24}));
  EXPECT_EQ(f.dataset("flat").read<T>(), data);

  const h5::TypeInfo t = d.type();
  EXPECT_EQ(t.size, sizeof(T));
  if constexpr (std::is_floating_point_v<T>) {
    EXPECT_EQ(t.type_class, h5::TypeClass::floating);
    EXPECT_EQ(t.name(), "float" + std::to_string(sizeof(T) * 8));
  } else {
    EXPECT_EQ(t.type_class, h5::TypeClass::integer);
    EXPECT_EQ(t.is_signed, std::is_signed_v<T>);
    EXPECT_EQ(t.name(), (std::is_signed_v<T> ? "int" : "uint") + std::to_string(sizeof(T) * 8));
  }
}

TYPED_TEST(H5TypedTest, CompressedDatasetRoundTrip) {
  using T = TypeParam;
  std::vector<T> data(3000 * 700);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<T>(i % 97);
  const fs::path p = this->path("gzip.h5");
  {
    h5::File f = h5::File::create(p);
    const h5::Dataset d = f.write("big", data, {3000, 700}, h5::WriteOptions{6, 1024});
    const h5::Handle dcpl(H5Dget_create_plist(d.id()));
    EXPECT_EQ(H5Pget_layout(dcpl.get()), H5D_CHUNKED);
    EXPECT_EQ(H5Pget_nfilters(dcpl.get()), 2);  // shuffle + deflate
    hsize_t chunk[2] = {0, 0};
    ASSERT_EQ(H5Pget_chunk(dcpl.get(), 2, chunk), 2);
    EXPECT_GE(chunk[0], 1u);
    EXPECT_LE(chunk[0], 3000u);
    EXPECT_EQ(chunk[1], 700u);  // whole rows
    EXPECT_LE(chunk[0] * chunk[1] * sizeof(T), hsize_t{1} << 20);

    const h5::Dataset plain = f.write("plain", data, {3000, 700}, h5::WriteOptions{0, 0});
    const h5::Handle plain_dcpl(H5Dget_create_plist(plain.id()));
    EXPECT_EQ(H5Pget_layout(plain_dcpl.get()), H5D_CONTIGUOUS);
  }
  h5::File f = h5::File::open_read(p);
  EXPECT_EQ(f.dataset("big").read<T>(), data);
  EXPECT_EQ(f.dataset("plain").read<T>(), data);
}

// ----------------------------------------------------------------------------------------------------------------
// Datasets: shapes, conversion, strings, errors.

TEST_F(H5Test, SmallDatasetsAreNotCompressedByDefault) {
  h5::File f = h5::File::create(path("small.h5"));
  const h5::Dataset d = f.write("x", std::vector<double>(100, 1.0));
  const h5::Handle dcpl(H5Dget_create_plist(d.id()));
  EXPECT_EQ(H5Pget_layout(dcpl.get()), H5D_CONTIGUOUS);
}

TEST_F(H5Test, EmptyDatasetRoundTrip) {
  const fs::path p = path("empty.h5");
  {
    h5::File f = h5::File::create(p);
    f.write("none", std::vector<float>{});
    f.write("zero_rows", std::vector<std::int64_t>{}, {0, 5}, h5::WriteOptions{9, 0});
    f.write("no_strings", std::vector<std::string>{});
  }
  h5::File f = h5::File::open_read(p);
  EXPECT_EQ(f.dataset("none").dims(), (std::vector<hsize_t>{0}));
  EXPECT_TRUE(f.dataset("none").read<float>().empty());
  EXPECT_EQ(f.dataset("zero_rows").dims(), (std::vector<hsize_t>{0, 5}));
  EXPECT_EQ(f.dataset("zero_rows").size(), 0u);
  EXPECT_TRUE(f.dataset("no_strings").read_strings().empty());
}

TEST_F(H5Test, ReadsFloatFromDoubleDataset) {
  const fs::path p = path("conv.h5");
  const std::vector<double> values{0.5, -1.25, 3.0e10, 1.0 / 3.0};
  {
    h5::File f = h5::File::create(p);
    f.write("weights", values, {2, 2});
    f.write("ints", std::vector<std::int32_t>{-7, 0, 42});
  }
  h5::File f = h5::File::open_read(p);
  const h5::Dataset d = f.dataset("weights");
  EXPECT_EQ(d.type().name(), "float64");
  const std::vector<float> got = d.read<float>();
  ASSERT_EQ(got.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(values[i]));
  EXPECT_EQ(f.dataset("ints").read<std::int64_t>(), (std::vector<std::int64_t>{-7, 0, 42}));
  EXPECT_EQ(f.dataset("ints").read<double>(), (std::vector<double>{-7.0, 0.0, 42.0}));
}

TEST_F(H5Test, StringDatasetRoundTrip) {
  const fs::path p = path("strings.h5");
  const std::vector<std::string> names{"conv1", "", "fc/layer 2", "Größe ✓", std::string(1000, 'x')};
  {
    h5::File f = h5::File::create(p);
    f.write("meta/layer_names", names).attr("note", "utf-8");
  }
  h5::File f = h5::File::open_read(p);
  const h5::Dataset d = f.dataset("meta/layer_names");
  EXPECT_EQ(d.dims(), (std::vector<hsize_t>{names.size()}));
  EXPECT_EQ(d.type().type_class, h5::TypeClass::string);
  EXPECT_TRUE(d.type().variable_length);
  EXPECT_EQ(d.read_strings(), names);
  EXPECT_EQ(d.string_attr("note"), "utf-8");
  const std::string msg = error_message([&] { (void)d.read<float>(); });
  EXPECT_TRUE(contains(msg, "meta/layer_names")) << msg;
  EXPECT_TRUE(contains(msg, "string")) << msg;
}

TEST_F(H5Test, WriteRejectsMismatchedDims) {
  h5::File f = h5::File::create(path("bad.h5"));
  const std::string msg = error_message([&] { f.write("x", std::vector<float>(5), {2, 3}); });
  EXPECT_TRUE(contains(msg, "'" + path("bad.h5").string() + ":/x'")) << msg;
  EXPECT_TRUE(contains(msg, "{2, 3}")) << msg;
  EXPECT_FALSE(f.exists("x"));
  EXPECT_THROW(f.write("y", std::vector<float>(1), {}, h5::WriteOptions{10, 0}), h5::Error);
}

TEST_F(H5Test, WritingAnExistingDatasetThrows) {
  h5::File f = h5::File::create(path("dup.h5"));
  f.write("g/x", std::vector<double>{1.0});
  const std::string msg = error_message([&] { f.write("g/x", std::vector<double>{2.0}); });
  EXPECT_TRUE(contains(msg, "cannot write dataset")) << msg;
  EXPECT_TRUE(contains(msg, "/g/x")) << msg;
}

// ----------------------------------------------------------------------------------------------------------------
// Groups and existence.

TEST_F(H5Test, NestedGroupsAndMembers) {
  const fs::path p = path("groups.h5");
  {
    h5::File f = h5::File::create(p);
    const h5::Group timing = f.create_group("compare/allgatherv_per-layer/timing");
    EXPECT_EQ(timing.path(), "/compare/allgatherv_per-layer/timing");
    timing.write("rank0", std::vector<double>{1.0, 2.0});
    const h5::Group cmp = f.group("compare");
    cmp.create_group("baseline");
    cmp.write("scores", std::vector<float>{0.25f});
    EXPECT_THROW(f.create_group("compare"), h5::Error);
    const h5::Group again = f.require_group("compare/allgatherv_per-layer");  // opens
    EXPECT_EQ(again.members(), (std::vector<std::string>{"timing"}));
    const h5::Group fresh = f.require_group("meta");  // creates
    EXPECT_EQ(fresh.path(), "/meta");
    f.write("timing/rank1", std::vector<double>{3.0});  // dataset write creates the group too
  }
  h5::File f = h5::File::open_read(p);
  EXPECT_EQ(f.members(), (std::vector<std::string>{"compare", "meta", "timing"}));
  EXPECT_EQ(f.group("compare").members(),
            (std::vector<std::string>{"allgatherv_per-layer", "baseline", "scores"}));
  EXPECT_TRUE(f.group("meta").members().empty());
  EXPECT_EQ(f.group("compare/allgatherv_per-layer").dataset("timing/rank0").read<double>(),
            (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(f.dataset("/timing/rank1").path(), "/timing/rank1");
  EXPECT_THROW(f.group("compare/scores"), h5::Error);  // a dataset, not a group
}

TEST_F(H5Test, ExistsHandlesMissingNestedPaths) {
  h5::File f = h5::File::create(path("exists.h5"));
  f.write("a/b/data", std::vector<float>{1.0f});
  EXPECT_TRUE(f.exists("a"));
  EXPECT_TRUE(f.exists("a/b"));
  EXPECT_TRUE(f.exists("a/b/data"));
  EXPECT_TRUE(f.exists("/a/b/data"));
  EXPECT_TRUE(f.exists("a//b/"));
  EXPECT_TRUE(f.exists(""));
  EXPECT_TRUE(f.exists("/"));
  EXPECT_FALSE(f.exists("missing"));
  EXPECT_FALSE(f.exists("missing/deeper/still"));
  EXPECT_FALSE(f.exists("a/missing/x"));
  EXPECT_FALSE(f.exists("a/b/data/child"));  // through a dataset
  const h5::Group b = f.group("a/b");
  EXPECT_TRUE(b.exists("data"));
  EXPECT_FALSE(b.exists("nope/x"));
  EXPECT_TRUE(b.exists("/a"));
}

// ----------------------------------------------------------------------------------------------------------------
// Attributes.

TEST_F(H5Test, AttributesRoundTripOnFileGroupAndDataset) {
  const fs::path p = path("attrs.h5");
  const std::vector<std::int64_t> shape{64, 1, 28, 28};
  const std::vector<double> seconds{0.5, 1e-9, -2.0};
  {
    h5::File f = h5::File::create(p);
    f.attr("program", "cnnpar").attr("nprocs", std::int64_t{4});
    const h5::Group meta = f.create_group("meta");
    meta.attr("seed", std::uint64_t{18446744073709551615ull});
    meta.attr("ratio", 0.125);
    meta.attr("shape", shape);
    meta.attr("seconds", seconds);
    meta.attr("no_values", std::vector<double>{});
    meta.attr("empty_text", "");
    meta.attr("text", std::string("héllo"));
    const h5::Dataset ds = meta.write("t", std::vector<double>{1.0});
    ds.attr("units", "s");
    ds.attr("count", 3);                // int -> int64
    ds.attr("bytes", std::size_t{7});   // unsigned -> uint64
    ds.attr("scale", 1.5f);             // float -> float64
    ds.attr("units", "ms");             // replaces
  }
  h5::File f = h5::File::open_read(p);
  EXPECT_EQ(f.string_attr("program"), "cnnpar");
  EXPECT_EQ(f.int64_attr("nprocs"), 4);
  EXPECT_EQ(f.attr_names(), (std::vector<std::string>{"nprocs", "program"}));
  const h5::Group meta = f.group("meta");
  EXPECT_EQ(meta.uint64_attr("seed"), 18446744073709551615ull);
  EXPECT_EQ(meta.double_attr("ratio"), 0.125);
  EXPECT_EQ(meta.int64_array_attr("shape"), shape);
  EXPECT_EQ(meta.double_array_attr("seconds"), seconds);
  EXPECT_TRUE(meta.double_array_attr("no_values").empty());
  EXPECT_EQ(meta.string_attr("empty_text"), "");
  EXPECT_EQ(meta.string_attr("text"), "héllo");
  EXPECT_EQ(meta.attr_type("shape").name(), "int64");
  EXPECT_EQ(meta.attr_type("seed").name(), "uint64");
  EXPECT_EQ(meta.attr_type("text").type_class, h5::TypeClass::string);

  const h5::Dataset ds = meta.dataset("t");
  EXPECT_EQ(ds.string_attr("units"), "ms");
  EXPECT_EQ(ds.int64_attr("count"), 3);
  EXPECT_EQ(ds.attr_type("count").name(), "int64");
  EXPECT_EQ(ds.uint64_attr("bytes"), 7u);
  EXPECT_EQ(ds.attr_type("bytes").name(), "uint64");
  EXPECT_EQ(ds.double_attr("scale"), 1.5);
  EXPECT_EQ(ds.attr_type("scale").name(), "float64");
  EXPECT_EQ(ds.double_attr("count"), 3.0);                            // numeric conversion on read
  EXPECT_EQ(meta.int64_array_attr("seconds").size(), seconds.size());  // converts too
  EXPECT_TRUE(ds.has_attr("units"));
  EXPECT_FALSE(ds.has_attr("missing"));
}

TEST_F(H5Test, AttributeReadErrorsNameTheAttributeAndObject) {
  h5::File f = h5::File::create(path("attr_err.h5"));
  const h5::Group g = f.create_group("g");
  g.attr("text", "abc").attr("many", std::vector<std::int64_t>{1, 2});
  std::string msg = error_message([&] { (void)g.string_attr("absent"); });
  EXPECT_TRUE(contains(msg, "'absent'")) << msg;
  EXPECT_TRUE(contains(msg, ":/g'")) << msg;
  msg = error_message([&] { (void)g.int64_attr("text"); });
  EXPECT_TRUE(contains(msg, "'text'")) << msg;
  msg = error_message([&] { (void)g.int64_attr("many"); });
  EXPECT_TRUE(contains(msg, "2 elements")) << msg;
  msg = error_message([&] { (void)g.string_attr("many"); });
  EXPECT_TRUE(contains(msg, "int64")) << msg;
}

TEST_F(H5Test, ReadsFixedLengthStringAttribute) {
  // h5py writes numpy bytes as fixed-length strings; the reader must accept those too.
  h5::File f = h5::File::create(path("fixed.h5"));
  const h5::Handle type(H5Tcopy(H5T_C_S1));
  ASSERT_GE(H5Tset_size(type.get(), 8), 0);
  ASSERT_GE(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), 0);
  const h5::Handle space(H5Screate(H5S_SCALAR));
  const h5::Handle attr(H5Acreate2(f.id(), "fixed", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(attr.valid());
  const char value[8] = {'r', 'e', 'l', 'u', '\0', '\0', '\0', '\0'};
  ASSERT_GE(H5Awrite(attr.get(), type.get(), value), 0);
  EXPECT_EQ(f.string_attr("fixed"), "relu");
  EXPECT_FALSE(f.attr_type("fixed").variable_length);
}

// ----------------------------------------------------------------------------------------------------------------
// Files and handles.

TEST_F(H5Test, OpeningMissingFileThrowsWithPath) {
  const fs::path p = path("no/such/file.h5");
  const std::string msg = error_message([&] { (void)h5::File::open_read(p); });
  EXPECT_TRUE(contains(msg, p.string())) << msg;
  EXPECT_TRUE(contains(msg, "open")) << msg;
}

TEST_F(H5Test, OpeningNonHdf5FileThrows) {
  const fs::path p = path("text.h5");
  write_text(p, "not hdf5\n");
  const std::string msg = error_message([&] { (void)h5::File::open_read(p); });
  EXPECT_TRUE(contains(msg, p.string())) << msg;
}

TEST_F(H5Test, CreateRefusesExistingFile) {
  const fs::path p = path("once.h5");
  h5::File::create(p).close();
  const std::string msg = error_message([&] { (void)h5::File::create(p); });
  EXPECT_TRUE(contains(msg, "cannot create file")) << msg;
  EXPECT_TRUE(contains(msg, p.string())) << msg;
}

TEST_F(H5Test, OpeningMissingDatasetNamesFileAndPath) {
  const fs::path p = path("ds.h5");
  h5::File::create(p).close();
  h5::File f = h5::File::open_read(p);
  const std::string msg = error_message([&] { (void)f.dataset("conv1/weight"); });
  EXPECT_TRUE(contains(msg, p.string() + ":/conv1/weight")) << msg;
  EXPECT_TRUE(contains(msg, "cannot open dataset")) << msg;
}

TEST_F(H5Test, ReadOnlyFileRejectsWrites) {
  const fs::path p = path("ro.h5");
  h5::File::create(p).close();
  h5::File f = h5::File::open_read(p);
  EXPECT_THROW(f.write("x", std::vector<double>{1.0}), h5::Error);
  EXPECT_THROW(f.attr("a", 1.0), h5::Error);
}

TEST_F(H5Test, HandlesAreMoveOnlyAndClose) {
  static_assert(!std::is_copy_constructible_v<h5::Handle>);
  static_assert(!std::is_copy_constructible_v<h5::File>);
  static_assert(std::is_nothrow_move_constructible_v<h5::Handle>);
  h5::Handle a(H5Screate(H5S_SCALAR));
  const hid_t id = a.get();
  ASSERT_GT(H5Iis_valid(id), 0);
  h5::Handle b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.get(), id);
  b.reset();
  EXPECT_LE(H5Iis_valid(id), 0);

  h5::File f = h5::File::create(path("move.h5"));
  h5::File g = std::move(f);
  EXPECT_FALSE(f.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(g.valid());
  g.close();
  EXPECT_FALSE(g.valid());
  g.close();  // idempotent
  EXPECT_NO_THROW(h5::File::open_read(path("move.h5")));
}

// ----------------------------------------------------------------------------------------------------------------
// write_atomically.

TEST_F(H5Test, WriteAtomicallyPublishesOnlyAfterSuccess) {
  const fs::path final_path = path("results.h5");
  const fs::path tmp = h5::temp_path_for(final_path);
  EXPECT_EQ(tmp.parent_path(), final_path.parent_path());
  EXPECT_EQ(tmp.filename().string(), ".results.h5.tmp." + std::to_string(::getpid()));
  bool filled = false;
  h5::write_atomically(final_path, false, [&](h5::File& f) {
    EXPECT_FALSE(fs::exists(final_path));
    EXPECT_TRUE(dir_entries().empty());  // built in memory; the reserved file is anonymous (O_TMPFILE)
    f.write("timing/rank0", std::vector<double>{1.0, 2.0}).attr("units", "s");
    filled = true;
  });
  EXPECT_TRUE(filled);
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{"results.h5"}));
  h5::File f = h5::File::open_read(final_path);
  EXPECT_EQ(f.dataset("timing/rank0").read<double>(), (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(f.dataset("timing/rank0").string_attr("units"), "s");
}

TEST_F(H5Test, WriteAtomicallyRemovesTempFileWhenFillThrows) {
  const fs::path final_path = path("results.h5");
  EXPECT_THROW(h5::write_atomically(final_path, false,
                                    [](h5::File& f) {
                                      f.write("partial", std::vector<float>{1.0f});
                                      throw std::logic_error("fill failed");
                                    }),
               std::logic_error);  // the original exception, unchanged
  EXPECT_TRUE(dir_entries().empty());

  // An HDF5 failure inside fill is cleaned up the same way, and an existing file survives it with force.
  h5::write_atomically(final_path, false, [](h5::File& f) { f.attr("version", std::int64_t{1}); });
  EXPECT_THROW(h5::write_atomically(final_path, true, [](h5::File& f) { (void)f.dataset("missing"); }), h5::Error);
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{"results.h5"}));
  EXPECT_EQ(h5::File::open_read(final_path).int64_attr("version"), 1);
}

TEST_F(H5Test, WriteAtomicallyRefusesToOverwriteWithoutForce) {
  const fs::path final_path = path("x.h5");
  h5::write_atomically(final_path, false, [](h5::File& f) { f.attr("version", std::int64_t{1}); });
  bool called = false;
  const std::string msg = error_message([&] {
    h5::write_atomically(final_path, false, [&](h5::File&) { called = true; });
  });
  EXPECT_EQ(msg, "output file '" + final_path.string() + "' exists; pass --force to overwrite it");
  EXPECT_FALSE(called);
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{"x.h5"}));
  EXPECT_EQ(h5::File::open_read(final_path).int64_attr("version"), 1);

  // Anything at the path counts, not only HDF5 files.
  const fs::path text = path("notes.txt");
  write_text(text, "");
  EXPECT_THROW(h5::write_atomically(text, false, [](h5::File&) {}), h5::Error);
}

TEST_F(H5Test, WriteAtomicallyOverwritesWithForce) {
  const fs::path final_path = path("x.h5");
  h5::write_atomically(final_path, false, [](h5::File& f) {
    f.attr("version", std::int64_t{1});
    f.write("old", std::vector<double>{1.0});
  });
  h5::write_atomically(final_path, true, [](h5::File& f) { f.attr("version", std::int64_t{2}); });
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{"x.h5"}));
  h5::File f = h5::File::open_read(final_path);
  EXPECT_EQ(f.int64_attr("version"), 2);
  EXPECT_FALSE(f.exists("old"));
  // force with no existing file is fine too.
  h5::write_atomically(path("new.h5"), true, [](h5::File&) {});
  EXPECT_TRUE(fs::exists(path("new.h5")));
}

TEST_F(H5Test, WriteAtomicallyLeavesAForeignTempFileAlone) {
  const fs::path final_path = path("r.h5");
  const fs::path tmp = h5::temp_path_for(final_path);
  h5::File::create(tmp).close();  // e.g. left over by a crashed writer with the same pid
  // Without --force the anonymous file is linked straight to the final name: the stray file is not in the way.
  h5::write_atomically(final_path, false, [](h5::File& f) { f.attr("version", std::int64_t{1}); });
  EXPECT_TRUE(fs::exists(final_path));
  EXPECT_TRUE(fs::exists(tmp));
  // With --force the new file needs that name for the rename over the old one: a clear error, both files kept.
  const std::string msg = error_message([&] { h5::write_atomically(final_path, true, [](h5::File&) {}); });
  EXPECT_TRUE(contains(msg, final_path.string())) << msg;
  EXPECT_TRUE(fs::exists(tmp));
  EXPECT_EQ(h5::File::open_read(final_path).int64_attr("version"), 1);
}

TEST_F(H5Test, WriteAtomicallyUsesTheReservationMadeBeforeTheRun) {
  const fs::path final_path = path("r.h5");
  auto reserved = OutputFile::reserve(final_path, false);
  ASSERT_EQ(OutputFile::reserved_for(final_path), reserved.get());
  h5::write_atomically(final_path, false, [](h5::File& f) { f.attr("version", std::int64_t{3}); });
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{"r.h5"}));
  EXPECT_EQ(h5::File::open_read(final_path).int64_attr("version"), 3);
  reserved.reset();  // committed: the destructor removes nothing
  EXPECT_EQ(dir_entries(), (std::vector<std::string>{"r.h5"}));
}

}  // namespace
