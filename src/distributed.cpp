// The distributed forward pass (see distributed.hpp).
#include "cnnpar/distributed.hpp"

#include "cnnpar/mpi_runtime.hpp"
#include "cnnpar/reference.hpp"

namespace cnnpar {

std::vector<BoundaryLayout> make_boundaries(const std::vector<LayerInfo>& layers, std::size_t batch,
                                            std::size_t ranks) {
  std::vector<BoundaryLayout> out;
  for (const LayerInfo& l : layers) out.push_back(make_boundary(l.split_items, l.item_elems_per_image * batch, ranks));
  return out;
}

std::vector<LayerWeights> init_own_weights(const std::vector<LayerInfo>& layers,
                                           const std::vector<BoundaryLayout>& boundaries, std::size_t rank,
                                           std::uint64_t seed) {
  std::vector<LayerWeights> out;
  for (std::size_t l = 0; l < layers.size(); ++l)
    out.push_back(init_layer_weights(layers[l], l, seed, boundaries[l].slices.at(rank)));
  return out;
}

DistributedForward::DistributedForward(const std::vector<LayerInfo>& layers, std::size_t batch,
                                       std::vector<LayerWeights> own_weights, Consolidation& consolidation)
    : layers_(layers), batch_(batch), weights_(std::move(own_weights)), consolidation_(consolidation) {}

void DistributedForward::run(std::size_t iteration, RankRecord* record) {
  const ConsolidationSample bcast = consolidation_.broadcast_input(0);
  if (record) {
    record->broadcast_enter_s[iteration] = bcast.enter_s;
    record->broadcast_exit_s[iteration] = bcast.exit_s;
    record->input_bytes_received = bcast.bytes_received;
  }
  const float* in = consolidation_.input().data();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    float* out = consolidation_.tensor(l).data();
    const double t0 = steady_seconds();
    layer_forward(layers_[l], weights_[l], in, out, batch_);
    const double t1 = steady_seconds();
    const ConsolidationSample s = consolidation_.consolidate(l);
    if (record) {
      const std::size_t k = record->at(iteration, l);
      record->compute_s[k] = t1 - t0;
      record->consolidate_enter_s[k] = s.enter_s;
      record->consolidate_exit_s[k] = s.exit_s;
      record->bytes_sent[l] = s.bytes_sent;
      record->bytes_received[l] = s.bytes_received;
    }
    in = out;
  }
}

std::span<const float> DistributedForward::output() { return consolidation_.tensor(layers_.size() - 1); }

}  // namespace cnnpar
