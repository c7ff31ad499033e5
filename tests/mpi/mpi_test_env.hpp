// The MPI runtime shared by the MPI tests (set up in mpi_test_main.cpp).
#pragma once

#include "cnnpar/mpi_runtime.hpp"

namespace cnnpar::testing {
extern Runtime* runtime;
}
