// The network spec parser (--net FILE) on good and bad texts, without files or MPI.
#include <gtest/gtest.h>

#include <string>

#include "cnnpar/network_spec.hpp"

using namespace cnnpar;

namespace {

std::string error_of(const std::string& text) {
  try {
    describe(NetworkSpec{"t.net", Shape{1, 28, 28}, parse_network_spec(text, "t.net")});
  } catch (const NetworkError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(NetworkSpec, TheLettersSpecEqualsTheBuiltInNetwork) {
  const std::string text = R"(# the seed's complete demo
conv 32 kernel=3          # 28 -> 26
maxpool 2
gelu tanh
conv 64
pool 2 stride=2
gelu
conv 128 kernel=3 stride=1
maxpool 2
gelu
flatten                   # no-op: linear flattens C,H,W
linear 512
gelu
fc 256
gelu
linear 26
logsoftmax
)";
  const NetworkSpec parsed{"letters", Shape{1, 28, 28}, parse_network_spec(text, "letters.net")};
  EXPECT_EQ(to_string(parsed), to_string(letters_network()));
  const auto a = describe(parsed), b = describe(letters_network());
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t l = 0; l < a.size(); ++l) {
    EXPECT_EQ(a[l].name, b[l].name);
    EXPECT_EQ(a[l].out, b[l].out);
  }
}

TEST(NetworkSpec, DefaultsAndForms) {
  const auto layers = parse_network_spec("conv 8\r\nmaxpool 3\ngelu erf\nlinear 10", "x");
  ASSERT_EQ(layers.size(), 4u);
  EXPECT_EQ(std::get<Conv2dSpec>(layers[0]).kernel, 3u);
  EXPECT_EQ(std::get<Conv2dSpec>(layers[0]).stride, 1u);
  EXPECT_EQ(std::get<MaxPool2dSpec>(layers[1]).stride, 3u);
  EXPECT_EQ(std::get<GeluSpec>(layers[2]).form, GeluForm::erf);
  EXPECT_EQ(std::get<LinearSpec>(layers[3]).out_features, 10u);
}

TEST(NetworkSpec, BadSpecsNameTheLineAndTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"conv 32\nbatchnorm\n", "t.net:2: unknown layer 'batchnorm'"},
      {"conv\n", "t.net:1: conv needs its number of filters"},
      {"conv 0\n", "t.net:1: conv filters must be a positive integer (got '0')"},
      {"conv -3\n", "conv filters must be a positive integer (got '-3')"},
      {"conv 32 kernal=3\n", "t.net:1: unexpected 'kernal=3' after conv (options: kernel=N, stride=N)"},
      {"conv 32 kernel=3 kernel=5\n", "kernel given twice"},
      {"conv 99999999999\n", "is too large"},
      {"gelu fast\n", "gelu takes tanh or erf (got 'fast')"},
      {"linear 10 extra\n", "unexpected 'extra' after linear (it takes no options)"},
      {"logsoftmax 3\n", "after logsoftmax"},
      {"# nothing\n\n", "t.net: the spec has no layers"},
      {"conv 8 kernel=29\n", "conv: a 29x29 kernel does not fit its 1x28x28 input"},
      {"conv 8\nlogsoftmax\n", "logsoftmax: LogSoftmax needs a flat vector"},
      {"linear 10\nmaxpool 2\n", "pool: a 2x2 pooling window does not fit its 10x1x1 input"},
  };
  for (const auto& [text, want] : cases) {
    const std::string got = error_of(text);
    EXPECT_NE(got.find(want), std::string::npos) << "spec: " << text << "\nerror: " << got << "\nwanted: " << want;
  }
}

TEST(NetworkSpec, BuildNetworkPicksSeedLettersOrTheSpec) {
  EXPECT_EQ(to_string(build_network("seed", "", Shape{1, 28, 28}, 32, 128, 3, 2, GeluForm::tanh)),
            to_string(seed_network()));
  EXPECT_EQ(build_network("letters", "", Shape{1, 28, 28}, 32, 128, 3, 2, GeluForm::tanh).name, "letters");
  const NetworkSpec file = build_network("my.net", "linear 3\n", Shape{1, 4, 4}, 32, 128, 3, 2, GeluForm::tanh);
  EXPECT_EQ(file.name, "my.net");
  EXPECT_EQ(describe(file).back().out.c, 3u);
}
