// The network as data: an input shape and a list of layer specs, plus the shape arithmetic and operation counts
// derived from them. Pure functions, no MPI.
//
// Dimension letters used throughout: B batch (images), C channels, H/W height/width, K kernel size, S stride,
// F features of a flattened tensor (C*H*W), O output features of a linear layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace cnnpar {

// A per-image tensor shape C×H×W. A flat vector of F features is C=F, H=W=1.
struct Shape {
  std::size_t c = 0, h = 0, w = 0;
  std::size_t elements() const { return c * h * w; }
  bool operator==(const Shape&) const = default;
};
std::string to_string(const Shape& s);  // "1x28x28"

enum class GeluForm { tanh, erf };

struct Conv2dSpec {
  std::size_t out_channels = 32, kernel = 3, stride = 1;  // no padding, with bias
};
struct MaxPool2dSpec {
  std::size_t kernel = 2, stride = 2;  // floor mode, as PyTorch's default
};
struct GeluSpec {
  GeluForm form = GeluForm::tanh;
};
struct LinearSpec {
  std::size_t out_features = 128;  // with bias; its input is the previous output flattened in C,H,W order
};
using LayerSpec = std::variant<Conv2dSpec, MaxPool2dSpec, GeluSpec, LinearSpec>;

// How a layer's output is divided among ranks: by output channel, by element range of the flattened tensor, or by
// output feature. Each is a block partition of `split_items` items; an item is a contiguous run of
// `item_elems_per_image * B` floats in the activation layout (see kernels.hpp).
enum class SplitKind { channels, elements, features };

struct LayerInfo {
  std::string name;         // "conv", "pool", "gelu", "fc" (the PyTorch-style prefix of its parameters)
  std::string operation;    // human description, e.g. "conv 3x3, 32 filters, stride 1"
  LayerSpec spec;
  Shape in, out;            // per image
  SplitKind split;
  std::size_t split_items;          // channels, elements or features to divide
  std::size_t item_elems_per_image;  // floats per item per image
  std::size_t weight_count = 0, bias_count = 0;  // parameters of the whole layer
  std::size_t fan_in = 0;   // for the default initialisation bound 1/sqrt(fan_in)
  std::string op_unit;      // what one counted operation is (see ops_per_item)
  std::uint64_t ops_per_item_per_image = 0;  // exact: operations to produce one split item for one image
  std::uint64_t bias_adds_per_item_per_image = 0;
  std::uint64_t weights_per_item = 0;        // weight + bias floats a rank holds per owned item
};

class NetworkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct NetworkSpec {
  Shape input{1, 28, 28};
  std::vector<LayerSpec> layers;
};

// The seed network: conv 3x3 (filters) -> max-pool 2x2 -> GELU -> linear (hidden), on a channels x rows x cols input.
NetworkSpec seed_network(std::size_t rows = 28, std::size_t cols = 28, std::size_t filters = 32,
                         std::size_t hidden = 128, GeluForm gelu = GeluForm::tanh, std::size_t conv_kernel = 3,
                         std::size_t pool_kernel = 2);

// Infers every layer's shapes, split and counts. Throws NetworkError naming the layer when a shape does not fit
// (kernel larger than the image, a zero-sized dimension, ...).
std::vector<LayerInfo> describe(const NetworkSpec& net);

// One line, e.g. "input 1x28x28 -> conv3x3x32/s1 -> maxpool2/s2 -> gelu(tanh) -> linear 128".
std::string to_string(const NetworkSpec& net);

// Exact operation count of a whole layer for a batch (the closed form: items * ops_per_item * B).
std::uint64_t layer_ops(const LayerInfo& layer, std::size_t batch);

}  // namespace cnnpar
