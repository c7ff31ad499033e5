// Verification in one place (verify.hpp): exact steps must match bit for bit, row-parallel steps stay within the
// rounding bound, and a wrong step is named.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "cnnpar/reference.hpp"
#include "cnnpar/verify.hpp"

using namespace cnnpar;

namespace {

struct Case {
  std::vector<LayerInfo> layers;
  std::vector<LayerWeights> weights;
  std::vector<float> input, serial;
  std::vector<std::vector<float>> outputs;  // per layer, serial
  std::size_t batch = 3;
};

Case seed_case() {
  Case c;
  c.layers = describe(seed_network(12, 12, 4, 6));
  for (std::size_t l = 0; l < c.layers.size(); ++l)
    c.weights.push_back(init_layer_weights(c.layers[l], l, 5, Slice{0, c.layers[l].out.c}));
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> d(0.0f, 1.0f);
  c.input.resize(144 * c.batch);
  for (float& v : c.input) v = d(gen);
  c.serial = serial_forward(c.layers, c.weights, c.input, c.batch, nullptr, &c.outputs);
  return c;
}

}  // namespace

TEST(Verify, TheSerialOutputsPassEveryPlan) {
  const Case c = seed_case();
  for (PlanKind plan : kAllPlans) {
    const Verification v = verify_run(c.layers, make_plan(plan, c.layers, c.batch, 3), c.weights, c.input,
                                      c.outputs, c.serial, c.batch);
    EXPECT_TRUE(v.passed()) << to_string(plan);
    EXPECT_EQ(v.exact_required, plan != PlanKind::fused);
    EXPECT_TRUE(v.output.bitwise_equal());
  }
}

TEST(Verify, OneFlippedBitFailsAnExactStepAndNamesIt) {
  Case c = seed_case();
  const auto steps = make_plan(PlanKind::per_layer, c.layers, c.batch, 2);
  auto outputs = c.outputs;
  std::uint32_t bits;
  std::memcpy(&bits, &outputs[1][7], 4);
  bits ^= 1;
  std::memcpy(&outputs[1][7], &bits, 4);
  const Verification v = verify_run(c.layers, steps, c.weights, c.input, outputs, c.serial, c.batch);
  EXPECT_FALSE(v.passed());
  EXPECT_TRUE(v.steps[0].passed());
  EXPECT_FALSE(v.steps[1].passed());
  EXPECT_EQ(v.steps[1].comparison.mismatches, 1u);
}

TEST(Verify, RowParallelStepsAreBoundedNotExact) {
  Case c = seed_case();
  const auto steps = make_plan(PlanKind::fused, c.layers, c.batch, 3);
  ASSERT_TRUE(steps.back().partial());
  auto outputs = c.outputs;
  // A reordering-sized error passes; an error of ten times the bound fails.
  const std::vector<double> mags = linear_term_magnitudes(c.layers[3], c.weights[3], c.outputs[2], c.batch);
  const double bound = summation_error_bound(c.layers[3].in.elements() + 1, mags[0]);
  outputs[3][0] = static_cast<float>(double(c.outputs[3][0]) + 0.4 * bound);
  Verification v = verify_run(c.layers, steps, c.weights, c.input, outputs, c.serial, c.batch);
  EXPECT_TRUE(v.passed()) << v.worst_bound_ratio();
  EXPECT_LE(v.worst_bound_ratio(), 1.0);
  outputs[3][0] = static_cast<float>(double(c.outputs[3][0]) + 10 * bound);
  v = verify_run(c.layers, steps, c.weights, c.input, outputs, c.serial, c.batch);
  EXPECT_FALSE(v.passed());
  EXPECT_GT(v.steps[3].worst_bound_ratio, 1.0);
}

TEST(Verify, TheBoundIsHighamsGamma) {
  EXPECT_EQ(summation_error_bound(1, 5.0), 0.0);
  const double u = std::ldexp(1.0, -24);
  EXPECT_DOUBLE_EQ(summation_error_bound(11, 2.0), 2.0 * (10 * u / (1 - 10 * u)) * 2.0);
}
