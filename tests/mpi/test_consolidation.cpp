// Each consolidation delivers exactly the other ranks' slices: payloads are stamped with the sender's rank and the
// element's index, so every element proves where it came from, and the bytes it reports equal s*(N - n_r).
#include <gtest/gtest.h>

#include "cnnpar/consolidation.hpp"
#include "cnnpar/distributed.hpp"
#include "mpi_test_env.hpp"

using namespace cnnpar;
using cnnpar::testing::runtime;

namespace {

// A value that names its sender and position exactly (both well inside float's 24-bit integer range here).
float stamp(std::size_t rank, std::size_t elem) { return static_cast<float>(rank * 1000003 % 8191) * 2048.0f + static_cast<float>(elem % 2048); }

void check_layers(const std::vector<LayerInfo>& layers, std::size_t batch) {
  const auto P = static_cast<std::size_t>(runtime->size()), me = static_cast<std::size_t>(runtime->rank());
  const auto boundaries = make_boundaries(layers, batch, P);
  auto c = make_consolidation(ConsolidationKind::allgatherv, runtime->comm(), 784 * batch, boundaries,
                              &steady_seconds);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const BoundaryLayout& b = boundaries[l];
    std::span<float> t = c->tensor(l);
    ASSERT_EQ(t.size(), b.total_elems());
    std::fill(t.begin(), t.end(), -1.0f);
    const std::size_t lo = static_cast<std::size_t>(b.displs[me]), n = static_cast<std::size_t>(b.counts[me]);
    for (std::size_t e = lo; e < lo + n; ++e) t[e] = stamp(me, e);
    const ConsolidationSample s = c->consolidate(l);
    for (std::size_t e = 0; e < t.size(); ++e) {
      const std::size_t owner = block_owner(b.items, P, e / b.item_elems);
      ASSERT_EQ(t[e], stamp(owner, e)) << layers[l].name << " element " << e << " should come from rank " << owner;
    }
    const std::size_t owned = b.slices[me].count;
    EXPECT_EQ(s.bytes_received, sizeof(float) * b.item_elems * (b.items - owned)) << layers[l].name;
    EXPECT_EQ(s.bytes_sent, sizeof(float) * b.item_elems * owned * (P - 1)) << layers[l].name;
    EXPECT_LE(s.enter_s, s.exit_s);
  }
}

}  // namespace

TEST(Consolidation, AllgathervDeliversStampedSlicesSeedNetwork) { check_layers(describe(seed_network()), 1); }

TEST(Consolidation, AllgathervDeliversStampedSlicesBatchedOddNetwork) {
  check_layers(describe(seed_network(28, 28, 7, 5, GeluForm::tanh, 3, 2)), 3);
}

TEST(Consolidation, BroadcastInputReachesEveryRank) {
  const auto P = static_cast<std::size_t>(runtime->size());
  auto c = make_consolidation(ConsolidationKind::allgatherv, runtime->comm(), 784 * 2,
                              make_boundaries(describe(seed_network()), 2, P), &steady_seconds);
  std::span<float> in = c->input();
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = runtime->rank() == 0 ? float(i) : -1.0f;
  const ConsolidationSample s = c->broadcast_input(0);
  for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(in[i], float(i));
  EXPECT_EQ(s.bytes_received, runtime->rank() == 0 ? 0u : 784u * 2u * 4u);
}
