// The distributed forward pass: every rank computes its slice of each layer with the same kernels as the serial
// reference, and the consolidation layer makes each layer's output whole on every rank before the next layer.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "cnnpar/consolidation.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/records.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

// The split of every layer's output over `ranks` (block partition of its items; see network.hpp, partition.hpp).
std::vector<BoundaryLayout> make_boundaries(const std::vector<LayerInfo>& layers, std::size_t batch,
                                            std::size_t ranks);

// This rank's weight rows of every layer, initialised from `seed` (weights.hpp).
std::vector<LayerWeights> init_own_weights(const std::vector<LayerInfo>& layers,
                                           const std::vector<BoundaryLayout>& boundaries, std::size_t rank,
                                           std::uint64_t seed);

class DistributedForward {
 public:
  DistributedForward(const std::vector<LayerInfo>& layers, std::size_t batch, std::vector<LayerWeights> own_weights,
                     Consolidation& consolidation);

  // One forward pass: the root's input() is broadcast, then each layer computes its slice into the consolidation's
  // buffer and consolidates. Timestamps and bytes go to `record` at `iteration` (pass record = nullptr for warm-up).
  void run(std::size_t iteration, RankRecord* record);

  std::span<const float> output();  // final activation [O][B], whole, after run()
  std::size_t weight_bytes(std::size_t layer) const { return weights_.at(layer).bytes(); }

 private:
  const std::vector<LayerInfo>& layers_;
  std::size_t batch_;
  std::vector<LayerWeights> weights_;
  Consolidation& consolidation_;
};

}  // namespace cnnpar
