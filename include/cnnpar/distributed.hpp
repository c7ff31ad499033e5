// The distributed forward pass: at every plan step each rank computes its slice of the layer with the same kernels
// as the serial reference, and the consolidation performs the step's boundary action (plan.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <vector>

#include "cnnpar/consolidation.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/records.hpp"
#include "cnnpar/reference.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

// The slice of every step's layer this rank computes: output items, or input features of a row-parallel step.
inline Slice step_slice(const PlanStep& step, std::size_t rank) { return step.layout.slices.at(rank); }

// This rank's weights for every step, from the seed (weights.hpp): rows of its output items, or columns of its input
// features for a row-parallel step.
std::vector<LayerWeights> init_step_weights(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps,
                                            std::size_t rank, std::uint64_t seed);

class DistributedForward {
 public:
  // fuse: compute a convolution and the max-pooling after it together where the plan allows (fuses_with_next).
  DistributedForward(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps, std::size_t batch,
                     std::size_t rank, std::vector<LayerWeights> step_weights, Consolidation& consolidation,
                     bool fuse = true);

  // One forward pass: the root's staged input is broadcast, then every step computes and finishes. Timestamps and
  // bytes go to `record` at `iteration` (nullptr: not recorded, e.g. warm-up). Consecutive passes are safe without
  // extra synchronisation (see the memory-model note in consolidation.cpp).
  // A fused conv + pool (+ GELU) chain is one kernel call, timed part by part: the conv step's compute interval starts
  // with the call and lasts the conv parts' total, the pool step's and the GELU step's follow it and last their parts'
  // totals (the last ends when the call does); their boundaries come after the conv step's, as in every pass.
  // layer_by_layer: no fusion in this pass (every step's output is written, for collection); collective.
  void run(std::size_t iteration, RankRecord* record, bool layer_by_layer = false);
  bool fuses() const;  // some step pair is fused: its conv output exists only after a layer-by-layer pass
  bool fused(std::size_t step) const { return fused_.at(step); }  // step computed with the next one

  std::span<const float> output();  // the final activation [O][B], whole, after run()
  std::size_t weight_bytes(std::size_t step) const { return weights_.at(step).bytes(); }

 private:
  const std::vector<LayerInfo>& layers_;
  const std::vector<PlanStep>& steps_;
  std::size_t batch_, rank_;
  std::vector<LayerWeights> weights_;
  Consolidation& consolidation_;
  std::vector<bool> fused_;                     // [step] computed with the next step (conv + pool, pool + GELU)
  std::vector<std::array<double, 2>> fused_interval_;  // [step] a step computed by an earlier step's call: its share
  AlignedFloats workspace_;                      // the fused kernel's
};

}  // namespace cnnpar
