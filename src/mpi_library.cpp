// What both runtimes (mpi_runtime.cpp with Boost.MPI, mpi_runtime_raw.cpp for SMPI) say alike, in plain MPI: the
// MPI library's version string, for the run header and /meta.
#include <mpi.h>

#include "cnnpar/mpi_runtime.hpp"

namespace cnnpar {

std::string Runtime::library_version() {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(version, &len);
  std::string s(version, static_cast<std::size_t>(len));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace cnnpar
