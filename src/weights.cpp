// Deterministic, sliceable weight initialisation (see weights.hpp).
#include "cnnpar/weights.hpp"

#include <cmath>

namespace cnnpar {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in [-bound, bound) from the top 24 bits of the hash: exactly representable steps of a float mantissa.
float uniform_value(std::uint64_t stream, std::uint64_t index, double bound) {
  const double u = static_cast<double>(splitmix64(stream + index) >> 40) * 0x1.0p-24;  // [0, 1)
  return static_cast<float>((2.0 * u - 1.0) * bound);
}

}  // namespace

std::vector<std::size_t> weight_shape(const LayerInfo& layer) {
  if (const auto* conv = std::get_if<Conv2dSpec>(&layer.spec))
    return {conv->out_channels, layer.in.c, conv->kernel, conv->kernel};
  if (const auto* fc = std::get_if<LinearSpec>(&layer.spec)) return {fc->out_features, layer.in.elements()};
  return {};
}

std::size_t weight_row_length(const LayerInfo& layer) {
  return layer.out.c == 0 || layer.weight_count == 0 ? 0 : layer.weight_count / layer.out.c;
}

namespace {

// One independent stream per (seed, layer, tensor): hashing the tuple keeps nearby seeds unrelated.
struct Streams {
  std::uint64_t weight, bias;
  double bound;
};
Streams streams(const LayerInfo& layer, std::size_t layer_index, std::uint64_t seed) {
  return Streams{splitmix64(splitmix64(seed) ^ (2 * layer_index + 1)),
                 splitmix64(splitmix64(seed) ^ (2 * layer_index + 2)),
                 1.0 / std::sqrt(static_cast<double>(layer.fan_in))};
}

}  // namespace

LayerWeights init_linear_columns(const LayerInfo& layer, std::size_t layer_index, std::uint64_t seed,
                                 Slice in_features) {
  LayerWeights lw{in_features, {}, {}};
  const std::size_t F = weight_row_length(layer), O = layer.out.c;
  const Streams st = streams(layer, layer_index, seed);
  lw.weight.resize(O * in_features.count);
  for (std::size_t o = 0; o < O; ++o)
    for (std::size_t k = 0; k < in_features.count; ++k)
      lw.weight[o * in_features.count + k] = uniform_value(st.weight, o * F + in_features.begin + k, st.bound);
  lw.bias.resize(O);
  for (std::size_t o = 0; o < O; ++o) lw.bias[o] = uniform_value(st.bias, o, st.bound);
  return lw;
}

LayerWeights init_layer_weights(const LayerInfo& layer, std::size_t layer_index, std::uint64_t seed, Slice items) {
  LayerWeights lw{items, {}, {}};
  const std::size_t row = weight_row_length(layer);
  if (row == 0) return lw;
  const Streams st = streams(layer, layer_index, seed);
  const double bound = st.bound;
  const std::uint64_t weight_stream = st.weight, bias_stream = st.bias;
  lw.weight.resize(items.count * row);
  for (std::size_t i = 0; i < lw.weight.size(); ++i)
    lw.weight[i] = uniform_value(weight_stream, items.begin * row + i, bound);
  lw.bias.resize(items.count);
  for (std::size_t i = 0; i < items.count; ++i) lw.bias[i] = uniform_value(bias_stream, items.begin + i, bound);
  return lw;
}

}  // namespace cnnpar
