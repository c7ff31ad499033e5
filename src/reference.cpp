// layer_forward dispatch and the serial reference (see reference.hpp).
#include "cnnpar/reference.hpp"

#include <chrono>

#include "cnnpar/sim_compute.hpp"
#ifdef CNNPAR_SMPI
#include <mpi.h>
#endif
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cnnpar/kernels.hpp"

namespace cnnpar {

namespace {
// The serial layers' clock: the real steady clock, or under SMPI the simulated one (each layer charges its operations
// at the calibrated rate: sim_compute.hpp), so that serial and distributed times are on the same footing.
double layer_clock() {
#ifdef CNNPAR_SMPI
  return MPI_Wtime();
#else
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
#endif
}
}  // namespace


void region_forward(const LayerInfo& layer, SplitKind split, Slice slice, const LayerWeights& weights,
                    const float* in_full, float* out_full, std::size_t batch, bool add_bias) {
  const std::size_t B = batch;
  if (split == SplitKind::input_feature) {
    const std::size_t O = layer.out.elements();
    linear_partial_forward(out_full, in_full, weights.weight.data(), O, B, slice);
    if (add_bias)
      for (std::size_t o = 0; o < O; ++o)
        for (std::size_t b = 0; b < B; ++b) out_full[o * B + b] += weights.bias[o];
    return;
  }
  if (computes_box(split))
    throw std::logic_error("region_forward: a strided region is a box (box_forward)");
  // Every other split is a range of output elements; channel-like splits count whole channels.
  const std::size_t unit = split == SplitKind::element ? 1 : layer.channel_elems();
  const Slice elems{slice.begin * unit, slice.count * unit};
  float* out = out_full + elems.begin * B;
  if (const auto* conv = std::get_if<Conv2dSpec>(&layer.spec)) {
    conv2d_forward(out, in_full, weights.weight.data(), weights.bias.data(), layer.in, *conv, B, slice);
  } else if (const auto* pool = std::get_if<MaxPool2dSpec>(&layer.spec)) {
    maxpool2d_forward(out, in_full, layer.in, *pool, B, slice);
  } else if (const auto* g = std::get_if<GeluSpec>(&layer.spec)) {
    gelu_forward(out, in_full + elems.begin * B, elems.count * B, g->form);
  } else if (std::holds_alternative<LinearSpec>(layer.spec)) {
    linear_forward(out, in_full, weights.weight.data(), weights.bias.data(), layer.in.elements(), B, slice);
  } else {
    logsoftmax_forward(out, in_full, layer.in.elements(), B, slice);
  }
}

FusedSeconds conv_pool_region_forward(const LayerInfo& conv, const LayerInfo& pool, const LayerInfo* gelu, Slice slice,
                                      const LayerWeights& conv_weights, const float* in_full, float* out_full,
                                      std::size_t batch, AlignedFloats& workspace) {
  const ConvPoolArgs args{in_full, conv_weights.weight.data(), conv_weights.bias.data(), conv.in,
                          std::get<Conv2dSpec>(conv.spec), std::get<MaxPool2dSpec>(pool.spec), batch, slice};
  const std::size_t conv_floats = conv2d_maxpool2d_workspace(conv.in, args.conv, args.pool, batch);
  const std::size_t plane = pool.out.h * pool.out.w * batch;  // one pooled channel, the whole batch
  const std::size_t pooled_floats = gelu ? kFusedConvChannels * plane : 0;  // at most one part's pooled rows
  workspace.resize(conv_floats + pooled_floats);
  float* pooled = workspace.data() + conv_floats;
  float* out = out_full + slice.begin * plane;
  FusedSeconds t;
  const double t0 = layer_clock();
  const std::size_t parts = conv2d_maxpool2d_parts(args);
  if (parts == 0) {  // no channels here: each layer takes what an empty call takes, as when they run one by one
    double p0 = layer_clock();
    t.pool = layer_clock() - p0;
    p0 = layer_clock();
    if (gelu) t.gelu = layer_clock() - p0;
  }
  for (std::size_t p = 0; p < parts; ++p) {
    conv2d_maxpool2d_conv_part(args, p, workspace.data());
    const double p0 = layer_clock();
    if (!gelu) {
      conv2d_maxpool2d_pool_part(args, p, workspace.data(), out);
      t.pool += layer_clock() - p0;
      continue;
    }
    conv2d_maxpool2d_pool_part(args, p, workspace.data(), pooled, true);
    const double p1 = layer_clock();
    const ConvPoolPart part = conv2d_maxpool2d_part(args, p);
    const std::size_t run = part.rows * pool.out.w * batch;  // the part's pooled rows of one channel
    const GeluForm form = std::get<GeluSpec>(gelu->spec).form;
    if (part.rows == pool.out.h) {  // whole planes: the part's channels are one run of the output (one call)
      gelu_forward(out + part.channel * plane, pooled, part.channels * run, form);
    } else {
      for (std::size_t j = 0; j < part.channels; ++j)
        gelu_forward(out + (part.channel + j) * plane + part.row * pool.out.w * batch, pooled + j * run, run, form);
    }
    const double p2 = layer_clock();
    t.pool += p1 - p0;
    t.gelu += p2 - p1;
  }
  t.conv = layer_clock() - t0 - t.pool - t.gelu;
  return t;
}

void box_forward(const LayerInfo& layer, const Box& box, const LayerWeights& weights, const float* in_full,
                 float* out_full, std::size_t batch) {
  if (box.empty()) return;
  if (const auto* conv = std::get_if<Conv2dSpec>(&layer.spec)) {
    conv2d_box_forward(out_full, in_full, weights.weight.data(), weights.bias.data(), layer.in, *conv, batch, box);
  } else if (const auto* pool = std::get_if<MaxPool2dSpec>(&layer.spec)) {
    maxpool2d_box_forward(out_full, in_full, layer.in, *pool, batch, box);
  } else if (const auto* g = std::get_if<GeluSpec>(&layer.spec)) {
    gelu_box_forward(out_full, in_full, layer.out, batch, box, g->form);
  } else if (std::holds_alternative<LinearSpec>(layer.spec)) {
    linear_box_forward(out_full, in_full, weights.weight.data(), weights.bias.data(), layer.in.elements(), batch, box);
  } else {
    logsoftmax_box_forward(out_full, in_full, layer.in.elements(), batch, box);
  }
}

void layer_forward(const LayerInfo& layer, const LayerWeights& weights, const float* in_full, float* out_full,
                   std::size_t batch) {
  region_forward(layer, SplitKind::replicated, Slice{0, layer.out.c}, weights, in_full, out_full, batch);
}

std::vector<float> images_to_activation(const ImageBatch& images) {
  const std::size_t B = images.count, hw = images.rows * images.cols;
  std::vector<float> act(hw * B);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t p = 0; p < hw; ++p) act[p * B + b] = static_cast<float>(images.pixels[b * hw + p]) / 255.0f;
  return act;
}

