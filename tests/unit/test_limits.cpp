// Sizes before allocation (limits.hpp) and the reserved output file (output_file.hpp).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "cnnpar/limits.hpp"
#include "cnnpar/output_file.hpp"

using namespace cnnpar;
namespace fs = std::filesystem;

namespace {

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Bytes, SaturateInsteadOfWrapping) {
  EXPECT_EQ((Bytes{6} * 7).value, 42u);
  EXPECT_TRUE((Bytes{UINT64_MAX / 2 + 1} * 2).overflow);
  EXPECT_TRUE((Bytes{UINT64_MAX} + Bytes{1}).overflow);
  EXPECT_TRUE(((Bytes{UINT64_MAX} * 2) * 0).value == 0);
  EXPECT_TRUE(Bytes{UINT64_MAX} * 2 > UINT64_MAX);
  EXPECT_EQ(to_string(Bytes{1234567}), "1,234,567 B");
  EXPECT_EQ(to_string(Bytes{999}), "999 B");
  EXPECT_TRUE(has(to_string(Bytes{UINT64_MAX} * 3), "more than 18,446,744,073,709,551,615 B"));
}

TEST(Limits, HugeFiltersOverflowOrExceedMpiCountsWithAMessageNamingThem) {
  Options o;
  o.filters = 100000000;
  std::string msg = error_of([&] { check_sizes(o, describe(seed_network(28, 28, o.filters, 128)), 1); });
  EXPECT_TRUE(has(msg, "--filters 100000000")) << msg;
  EXPECT_TRUE(has(msg, "67,600,000,000 floats")) << msg;
  EXPECT_TRUE(has(msg, "use a smaller network")) << msg;  // not "a smaller batch" at B = 1
  o.filters = std::size_t{1} << 62;
  msg = error_of([&] { check_sizes(o, describe(seed_network(28, 28, o.filters, 128)), 1); });
  EXPECT_TRUE(has(msg, "overflow")) << msg;
  EXPECT_TRUE(has(msg, "more than 18,446,744,073,709,551,615 B")) << msg;
  // A batch that alone crosses the int limit is named as the cause.
  Options b;
  msg = error_of([&] { check_sizes(b, describe(seed_network()), 200000); });
  EXPECT_TRUE(has(msg, "--batch 200000")) << msg;
  EXPECT_NO_THROW(check_sizes(Options{}, describe(seed_network()), 64));
}

TEST(Limits, MemoryBudgetNamesTheOptionAndTheBytes) {
  Options o;
  o.iterations = 1000000000000;
  const auto layers = describe(seed_network());
  const MemoryBudget budget{1u << 30, "test budget"};
  const std::string msg = error_of([&] { check_memory(job_memory(o, layers, 1, 3, 1), budget); });
  EXPECT_TRUE(has(msg, "--iterations 1000000000000 needs ")) << msg;
  EXPECT_TRUE(has(msg, "of timing records")) << msg;
  EXPECT_TRUE(has(msg, "1,073,741,824 B per rank (test budget")) << msg;
  EXPECT_NO_THROW(check_memory(job_memory(Options{}, layers, 64, 4, 9), budget));
}

// The communication matrices grow with P^2 per rank on rank 0 (every rank's rows gathered, then assembled for the
// file): at P = 1,024 with --compare's nine combinations they are the largest need, and a budget they exceed names
// them and the rank count.
TEST(Limits, CommunicationMatricesCountAtLargeP) {
  const auto layers = describe(seed_network());  // 4 layers: 5 stages
  Options o;
  o.compare = true;
  const auto needs = job_memory(o, layers, 1, 1024, 9);
  const auto it = std::find_if(needs.begin(), needs.end(),
                               [](const MemoryNeed& n) { return n.what == "communication matrices"; });
  ASSERT_NE(it, needs.end());
  EXPECT_EQ(it->bytes.value, std::uint64_t{5} * 1024 * 8 * 2 * 9 * (3 * 1024 + 1));  // 2.3 GB
  EXPECT_EQ(it->options, "1024 ranks with --compare");
  const std::string msg = error_of([&] { check_memory(needs, MemoryBudget{1u << 30, "test budget"}); });
  EXPECT_TRUE(has(msg, "1024 ranks with --compare needs ")) << msg;
  EXPECT_TRUE(has(msg, "of communication matrices on rank 0")) << msg;
}

