// Shape inference and exact operation counts for a NetworkSpec (see network.hpp).
#include "cnnpar/network.hpp"

#include <map>
#include <sstream>

namespace cnnpar {

std::string to_string(const Shape& s) {
  return std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
}

NetworkSpec seed_network(std::size_t rows, std::size_t cols, std::size_t filters, std::size_t hidden, GeluForm gelu,
                         std::size_t conv_kernel, std::size_t pool_kernel) {
  return NetworkSpec{Shape{1, rows, cols},
                     {Conv2dSpec{filters, conv_kernel, 1}, MaxPool2dSpec{pool_kernel, pool_kernel}, GeluSpec{gelu},
                      LinearSpec{hidden}}};
}

namespace {

// Output size of a sliding window with no padding (PyTorch's floor mode); 0 when the window does not fit.
std::size_t window_out(std::size_t in, std::size_t kernel, std::size_t stride) {
  return in < kernel ? 0 : (in - kernel) / stride + 1;
}

// Parameter prefixes follow PyTorch module names of the seed model: conv, fc; a second conv is conv2, and so on.
std::string unique_name(std::map<std::string, int>& seen, const std::string& base) {
  const int n = ++seen[base];
  return n == 1 ? base : base + std::to_string(n);
}

}  // namespace

std::vector<LayerInfo> describe(const NetworkSpec& net) {
  if (net.input.elements() == 0)
    throw NetworkError("input shape " + to_string(net.input) + " has a zero dimension");
  if (net.layers.empty()) throw NetworkError("the network has no layers");
  std::vector<LayerInfo> out;
  std::map<std::string, int> seen;
  Shape cur = net.input;
  for (const LayerSpec& spec : net.layers) {
    LayerInfo li;
    li.spec = spec;
    li.in = cur;
    if (const auto* conv = std::get_if<Conv2dSpec>(&spec)) {
      li.name = unique_name(seen, "conv");
      if (conv->out_channels == 0 || conv->kernel == 0 || conv->stride == 0)
        throw NetworkError(li.name + ": filters, kernel size and stride must be positive");
      const std::size_t oh = window_out(cur.h, conv->kernel, conv->stride);
      const std::size_t ow = window_out(cur.w, conv->kernel, conv->stride);
      if (oh == 0 || ow == 0)
        throw NetworkError(li.name + ": a " + std::to_string(conv->kernel) + "x" + std::to_string(conv->kernel) +
                           " kernel does not fit its " + to_string(cur) + " input");
      li.out = Shape{conv->out_channels, oh, ow};
      li.operation = "conv " + std::to_string(conv->kernel) + "x" + std::to_string(conv->kernel) + ", " +
                     std::to_string(conv->out_channels) + " filters, stride " + std::to_string(conv->stride);
      li.split = SplitKind::channels;
      li.split_items = conv->out_channels;
      li.item_elems_per_image = oh * ow;
      li.fan_in = cur.c * conv->kernel * conv->kernel;
      li.weight_count = conv->out_channels * li.fan_in;
      li.bias_count = conv->out_channels;
      li.op_unit = "multiply-adds";
      li.ops_per_item_per_image = static_cast<std::uint64_t>(oh * ow * li.fan_in);
      li.bias_adds_per_item_per_image = oh * ow;
      li.weights_per_item = li.fan_in + 1;
    } else if (const auto* pool = std::get_if<MaxPool2dSpec>(&spec)) {
      li.name = unique_name(seen, "pool");
      if (pool->kernel == 0 || pool->stride == 0) throw NetworkError(li.name + ": kernel and stride must be positive");
      const std::size_t oh = window_out(cur.h, pool->kernel, pool->stride);
      const std::size_t ow = window_out(cur.w, pool->kernel, pool->stride);
      if (oh == 0 || ow == 0)
        throw NetworkError(li.name + ": a " + std::to_string(pool->kernel) + "x" + std::to_string(pool->kernel) +
                           " pooling window does not fit its " + to_string(cur) + " input");
      li.out = Shape{cur.c, oh, ow};
      li.operation = "max-pool " + std::to_string(pool->kernel) + "x" + std::to_string(pool->kernel) + ", stride " +
                     std::to_string(pool->stride);
      li.split = SplitKind::channels;
      li.split_items = cur.c;
      li.item_elems_per_image = oh * ow;
      li.op_unit = "comparisons";  // a K*K window needs K*K - 1 two-way max operations
      li.ops_per_item_per_image = static_cast<std::uint64_t>(oh * ow * (pool->kernel * pool->kernel - 1));
    } else if (const auto* gelu = std::get_if<GeluSpec>(&spec)) {
      li.name = unique_name(seen, "gelu");
      li.out = cur;
      li.operation = std::string("GELU (") + (gelu->form == GeluForm::tanh ? "tanh approximation" : "erf form") +
                     "), element-wise";
      li.split = SplitKind::elements;
      li.split_items = cur.elements();
      li.item_elems_per_image = 1;
      li.op_unit = "GELU evaluations";  // one per element; each is ~8 flops plus one tanh (or erf)
      li.ops_per_item_per_image = 1;
    } else if (const auto* fc = std::get_if<LinearSpec>(&spec)) {
      li.name = unique_name(seen, "fc");
      if (fc->out_features == 0) throw NetworkError(li.name + ": output features must be positive");
      li.out = Shape{fc->out_features, 1, 1};
      li.operation = "linear " + std::to_string(cur.elements()) + " -> " + std::to_string(fc->out_features) +
                     " (input flattened in C,H,W order)";
      li.split = SplitKind::features;
      li.split_items = fc->out_features;
      li.item_elems_per_image = 1;
      li.fan_in = cur.elements();
      li.weight_count = fc->out_features * li.fan_in;
      li.bias_count = fc->out_features;
      li.op_unit = "multiply-adds";
      li.ops_per_item_per_image = li.fan_in;
      li.bias_adds_per_item_per_image = 1;
      li.weights_per_item = li.fan_in + 1;
    }
    cur = li.out;
    out.push_back(std::move(li));
  }
  return out;
}

std::string to_string(const NetworkSpec& net) {
  std::ostringstream os;
  os << "input " << to_string(net.input);
  for (const LayerSpec& spec : net.layers) {
    os << " -> ";
    if (const auto* conv = std::get_if<Conv2dSpec>(&spec))
      os << "conv" << conv->kernel << "x" << conv->kernel << "x" << conv->out_channels << "/s" << conv->stride;
    else if (const auto* pool = std::get_if<MaxPool2dSpec>(&spec))
      os << "maxpool" << pool->kernel << "/s" << pool->stride;
    else if (const auto* gelu = std::get_if<GeluSpec>(&spec))
      os << "gelu(" << (gelu->form == GeluForm::tanh ? "tanh" : "erf") << ")";
    else if (const auto* fc = std::get_if<LinearSpec>(&spec))
      os << "linear" << fc->out_features;
  }
  return os.str();
}

std::uint64_t layer_ops(const LayerInfo& layer, std::size_t batch) {
  return static_cast<std::uint64_t>(layer.split_items) * layer.ops_per_item_per_image * batch;
}

}  // namespace cnnpar