std::vector<float> activation_to_batch_major(std::span<const float> act, std::size_t features, std::size_t batch) {
  std::vector<float> out(features * batch);
  for (std::size_t f = 0; f < features; ++f)
    for (std::size_t b = 0; b < batch; ++b) out[b * features + f] = act[f * batch + b];
  return out;
}

std::vector<float> serial_forward(const std::vector<LayerInfo>& layers, const std::vector<LayerWeights>& weights,
                                  std::span<const float> input, std::size_t batch, std::vector<double>* layer_seconds,
                                  std::vector<std::vector<float>>* layer_outputs) {
  std::vector<float> cur(input.begin(), input.end()), next;
  if (layer_seconds) layer_seconds->assign(layers.size(), 0.0);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    next.assign(layers[l].out.elements() * batch, 0.0f);
    const double t0 = layer_clock();
    layer_forward(layers[l], weights[l], cur.data(), next.data(), batch);
    sim::charge(layers[l], layer_ops(layers[l], batch));
    const double t1 = layer_clock();
    if (layer_seconds) (*layer_seconds)[l] = t1 - t0;
    if (layer_outputs) layer_outputs->push_back(next);
    cur.swap(next);
  }
  return cur;
}

SerialReference::SerialReference(const std::vector<LayerInfo>& layers, const std::vector<LayerWeights>& weights,
                                 std::size_t batch, bool fuse)
    : layers_(layers), weights_(weights), batch_(batch), fused_(layers.size(), false) {
  const std::vector<PlanStep> steps = make_plan(PlanKind::per_layer, layers, batch, 1);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    fused_[l] = fuse && sim::kFusedKernels && fuses_with_next(layers_, steps, l);
    // A fused conv (or pool, fused with a GELU) writes nothing.
    outputs_.emplace_back(fused_[l] ? 0 : layers_[l].out.elements() * batch_, 0.0f);
  }
}

std::span<const float> SerialReference::run(std::span<const float> input, std::vector<double>* layer_seconds) {
  if (layer_seconds) layer_seconds->assign(layers_.size(), 0.0);
  const float* in = input.data();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    if (fused_[l]) {  // conv + pool (+ GELU when the pool is fused too)
      const bool with_gelu = fused_[l + 1];
      const std::size_t last = l + (with_gelu ? 2 : 1);
      const FusedSeconds t =
          conv_pool_region_forward(layers_[l], layers_[l + 1], with_gelu ? &layers_[last] : nullptr,
                                   Slice{0, layers_[l].out.c}, weights_[l], in, outputs_[last].data(), batch_, workspace_);
      if (layer_seconds) {
        (*layer_seconds)[l] = t.conv;
        (*layer_seconds)[l + 1] = t.pool;
        if (with_gelu) (*layer_seconds)[last] = t.gelu;
      }
      in = outputs_[last].data();
      l = last;
      continue;
    }
    const double t0 = layer_clock();
    layer_forward(layers_[l], weights_[l], in, outputs_[l].data(), batch_);
    sim::charge(layers_[l], layer_ops(layers_[l], batch_));
    const double t1 = layer_clock();
    if (layer_seconds) (*layer_seconds)[l] = t1 - t0;
    in = outputs_[l].data();
  }
  return outputs_.back();
}

std::vector<double> linear_term_magnitudes(const LayerInfo& layer, const LayerWeights& weights,
                                           std::span<const float> in, std::size_t batch) {
  const std::size_t F = layer.in.elements(), O = layer.out.elements();
  std::vector<double> out(O * batch);
  for (std::size_t o = 0; o < O; ++o)
    for (std::size_t b = 0; b < batch; ++b) {
      double sum = std::fabs(static_cast<double>(weights.bias[o]));
      for (std::size_t k = 0; k < F; ++k)
        sum += std::fabs(static_cast<double>(weights.weight[o * F + k]) * static_cast<double>(in[k * batch + b]));
      out[o * batch + b] = sum;
    }
  return out;
}

}  // namespace cnnpar
