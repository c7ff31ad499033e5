// The distributed forward pass (see distributed.hpp).
#include "cnnpar/distributed.hpp"

#include "cnnpar/mpi_runtime.hpp"
#include "cnnpar/reference.hpp"

namespace cnnpar {

std::vector<LayerWeights> init_step_weights(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps,
                                            std::size_t rank, std::uint64_t seed) {
  std::vector<LayerWeights> out;
  for (const PlanStep& s : steps) {
    const LayerInfo& li = layers[s.layer];
    out.push_back(s.partial() ? init_linear_columns(li, s.layer, seed, step_slice(s, rank))
                              : init_layer_weights(li, s.layer, seed, weight_rows(li, s, rank)));
  }
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
    record->stamp_boundary(iteration, 0, bcast.enter_s, bcast.exit_s);
    record->bytes_sent[0] = bcast.bytes_sent;
    record->bytes_received[0] = bcast.bytes_received;
  }
  const float* in = consolidation_.input().data();
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    const PlanStep& step = steps_[s];
    float* out = step.partial() ? consolidation_.partial(s).data() : consolidation_.output(s).data();
    const double t0 = steady_seconds();
    // A row-parallel step's bias is added once, by rank 0, before the partial sums are reduced.
    region_forward(layers_[step.layer], step.split, step_slice(step, rank_), weights_[s], in, out, batch_,
                   rank_ == 0);
    const double t1 = steady_seconds();
    const ConsolidationSample sample = consolidation_.finish(s);
    if (record) {
      record->stamp(iteration, s + 1, Event::compute, t0, t1);
      record->stamp_boundary(iteration, s + 1, sample.enter_s, sample.exit_s);
      record->bytes_sent[s + 1] = sample.bytes_sent;
      record->bytes_received[s + 1] = sample.bytes_received;
    }
    in = consolidation_.output(s).data();
  }
}

std::span<const float> DistributedForward::output() { return consolidation_.output(steps_.size() - 1); }

}  // namespace cnnpar
