// The raw-MPI runtime (see mpi_runtime.hpp): the twin of mpi_runtime.cpp for builds that cannot link Boost.MPI,
// chosen at build time (CMake option CNNPAR_SMPI, SimGrid's SMPI). Same interface, plain MPI calls only.
//
// What differs from the Boost.MPI module, and why:
//  - RankRecord goes to rank 0 as one byte buffer per rank, packed field by field (Packer below; every vector carries
//    its length), gathered with MPI_Gather of the sizes and MPI_Gatherv of the buffers. A field added to RankRecord
//    must be added to pack() and unpack() here and to serialize() in mpi_runtime.cpp; the SMPI test compares the
//    gathered records with the results file, so a forgotten field shows up as zeros there.
//  - Under SMPI every rank is a thread of one simulator process sharing one simulated clock, so steady_seconds() is
//    MPI_Wtime() (the simulated time; the kernels' real running time is injected into it by SMPI's benchmarking),
//    the clock offset is 0 by construction, the host name is the simulated host's, and idle_barrier is a plain
//    barrier (a simulated barrier steals no CPU; a usleep would add simulated time).
#include <mpi.h>

#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "cnnpar/mpi_runtime.hpp"

namespace cnnpar {

double steady_seconds() { return MPI_Wtime(); }

namespace {

// Appends plain values and length-prefixed vectors and strings to a byte buffer; Unpacker reads them back in order.
class Packer {
 public:
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const char*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof v);
  }
  template <class T>
  void put(const std::vector<T>& v) {
    put(static_cast<std::uint64_t>(v.size()));
    const auto* p = reinterpret_cast<const char*>(v.data());
    bytes_.insert(bytes_.end(), p, p + v.size() * sizeof(T));
  }
  void put(const std::string& s) { put(std::vector<char>(s.begin(), s.end())); }
  const std::vector<char>& bytes() const { return bytes_; }

 private:
  std::vector<char> bytes_;
};

class Unpacker {
 public:
  Unpacker(const char* data, std::size_t size) : p_(data), end_(data + size) {}
  template <class T>
  void get(T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    take(&v, sizeof v);
  }
  template <class T>
  void get(std::vector<T>& v) {
    std::uint64_t n = 0;
    get(n);
    v.resize(n);
    take(v.data(), n * sizeof(T));
  }
  void get(std::string& s) {
    std::vector<char> chars;
    get(chars);
    s.assign(chars.begin(), chars.end());
  }
  bool done() const { return p_ == end_; }

 private:
  void take(void* out, std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) throw std::runtime_error("gather: truncated record");
    if (n > 0) std::memcpy(out, p_, n);
    p_ += n;
  }
  const char* p_;
  const char* end_;
};

// Every field of RankRecord, in one order for both directions.
template <class Archive, class Record>
void fields(Archive& a, Record& r) {
  auto& ar = a;
  auto each = [&ar](auto&... f) { (ar(f), ...); };
  each(r.rank, r.node, r.host, r.binding, r.clock_offset_s, r.index.iterations, r.index.stages, r.begin_s, r.end_s,
       r.forward_s, r.forward_start_s, r.bytes_sent, r.bytes_received, r.bytes_read_in_place, r.weight_bytes, r.collective,
       r.sent_to, r.read_from, r.activation_bytes, r.output_fnv1a64);
}

std::vector<char> pack(const RankRecord& r) {
  Packer p;
  auto put = [&p](const auto& f) { p.put(f); };
  fields(put, r);
  return p.bytes();
}

RankRecord unpack(const char* data, std::size_t size) {
  RankRecord r;
  Unpacker u(data, size);
  auto get = [&u](auto& f) { u.get(f); };
  fields(get, r);
  if (!u.done()) throw std::runtime_error("gather: record longer than its fields");
  return r;
}

// Rank 0 receives each rank's `mine` (any length), concatenated in rank order, and where each part begins.
std::vector<char> gather_bytes(const std::vector<char>& mine, MPI_Comm comm, std::vector<int>& displs) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const int n = static_cast<int>(mine.size());
  std::vector<int> counts(rank == 0 ? static_cast<std::size_t>(size) : 0);
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm);
  displs.assign(counts.size() + (rank == 0 ? 1 : 0), 0);
  for (std::size_t q = 0; q < counts.size(); ++q) displs[q + 1] = displs[q] + counts[q];
  std::vector<char> all(rank == 0 ? static_cast<std::size_t>(displs.back()) : 0);
  MPI_Gatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, 0, comm);
  return all;
}

}  // namespace

struct Runtime::Impl {
  int rank = 0, size = 1;
};

Runtime::Runtime(int& argc, char**& argv) : impl_(std::make_unique<Impl>()) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &impl_->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &impl_->size);
}

Runtime::~Runtime() { MPI_Finalize(); }

int Runtime::rank() const { return impl_->rank; }
int Runtime::size() const { return impl_->size; }
MPI_Comm Runtime::comm() const { return MPI_COMM_WORLD; }

bool Runtime::all_ok(bool local_ok) const {
  int mine = local_ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm());
  return all == 1;
}

void Runtime::barrier() const { MPI_Barrier(comm()); }

void Runtime::idle_barrier() const { MPI_Barrier(comm()); }

void Runtime::broadcast(std::string& value, int root) const {
  unsigned long long n = value.size();
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, comm());
  value.resize(n);
  // Never a 0-count broadcast: SimGrid 3.32's Open MPI decision rules divide by the message size (SIGFPE at P = 2).
  if (n > 0) MPI_Bcast(value.data(), static_cast<int>(n), MPI_CHAR, root, comm());
}

void Runtime::broadcast(std::vector<std::uint64_t>& values, int root) const {
  static_assert(sizeof(unsigned long long) == sizeof(std::uint64_t));
  unsigned long long n = values.size();
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, comm());
  values.resize(n);
  if (n > 0) MPI_Bcast(values.data(), static_cast<int>(n), MPI_UNSIGNED_LONG_LONG, root, comm());
}

std::vector<RankRecord> Runtime::gather(const RankRecord& mine) const {
  std::vector<int> displs;
  const std::vector<char> all = gather_bytes(pack(mine), comm(), displs);
  std::vector<RankRecord> records;
  for (std::size_t q = 0; q + 1 < displs.size(); ++q)
    records.push_back(unpack(all.data() + displs[q], static_cast<std::size_t>(displs[q + 1] - displs[q])));
  return records;
}

std::vector<double> Runtime::gather(const std::vector<double>& mine) const {
  std::vector<int> displs;
  const auto* p = reinterpret_cast<const char*>(mine.data());
  const std::vector<char> all = gather_bytes(std::vector<char>(p, p + mine.size() * sizeof(double)), comm(), displs);
  std::vector<double> values(all.size() / sizeof(double));
  if (!all.empty()) std::memcpy(values.data(), all.data(), all.size());
  return values;
}

// One simulated clock for every rank: nothing to estimate.
double Runtime::estimate_clock_offset() const { return 0.0; }

std::string Runtime::host_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  return std::string(name, static_cast<std::size_t>(len));
}

std::string Runtime::cpu_binding() { return "simulated"; }

}  // namespace cnnpar
