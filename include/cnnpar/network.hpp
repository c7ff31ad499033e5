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
#include <string_view>
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
// log(softmax(x)) over the features of each image (PyTorch's LogSoftmax(dim=1)); its input must be a flat vector.
struct LogSoftmaxSpec {};
using LayerSpec = std::variant<Conv2dSpec, MaxPool2dSpec, GeluSpec, LinearSpec, LogSoftmaxSpec>;

// What a layer is, whatever the network calls it: the key of --split (conv=channel) and of the spec file.
std::string_view kind_name(const LayerSpec& spec);  // "conv", "pool", "gelu", "fc", "logsoftmax"

// A layer with its shapes and counts, derived from the spec and the input shape. How its work is divided among ranks
// is not a property of the layer: the plan (plan.hpp) decides it.
struct LayerInfo {
  std::string name;         // PyTorch-style module name: "conv" if the network has one conv, "conv1".."convN" if more
  std::string operation;    // human description, e.g. "conv 3x3, 32 filters, stride 1"
  LayerSpec spec;
  Shape in, out;            // per image
  std::size_t weight_count = 0, bias_count = 0;  // parameters of the whole layer
  std::size_t fan_in = 0;   // for the default initialisation bound 1/sqrt(fan_in)
  std::string op_unit;      // what one counted operation is
  std::uint64_t ops_per_output = 0;       // exact: operations to produce one output element of one image
  std::uint64_t bias_adds_per_output = 0;  // 1 for layers with a bias
  bool has_weights() const { return weight_count > 0; }
  // Elements one output channel holds per image (a linear layer's output is O x 1 x 1: one per feature).
  std::size_t channel_elems() const { return out.h * out.w; }
};

class NetworkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct NetworkSpec {
  std::string name = "seed";  // "seed", "letters", or the spec file's path
  Shape input{1, 28, 28};
  std::vector<LayerSpec> layers;
};

// The seed network: conv 3x3 (filters) -> max-pool 2x2 -> GELU -> linear (hidden), on a channels x rows x cols input.
NetworkSpec seed_network(std::size_t rows = 28, std::size_t cols = 28, std::size_t filters = 32,
                         std::size_t hidden = 128, GeluForm gelu = GeluForm::tanh, std::size_t conv_kernel = 3,
                         std::size_t pool_kernel = 2);

// The seed's complete demo ("letters", 26 classes): three conv 3x3 -> max-pool 2 -> GELU blocks (32, 64, 128
// filters), flatten, linear 512 -> GELU -> linear 256 -> GELU -> linear 26 -> LogSoftmax. On a 28x28 input:
// 26 -> 13 -> 11 -> 5 -> 3 -> 1, so the flattened vector has 128 features.
NetworkSpec letters_network(std::size_t rows = 28, std::size_t cols = 28, GeluForm gelu = GeluForm::tanh);

// Infers every layer's shapes, names and counts. Throws NetworkError naming the layer when a shape does not fit
// (kernel larger than the image, a zero-sized dimension, LogSoftmax on a spatial tensor, ...).
std::vector<LayerInfo> describe(const NetworkSpec& net);

// One line, e.g. "input 1x28x28 -> conv3x3x32/s1 -> maxpool2/s2 -> gelu(tanh) -> linear128".
std::string to_string(const NetworkSpec& net);

// Exact operation count of a whole layer for a batch (the closed form: output elements * ops_per_output * B).
std::uint64_t layer_ops(const LayerInfo& layer, std::size_t batch);

}  // namespace cnnpar
