// The Boost.MPI runtime (see mpi_runtime.hpp).
#include "cnnpar/mpi_runtime.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <functional>
#include <limits>

// Records travel to rank 0 as Boost.Serialization archives; the record type itself stays plain (records.hpp).
namespace boost::serialization {
template <class Archive>
void serialize(Archive& ar, cnnpar::RankRecord& r, const unsigned /*version*/) {
  ar & r.rank & r.node & r.host & r.binding & r.clock_offset_s & r.index.iterations & r.index.stages & r.begin_s &
      r.end_s & r.forward_s & r.forward_start_s & r.bytes_sent & r.bytes_received & r.bytes_read_in_place & r.weight_bytes & r.collective &
      r.sent_to & r.read_from & r.activation_bytes & r.output_fnv1a64;
}
}  // namespace boost::serialization

namespace cnnpar {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Runtime::Impl {
  boost::mpi::environment env;
  boost::mpi::communicator world;
  Impl(int& argc, char**& argv) : env(argc, argv, /*abort_on_exception=*/true) {}
};

Runtime::Runtime(int& argc, char**& argv) : impl_(std::make_unique<Impl>(argc, argv)) {}

Runtime::~Runtime() = default;

int Runtime::rank() const { return impl_->world.rank(); }
int Runtime::size() const { return impl_->world.size(); }
MPI_Comm Runtime::comm() const { return MPI_Comm(impl_->world); }

bool Runtime::all_ok(bool local_ok) const {
  return boost::mpi::all_reduce(impl_->world, local_ok, std::logical_and<bool>());
}

void Runtime::barrier() const { impl_->world.barrier(); }

void Runtime::idle_barrier() const {
  // Open MPI's blocking barrier spins; on an oversubscribed node the spinning ranks would steal the CPU from the rank
  // they are waiting for (rank 0 timing the serial reference), so poll a non-blocking barrier and sleep between polls.
  MPI_Request request;
  MPI_Ibarrier(comm(), &request);
  int done = 0;
  for (MPI_Test(&request, &done, MPI_STATUS_IGNORE); !done; MPI_Test(&request, &done, MPI_STATUS_IGNORE))
    usleep(500);
}

void Runtime::broadcast(std::string& value, int root) const { boost::mpi::broadcast(impl_->world, value, root); }

void Runtime::broadcast(std::vector<std::uint64_t>& values, int root) const {
  boost::mpi::broadcast(impl_->world, values, root);
}

std::vector<RankRecord> Runtime::gather(const RankRecord& mine) const {
  std::vector<RankRecord> all;
  boost::mpi::gather(impl_->world, mine, all, 0);
  return all;
}

std::vector<double> Runtime::gather(const std::vector<double>& mine) const {
  std::vector<std::vector<double>> parts;
  boost::mpi::gather(impl_->world, mine, parts, 0);
  std::vector<double> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

double Runtime::estimate_clock_offset() const {
  // Rank 0 ping-pongs with each rank in turn. For the sample with the smallest round trip, rank 0's clock at the
  // midpoint is the best estimate of "now" on rank 0 when the peer stamped its reply (error <= rtt/2).
  constexpr int kRounds = 16;
  const auto& world = impl_->world;
  double offset = 0.0;
  for (int peer = 1; peer < world.size(); ++peer) {
    if (rank() == 0) {
      double best_rtt = std::numeric_limits<double>::infinity(), best_offset = 0.0;
      for (int i = 0; i < kRounds; ++i) {
        const double t0 = steady_seconds();
        world.send(peer, 0, t0);
        double peer_time = 0.0;
        world.recv(peer, 0, peer_time);
        const double t1 = steady_seconds();
        if (t1 - t0 < best_rtt) best_rtt = t1 - t0, best_offset = 0.5 * (t0 + t1) - peer_time;
      }
      world.send(peer, 1, best_offset);
    } else if (rank() == peer) {
      for (int i = 0; i < kRounds; ++i) {
        double t0 = 0.0;
        world.recv(0, 0, t0);
        world.send(0, 0, steady_seconds());
      }
      world.recv(0, 1, offset);
    }
  }
  return offset;
}

std::string Runtime::host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

std::string Runtime::cpu_binding() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "unknown";
  std::string out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    int last = cpu;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
    if (!out.empty()) out += ",";
    out += last == cpu ? std::to_string(cpu) : std::to_string(cpu) + "-" + std::to_string(last);
    cpu = last;
  }
  return out;
}

}  // namespace cnnpar
