// The MPI runtime: start-up and shutdown, agreeing on errors, small broadcasts, the start-up clock alignment, and
// gathering records to rank 0 (which ranks share a node is the consolidation layer's Topology). This is the one
// module built on Boost.MPI; its interface has no Boost types, so a
// build that cannot link Boost.MPI (SimGrid's SMPI) can swap in a raw-MPI twin of mpi_runtime.cpp.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnpar/records.hpp"

namespace cnnpar {

// This process's steady clock in seconds: the clock every timestamp in the records uses.
double steady_seconds();

class Runtime {
 public:
  Runtime(int& argc, char**& argv);  // MPI_Init (through boost::mpi::environment)
  ~Runtime();                        // MPI_Finalize
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  int rank() const;
  int size() const;
  MPI_Comm comm() const;  // the world communicator, for the consolidation layer

  // Collective: true on every rank iff `local_ok` is true on every rank.
  bool all_ok(bool local_ok) const;
  void barrier() const;
  // A barrier that sleeps while it waits instead of spinning (for long waits on an oversubscribed node).
  void idle_barrier() const;
  // Collective: the root's value on every rank.
  void broadcast(std::string& value, int root) const;
  void broadcast(std::vector<std::uint64_t>& values, int root) const;

  // Collective: rank 0 receives every rank's record, in rank order; the others receive an empty vector.
  std::vector<RankRecord> gather(const RankRecord& mine) const;
  // Collective: a vector<double> from every rank to rank 0, concatenated in rank order.
  std::vector<double> gather(const std::vector<double>& mine) const;

  // Collective: seconds to add to this rank's steady_seconds() to read rank 0's clock.
  double estimate_clock_offset() const;

  static std::string host_name();
  static std::string cpu_binding();  // "0-1" style list from sched_getaffinity, or "unknown"
  static std::string library_version();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cnnpar
