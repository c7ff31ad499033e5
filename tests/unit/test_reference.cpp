// Input scaling and layout conversions, and the serial forward pass on a tiny network by hand.
#include <gtest/gtest.h>

#include "cnnpar/kernels.hpp"
#include "cnnpar/reference.hpp"

using namespace cnnpar;

TEST(Reference, ImagesBecomeBatchInnermostActivationsScaledToUnit) {
  ImageBatch images;
  images.count = 2, images.rows = 1, images.cols = 3;
  images.pixels = {0, 255, 51, 10, 20, 30};
  const auto act = images_to_activation(images);
  EXPECT_EQ(act, (std::vector<float>{0.0f, 10 / 255.0f, 1.0f, 20 / 255.0f, 51 / 255.0f, 30 / 255.0f}));
}

TEST(Reference, ActivationToBatchMajor) {
  const std::vector<float> act = {1, 2, 3, 4, 5, 6};  // [F=3][B=2]
  EXPECT_EQ(activation_to_batch_major(act, 3, 2), (std::vector<float>{1, 3, 5, 2, 4, 6}));
}

TEST(Reference, SerialForwardByHand) {
  // 1x2x2 input, conv 1x1 with one filter (w=2, b=1), pool 2x2 -> 1 value, GELU, linear 1 -> 2.
  const NetworkSpec net{"by-hand", Shape{1, 2, 2}, {Conv2dSpec{1, 1, 1}, MaxPool2dSpec{2, 2}, GeluSpec{}, LinearSpec{2}}};
  const auto layers = describe(net);
  std::vector<LayerWeights> w(4);
  w[0] = {Slice{0, 1}, {2.0f}, {1.0f}};
  w[1] = {Slice{0, 1}, {}, {}};
  w[2] = {Slice{0, 1}, {}, {}};
  w[3] = {Slice{0, 2}, {1.0f, -2.0f}, {0.5f, 0.0f}};
  const std::vector<float> input = {0.1f, 0.4f, 0.3f, 0.2f};
  std::vector<double> secs;
  const auto out = serial_forward(layers, w, input, 1, &secs);
  const float g = gelu(2.0f * 0.4f + 1.0f, GeluForm::tanh);
  EXPECT_EQ(out, (std::vector<float>{g + 0.5f, -2.0f * g}));
  ASSERT_EQ(secs.size(), 4u);
  for (double s : secs) EXPECT_GE(s, 0.0);
}
