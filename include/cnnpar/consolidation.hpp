// Consolidation: how the slices that ranks computed become whole tensors on every rank. This interface and its
// implementations (consolidation.cpp) are the only code that moves activations between ranks; the kind is chosen in
// one place, make_consolidation, from the command line.
//
// The consolidation object owns the activation buffers: layer l writes its slice of output l straight into
// tensor(l) at the slice's offset, and consolidate(l) makes the whole tensor visible to every rank. Owning the
// buffers is what lets a shared-memory implementation hand out window memory instead of private vectors.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "cnnpar/partition.hpp"
#include "cnnpar/plan.hpp"

namespace cnnpar {

// One collective call as this rank saw it: entry and exit on this rank's clock (see records.hpp), and the bytes it
// asked MPI to move for this rank: received = the other ranks' slices, sent = its own slice times (P - 1) (what
// an Allgatherv must deliver, whatever algorithm the library picks).
struct ConsolidationSample {
  double enter_s = 0, exit_s = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;
};

class Consolidation {
 public:
  virtual ~Consolidation() = default;
  virtual ConsolidationKind kind() const = 0;
  // The input activation: filled by the root before broadcast_input.
  virtual std::span<float> input() = 0;
  // Output activation of layer `layer`, whole-tensor sized.
  virtual std::span<float> tensor(std::size_t layer) = 0;
  // Copies the root's input() to every rank.
  virtual ConsolidationSample broadcast_input(int root) = 0;
  // Every rank has written its slice of tensor(layer); afterwards every rank holds all of it.
  virtual ConsolidationSample consolidate(std::size_t layer) = 0;
};

// `clock`: the clock timestamps are taken with (steady_seconds). `boundaries[l]` describes layer l's output split.
std::unique_ptr<Consolidation> make_consolidation(ConsolidationKind kind, MPI_Comm comm, std::size_t input_elems,
                                                  std::vector<BoundaryLayout> boundaries, double (*clock)());

}  // namespace cnnpar
