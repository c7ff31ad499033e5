// The distributed forward pass equals the serial reference on every rank, for every consolidation kind and plan:
// bit for bit where the plan keeps the serial summation order, within the summation-order bound for the
// row-parallel plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "cnnpar/distributed.hpp"
#include "cnnpar/idx.hpp"
#include "cnnpar/mpi_runtime.hpp"
#include "cnnpar/reference.hpp"
#include "cnnpar/verify.hpp"
#include "mpi_test_env.hpp"

using namespace cnnpar;
using cnnpar::testing::runtime;

namespace {

// Every plan with its own splits, and the per-layer plan with every layer by rows (where it can) or by sample.
std::vector<std::pair<PlanKind, std::string>> plans_and_cuts(const std::vector<LayerInfo>& layers) {
  std::vector<std::pair<PlanKind, std::string>> out;
  for (PlanKind plan : kAllPlans) out.emplace_back(plan, "");
  for (const SplitKind k : {SplitKind::rows, SplitKind::sample, SplitKind::tiles, SplitKind::rows_channel,
                           SplitKind::sample_channel}) {
    std::string choices;
    for (const LayerInfo& li : layers) {
      const auto allowed = allowed_splits(li);
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end())
        choices += (choices.empty() ? "" : ",") + li.name + "=" + std::string(to_string(k));
    }
    out.emplace_back(PlanKind::per_layer, choices);
  }
  return out;
}

void expect_distributed_equals_serial(const NetworkSpec& net, std::size_t batch, std::uint64_t seed) {
  const auto P = static_cast<std::size_t>(runtime->size()), me = static_cast<std::size_t>(runtime->rank());
  const auto layers = describe(net);
  const ImageBatch images = parse_idx_images(embedded_sample_images(), "sample", 5, batch);
  const std::vector<float> act = images_to_activation(images);

  std::vector<LayerWeights> full;
  for (std::size_t l = 0; l < layers.size(); ++l)
    full.push_back(init_layer_weights(layers[l], l, seed, Slice{0, layers[l].out.c}));
  const std::vector<float> serial = serial_forward(layers, full, act, batch);

  for (std::size_t rpn : {0u, 2u}) {
    const Topology topo(runtime->comm(), rpn);
    for (ConsolidationKind kind : kAllConsolidations) {
      if (!why_unavailable(kind, topo.map()).empty()) continue;
      for (const auto& [plan, choices] : plans_and_cuts(layers)) {
        const std::string what = net.name + " " + choices + " " + std::string(to_string(kind)) + "/" +
                                 std::string(to_string(plan)) + " ranks-per-node " + std::to_string(rpn) +
                                 ", rank " + std::to_string(me) + " of " + std::to_string(P) + ", batch " +
                                 std::to_string(batch);
        const std::vector<PlanStep> steps =
            make_plan(plan, layers, batch, P, choices.empty() ? std::vector<SplitChoice>{} : parse_split_choices(choices));
        if (!why_unavailable(kind, topo.map(), steps).empty()) continue;
        auto c = make_consolidation(kind, topo, act.size(), steps, &steady_seconds);
        if (me == 0) c->stage_input(act);  // only the root holds the input
        DistributedForward forward(layers, steps, batch, me, init_step_weights(layers, steps, me, seed), *c);
        forward.run(0, nullptr);
        forward.run(0, nullptr);  // a second pass over the same buffers gives the same answer
        // The timed passes' output (a conv and its max-pool fused where the plan allows: fuses_with_next).
        const std::vector<float> got(forward.output().begin(), forward.output().end());
        ASSERT_EQ(got.size(), serial.size()) << what;
        // Every rank holds the same output (rank 0's, broadcast for the comparison).
        std::vector<float> root_copy(got.begin(), got.end());
        MPI_Bcast(root_copy.data(), static_cast<int>(root_copy.size()), MPI_FLOAT, 0, runtime->comm());
        EXPECT_EQ(std::memcmp(got.data(), root_copy.data(), got.size() * sizeof(float)), 0) << what;
        // Every step's whole output, from a layer-by-layer pass (a fused conv writes no output), checked step by
        // step against the serial layer (verify.hpp); that pass's output equals the fused passes' bit for bit.
        EXPECT_EQ(forward.fuses(), choices.empty() && (plan != PlanKind::per_layer || P == 1)) << what;
        forward.run(0, nullptr, true);
        EXPECT_EQ(std::memcmp(forward.output().data(), got.data(), got.size() * sizeof(float)), 0) << what;
        std::vector<std::vector<float>> outputs;
        for (std::size_t s = 0; s < steps.size(); ++s) outputs.push_back(collect_output(*c, s, steps[s], topo));
        if (me != 0) continue;
        const Verification v = verify_run(layers, steps, full, act, outputs, serial, batch);
        for (std::size_t s = 0; s < steps.size(); ++s)
          EXPECT_TRUE(v.steps[s].passed()) << what << ", step " << s << " (" << layers[s].name << "): "
                                           << v.steps[s].comparison.mismatches << " differ, bound ratio "
                                           << v.steps[s].worst_bound_ratio;
        EXPECT_TRUE(v.passed()) << what;
        EXPECT_EQ(v.exact_required, plan != PlanKind::fused || !choices.empty()) << what;
        if (v.exact_required) {
          EXPECT_EQ(std::memcmp(got.data(), serial.data(), serial.size() * sizeof(float)), 0) << what;
        }
      }
    }
  }
}

}  // namespace

TEST(Distributed, SeedNetworkOneImage) { expect_distributed_equals_serial(seed_network(), 1, 42); }
TEST(Distributed, SeedNetworkBatchOf9) { expect_distributed_equals_serial(seed_network(), 9, 7); }
TEST(Distributed, LettersNetworkBatchOf3) { expect_distributed_equals_serial(letters_network(), 3, 5); }
TEST(Distributed, LettersNetworkErfOneImage) {
  expect_distributed_equals_serial(letters_network(28, 28, GeluForm::erf), 1, 9);
}
TEST(Distributed, NarrowNetworkErfBatchOf4) {
  expect_distributed_equals_serial(seed_network(28, 28, 3, 2, GeluForm::erf, 5, 3), 4, 1);
}
