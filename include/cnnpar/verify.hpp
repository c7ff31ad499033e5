// Is the distributed run right? Every check in one place, no MPI: the experiment (experiment.hpp) collects every
// step's whole output after the timed passes and hands it here with the serial reference.
//
// Each step is checked on its own: the layer is recomputed serially (whole weights, the same kernels) on the
// distributed run's own input to that step (the previous step's collected output), and the distributed output must
// equal it bit for bit, or, for a row-parallel (input-feature) step, which sums the same products in another order,
// stay within a rigorous rounding bound per element (summation_error_bound). Checks that compose: if every step is
// right given its input, the run is right; an error shows at the step that made it. When every step is exact the
// final output must also equal the serial reference's bit for bit; otherwise its difference is reported.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "cnnpar/checksum.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/plan.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

struct StepCheck {
  bool exact_required = true;     // false for row-parallel steps
  Comparison comparison;          // the collected output against the layer recomputed on the collected input
  double worst_bound_ratio = 0;   // row-parallel: the largest |diff| / bound over the output elements
  bool passed() const { return exact_required ? comparison.bitwise_equal() : worst_bound_ratio <= 1.0; }
};

struct Verification {
  std::vector<StepCheck> steps;
  Comparison output;           // final output against the serial reference's
  bool exact_required = true;  // every step exact, so the final output must equal the serial one bit for bit
  // With fused kernels (a conv and its max-pool in one call, experiment.hpp) the steps are collected from a
  // layer-by-layer pass: the timed passes' final output against that pass's, which must be equal bit for bit.
  std::optional<Comparison> fused_passes;
  double worst_bound_ratio() const;
  bool passed() const;
};

// layers, plan steps and whole weights (one LayerWeights per layer, every row); `input` the network input and
// `step_outputs` every step's collected output, all in the activation layout; `serial_output` the serial reference's
// final output.
Verification verify_run(const std::vector<LayerInfo>& layers, const std::vector<PlanStep>& steps,
                        const std::vector<LayerWeights>& full_weights, std::span<const float> input,
                        const std::vector<std::vector<float>>& step_outputs, std::span<const float> serial_output,
                        std::size_t batch);

// A rigorous bound on |a - b| for two float sums of the same n terms taken in different orders: each differs from
// the exact sum by at most gamma_(n-1) * sum|terms| (Higham, "Accuracy and Stability of Numerical Algorithms", 2002,
// eq. 4.4; gamma_k = k*u / (1 - k*u), u = 2^-24), so their difference by at most twice that.
double summation_error_bound(std::size_t terms, double sum_of_magnitudes);

}  // namespace cnnpar
