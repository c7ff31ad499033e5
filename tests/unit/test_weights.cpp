// The deterministic initialisation: bounds, determinism, slices equal rows of the full tensor.
#include <gtest/gtest.h>

#include <cmath>

#include "cnnpar/weights.hpp"

using namespace cnnpar;

TEST(Weights, UniformWithinPyTorchDefaultBound) {
  const auto layers = describe(seed_network());
  for (std::size_t l : {0u, 3u}) {
    const LayerWeights w = init_layer_weights(layers[l], l, 42, Slice{0, layers[l].out.c});
    const double bound = 1.0 / std::sqrt(double(layers[l].fan_in));
    ASSERT_EQ(w.weight.size(), layers[l].weight_count);
    ASSERT_EQ(w.bias.size(), layers[l].bias_count);
    double sum = 0, lo = 1, hi = -1;
    for (float v : w.weight) {
      ASSERT_GE(v, -bound);
      ASSERT_LT(v, bound);
      sum += v, lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
    }
    EXPECT_NEAR(sum / double(w.weight.size()), 0.0, 0.2 * bound);  // centred
    EXPECT_LT(lo, -0.9 * bound);                                    // spans the range
    EXPECT_GT(hi, 0.9 * bound);
  }
  EXPECT_EQ(init_layer_weights(layers[0], 0, 1, Slice{0, 32}).bytes(), 1280u);
  EXPECT_EQ(init_layer_weights(layers[3], 3, 1, Slice{0, 128}).bytes(), 2769408u);
}

TEST(Weights, SliceEqualsRowsOfTheFullTensorAndSeedMatters) {
  const auto layers = describe(seed_network());
  const LayerInfo& fc = layers[3];
  const LayerWeights full = init_layer_weights(fc, 3, 7, Slice{0, 128});
  const LayerWeights part = init_layer_weights(fc, 3, 7, Slice{43, 43});
  ASSERT_EQ(part.weight.size(), 43u * 5408u);
  EXPECT_TRUE(std::equal(part.weight.begin(), part.weight.end(), full.weight.begin() + 43 * 5408));
  EXPECT_TRUE(std::equal(part.bias.begin(), part.bias.end(), full.bias.begin() + 43));
  EXPECT_EQ(part.bytes(), 43u * 5409u * 4u);
  const LayerWeights other_seed = init_layer_weights(fc, 3, 8, Slice{0, 128});
  EXPECT_NE(other_seed.weight, full.weight);
  EXPECT_EQ(init_layer_weights(fc, 3, 7, Slice{0, 128}).weight, full.weight);
  EXPECT_TRUE(init_layer_weights(layers[1], 1, 7, Slice{0, 32}).weight.empty());
}