TEST(Limits, BudgetComesFromTheMachineOrTheEnvironment) {
  const MemoryBudget machine = memory_budget(2);
  EXPECT_GT(machine.bytes, 0u);
  EXPECT_TRUE(has(machine.source, "2 ranks")) << machine.source;
  ::setenv("CNNPAR_MEMORY_BUDGET", "12345", 1);
  EXPECT_EQ(memory_budget(2).bytes, 12345u);
  ::unsetenv("CNNPAR_MEMORY_BUDGET");
}

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("cnnpar_test_out_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

TEST_F(OutputFileTest, ReservationIsInvisibleAndRemovedUnlessCommitted) {
  {
    auto r = OutputFile::reserve(dir_ / "r.h5", false);
    EXPECT_TRUE(r->anonymous());  // ext4 / tmpfs have O_TMPFILE
    EXPECT_TRUE(entries().empty());
  }
  EXPECT_TRUE(entries().empty());
  auto r = OutputFile::reserve(dir_ / "r.h5", false);
  const std::uint8_t bytes[] = {1, 2, 3};
  r->commit(bytes);
  EXPECT_EQ(entries(), (std::vector<std::string>{"r.h5"}));
  EXPECT_EQ(fs::file_size(dir_ / "r.h5"), 3u);
}

TEST_F(OutputFileTest, RefusesUnwritablePlacesExistingFilesAndInputs) {
  EXPECT_TRUE(has(error_of([&] { OutputFile::reserve("/proc/x.h5", false); }), "cannot create a file in '/proc'"));
  EXPECT_TRUE(has(error_of([&] { OutputFile::reserve(dir_ / "missing" / "x.h5", false); }), "No such file"));
  std::ofstream(dir_ / "in.idx") << "data";
  EXPECT_TRUE(has(error_of([&] { OutputFile::reserve(dir_ / "in.idx", false); }), "exists; pass --force"));
  const std::string msg = error_of([&] { OutputFile::reserve(dir_ / "in.idx", true, {{"--images", (dir_ / "in.idx").string()}}); });
  EXPECT_TRUE(has(msg, "is the --images file")) << msg;
  EXPECT_TRUE(has(msg, "even with --force")) << msg;
  EXPECT_EQ(entries(), (std::vector<std::string>{"in.idx"}));
}

TEST_F(OutputFileTest, ForceReplacesAndAFileAppearingMeanwhileIsKept) {
  std::ofstream(dir_ / "r.h5") << "old";
  auto r = OutputFile::reserve(dir_ / "r.h5", true);
  const std::uint8_t bytes[] = {9};
  r->commit(bytes);
  EXPECT_EQ(fs::file_size(dir_ / "r.h5"), 1u);
  EXPECT_EQ(entries(), (std::vector<std::string>{"r.h5"}));

  auto late = OutputFile::reserve(dir_ / "late.h5", false);
  std::ofstream(dir_ / "late.h5") << "someone else's";
  EXPECT_TRUE(has(error_of([&] { late->commit(bytes); }), "appeared during the run"));
  EXPECT_EQ(fs::file_size(dir_ / "late.h5"), 14u);
  EXPECT_EQ(entries(), (std::vector<std::string>{"late.h5", "r.h5"}));
}

TEST_F(OutputFileTest, OneReservationAtATime) {
  auto r = OutputFile::reserve(dir_ / "a.h5", false);
  EXPECT_TRUE(has(error_of([&] { OutputFile::reserve(dir_ / "b.h5", false); }), "already reserved"));
}

}  // namespace
