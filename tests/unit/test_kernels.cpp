// Kernels on hand-worked cases, and the determinism contract: a slice equals the matching part of the full layer,
// and an image computed in a batch equals the same image computed alone, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "cnnpar/kernels.hpp"
#include "cnnpar/reference.hpp"
#include "cnnpar/weights.hpp"

using namespace cnnpar;

namespace {

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// (memcmp with n = 0 still needs non-null pointers: an empty vector's data() may be null)
bool bitwise_equal(const float* a, const float* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(float)) == 0;
}

}  // namespace

TEST(Kernels, Conv2dHandWorked) {
  // One 3x3 image 1..9 and, as the second image of the batch, its negation. Kernel [[1,0],[0,1]], bias 0.5:
  // out[i][j] = in[i][j] + in[i+1][j+1] + 0.5.
  const std::size_t B = 2;
  std::vector<float> in(9 * B);
  for (std::size_t p = 0; p < 9; ++p) in[p * B] = float(p + 1), in[p * B + 1] = -float(p + 1);
  const float weight[4] = {1, 0, 0, 1}, bias[1] = {0.5f};
  std::vector<float> out(4 * B);
  conv2d_forward(out.data(), in.data(), weight, bias, Shape{1, 3, 3}, Conv2dSpec{1, 2, 1}, B, Slice{0, 1});
  const float expect[4] = {1 + 5 + 0.5f, 2 + 6 + 0.5f, 4 + 8 + 0.5f, 5 + 9 + 0.5f};
  for (std::size_t p = 0; p < 4; ++p) {
    EXPECT_EQ(out[p * B], expect[p]);
    EXPECT_EQ(out[p * B + 1], -expect[p] + 1.0f);  // -(a+b) + 0.5
  }
}

TEST(Kernels, Conv2dStrideAndTwoInputChannels) {
  // 2 input channels of 4x4; 2x2 kernel, stride 2 -> 2x2 output; channel 1 weights are 10x channel 0's.
  std::vector<float> in(2 * 16);
  for (std::size_t i = 0; i < 16; ++i) in[i] = float(i), in[16 + i] = 1.0f;
  const float weight[8] = {1, 1, 1, 1, 10, 10, 10, 10}, bias[1] = {0};
  std::vector<float> out(4);
  conv2d_forward(out.data(), in.data(), weight, bias, Shape{2, 4, 4}, Conv2dSpec{1, 2, 2}, 1, Slice{0, 1});
  EXPECT_EQ(out, (std::vector<float>{0 + 1 + 4 + 5 + 40.0f, 2 + 3 + 6 + 7 + 40.0f, 8 + 9 + 12 + 13 + 40.0f,
                                     10 + 11 + 14 + 15 + 40.0f}));
}

TEST(Kernels, MaxPoolHandWorked) {
  const float in[16] = {1, 2, 5, 3, 4, -1, 0, 7, -2, -3, 9, 9, -4, -8, 1, 2};
  std::vector<float> out(4);
  maxpool2d_forward(out.data(), in, Shape{1, 4, 4}, MaxPool2dSpec{2, 2}, 1, Slice{0, 1});
  EXPECT_EQ(out, (std::vector<float>{4, 7, -2, 9}));
  // Odd size, floor mode: 5x5 -> 2x2 ignores the last row and column.
  std::vector<float> in5(25, 0.0f);
  in5[24] = 100.0f;  // bottom-right, outside every window
  in5[6] = 3.0f;     // row 1, col 1 -> window (0,0)
  maxpool2d_forward(out.data(), in5.data(), Shape{1, 5, 5}, MaxPool2dSpec{2, 2}, 1, Slice{0, 1});
  EXPECT_EQ(out, (std::vector<float>{3, 0, 0, 0}));
}

TEST(Kernels, GeluKnownValues) {
  // Reference values from PyTorch's formulas evaluated in double precision.
  EXPECT_NEAR(gelu(1.0f, GeluForm::tanh), 0.8411919906082768, 1e-7);
  EXPECT_NEAR(gelu(-3.0f, GeluForm::tanh), -0.0036373920817729, 1e-7);
  EXPECT_NEAR(gelu(1.0f, GeluForm::erf), 0.8413447460685429, 1e-7);
  EXPECT_NEAR(gelu(-0.5f, GeluForm::erf), -0.15426876936299344, 1e-7);
  EXPECT_EQ(gelu(0.0f, GeluForm::tanh), 0.0f);
  const float in[3] = {1.0f, -3.0f, 0.0f};
  float out[3];
  gelu_forward(out, in, 3, GeluForm::tanh);
  EXPECT_NEAR(out[0], gelu(1.0f, GeluForm::tanh), 1e-6);
  EXPECT_NEAR(out[1], gelu(-3.0f, GeluForm::tanh), 1e-6);
  EXPECT_EQ(out[2], 0.0f);
}

