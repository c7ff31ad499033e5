// Consolidation implementations (see consolidation.hpp). With mpi_runtime.cpp, the only code that calls MPI.
#include "cnnpar/consolidation.hpp"

#include <stdexcept>

namespace cnnpar {

namespace {

// MPI_Allgatherv in place: the seed's "consolidate at each layer boundary" on distributed memory.
// Every rank holds a private copy of every full tensor. Because the activation layout makes each rank's slice one
// contiguous range (kernels.hpp), MPI_IN_PLACE works directly on the layer's output buffer: no pack, no unpack.
// Cost: each rank receives s*(N - n_r) bytes per boundary; with the usual algorithms (recursive doubling / Bruck /
// ring) that is lg P or P-1 latencies plus (P-1)/P of the tensor through each rank's link.
class AllgathervConsolidation final : public Consolidation {
 public:
  AllgathervConsolidation(MPI_Comm comm, std::size_t input_elems, std::vector<BoundaryLayout> boundaries,
                          double (*clock)())
      : comm_(comm), clock_(clock), boundaries_(std::move(boundaries)), input_(input_elems) {
    MPI_Comm_rank(comm_, &rank_);
    int size = 0;
    MPI_Comm_size(comm_, &size);
    for (const BoundaryLayout& b : boundaries_) {
      if (b.ranks() != static_cast<std::size_t>(size))
        throw std::logic_error("consolidation: boundary layout made for another rank count");
      tensors_.emplace_back(b.total_elems());
    }
  }

  ConsolidationKind kind() const override { return ConsolidationKind::allgatherv; }
  std::span<float> input() override { return input_; }
  std::span<float> tensor(std::size_t layer) override { return tensors_.at(layer); }

  ConsolidationSample broadcast_input(int root) override {
    ConsolidationSample s;
    int size = 0;
    MPI_Comm_size(comm_, &size);
    s.bytes_received = rank_ == root ? 0 : input_.size() * sizeof(float);
    s.bytes_sent = rank_ == root ? input_.size() * sizeof(float) * static_cast<std::uint64_t>(size - 1) : 0;
    s.enter_s = clock_();
    MPI_Bcast(input_.data(), static_cast<int>(input_.size()), MPI_FLOAT, root, comm_);
    s.exit_s = clock_();
    return s;
  }

  ConsolidationSample consolidate(std::size_t layer) override {
    const BoundaryLayout& b = boundaries_.at(layer);
    ConsolidationSample s;
    s.bytes_received = b.elems_received(static_cast<std::size_t>(rank_)) * sizeof(float);
    s.bytes_sent = b.elems_sent(static_cast<std::size_t>(rank_)) * sizeof(float);
    s.enter_s = clock_();
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, tensors_[layer].data(), b.counts.data(), b.displs.data(),
                   MPI_FLOAT, comm_);
    s.exit_s = clock_();
    return s;
  }

 private:
  MPI_Comm comm_;
  double (*clock_)();
  int rank_ = 0;
  std::vector<BoundaryLayout> boundaries_;
  std::vector<float> input_;
  std::vector<std::vector<float>> tensors_;
};

}  // namespace

std::unique_ptr<Consolidation> make_consolidation(ConsolidationKind kind, MPI_Comm comm, std::size_t input_elems,
                                                  std::vector<BoundaryLayout> boundaries, double (*clock)()) {
  switch (kind) {
    case ConsolidationKind::allgatherv:
      return std::make_unique<AllgathervConsolidation>(comm, input_elems, std::move(boundaries), clock);
  }
  throw std::invalid_argument("unknown consolidation kind");
}

}  // namespace cnnpar
