// The distributed forward pass equals the serial reference bit for bit on every rank.
#include <gtest/gtest.h>

#include <cstring>

#include "cnnpar/distributed.hpp"
#include "cnnpar/idx.hpp"
#include "cnnpar/reference.hpp"
#include "mpi_test_env.hpp"

using namespace cnnpar;
using cnnpar::testing::runtime;

namespace {

void expect_distributed_equals_serial(const NetworkSpec& net, std::size_t batch, std::uint64_t seed) {
  const auto P = static_cast<std::size_t>(runtime->size()), me = static_cast<std::size_t>(runtime->rank());
  const auto layers = describe(net);
  const auto boundaries = make_boundaries(layers, batch, P);
  const ImageBatch images = parse_idx_images(embedded_sample_images(), "sample", 5, batch);
  const std::vector<float> act = images_to_activation(images);

  auto c = make_consolidation(ConsolidationKind::allgatherv, runtime->comm(), act.size(), boundaries,
                              &steady_seconds);
  if (me == 0) std::copy(act.begin(), act.end(), c->input().begin());  // only the root holds the input
  DistributedForward forward(layers, batch, init_own_weights(layers, boundaries, me, seed), *c);
  forward.run(0, nullptr);
  forward.run(0, nullptr);  // a second pass over the same buffers gives the same answer

  std::vector<LayerWeights> full;
  for (std::size_t l = 0; l < layers.size(); ++l)
    full.push_back(init_layer_weights(layers[l], l, seed, Slice{0, layers[l].split_items}));
  const std::vector<float> serial = serial_forward(layers, full, act, batch);
  const std::span<const float> got = forward.output();
  ASSERT_EQ(got.size(), serial.size());
  EXPECT_EQ(std::memcmp(got.data(), serial.data(), serial.size() * sizeof(float)), 0)
      << "rank " << me << " of " << P << ", batch " << batch;
}

}  // namespace

TEST(Distributed, SeedNetworkOneImage) { expect_distributed_equals_serial(seed_network(), 1, 42); }
TEST(Distributed, SeedNetworkBatchOf9) { expect_distributed_equals_serial(seed_network(), 9, 7); }
TEST(Distributed, NarrowNetworkErfBatchOf4) {
  expect_distributed_equals_serial(seed_network(28, 28, 3, 2, GeluForm::erf, 5, 3), 4, 1);
}
