// Verification of a distributed run against the serial reference (see verify.hpp).
#include "cnnpar/verify.hpp"

#include <algorithm>
#include <cmath>

#include "cnnpar/reference.hpp"

namespace cnnpar {

double summation_error_bound(std::size_t terms, double sum_of_magnitudes) {
  const double u = 0x1.0p-24, k = static_cast<double>(terms > 0 ? terms - 1 : 0);
  return 2.0 * (k * u / (1.0 - k * u)) * sum_of_magnitudes;
}

double Verification::worst_bound_ratio() const {
  double worst = 0;
  for (const StepCheck& s : steps) worst = std::max(worst, s.worst_bound_ratio);
  return worst;
}

bool Verification::passed() const {
  const bool steps_pass = std::all_of(steps.begin(), steps.end(), [](const StepCheck& s) { return s.passed(); });
  return steps_pass && (!exact_required || output.bitwise_equal()) && (!fused_passes || fused_passes->bitwise_equal());
}

Verification verify_run(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps,
                        const std::vector<LayerWeights>& full_weights, std::span<const float> input,
                        const std::vector<std::vector<float>>& step_outputs, std::span<const float> serial_output,
                        std::size_t batch) {
  Verification v;
  std::span<const float> in = input;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const LayerInfo& li = layers[steps[s].layer];
    const LayerWeights& w = full_weights[steps[s].layer];
    std::vector<float> want(li.out.elements() * batch);
    layer_forward(li, w, in.data(), want.data(), batch);
    StepCheck check;
    check.comparison = compare(step_outputs[s], want);
    if (steps[s].partial()) {
      // Same F products and the bias, summed in another order: bound every element by its own terms.
      check.exact_required = false;
      v.exact_required = false;
      const std::vector<double> magnitudes = linear_term_magnitudes(li, w, in, batch);
      for (std::size_t k = 0; k < want.size(); ++k) {
        const double bound = summation_error_bound(li.in.elements() + 1, magnitudes[k]);
        const double diff = std::fabs(double(step_outputs[s][k]) - double(want[k]));
        check.worst_bound_ratio =
            std::max(check.worst_bound_ratio, bound > 0 ? diff / bound : (diff > 0 ? INFINITY : 0.0));
      }
    }
    v.steps.push_back(check);
    in = step_outputs[s];
  }
  v.output = compare(step_outputs.back(), serial_output);
  return v;
}

}  // namespace cnnpar
