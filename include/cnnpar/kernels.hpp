// Layer kernels over a slice of the output. No MPI, no heap allocation (at most 40 KB of stack); the only global
// state is the instruction set they run with (kernel_target(), below; docs/kernels.md).
//
// Activation layout: C,H,W,B ("batch innermost"). For one image (B = 1) this is PyTorch's C,H,W order; for a batch,
// the B values of one (c, h, w) position sit next to each other. We chose it over N,C,H,W because every split this
// program makes is then one contiguous range of memory: a channel slice [c0, c1) is floats [c0*H*W*B, c1*H*W*B), an
// element range [f0, f1) of the C,H,W-flattened tensor is [f0*B, f1*B), and an output-feature range of the linear
// layer is [o0*B, o1*B). So MPI_Allgatherv (or a shared window) consolidates in place, with no packing step, at any
// batch size; flattening for the linear layer is free; and the image index is the unit-stride loop, which is what a
// batched kernel vectorises over.
//
// Weights are in PyTorch's layout: conv [C_out][C_in][K][K], linear [O][F]. A rank's slice of output channels or
// features is a contiguous block of rows, so each rank holds only its own rows.
//
// Determinism: for a given instruction set (kernel_target()), every output element is computed by the same sequence
// of IEEE operations whatever slice it belongs to, whatever the batch size and whatever image tile or register block
// holds it, so a distributed run equals the serial one bit for bit. The build keeps -ffp-contract=off and never uses
// -ffast-math; fused multiply-adds appear only where a kernel asks for them, the same for every element. Instruction
// sets with FMA (avx3, avx2) give one set of bits, those without (sse4, ssse3, emu128) another: pin one with
// pin_kernel_target() to reproduce a checksum across machines. docs/kernels.md has each kernel's order and accuracy.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cnnpar/network.hpp"
#include "cnnpar/partition.hpp"

namespace cnnpar {

// Linear layer sums are taken in fixed blocks of this many features, the partial sums added in order: the error
// against a double-precision sum drops several-fold over one running sum, and the order does not depend on P or B.
inline constexpr std::size_t kLinearSumBlock = 512;

// out   [channels.count][OH][OW][B]  this rank's output channels (the caller points it at channels.begin)
// in    [C_in][H][W][B]              the whole input
// weight[channels.count][C_in][K][K], bias[channels.count]  this rank's filters
void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                    const Conv2dSpec& conv, std::size_t batch, Slice channels);

// out [channels.count][OH][OW][B]; in [C][H][W][B] the whole input (only channels [begin, end) are read).
void maxpool2d_forward(float* out, const float* in, Shape in_shape, const MaxPool2dSpec& pool, std::size_t batch,
                       Slice channels);

// Convolution followed by max-pooling of this rank's output channels, for plans that keep the conv output on the
// rank (the fused plans, and the serial reference): the conv rows each pooled row needs are computed into
// `workspace` and pooled at once, so a batch's conv output (5.5 MB at B = 64 for the seed) never goes through
// memory. Bit for bit equal to conv2d_forward then maxpool2d_forward over the same channels.
// out       [channels.count][PH][PW][B]  pooled output of this rank's channels
// in, weight, bias                       as conv2d_forward
// workspace conv2d_maxpool2d_workspace(...) floats, not shared with another thread's call
void conv2d_maxpool2d_forward(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                              const Conv2dSpec& conv, const MaxPool2dSpec& pool, std::size_t batch, Slice channels,
                              float* workspace);

// The same in parts, for a caller that times the convolution and the pooling apart (the experiment reports them as
// two layers): for p = 0 .. conv2d_maxpool2d_parts(a) - 1 in order, conv2d_maxpool2d_conv_part(a, p, workspace) then
// conv2d_maxpool2d_pool_part(a, p, workspace, out). A part is one group of kFusedConvChannels channels and one pooled
// row of them (below kFusedWholePlanesBelow images: the group's whole planes).
struct ConvPoolArgs {
  const float* in;      // [C_in][H][W][B], the whole input
  const float* weight;  // [channels.count][C_in][K][K]: this rank's filters
  const float* bias;    // [channels.count]
  Shape in_shape;
  Conv2dSpec conv;
  MaxPool2dSpec pool;
  std::size_t batch;
  Slice channels;
};
std::size_t conv2d_maxpool2d_parts(const ConvPoolArgs& a);
void conv2d_maxpool2d_conv_part(const ConvPoolArgs& a, std::size_t part, float* workspace);
// out: the pooled tensor of the rank's channels [channels.count][PH][PW][B] (the part's rows go to their place), or
// with `compact` the part's pooled rows alone, [part's channels][pooled_rows][PW][B] (for a layer that consumes them
// at once, e.g. GELU, so the pooled tensor need not exist either).
void conv2d_maxpool2d_pool_part(const ConvPoolArgs& a, std::size_t part, const float* workspace, float* out,
                                bool compact = false);
