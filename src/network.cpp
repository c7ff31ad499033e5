// Shape inference and exact operation counts for a NetworkSpec (see network.hpp).
#include "cnnpar/network.hpp"

#include <map>
#include <sstream>

namespace cnnpar {

std::string to_string(const Shape& s) {
  return std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
}

std::string_view kind_name(const LayerSpec& spec) {
  switch (spec.index()) {
    case 0: return "conv";
    case 1: return "pool";
    case 2: return "gelu";
    case 3: return "fc";
    default: return "logsoftmax";
  }
}

NetworkSpec seed_network(std::size_t rows, std::size_t cols, std::size_t filters, std::size_t hidden, GeluForm gelu,
                         std::size_t conv_kernel, std::size_t pool_kernel) {
  return NetworkSpec{"seed", Shape{1, rows, cols},
                     {Conv2dSpec{filters, conv_kernel, 1}, MaxPool2dSpec{pool_kernel, pool_kernel}, GeluSpec{gelu},
                      LinearSpec{hidden}}};
}

NetworkSpec letters_network(std::size_t rows, std::size_t cols, GeluForm gelu) {
  NetworkSpec net{"letters", Shape{1, rows, cols}, {}};
  for (const std::size_t filters : {32, 64, 128})
    net.layers.insert(net.layers.end(), {Conv2dSpec{filters, 3, 1}, MaxPool2dSpec{2, 2}, GeluSpec{gelu}});
  net.layers.insert(net.layers.end(), {LinearSpec{512}, GeluSpec{gelu}, LinearSpec{256}, GeluSpec{gelu},
                                       LinearSpec{26}, LogSoftmaxSpec{}});
  return net;
}

namespace {

// Output size of a sliding window with no padding (PyTorch's floor mode); 0 when the window does not fit.
std::size_t window_out(std::size_t in, std::size_t kernel, std::size_t stride) {
  return in < kernel ? 0 : (in - kernel) / stride + 1;
}

}  // namespace

std::vector<LayerInfo> describe(const NetworkSpec& net) {
  if (net.input.elements() == 0)
    throw NetworkError("input shape " + to_string(net.input) + " has a zero dimension");
  if (net.layers.empty()) throw NetworkError("the network has no layers");
  // Names follow PyTorch module names: a kind that occurs once keeps its bare name (conv, fc: the seed model's),
  // one that occurs several times is numbered from 1 (conv1, conv2, ...: the letters model's).
  std::map<std::string_view, std::size_t> occurrences, seen;
  for (const LayerSpec& spec : net.layers) ++occurrences[kind_name(spec)];
  std::vector<LayerInfo> out;
  Shape cur = net.input;
  for (const LayerSpec& spec : net.layers) {
    LayerInfo li;
    li.spec = spec;
    li.in = cur;
    const std::string_view kind = kind_name(spec);
    li.name = std::string(kind) + (occurrences[kind] > 1 ? std::to_string(++seen[kind]) : "");
    if (const auto* conv = std::get_if<Conv2dSpec>(&spec)) {
      if (conv->out_channels == 0 || conv->kernel == 0 || conv->stride == 0)
        throw NetworkError(li.name + ": filters, kernel size and stride must be positive");
      const std::size_t oh = window_out(cur.h, conv->kernel, conv->stride);
      const std::size_t ow = window_out(cur.w, conv->kernel, conv->stride);
      if (oh == 0 || ow == 0)
        throw NetworkError(li.name + ": a " + std::to_string(conv->kernel) + "x" + std::to_string(conv->kernel) +
                           " kernel does not fit its " + to_string(cur) + " input");
      li.out = Shape{conv->out_channels, oh, ow};
      li.operation = "conv " + std::to_string(conv->kernel) + "x" + std::to_string(conv->kernel) + ", " +
                     std::to_string(conv->out_channels) + " filters, stride " +
                     std::to_string(conv->stride);
      li.fan_in = cur.c * conv->kernel * conv->kernel;
      li.weight_count = conv->out_channels * li.fan_in;
      li.bias_count = conv->out_channels;
      li.op_unit = "multiply-adds";
      li.ops_per_output = li.fan_in;
      li.bias_adds_per_output = 1;
    } else if (const auto* pool = std::get_if<MaxPool2dSpec>(&spec)) {
      if (pool->kernel == 0 || pool->stride == 0) throw NetworkError(li.name + ": kernel and stride must be positive");
      const std::size_t oh = window_out(cur.h, pool->kernel, pool->stride);
      const std::size_t ow = window_out(cur.w, pool->kernel, pool->stride);
      if (oh == 0 || ow == 0)
        throw NetworkError(li.name + ": a " + std::to_string(pool->kernel) + "x" + std::to_string(pool->kernel) +
                           " pooling window does not fit its " + to_string(cur) + " input");
      li.out = Shape{cur.c, oh, ow};
      li.operation = "max-pool " + std::to_string(pool->kernel) + "x" + std::to_string(pool->kernel) + ", stride " +
                     std::to_string(pool->stride);
      li.op_unit = "comparisons";  // a K*K window needs K*K - 1 two-way max operations
      li.ops_per_output = pool->kernel * pool->kernel - 1;
    } else if (const auto* gelu = std::get_if<GeluSpec>(&spec)) {
      li.out = cur;
      li.operation = std::string("GELU (") + (gelu->form == GeluForm::tanh ? "tanh approximation" : "erf form") +
                     "), element-wise";
      li.op_unit = "GELU evaluations";  // one per element; each is ~8 flops plus one tanh (or erf)
      li.ops_per_output = 1;
    } else if (const auto* fc = std::get_if<LinearSpec>(&spec)) {
      if (fc->out_features == 0) throw NetworkError(li.name + ": output features must be positive");
      li.out = Shape{fc->out_features, 1, 1};
      li.operation = "linear " + std::to_string(cur.elements()) + " -> " + std::to_string(fc->out_features) +
                     (cur.h * cur.w > 1 ? " (input flattened in C,H,W order)" : "");
      li.fan_in = cur.elements();
      li.weight_count = fc->out_features * li.fan_in;
      li.bias_count = fc->out_features;
      li.op_unit = "multiply-adds";
      li.ops_per_output = li.fan_in;
      li.bias_adds_per_output = 1;
    } else {
      if (cur.h * cur.w != 1)
        throw NetworkError(li.name + ": LogSoftmax needs a flat vector of features, but its input is " +
                           to_string(cur) + " (put a linear layer before it)");
      li.out = cur;
      li.operation = "LogSoftmax over " + std::to_string(cur.c) + " features";
      // One exp per feature for the image's sum (replicated on every rank that owns a feature, kernels.hpp), then
      // one subtraction per owned output. Counted: outputs.
      li.op_unit = "outputs";
      li.ops_per_output = 1;
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
    else
      os << "logsoftmax";
  }
  return os.str();
}

std::uint64_t layer_ops(const LayerInfo& layer, std::size_t batch) {
  return static_cast<std::uint64_t>(layer.out.elements()) * layer.ops_per_output * batch;
}

}  // namespace cnnpar
