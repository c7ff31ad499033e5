// One layer over a slice, and the serial reference forward pass built from it. No MPI: the distributed forward
// pass (distributed.hpp) calls the same layer_forward on each rank's slice, so the two can only differ by what the
// consolidation delivers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cnnpar/idx.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

// Computes output items `weights.items` of `layer` for a batch. in_full: the whole input activation [.., B];
// out_full: the whole output activation; only this slice of it is written (at its offset).
void layer_forward(const LayerInfo& layer, const LayerWeights& weights, const float* in_full, float* out_full,
                   std::size_t batch);

// Pixels scaled to [0, 1] (p / 255 in float) in the C,H,W,B activation layout, C = 1.
std::vector<float> images_to_activation(const ImageBatch& images);

// [O][B] (activation layout) -> [B][O] (PyTorch's [N, features]).
std::vector<float> activation_to_batch_major(std::span<const float> act, std::size_t features, std::size_t batch);

// The whole network on one process, every layer over all of its items. Returns the final activation [O][B];
// when `layer_seconds` is given, it receives each layer's compute time of this call; when `layer_outputs` is given,
// every layer's output activation.
std::vector<float> serial_forward(const std::vector<LayerInfo>& layers, const std::vector<LayerWeights>& weights,
                                  std::span<const float> input, std::size_t batch,
                                  std::vector<double>* layer_seconds = nullptr,
                                  std::vector<std::vector<float>>* layer_outputs = nullptr);

// Per output element [O][B] of a linear layer: the sum of |w*x| over its terms, the bias included (for
// summation_error_bound in report.hpp). `in` is the layer's input activation [F][B], `weights` the whole layer.
std::vector<double> linear_term_magnitudes(const LayerInfo& layer, const LayerWeights& weights,
                                           std::span<const float> in, std::size_t batch);

}  // namespace cnnpar
