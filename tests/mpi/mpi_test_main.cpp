// GoogleTest main for tests run under mpiexec: every rank runs every test; rank 0 prints; the exit status is
// non-zero on every rank when any test failed on any rank.
#include <gtest/gtest.h>

#include "cnnpar/mpi_runtime.hpp"
#include "mpi_test_env.hpp"

namespace cnnpar::testing {
Runtime* runtime = nullptr;
}

int main(int argc, char** argv) {
  cnnpar::Runtime rt(argc, argv);
  cnnpar::testing::runtime = &rt;
  ::testing::InitGoogleTest(&argc, argv);
  if (rt.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const bool ok = RUN_ALL_TESTS() == 0;
  const bool all_ok = rt.all_ok(ok);
  if (!ok) std::fprintf(stderr, "rank %d: tests failed\n", rt.rank());
  return all_ok ? 0 : 1;
}
