// The distributed forward pass (see distributed.hpp).
#include "cnnpar/distributed.hpp"

#include <algorithm>

#include "cnnpar/comm_log.hpp"
#include "cnnpar/mpi_runtime.hpp"
#include "cnnpar/reference.hpp"
#include "cnnpar/sim_compute.hpp"

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
                                       Consolidation& consolidation, bool fuse)
    : layers_(layers),
      steps_(steps),
      batch_(batch),
      rank_(rank),
      weights_(std::move(step_weights)),
      consolidation_(consolidation) {
  for (std::size_t s = 0; s < steps_.size(); ++s)
    fused_.push_back(fuse && sim::kFusedKernels && fuses_with_next(layers_, steps_, s));
  fused_interval_.resize(steps_.size());
}

bool DistributedForward::fuses() const { return std::find(fused_.begin(), fused_.end(), true) != fused_.end(); }

void DistributedForward::run(std::size_t iteration, RankRecord* record, bool layer_by_layer) {
  if (record) comm_log::begin(steps_.size() + 1);  // timed passes: who sent what to whom, at the MPI interface
  const ConsolidationSample bcast = consolidation_.broadcast_input(0);
  if (record) {
    record->stamp_boundary(iteration, 0, bcast.enter_s, bcast.exit_s);
    record->bytes_sent[0] = bcast.bytes_sent;
    record->bytes_received[0] = bcast.bytes_received;
    record->note_reads(0, bcast.read_from, bcast.bytes_read_in_place);
  }
  const float* in = consolidation_.input().data();
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    const PlanStep& step = steps_[s];
    float* out = step.partial() ? consolidation_.partial(s).data() : consolidation_.output(s).data();
    const LayerInfo& layer = layers_[step.layer];
    // Pack and unpack (records.hpp) are empty intervals: every split's kernels run in place in the whole tensors.
    double t0 = steady_seconds(), t1 = t0, t2 = t0, t3 = t0;
    const bool fused_into_previous = s > 0 && fused_[s - 1] && !layer_by_layer;
    if (fused_into_previous) {
      // Computed by an earlier step's call (its output, if it has one, is in place): its share of that call.
      t0 = t1 = fused_interval_[s][0];
      t3 = t2 = fused_interval_[s][1];
    } else if (fused_[s] && !layer_by_layer) {
      // conv + pool (+ GELU when the pool is fused too): one call, each layer's share timed inside it.
      const bool with_gelu = fused_[s + 1];
      const std::size_t last = s + (with_gelu ? 2 : 1);
      const FusedSeconds t = conv_pool_region_forward(
          layer, layers_[steps_[s + 1].layer], with_gelu ? &layers_[steps_[last].layer] : nullptr,
          step_slice(step, rank_), weights_[s], in, consolidation_.output(last).data(), batch_, workspace_);
      sim::charge(layer, step_ops(layer, step, rank_, batch_));
      const double end = steady_seconds();
      const double gelu_begin = std::max(t0, end - t.gelu), pool_begin = std::max(t0, gelu_begin - t.pool);
      fused_interval_[s + 1] = {pool_begin, with_gelu ? gelu_begin : end};
      if (with_gelu) fused_interval_[last] = {gelu_begin, end};
      t3 = t2 = pool_begin;
    } else if (step.boxed()) {
      // A rows, sample, tiles or 2-D region: its box, in place (none when there are more ranks than rows or images;
      // the compute event is then the check that says so).
      for (const Box& box : step.own[rank_]) box_forward(layer, box, weights_[s], in, out, batch_);
      sim::charge(layer, step_ops(layer, step, rank_, batch_));
      t3 = t2 = steady_seconds();
    } else {
      // A row-parallel step's bias is added once, by rank 0, before the partial sums are reduced.
      region_forward(layer, step.split, step_slice(step, rank_), weights_[s], in, out, batch_, rank_ == 0);
      sim::charge(layer, step_ops(layer, step, rank_, batch_));  // SMPI build only (sim_compute.hpp)
      t3 = t2 = steady_seconds();
    }
    comm_log::stage(s + 1);
    const ConsolidationSample sample = consolidation_.finish(s);
    if (record) {
      record->stamp(iteration, s + 1, Event::pack, t0, t1);
      record->stamp(iteration, s + 1, Event::compute, t1, t2);
      record->stamp(iteration, s + 1, Event::unpack, t2, t3);
      if (step.action == BoundaryAction::exchange) record->stamp(iteration, s + 1, Event::halo, sample.enter_s, sample.exit_s);
      else record->stamp_boundary(iteration, s + 1, sample.enter_s, sample.exit_s);
      record->bytes_sent[s + 1] = sample.bytes_sent;
      record->bytes_received[s + 1] = sample.bytes_received;
      record->note_reads(s + 1, sample.read_from, sample.bytes_read_in_place);
    }
    in = consolidation_.output(s).data();
  }
  if (record) record->sent_to = comm_log::end();
}

std::span<const float> DistributedForward::output() { return consolidation_.output(steps_.size() - 1); }

}  // namespace cnnpar
