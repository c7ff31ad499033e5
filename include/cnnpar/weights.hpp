// Layer parameters: a rank's slice of rows of each weight tensor, in PyTorch's layout (see kernels.hpp).
//
// Default initialisation, deterministic from --seed: like PyTorch's default for Conv2d and Linear, every weight and
// bias is uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)) (fan_in = C_in*K*K for conv, F for linear). The random stream
// is not PyTorch's: value i of a tensor is a counter-based hash (SplitMix64) of (seed, layer, tensor, i), so a rank
// can create its own rows without creating anyone else's, and a slice equals the matching rows of the full tensor
// for every P.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cnnpar/network.hpp"
#include "cnnpar/partition.hpp"

namespace cnnpar {

struct LayerWeights {
  Slice items;                // the output channels / features these rows belong to
  std::vector<float> weight;  // items.count rows of the layer's weight tensor
  std::vector<float> bias;    // items.count values
  std::size_t bytes() const { return (weight.size() + bias.size()) * sizeof(float); }
};

// Rows `items` of layer `layer_index` (its position in the network) for `seed`. Empty for layers without parameters.
LayerWeights init_layer_weights(const LayerInfo& layer, std::size_t layer_index, std::uint64_t seed, Slice items);

// Columns `in_features` of every row of a linear layer (row-parallel plans): weight [O][in_features.count], and the
// whole bias [O] (added once, after the partial sums are reduced). `items` of the result is `in_features`.
LayerWeights init_linear_columns(const LayerInfo& layer, std::size_t layer_index, std::uint64_t seed,
                                 Slice in_features);

// PyTorch's shape of the layer's weight tensor: [C_out, C_in, K, K] for conv, [O, F] for linear, {} otherwise.
std::vector<std::size_t> weight_shape(const LayerInfo& layer);

// Floats per weight row (one output channel or feature): C_in*K*K for conv, F for linear, 0 otherwise.
std::size_t weight_row_length(const LayerInfo& layer);

}  // namespace cnnpar
