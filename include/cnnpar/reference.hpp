// One layer over a slice, and the serial reference forward pass built from it. No MPI: the distributed forward
// pass (distributed.hpp) calls the same layer_forward on each rank's slice, so the two can only differ by what the
// consolidation delivers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cnnpar/aligned.hpp"
#include "cnnpar/idx.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/plan.hpp"
#include "cnnpar/weights.hpp"

namespace cnnpar {

// The region of `layer` a plan step gives a rank (plan.hpp): `slice` of its split's items (output channels,
// elements or features, written at their offset in out_full), or for an input-feature step partial sums of every
// output over those input features into out_full (the bias added when add_bias: by one rank only). `weights` holds
// the rows (or columns) of that region. in_full: the whole input activation [.., B].
void region_forward(const LayerInfo& layer, SplitKind split, Slice slice, const LayerWeights& weights,
                    const float* in_full, float* out_full, std::size_t batch, bool add_bias = true);

// A convolution and the max-pooling after it over the same output channels `slice` (plan.hpp: fuses_with_next),
// computed together by the fused kernel (kernels.hpp), part by part, without writing the conv output: the pooled
// channels go to their offset in out_full. With `gelu` (the GELU after the pool, fused too), each part's pooled rows
// go through GELU at once and only the GELU output is written to out_full: the pooled tensor does not exist either.
// The layers' times are measured apart, as sums over the parts (a clock read between the conv, pool and GELU of each
// part), so they can be reported as separate layers.
struct FusedSeconds {
  double conv = 0, pool = 0, gelu = 0;
};
FusedSeconds conv_pool_region_forward(const LayerInfo& conv, const LayerInfo& pool, const LayerInfo* gelu, Slice slice,
                                      const LayerWeights& conv_weights, const float* in_full, float* out_full,
                                      std::size_t batch, AlignedFloats& workspace);

// A rows, sample, tiles or 2-D step's region: the kernels' box forms (kernels.hpp) compute `box` of the layer's
// output in place in the whole tensors, reading the inputs its windows cover, with no copy in or out. `weights` hold
// the rows of box.c (weight_rows: every row for rows, sample and tiles; the rank's block for the *-channel splits).
// Every output element sees the operations of the whole layer (its window, its weights, its order): bit for bit the
// serial result.
void box_forward(const LayerInfo& layer, const Box& box, const LayerWeights& weights, const float* in_full,
                 float* out_full, std::size_t batch);

// The whole layer (weights: every row).
void layer_forward(const LayerInfo& layer, const LayerWeights& weights, const float* in_full, float* out_full,
                   std::size_t batch);

// Pixels scaled to [0, 1] (p / 255 in float) in the C,H,W,B activation layout, C = 1.
std::vector<float> images_to_activation(const ImageBatch& images);

// [O][B] (activation layout) -> [B][O] (PyTorch's [N, features]).
std::vector<float> activation_to_batch_major(std::span<const float> act, std::size_t features, std::size_t batch);

// The serial reference as the experiment times it: whole weights, every layer's output buffer allocated once, so a
// timed pass does the same work under the same conditions as a distributed pass on one rank (preallocated buffers,
// warm pages): the only differences left are the boundaries' MPI calls. Its per-layer times are the kernel alone,
// as the distributed compute times are.
// A convolution followed by max-pooling is computed by the fused kernel (fuses_with_next: the serial reference is the
// plan of one rank) unless `fuse` is false; then the conv output is not kept (the dump comes from the distributed
// run's layer-by-layer pass, experiment.hpp).
class SerialReference {
 public:
  SerialReference(const std::vector<LayerInfo>& layers, const std::vector<LayerWeights>& weights, std::size_t batch,
                  bool fuse = true);
  // One pass over `input` (the activation layout); when layer_seconds is given, each layer's kernel time. Returns
  // the final activation, valid until the next run.
  std::span<const float> run(std::span<const float> input, std::vector<double>* layer_seconds = nullptr);
  bool fused(std::size_t layer) const { return fused_.at(layer); }  // computed with the next layer by one call

 private:
  const std::vector<LayerInfo>& layers_;
  const std::vector<LayerWeights>& weights_;
  std::size_t batch_;
  std::vector<bool> fused_;  // [layer] computed with the next one (a conv and its max-pool)
  std::vector<AlignedFloats> outputs_;  // cache-line aligned (aligned.hpp)
  AlignedFloats workspace_;
};

// The whole network on one process, every layer over all of its items. Returns the final activation [O][B];
// when `layer_seconds` is given, it receives each layer's compute time of this call; when `layer_outputs` is given,
// every layer's output activation.
std::vector<float> serial_forward(const std::vector<LayerInfo>& layers, const std::vector<LayerWeights>& weights,
                                  std::span<const float> input, std::size_t batch,
                                  std::vector<double>* layer_seconds = nullptr,
                                  std::vector<std::vector<float>>* layer_outputs = nullptr);

// Per output element [O][B] of a linear layer: the sum of |w*x| over its terms, the bias included (for
// summation_error_bound in report.hpp). `in` is the layer's input activation [F][B], `weights` the whole layer.
std::vector<double> linear_term_magnitudes(const LayerInfo& layer, const LayerWeights& weights,
                                           std::span<const float> in, std::size_t batch);

}  // namespace cnnpar