TEST(Kernels, LinearHandWorked) {
  // in [F=3][B=2], weight rows [2][3].
  const float in[6] = {1, 10, 2, 20, 3, 30};
  const float weight[6] = {1, 1, 1, 0.5f, 0, -1}, bias[2] = {0.25f, -1};
  float out[4];
  linear_forward(out, in, weight, bias, 3, 2, Slice{0, 2});
  EXPECT_EQ(out[0], 6.25f);   // feature 0, image 0
  EXPECT_EQ(out[1], 60.25f);  // feature 0, image 1
  EXPECT_EQ(out[2], 0.5f - 3 - 1);
  EXPECT_EQ(out[3], 5 - 30 - 1.0f);
}

TEST(Kernels, LinearSumsInFixedBlocks) {
  // 1,100 features cross two block boundaries; compare against the blocked order computed by hand in float, with
  // one fused multiply-add per product on the instruction sets that have FMA (kernels.hpp).
  const std::size_t F = 1100;
  const auto x = random_floats(F, 1), w = random_floats(F, 2);
  const bool fma = kernel_target() == "avx3" || kernel_target() == "avx3_dl" || kernel_target() == "avx2";
  float expect = 0;
  for (std::size_t k0 = 0; k0 < F; k0 += kLinearSumBlock) {
    float partial = 0;
    for (std::size_t k = k0; k < std::min(F, k0 + kLinearSumBlock); ++k)
      partial = fma ? std::fma(w[k], x[k], partial) : partial + w[k] * x[k];
    expect += partial;
  }
  const float bias = 0.125f;
  float out = 0;
  linear_forward(&out, x.data(), w.data(), &bias, F, 1, Slice{0, 1});
  EXPECT_EQ(out, expect + bias);
}

// Every layer of the seed and letters networks, under every split it allows except the row-parallel one (whose sums
// differ by design, verify.hpp): the regions of P = 2..7 and 33 ranks reproduce the full output exactly.
TEST(Kernels, RegionsEqualTheFullLayerBitForBit) {
  for (const NetworkSpec& net : {seed_network(), letters_network()}) {
    const auto layers = describe(net);
    for (std::size_t B : {1u, 5u}) {
      std::vector<float> in = random_floats(layers[0].in.elements() * B, 7);
      for (std::size_t l = 0; l < layers.size(); ++l) {
        const LayerInfo& li = layers[l];
        const LayerWeights full = init_layer_weights(li, l, 3, Slice{0, li.out.c});
        std::vector<float> want(li.out.elements() * B);
        layer_forward(li, full, in.data(), want.data(), B);
        for (const SplitChoice& choice : {SplitChoice{li.name, SplitKind::channel},
                                         SplitChoice{li.name, SplitKind::element},
                                         SplitChoice{li.name, SplitKind::feature}}) {
          const auto allowed = allowed_splits(li);
          if (std::find(allowed.begin(), allowed.end(), choice.split) == allowed.end()) continue;
          for (std::size_t P : {2u, 3u, 4u, 5u, 7u, 33u}) {
            const PlanStep step = make_plan(PlanKind::per_layer, layers, B, P, {choice})[l];
            std::vector<float> got(want.size(), std::nanf(""));
            for (std::size_t r = 0; r < P; ++r)
              region_forward(li, step.split, step.layout.slices[r], init_layer_weights(li, l, 3, weight_rows(li, step, r)),
                             in.data(), got.data(), B);
            ASSERT_TRUE(bitwise_equal(got.data(), want.data(), want.size()))
                << net.name << " " << li.name << " " << to_string(choice.split) << " P=" << P << " B=" << B;
          }
        }
        in = want;
      }
    }
  }
}

TEST(Kernels, AnImageInABatchEqualsTheImageAlone) {
  const auto layers = describe(seed_network());
  std::vector<LayerWeights> weights;
  for (std::size_t l = 0; l < layers.size(); ++l)
    weights.push_back(init_layer_weights(layers[l], l, 11, Slice{0, layers[l].out.c}));
  const std::size_t B = 67;  // crosses the linear kernel's 64-image tile
  const std::vector<float> batch = random_floats(784 * B, 5);
  const std::vector<float> out = activation_to_batch_major(serial_forward(layers, weights, batch, B), 128, B);
  for (std::size_t b : {0u, 1u, 63u, 64u, 66u}) {
    std::vector<float> one(784);
    for (std::size_t p = 0; p < 784; ++p) one[p] = batch[p * B + b];
    const std::vector<float> alone = serial_forward(layers, weights, one, 1);
    ASSERT_TRUE(bitwise_equal(alone.data(), out.data() + b * 128, 128)) << "image " << b;
  }
}

