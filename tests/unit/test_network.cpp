// Shape inference, split descriptions and the exact operation counts of the seed network.
#include <gtest/gtest.h>

#include "cnnpar/network.hpp"
#include "cnnpar/partition.hpp"

using namespace cnnpar;

TEST(Network, SeedShapesAndSplits) {
  const auto layers = describe(seed_network());
  ASSERT_EQ(layers.size(), 4u);
  EXPECT_EQ(layers[0].name, "conv");
  EXPECT_EQ(layers[0].out, (Shape{32, 26, 26}));
  EXPECT_EQ(layers[1].out, (Shape{32, 13, 13}));
  EXPECT_EQ(layers[2].out, (Shape{32, 13, 13}));
  EXPECT_EQ(layers[3].name, "fc");
  EXPECT_EQ(layers[3].in.elements(), 5408u);
  EXPECT_EQ(layers[3].out, (Shape{128, 1, 1}));
  EXPECT_EQ(layers[0].weight_count + layers[0].bias_count, 320u);  // 1,280 B
  EXPECT_EQ(layers[3].weight_count + layers[3].bias_count, 692352u);  // 2,769,408 B
}

TEST(Network, OperationCountsEqualClosedForms) {
  const auto layers = describe(seed_network());
  EXPECT_EQ(layer_ops(layers[0], 1), 26u * 26u * 32u * 9u);  // 194,688 multiply-adds
  EXPECT_EQ(layer_ops(layers[0], 1), 194688u);
  EXPECT_EQ(layers[0].bias_adds_per_output * layers[0].out.elements(), 21632u);
  EXPECT_EQ(layer_ops(layers[1], 1), 13u * 13u * 32u * 3u);  // 3 comparisons per 2x2 window
  EXPECT_EQ(layer_ops(layers[2], 1), 5408u);                 // one GELU evaluation per element
  EXPECT_EQ(layer_ops(layers[3], 1), 692224u);               // 5,408 * 128 multiply-adds
  // Per worker at P=4: 5,408 * 32 = 173,056 (the seed's 16,384 is wrong).
  EXPECT_EQ(block_slice(128, 4, 0).count * layers[3].ops_per_output, 173056u);
  EXPECT_EQ(block_slice(32, 4, 0).count * layers[0].channel_elems() * layers[0].ops_per_output, 48672u);
  EXPECT_EQ(layer_ops(layers[3], 64), 64u * 692224u);
}

TEST(Network, OtherSizesAndWidths) {
  const auto layers = describe(seed_network(32, 20, 7, 10, GeluForm::erf, 5, 3));
  EXPECT_EQ(layers[0].out, (Shape{7, 28, 16}));
  EXPECT_EQ(layers[1].out, (Shape{7, 9, 5}));  // floor mode
  EXPECT_EQ(layers[3].in.elements(), 7u * 9u * 5u);
  EXPECT_EQ(layers[3].out.c, 10u);
  EXPECT_EQ(layers[0].fan_in, 25u);
  EXPECT_EQ(layers[1].ops_per_output, 8u);
  EXPECT_EQ(layer_ops(layers[1], 1), 7u * 9u * 5u * 8u);
}

TEST(Network, ShapesThatDoNotFitAreErrorsNamingTheLayer) {
  try {
    describe(seed_network(28, 28, 32, 128, GeluForm::tanh, 29, 2));
    FAIL() << "expected NetworkError";
  } catch (const NetworkError& e) {
    EXPECT_NE(std::string(e.what()).find("conv: a 29x29 kernel does not fit its 1x28x28 input"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(describe(seed_network(28, 28, 32, 128, GeluForm::tanh, 15, 16)), NetworkError);
  EXPECT_THROW(describe(seed_network(0, 28)), NetworkError);
  EXPECT_THROW(describe(NetworkSpec{"empty", Shape{1, 4, 4}, {}}), NetworkError);
}

TEST(Network, OneLineDescription) {
  EXPECT_EQ(to_string(seed_network()), "input 1x28x28 -> conv3x3x32/s1 -> maxpool2/s2 -> gelu(tanh) -> linear128");
}

TEST(Network, LettersShapesNamesAndParameters) {
  const auto layers = describe(letters_network());
  ASSERT_EQ(layers.size(), 15u);
  const char* names[] = {"conv1", "pool1", "gelu1", "conv2", "pool2", "gelu2", "conv3", "pool3",
                         "gelu3", "fc1",   "gelu4", "fc2",   "gelu5", "fc3",   "logsoftmax"};
  for (std::size_t l = 0; l < layers.size(); ++l) EXPECT_EQ(layers[l].name, names[l]);
  EXPECT_EQ(layers[0].out, (Shape{32, 26, 26}));
  EXPECT_EQ(layers[1].out, (Shape{32, 13, 13}));
  EXPECT_EQ(layers[3].out, (Shape{64, 11, 11}));
  EXPECT_EQ(layers[4].out, (Shape{64, 5, 5}));
  EXPECT_EQ(layers[6].out, (Shape{128, 3, 3}));
  EXPECT_EQ(layers[7].out, (Shape{128, 1, 1}));
  EXPECT_EQ(layers[9].in.elements(), 128u);
  EXPECT_EQ(layers[9].out, (Shape{512, 1, 1}));
  EXPECT_EQ(layers[11].out, (Shape{256, 1, 1}));
  EXPECT_EQ(layers[13].out, (Shape{26, 1, 1}));
  EXPECT_EQ(layers[14].out, (Shape{26, 1, 1}));
  EXPECT_EQ(layers[3].weight_count, 64u * 32u * 9u);
  EXPECT_EQ(layers[13].weight_count, 26u * 256u);
  EXPECT_EQ(to_string(letters_network()),
            "input 1x28x28 -> conv3x3x32/s1 -> maxpool2/s2 -> gelu(tanh) -> conv3x3x64/s1 -> maxpool2/s2 -> "
            "gelu(tanh) -> conv3x3x128/s1 -> maxpool2/s2 -> gelu(tanh) -> linear512 -> gelu(tanh) -> linear256 -> "
            "gelu(tanh) -> linear26 -> logsoftmax");
}

TEST(Network, LogSoftmaxNeedsAFlatVector) {
  NetworkSpec net{"bad", Shape{1, 8, 8}, {Conv2dSpec{4, 3, 1}, LogSoftmaxSpec{}}};
  try {
    describe(net);
    FAIL() << "expected NetworkError";
  } catch (const NetworkError& e) {
    EXPECT_NE(std::string(e.what()).find("logsoftmax: LogSoftmax needs a flat vector"), std::string::npos) << e.what();
  }
}
