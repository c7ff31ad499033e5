// The PMPI interposition layer (see comm_log.hpp). The MPI_* functions defined here take precedence over the MPI
// library's (Open MPI's MPI_* are weak aliases of its PMPI_*; under SMPI the program is loaded with its own symbols
// first), so every such call in the program, ours or Boost.MPI's, passes through them; they count only while a pass
// is being recorded.
#include "cnnpar/comm_log.hpp"

#include <map>

namespace cnnpar::comm_log {
namespace {

struct State {
  bool on = false;
  std::size_t stage = 0, world = 0;
  std::vector<std::uint64_t> sent;                    // [stage * world + peer]
  std::map<MPI_Comm, std::vector<int>> world_rank_of;  // per communicator: its ranks' world ranks
};
State& state() {
  static State s;
  return s;
}

const std::vector<int>& world_ranks(MPI_Comm comm) {
  auto& cache = state().world_rank_of;
  if (auto it = cache.find(comm); it != cache.end()) return it->second;
  MPI_Group group, world_group;
  PMPI_Comm_group(comm, &group);
  PMPI_Comm_group(MPI_COMM_WORLD, &world_group);
  int n = 0;
  PMPI_Group_size(group, &n);
  std::vector<int> ranks(static_cast<std::size_t>(n)), out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ranks[static_cast<std::size_t>(i)] = i;
  PMPI_Group_translate_ranks(group, n, ranks.data(), world_group, out.data());
  PMPI_Group_free(&group);
  PMPI_Group_free(&world_group);
  return cache.emplace(comm, std::move(out)).first->second;
}

std::uint64_t bytes(int count, MPI_Datatype type) {
  int size = 0;
  PMPI_Type_size(type, &size);
  return static_cast<std::uint64_t>(count) * static_cast<std::uint64_t>(size);
}

void add(MPI_Comm comm, int peer, std::uint64_t n) {
  State& s = state();
  if (!s.on || n == 0) return;
  const auto w = static_cast<std::size_t>(world_ranks(comm)[static_cast<std::size_t>(peer)]);
  s.sent[s.stage * s.world + w] += n;
}

int rank_in(MPI_Comm comm) {
  int r = 0;
  PMPI_Comm_rank(comm, &r);
  return r;
}
int size_of(MPI_Comm comm) {
  int n = 0;
  PMPI_Comm_size(comm, &n);
  return n;
}

}  // namespace

void begin(std::size_t stages) {
  State& s = state();
  int world = 1;
  PMPI_Comm_size(MPI_COMM_WORLD, &world);
  s.world = static_cast<std::size_t>(world);
  s.sent.assign(stages * s.world, 0);
  s.world_rank_of.clear();  // communicators may have been freed and their handles reused since the last pass
  s.stage = 0;
  s.on = true;
}

void stage(std::size_t st) { state().stage = st; }

std::vector<std::uint64_t> end() {
  State& s = state();
  s.on = false;
  return s.sent;
}

}  // namespace cnnpar::comm_log

using cnnpar::comm_log::add;
using cnnpar::comm_log::bytes;
using cnnpar::comm_log::rank_in;
using cnnpar::comm_log::size_of;
using cnnpar::comm_log::state;

extern "C" {

int MPI_Send(const void* buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm) {
  if (state().on && dest != MPI_PROC_NULL) add(comm, dest, bytes(count, type));
  return PMPI_Send(buf, count, type, dest, tag, comm);
}

int MPI_Isend(const void* buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm, MPI_Request* req) {
  if (state().on && dest != MPI_PROC_NULL) add(comm, dest, bytes(count, type));
  return PMPI_Isend(buf, count, type, dest, tag, comm, req);
}

int MPI_Bcast(void* buf, int count, MPI_Datatype type, int root, MPI_Comm comm) {
  if (state().on && rank_in(comm) == root) {
    const std::uint64_t n = bytes(count, type);
    for (int q = 0, P = size_of(comm); q < P; ++q)
      if (q != root) add(comm, q, n);
  }
  return PMPI_Bcast(buf, count, type, root, comm);
}

int MPI_Allgatherv(const void* sendbuf, int sendcount, MPI_Datatype sendtype, void* recvbuf, const int* recvcounts,
                   const int* displs, MPI_Datatype recvtype, MPI_Comm comm) {
  if (state().on) {
    const int me = rank_in(comm);
    const std::uint64_t n = sendbuf == MPI_IN_PLACE ? bytes(recvcounts[me], recvtype) : bytes(sendcount, sendtype);
    for (int q = 0, P = size_of(comm); q < P; ++q)
      if (q != me) add(comm, q, n);
  }
  return PMPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm);
}

int MPI_Reduce_scatter(const void* sendbuf, void* recvbuf, const int* recvcounts, MPI_Datatype type, MPI_Op op,
                       MPI_Comm comm) {
  if (state().on) {
    const int me = rank_in(comm);
    for (int q = 0, P = size_of(comm); q < P; ++q)
      if (q != me) add(comm, q, bytes(recvcounts[q], type));
  }
  return PMPI_Reduce_scatter(sendbuf, recvbuf, recvcounts, type, op, comm);
}

}  // extern "C"