TEST(Kernels, LogSoftmaxMatchesDoublePrecisionAndSlicesEqualTheWhole) {
  const std::size_t F = 26, B = 3;
  const std::vector<float> in = random_floats(F * B, 17);
  std::vector<float> whole(F * B);
  logsoftmax_forward(whole.data(), in.data(), F, B, Slice{0, F});
  for (std::size_t b = 0; b < B; ++b) {
    double m = in[b], sum = 0, prob = 0;
    for (std::size_t k = 0; k < F; ++k) m = std::max(m, double(in[k * B + b]));
    for (std::size_t k = 0; k < F; ++k) sum += std::exp(double(in[k * B + b]) - m);
    for (std::size_t k = 0; k < F; ++k) {
      const double want = double(in[k * B + b]) - m - std::log(sum);
      EXPECT_NEAR(whole[k * B + b], want, 1e-6) << "feature " << k << " image " << b;
      prob += std::exp(double(whole[k * B + b]));
    }
    EXPECT_NEAR(prob, 1.0, 1e-5);
  }
  for (const Slice s : {Slice{0, 9}, Slice{9, 9}, Slice{18, 8}, Slice{25, 1}, Slice{4, 0}}) {
    std::vector<float> part(s.count * B);
    logsoftmax_forward(part.data(), in.data(), F, B, s);
    EXPECT_TRUE(bitwise_equal(part.data(), whole.data() + s.begin * B, s.count * B)) << s.begin;
  }
}

// The rows, sample, tiles and 2-D grid regions are boxes the kernels compute in place in the whole tensors: for every
// layer that allows them, each rank's box equals the whole layer's values there bit for bit, with nothing written
// outside it and nothing read outside the input boxes the plan says it needs (the rest of its input is NaN, which
// would reach the output); P = 2..7 and 30 ranks (empty regions included), batch sizes from one image to more than
// a vector's lanes, and 257.
namespace {
// Copies `box` of one [C][H][W][B] tensor into the same place of another.
void copy_box(const float* from, float* to, const Shape& shape, std::size_t batch, const Box& box) {
  for (std::size_t c = box.c.begin; c < box.c.end(); ++c)
    for (std::size_t h = box.h.begin; h < box.h.end(); ++h)
      for (std::size_t w = box.w.begin; w < box.w.end(); ++w) {
        const std::size_t at = ((c * shape.h + h) * shape.w + w) * batch + box.b.begin;
        std::copy(from + at, from + at + box.b.count, to + at);
      }
}
}  // namespace

// One test per network, so that ctest runs them side by side (together they took 45 s under the sanitizers).
class BoxRegions : public ::testing::TestWithParam<int> {};

namespace {
NetworkSpec box_regions_network(int which) {
  return which == 0 ? seed_network() : which == 1 ? letters_network()
                                                  : seed_network(28, 28, 5, 7, GeluForm::erf, 4, 3);
}
}  // namespace

TEST_P(BoxRegions, EqualTheFullLayerBitForBit) {
  const NetworkSpec net = box_regions_network(GetParam());
  const auto layers = describe(net);
  for (std::size_t B : {1u, 3u, 17u, 64u, 257u}) {
    if (B == 257 && net.name != seed_network().name) continue;  // one network at the largest batch: time
    std::vector<float> in = random_floats(layers[0].in.elements() * B, 11);
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const LayerInfo& li = layers[l];
      const LayerWeights full = init_layer_weights(li, l, 4, Slice{0, li.out.c});
      std::vector<float> want(li.out.elements() * B);
      layer_forward(li, full, in.data(), want.data(), B);
      std::vector<float> got(want.size()), masked_in(in.size());
      for (const SplitKind split : {SplitKind::rows, SplitKind::sample, SplitKind::tiles, SplitKind::rows_channel,
                                    SplitKind::sample_channel}) {
        const auto allowed = allowed_splits(li);
        if (std::find(allowed.begin(), allowed.end(), split) == allowed.end()) continue;
        for (std::size_t P : {2u, 3u, 5u, 7u, 30u}) {
          if (B >= 64 && P != 3 && P != 7) continue;
          const PlanStep step = make_plan(PlanKind::per_layer, layers, B, P, {SplitChoice{li.name, split}})[l];
          for (std::size_t r = 0; r < P; ++r) {
            std::fill(masked_in.begin(), masked_in.end(), std::nanf(""));
            for (const Box& box : step.needed[r]) copy_box(in.data(), masked_in.data(), li.in, B, box);
            std::fill(got.begin(), got.end(), std::nanf(""));
            const LayerWeights rows = init_layer_weights(li, l, 4, weight_rows(li, step, r));
            for (const Box& box : step.own[r]) box_forward(li, box, rows, masked_in.data(), got.data(), B);
            // Inside the rank's boxes the layer's values, outside them the NaN it started with.
            std::vector<float> expect(want.size(), std::nanf(""));
            for (const Box& box : step.own[r]) copy_box(want.data(), expect.data(), li.out, B, box);
            ASSERT_TRUE(bitwise_equal(got.data(), expect.data(), want.size()))
                << net.name << " " << li.name << " " << to_string(split) << " P=" << P << " r=" << r << " B=" << B;
          }
        }
      }
      in = want;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, BoxRegions, ::testing::Values(0, 1, 2),
                         [](const ::testing::TestParamInfo<int>& network) {
                           return std::string(network.param == 0 ? "seed" : network.param == 1 ? "letters" : "seed_5x7");
                         });