// What part `part` covers: channels [channel, channel + channels) of the slice and pooled rows [row, row + rows).
struct ConvPoolPart {
  std::size_t channel, channels, row, rows;
};
ConvPoolPart conv2d_maxpool2d_part(const ConvPoolArgs& a, std::size_t part);

// Floats of workspace conv2d_maxpool2d_forward needs: kFusedConvChannels * pool.kernel * OW * B, the conv rows of one
// pooled row of a group of channels (106 KB at B = 64 for the seed network); below kFusedWholePlanesBelow images,
// kFusedConvChannels * OH * OW * B, a group's whole conv planes (at most 324 KB for the seed).
inline constexpr std::size_t kFusedConvChannels = 8, kFusedWholePlanesBelow = 16;
std::size_t conv2d_maxpool2d_workspace(Shape in_shape, const Conv2dSpec& conv, const MaxPool2dSpec& pool,
                                       std::size_t batch);

// out[i] = GELU(in[i]) for i < count; the caller offsets both pointers to its element range times B.
void gelu_forward(float* out, const float* in, std::size_t count, GeluForm form);

// out [features.count][B]; in [F][B] (the previous activation flattened in C,H,W order);
// weight [features.count][F], bias [features.count]: this rank's rows.
void linear_forward(float* out, const float* in, const float* weight, const float* bias, std::size_t in_features,
                    std::size_t batch, Slice features);

// Row-parallel linear layer: partial sums of every output over this rank's input features only, no bias.
// out [O][B]; in [F][B] (only rows in_features.begin .. end-1 are read);
// weight [O][in_features.count]: this rank's columns of the [O][F] matrix.
void linear_partial_forward(float* out, const float* in, const float* weight, std::size_t out_features,
                            std::size_t batch, Slice in_features);

// LogSoftmax over the features of each image: out[o][b] = x[o][b] - m_b - log(sum_k exp(x[k][b] - m_b)), m_b the
// image's largest feature. Every call reads the whole input [features][B] and computes each image's m_b and sum in
// the same order (k = 0 .. features-1), then writes only out_features: out [out_features.count][B]. So a rank that
// owns a slice of the features gets exactly the serial values (the normalisation is replicated, 2*features
// operations per image, instead of reduced across ranks).
void logsoftmax_forward(float* out, const float* in, std::size_t features, std::size_t batch, Slice out_features);

// The same kernels over a box of the layer's output (partition.hpp's Box: channels x rows x columns x images), in
// place in the layer's whole tensors: the spatial, sample and 2-D splits (plan.hpp) compute their region with no copy
// in or out. out and in are the whole output and input tensors, [C][H][W][B] with B = batch (a linear layer's or
// LogSoftmax's [features][B]: box.c counts features, box.h and box.w are {0, 1}); only `box` of out is written and
// only the inputs its windows cover are read. weight and bias hold the rows of the box's channels or features (box.c),
// as a channel slice's do. Every element sees the operations the whole-layer kernels give it: bit for bit the same.
void conv2d_box_forward(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                        const Conv2dSpec& conv, std::size_t batch, const Box& box);
void maxpool2d_box_forward(float* out, const float* in, Shape in_shape, const MaxPool2dSpec& pool, std::size_t batch,
                           const Box& box);
void gelu_box_forward(float* out, const float* in, Shape shape, std::size_t batch, const Box& box, GeluForm form);
void linear_box_forward(float* out, const float* in, const float* weight, const float* bias, std::size_t in_features,
                        std::size_t batch, const Box& box);
// Reads every feature of the box's images (the normalisation, as logsoftmax_forward).
void logsoftmax_box_forward(float* out, const float* in, std::size_t features, std::size_t batch, const Box& box);

// The instruction set the kernels run with: "avx3" (AVX-512), "avx2", "sse4", "ssse3", or "scalar" / "emu128" (the
// portable fallback, whichever Highway builds).
// Chosen at the first kernel call as the best the CPU supports, unless pinned. For the run header and metadata.
std::string_view kernel_target();

// The instruction sets this CPU can run, best first (the names kernel_target() returns).
std::vector<std::string> kernel_targets();

// Pins the kernels to one instruction set by name (case-insensitive; "avx512" is accepted for "avx3"), or back to
// the CPU's best with "auto". Returns false, changing nothing, when the name is unknown or the CPU lacks it. Call
// it before the timed work starts (it is not meant to race kernel calls on other threads).
bool pin_kernel_target(std::string_view name);

// Scalar GELU with the C library's tanh/erf (a reference, not what gelu_forward computes), exposed for tests:
// tanh form 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), erf form 0.5x(1 + erf(x/sqrt2)).
float gelu(float x, GeluForm form);

}  // namespace cnnpar
