// Weights from an HDF5 file in PyTorch's naming and layout: datasets "<layer>.weight" and "<layer>.bias" at the
// file's root (or under /tensors, as --dump-tensors writes them), e.g. conv.weight [32,1,3,3], conv.bias [32],
// fc.weight [128,5408], fc.bias [128] for the default network. Stored float32 or float64 (converted to float).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <vector>

#include "cnnpar/network.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

class WeightsFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks the whole file against the network: every parameterised layer's datasets exist, have exactly PyTorch's
// shape and a floating-point type, and hold only finite values. Throws WeightsFileError naming the file, the
// dataset and the problem (missing, "shape [32,1,5,5], expected [32,1,3,3]", "value 17 is nan", ...).
void validate_weights_file(const std::filesystem::path& path, const std::vector<LayerInfo>& layers);

// Rows `items` of layer `layer_index`'s weight and bias, read with an HDF5 hyperslab so a rank reads only its own
// rows. Call validate_weights_file first (this assumes a valid file).
LayerWeights load_layer_weights(const std::filesystem::path& path, const LayerInfo& layer, Slice items);

// Columns `in_features` of a linear layer's weight (all rows) and its whole bias: see init_linear_columns.
LayerWeights load_linear_columns(const std::filesystem::path& path, const LayerInfo& layer, Slice in_features);

}  // namespace cnnpar
