// The distributed forward pass (see distributed.hpp).
#include "cnnpar/distributed.hpp"

#include "cnnpar/kernels.hpp"
#include "cnnpar/mpi_runtime.hpp"
#include "cnnpar/reference.hpp"

namespace cnnpar {

std::vector<LayerWeights> init_step_weights(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps,
                                            std::size_t rank, std::uint64_t seed) {
  std::vector<LayerWeights> out;
  for (const PlanStep& s : steps)
    out.push_back(s.row_partial ? init_linear_columns(layers[s.layer], s.layer, seed, step_slice(s, rank))
                                : init_layer_weights(layers[s.layer], s.layer, seed, step_slice(s, rank)));
  return out;
}

DistributedForward::DistributedForward(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps,
                                       std::size_t batch, std::size_t rank, std::vector<LayerWeights> step_weights,
                                       Consolidation& consolidation)
    : layers_(layers),
      steps_(steps),
      batch_(batch),
      rank_(rank),
      weights_(std::move(step_weights)),
      consolidation_(consolidation) {}

void DistributedForward::run(std::size_t iteration, RankRecord* record) {
  const ConsolidationSample bcast = consolidation_.broadcast_input(0);
  if (record) {
    record->broadcast_enter_s[iteration] = bcast.enter_s;
    record->broadcast_exit_s[iteration] = bcast.exit_s;
    record->input_bytes_sent = bcast.bytes_sent;
    record->input_bytes_received = bcast.bytes_received;
  }
  const float* in = consolidation_.input().data();
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    const PlanStep& step = steps_[s];
    const LayerInfo& layer = layers_[step.layer];
    const LayerWeights& w = weights_[s];
    const double t0 = steady_seconds();
    if (step.row_partial) {
      float* partial = consolidation_.partial(s).data();
      linear_partial_forward(partial, in, w.weight.data(), layer.out.elements(), batch_, w.items);
      // The bias is added once, by rank 0 (which holds the first input features), before the sums are reduced.
      if (rank_ == 0)
        for (std::size_t o = 0; o < layer.out.elements(); ++o)
          for (std::size_t b = 0; b < batch_; ++b) partial[o * batch_ + b] += w.bias[o];
    } else {
      layer_forward(layer, w, in, consolidation_.output(s).data(), batch_);
    }
    const double t1 = steady_seconds();
    const ConsolidationSample sample = consolidation_.finish(s);
    if (record) {
      const std::size_t k = record->at(iteration, s);
      record->compute_s[k] = t1 - t0;
      record->consolidate_enter_s[k] = sample.enter_s;
      record->consolidate_exit_s[k] = sample.exit_s;
      record->bytes_sent[s] = sample.bytes_sent;
      record->bytes_received[s] = sample.bytes_received;
    }
    in = consolidation_.output(s).data();
  }
}

std::span<const float> DistributedForward::output() { return consolidation_.output(steps_.size() - 1); }

}  // namespace cnnpar
