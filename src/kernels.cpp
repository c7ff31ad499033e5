// Layer kernels (see kernels.hpp for the layout and the determinism contract).
// Each inner loop runs over contiguous memory so GCC vectorises it at -O3 without changing any result.
#include "cnnpar/kernels.hpp"

#include <algorithm>
#include <cmath>

namespace cnnpar {

void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                    const Conv2dSpec& conv, std::size_t batch, Slice channels) {
  const std::size_t K = conv.kernel, S = conv.stride, B = batch;
  const std::size_t H = in_shape.h, W = in_shape.w, C_in = in_shape.c;
  const std::size_t OH = (H - K) / S + 1, OW = (W - K) / S + 1;
  const std::size_t out_plane = OH * OW * B;
  for (std::size_t j = 0; j < channels.count; ++j) {
    float* out_c = out + j * out_plane;
    std::fill(out_c, out_c + out_plane, bias[j]);
    // Accumulate one filter tap at a time over the whole output plane: the inner loop is a contiguous
    // axpy over (ow, b), and every output element sees bias + taps in (ci, kh, kw) order.
    for (std::size_t ci = 0; ci < C_in; ++ci) {
      for (std::size_t kh = 0; kh < K; ++kh) {
        for (std::size_t kw = 0; kw < K; ++kw) {
          const float w = weight[((j * C_in + ci) * K + kh) * K + kw];
          for (std::size_t oh = 0; oh < OH; ++oh) {
            float* o = out_c + oh * OW * B;
            const float* x = in + ((ci * H + oh * S + kh) * W + kw) * B;  // -> in[ci][oh*S+kh][kw][0]
            if (S == 1) {
              for (std::size_t t = 0; t < OW * B; ++t) o[t] += w * x[t];
            } else {
              for (std::size_t ow = 0; ow < OW; ++ow)
                for (std::size_t b = 0; b < B; ++b) o[ow * B + b] += w * x[ow * S * B + b];
            }
          }
        }
      }
    }
  }
}

void maxpool2d_forward(float* out, const float* in, Shape in_shape, const MaxPool2dSpec& pool, std::size_t batch,
                       Slice channels) {
  const std::size_t K = pool.kernel, S = pool.stride, B = batch;
  const std::size_t H = in_shape.h, W = in_shape.w;
  const std::size_t OH = (H - K) / S + 1, OW = (W - K) / S + 1;
  for (std::size_t j = 0; j < channels.count; ++j) {
    const float* in_c = in + (channels.begin + j) * H * W * B;
    for (std::size_t oh = 0; oh < OH; ++oh) {
      for (std::size_t ow = 0; ow < OW; ++ow) {
        float* o = out + ((j * OH + oh) * OW + ow) * B;
        const float* first = in_c + ((oh * S) * W + ow * S) * B;  // window origin, image 0
        std::copy(first, first + B, o);
        for (std::size_t kh = 0; kh < K; ++kh) {
          for (std::size_t kw = 0; kw < K; ++kw) {
            if (kh == 0 && kw == 0) continue;
            const float* x = first + (kh * W + kw) * B;
            for (std::size_t b = 0; b < B; ++b) o[b] = x[b] > o[b] ? x[b] : o[b];
          }
        }
      }
    }
  }
}

float gelu(float x, GeluForm form) {
  if (form == GeluForm::tanh) {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + std::tanh(u));
  }
  constexpr float kInvSqrt2 = 0.7071067811865476f;
  return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
}

void gelu_forward(float* out, const float* in, std::size_t count, GeluForm form) {
  for (std::size_t i = 0; i < count; ++i) out[i] = gelu(in[i], form);
}

void logsoftmax_forward(float* out, const float* in, std::size_t features, std::size_t batch, Slice out_features) {
  for (std::size_t b = 0; b < batch; ++b) {
    float m = in[b];
    for (std::size_t k = 1; k < features; ++k) m = in[k * batch + b] > m ? in[k * batch + b] : m;
    float sum = 0.0f;
    for (std::size_t k = 0; k < features; ++k) sum += std::exp(in[k * batch + b] - m);
    const float log_sum = std::log(sum);
    for (std::size_t j = 0; j < out_features.count; ++j) {
      const std::size_t o = out_features.begin + j;
      out[j * batch + b] = (in[o * batch + b] - m) - log_sum;
    }
  }
}

namespace {

// acc[b] = sum over k < nk of w[k] * x[k * batch + b], for b < nb: the products summed in blocks of kLinearSumBlock,
// the block sums added in order, so the order depends on neither the batch nor the image tile.
void blocked_dot(float* acc, const float* w, const float* x, std::size_t nk, std::size_t batch, std::size_t nb) {
  float partial[64];
  std::fill(acc, acc + nb, 0.0f);
  for (std::size_t k0 = 0; k0 < nk; k0 += kLinearSumBlock) {
    const std::size_t k1 = std::min(nk, k0 + kLinearSumBlock);
    std::fill(partial, partial + nb, 0.0f);
    for (std::size_t k = k0; k < k1; ++k) {
      const float wk = w[k];
      const float* xk = x + k * batch;
      for (std::size_t b = 0; b < nb; ++b) partial[b] += wk * xk[b];
    }
    for (std::size_t b = 0; b < nb; ++b) acc[b] += partial[b];
  }
}

// Images are processed in tiles so the per-image accumulators stay in registers / L1 at any batch size; the tile
// changes which images share a loop, never the order of any one image's sum.
constexpr std::size_t kImageTile = 64;

}  // namespace

void linear_forward(float* out, const float* in, const float* weight, const float* bias, std::size_t in_features,
                    std::size_t batch, Slice features) {
  float acc[kImageTile];
  for (std::size_t j = 0; j < features.count; ++j) {
    for (std::size_t b0 = 0; b0 < batch; b0 += kImageTile) {
      const std::size_t nb = std::min(kImageTile, batch - b0);
      blocked_dot(acc, weight + j * in_features, in + b0, in_features, batch, nb);
      float* o = out + j * batch + b0;
      for (std::size_t b = 0; b < nb; ++b) o[b] = acc[b] + bias[j];
    }
  }
}

void linear_partial_forward(float* out, const float* in, const float* weight, std::size_t out_features,
                            std::size_t batch, Slice in_features) {
  float acc[kImageTile];
  const float* x = in + in_features.begin * batch;
  for (std::size_t o = 0; o < out_features; ++o) {
    for (std::size_t b0 = 0; b0 < batch; b0 += kImageTile) {
      const std::size_t nb = std::min(kImageTile, batch - b0);
      blocked_dot(acc, weight + o * in_features.count, x + b0, in_features.count, batch, nb);
      std::copy(acc, acc + nb, out + o * batch + b0);
    }
  }
}

}  // namespace cnnpar
