// Layer kernels (see kernels.hpp for the layout and the determinism contract), written once with Google Highway and
// compiled for every x86 instruction set Highway targets (AVX-512 "avx3", AVX2, SSE4, SSSE3 and a portable
// "emu128"); the best one the CPU supports is chosen at run time, or the one pin_kernel_target() names.
//
// This file is included once per target by hwy/foreach_target.h: everything between HWY_BEFORE_NAMESPACE and
// HWY_AFTER_NAMESPACE is compiled per target, the HWY_ONCE part (public functions, dispatch) once.
//
// How each kernel keeps the determinism contract: every vector lane holds one output element and runs the same
// sequence of operations as every other lane; lanes never combine. A register block, an image tile, a slice or a
// batch size only changes which elements share a vector, never the operations one element sees. Partial vectors
// (tails) use masked loads and stores, never a separate scalar path. hn::MulAdd is one fused multiply-add on the
// FMA targets (avx3, avx2) and a multiply then an add elsewhere, so avx3 and avx2 give the same bits, and sse4,
// ssse3 and emu128 give the same bits as each other (docs/kernels.md).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "src/kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cnnpar/kernels.hpp"

HWY_BEFORE_NAMESPACE();
namespace cnnpar::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

// AVX-512 has 32 vector registers, the others 16: register blocks are sized so accumulators never spill.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr std::size_t kConvChannels = 8, kConvVectors = 3;  // 24 accumulators
constexpr std::size_t kLinearRows = 12, kLinearVectors = 2;  // 2 x-loads per 24 FMAs: x comes from L2
#else
constexpr std::size_t kConvChannels = 4, kConvVectors = 2;  // 8 accumulators
constexpr std::size_t kLinearRows = 4, kLinearVectors = 2;
#endif

// The first n < N lanes from p, zeros after; reads nothing past p + n. (Highway 1.0.3's MaskedLoad reads the
// whole vector, aligned, on SSE4 and below, so those targets copy through a small buffer.)
HWY_INLINE V LoadFirst(D d, const float* p, hn::Mask<D> m, std::size_t n) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
  (void)n;
  return hn::MaskedLoad(m, d, p);
#else
  (void)m;
  HWY_ALIGN float buf[hn::MaxLanes(d)] = {};
  std::memcpy(buf, p, n * sizeof(float));
  return hn::Load(d, buf);
#endif
}

// Loads vector v of a block whose last vector holds only `n` lanes (mask m = FirstN(n)).
template <bool kTail>
HWY_INLINE V LoadPart(D d, const float* p, bool last, hn::Mask<D> m, std::size_t n) {
  if (kTail && last) return LoadFirst(d, p, m, n);
  return hn::LoadU(d, p);
}
template <bool kTail>
HWY_INLINE void StorePart(D d, V v, float* p, bool last, hn::Mask<D> tail) {
  if (kTail && last) {
    hn::BlendedStore(v, tail, d, p);
  } else {
    hn::StoreU(v, d, p);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution. One block: RC output channels x NV vectors of consecutive output positions of one segment (a run of
// outputs whose inputs are consecutive too: a whole output row (ow, b) for stride 1, the B images of one (oh, ow)
// otherwise). Each output is bias, then one MulAdd per tap in (ci, kh, kw) order.
struct ConvGeometry {
  std::size_t c_in, k, s;                  // input channels, filter size, stride
  std::size_t in_channel, in_row, in_col;  // input strides in floats: H*W*Bf, W*Bf, Bf (Bf: the tensors' batch)
  std::size_t out_channel, out_row;        // output strides in floats (the output's column stride is in_col too)
  std::size_t w_channel;                   // C_in*K*K
  std::size_t ow, images;                  // output positions per row and images per position computed
};

// The taps of one pass, flattened in (ci, kh, kw) order: tap t reads input + offset[t] and the packed weights
// weights[t*RC + r] of the block's RC channels (one pointer for all RC broadcasts, one loop for all taps).
struct ConvTaps {
  const std::size_t* offset;
  const float* weights;
  std::size_t count;
  bool first;  // the first pass over the taps starts from the bias; later passes resume from the stored sums
};

// `chunks` consecutive blocks of NV vectors, one after another (the loop here saves a call and set-up per block).
template <std::size_t RC, std::size_t NV, bool kTail>
HWY_NOINLINE void ConvBlock(const ConvTaps& taps, std::size_t out_channel, float* HWY_RESTRICT out,
                            const float* HWY_RESTRICT in, const float* HWY_RESTRICT bias, std::size_t chunks,
                            std::size_t tail_lanes) {
  const D d;
  const std::size_t N = hn::Lanes(d);
  const auto tail = hn::FirstN(d, tail_lanes);
  const std::size_t* HWY_RESTRICT offset = taps.offset;
  const float* HWY_RESTRICT weights = taps.weights;
  const std::size_t nt = taps.count;
  for (std::size_t c = 0; c < chunks; ++c, in += NV * N, out += NV * N) {
    V acc[RC][NV];
    for (std::size_t r = 0; r < RC; ++r)
      for (std::size_t v = 0; v < NV; ++v)
        acc[r][v] = taps.first ? hn::Set(d, bias[r])
                               : LoadPart<kTail>(d, out + r * out_channel + v * N, v + 1 == NV, tail, tail_lanes);
    for (std::size_t t = 0; t < nt; ++t) {
      const float* x = in + offset[t];
      V xv[NV];
      for (std::size_t v = 0; v < NV; ++v) xv[v] = LoadPart<kTail>(d, x + v * N, v + 1 == NV, tail, tail_lanes);
      const float* w = weights + t * RC;
      for (std::size_t r = 0; r < RC; ++r) {
        const V wv = hn::Set(d, w[r]);
        for (std::size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(wv, xv[v], acc[r][v]);
      }
    }
    for (std::size_t r = 0; r < RC; ++r)
      for (std::size_t v = 0; v < NV; ++v)
        StorePart<kTail>(d, acc[r][v], out + r * out_channel + v * N, v + 1 == NV, tail);
  }
}

// `chunks` consecutive blocks of `width` <= kConvVectors * N outputs for RC channels (see ConvBlock; a tail only
// when chunks is 1), the block's vector count and tail chosen at run time.
template <std::size_t RC>
void ConvBlocks(const ConvTaps& taps, std::size_t out_channel, float* out, const float* in, const float* bias,
                std::size_t width, std::size_t chunks) {
  const std::size_t N = hn::Lanes(D());
  const std::size_t nv = (width + N - 1) / N, tail = width % N;
  static_assert(kConvVectors == 2 || kConvVectors == 3);
  switch (nv * 2 + (tail != 0)) {
    case 2: return ConvBlock<RC, 1, false>(taps, out_channel, out, in, bias, chunks, 0);
    case 3: return ConvBlock<RC, 1, true>(taps, out_channel, out, in, bias, chunks, tail);
    case 4: return ConvBlock<RC, 2, false>(taps, out_channel, out, in, bias, chunks, 0);
    case 5: return ConvBlock<RC, 2, true>(taps, out_channel, out, in, bias, chunks, tail);
    case 6:
      if constexpr (kConvVectors >= 3)
        return ConvBlock<RC, 3, false>(taps, out_channel, out, in, bias, chunks, 0);
      break;
    case 7:
      if constexpr (kConvVectors >= 3)
        return ConvBlock<RC, 3, true>(taps, out_channel, out, in, bias, chunks, tail);
      break;
    default: break;
  }
}

// One segment of seg_len consecutive outputs for RC channels: blocks of kConvVectors vectors, then the rest. A rest of
// one vector or less after at least one full block is taken as two blocks of two vectors instead of 3 + 1, since a
// one-vector block loads 8 weights for 8 FMAs: 256 images at one output position (a strided conv at B = 256) run as
// 3+3+3+3+2+2 vectors, not 3+3+3+3+3+1.
template <std::size_t RC>
void ConvSegment(const ConvTaps& taps, std::size_t out_channel, float* out, const float* in, const float* bias,
                 std::size_t seg_len) {
  const std::size_t N = hn::Lanes(D()), block = kConvVectors * N;
  std::size_t full = seg_len / block, rem = seg_len - full * block;
  if (kConvVectors == 3 && full > 0 && rem > 0 && rem <= N) --full, rem += block;
  if (full > 0) ConvBlocks<RC>(taps, out_channel, out, in, bias, block, full);
  out += full * block, in += full * block;
  if (rem > block) {  // 3N < rem <= 4N: two full vectors, then the rest (two vectors, the last maybe partial)
    ConvBlocks<RC>(taps, out_channel, out, in, bias, 2 * N, 1);
    out += 2 * N, in += 2 * N, rem -= 2 * N;
  }
  if (rem > 0) ConvBlocks<RC>(taps, out_channel, out, in, bias, rem, 1);
}

// Taps per pass: the offsets and packed weights live on the stack (8 KB + 32 KB at most). A filter with more taps
// (C_in*K*K > 1024) is done in several passes, each resuming from the sums the previous one stored; stores and loads
// are exact, so every element still sees bias, then one MulAdd per tap in order.
constexpr std::size_t kConvTapsPerPass = 1024;

// `rows` output rows of `count` channels: row i of channel j goes to out + j*g.out_channel + i*g.out_row and reads
// from in + i*S*g.in_row (`out` and `in` point at the region's first output row, column and image, and at the first
// input row, column and image its windows read). Stride 1 over every image of the tensors: one segment per output
// row, ow*images consecutive outputs reading consecutive inputs. Otherwise one segment per output position, its
// images. Channel blocks run from the last to the first, so when a batch's output overflows L2, the first channels
// -- the ones max-pooling reads first -- are the ones still in L2.
void ConvRows(const ConvGeometry& g, float* out, const float* in, const float* weight, const float* bias,
              std::size_t count, std::size_t rows) {
  const bool whole_rows = g.s == 1 && g.images == g.in_col;
  const std::size_t seg_len = whole_rows ? g.ow * g.images : g.images, segs = whole_rows ? 1 : g.ow;
  const std::size_t taps_total = g.c_in * g.k * g.k;
  std::size_t offset[kConvTapsPerPass];
  HWY_ALIGN float packed[kConvTapsPerPass * kConvChannels];
  for (std::size_t t0 = 0; t0 < taps_total || t0 == 0; t0 += kConvTapsPerPass) {
    const std::size_t nt = std::min(kConvTapsPerPass, taps_total - t0);
    for (std::size_t t = 0; t < nt; ++t) {
      const std::size_t ci = (t0 + t) / (g.k * g.k), kh = (t0 + t) / g.k % g.k, kw = (t0 + t) % g.k;
      offset[t] = ci * g.in_channel + kh * g.in_row + kw * g.in_col;
    }
    const auto block = [&](auto rc_tag, std::size_t j) {
      constexpr std::size_t RC = decltype(rc_tag)::value;
      for (std::size_t t = 0; t < nt; ++t)
        for (std::size_t r = 0; r < RC; ++r) packed[t * RC + r] = weight[(j + r) * g.w_channel + t0 + t];
      const ConvTaps taps{offset, packed, nt, t0 == 0};
      for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t s = 0; s < segs; ++s) {
          ConvSegment<RC>(taps, g.out_channel, out + j * g.out_channel + i * g.out_row + s * g.in_col,
                          in + i * g.s * g.in_row + s * g.s * g.in_col, bias + j, seg_len);
        }
      }
    };
    const std::size_t blocks = count / kConvChannels;
    for (std::size_t j = count; j > blocks * kConvChannels; --j) block(std::integral_constant<std::size_t, 1>{}, j - 1);
    for (std::size_t b = blocks; b > 0; --b)
      block(std::integral_constant<std::size_t, kConvChannels>{}, (b - 1) * kConvChannels);
    if (taps_total == 0) break;
  }
}

// A conv or pool layer's output rows and columns.
struct Plane {
  std::size_t h, w;
};
Plane OutputPlane(Shape in, std::size_t k, std::size_t s) { return {(in.h - k) / s + 1, (in.w - k) / s + 1}; }

// The geometry of a conv over whole tensors of `batch` images, computing `ow` columns of `images` images.
ConvGeometry ConvOver(Shape in, const Conv2dSpec& conv, std::size_t batch, std::size_t ow, std::size_t images) {
  const std::size_t K = conv.kernel, B = batch;
  const Plane o = OutputPlane(in, K, conv.stride);
  return ConvGeometry{in.c, K, conv.stride, in.h * in.w * B, in.w * B, B, o.h * o.w * B, o.w * B, in.c * K * K,
                      ow, images};
}

void Conv2dImpl(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                const Conv2dSpec& conv, std::size_t batch, Slice channels) {
  const Plane o = OutputPlane(in_shape, conv.kernel, conv.stride);
  ConvRows(ConvOver(in_shape, conv, batch, o.w, batch), out, in, weight, bias, channels.count, o.h);
}

// Box `box` of the output, in place in the whole tensors (kernels.hpp: conv2d_box_forward).
void Conv2dBoxImpl(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                   const Conv2dSpec& conv, std::size_t batch, const Box& box) {
  if (box.empty()) return;
  const ConvGeometry g = ConvOver(in_shape, conv, batch, box.w.count, box.b.count);
  const std::size_t S = conv.stride;
  ConvRows(g, out + box.c.begin * g.out_channel + box.h.begin * g.out_row + box.w.begin * batch + box.b.begin,
           in + box.h.begin * S * g.in_row + box.w.begin * S * batch + box.b.begin, weight, bias, box.c.count,
           box.h.count);
}

// ---------------------------------------------------------------------------------------------------------------
// Max-pooling: per output, the window's first input, then m = x > m ? x : m in (kh, kw) order (the same select as
// the scalar formula, so NaN and signed-zero behaviour do not depend on the vector width or the path).
struct PoolGeometry {
  std::size_t k, s;
  std::size_t in_channel, in_row;  // input strides in floats
  std::size_t col;                 // input and output column stride in floats: the tensors' batch
  std::size_t out_channel, out_row;  // output strides in floats
  std::size_t ow, images;          // output positions per row and images per position computed
};

// NV full vectors of images at one output position: m = first input, then the other taps in (kh, kw) order.
template <std::size_t NV>
HWY_INLINE void PoolVectors(D d, float* HWY_RESTRICT o, const float* HWY_RESTRICT first, const PoolGeometry& g) {
  const std::size_t N = hn::Lanes(d);
  V m[NV];
  for (std::size_t v = 0; v < NV; ++v) m[v] = hn::LoadU(d, first + v * N);
  for (std::size_t kh = 0; kh < g.k; ++kh) {
    for (std::size_t kw = 0; kw < g.k; ++kw) {
      if (kh == 0 && kw == 0) continue;
      const float* x = first + kh * g.in_row + kw * g.col;
      for (std::size_t v = 0; v < NV; ++v) {
        const V xv = hn::LoadU(d, x + v * N);
        m[v] = hn::IfThenElse(hn::Gt(xv, m[v]), xv, m[v]);
      }
    }
  }
  for (std::size_t v = 0; v < NV; ++v) hn::StoreU(m[v], d, o + v * N);
}

// `rows` output rows of `count` channels: row i of channel j goes to out + j*g.out_channel + i*g.out_row and reads
// input rows from in + j*g.in_channel + i*S*g.in_row (`out` and `in` point at the region's first row, column and
// image, and at the first input its windows read).
void PoolRows(const PoolGeometry& g, float* out, const float* in, std::size_t count, std::size_t rows) {
  const D d;
  const std::size_t N = hn::Lanes(d), B = g.images, ld = g.col, K = g.k, S = g.s, OW = g.ow;
#if HWY_TARGET != HWY_SCALAR
  if (ld == 1 && K == 2 && S == 2) {
    // One image, 2x2 windows (the seed's pool at B = 1): lanes over ow; two loaded vectors of an input row split
    // into even and odd columns give the window's kw = 0 and kw = 1 inputs without gathers.
    for (std::size_t j = 0; j < count; ++j) {
      for (std::size_t i = 0; i < rows; ++i) {
        const float* row0 = in + j * g.in_channel + i * 2 * g.in_row;
        const float* row1 = row0 + g.in_row;
        float* o = out + j * g.out_channel + i * g.out_row;
        for (std::size_t ow0 = 0; ow0 < OW; ow0 += N) {
          const std::size_t n = std::min(N, OW - ow0), lo_n = std::min(N, 2 * n), hi_n = 2 * n - lo_n;
          const auto lo_m = hn::FirstN(d, lo_n), hi_m = hn::FirstN(d, hi_n);
          const auto load_row = [&](const float* r, V& even, V& odd) {
            const V lo = lo_n == N ? hn::LoadU(d, r) : LoadFirst(d, r, lo_m, lo_n);
            const V hi = hi_n == N ? hn::LoadU(d, r + N) : LoadFirst(d, r + N, hi_m, hi_n);
            even = hn::ConcatEven(d, hi, lo);
            odd = hn::ConcatOdd(d, hi, lo);
          };
          V m, x01, x10, x11;
          load_row(row0 + 2 * ow0, m, x01);
          load_row(row1 + 2 * ow0, x10, x11);
          m = hn::IfThenElse(hn::Gt(x01, m), x01, m);
          m = hn::IfThenElse(hn::Gt(x10, m), x10, m);
          m = hn::IfThenElse(hn::Gt(x11, m), x11, m);
          if (n == N) {
            hn::StoreU(m, d, o + ow0);
          } else {
            hn::BlendedStore(m, hn::FirstN(d, n), d, o + ow0);
          }
        }
      }
    }
    return;
  }
#endif
  if (B < N && B == ld) {
    // Few images, all the tensors' own: lanes over an output row's (ow, b) positions, inputs gathered.
    const hn::RebindToSigned<D> di;
    HWY_ALIGN std::int32_t index[hn::MaxLanes(d)];
    const std::size_t row = OW * B;
    for (std::size_t t0 = 0; t0 < row; t0 += N) {
      const std::size_t n = std::min(N, row - t0);
      for (std::size_t i = 0, ow = t0 / B, b = t0 % B; i < N; ++i) {
        index[i] = static_cast<std::int32_t>(i < n ? ow * S * B + b : 0);
        if (++b == B) b = 0, ++ow;
      }
      const auto idx = hn::Load(di, index);
      const auto mask = hn::FirstN(d, n);
      for (std::size_t j = 0; j < count; ++j) {
        for (std::size_t i = 0; i < rows; ++i) {
          const float* first = in + j * g.in_channel + i * S * g.in_row;
          V m = hn::GatherIndex(d, first, idx);
          for (std::size_t kh = 0; kh < K; ++kh) {
            for (std::size_t kw = 0; kw < K; ++kw) {
              if (kh == 0 && kw == 0) continue;
              const V x = hn::GatherIndex(d, first + kh * g.in_row + kw * B, idx);
              m = hn::IfThenElse(hn::Gt(x, m), x, m);
            }
          }
          hn::BlendedStore(m, mask, d, out + j * g.out_channel + i * g.out_row + t0);
        }
      }
    }
    return;
  }
  // Lanes over images: blocks of 4 full vectors, one block of the other full vectors, then one masked vector for the
  // last B % N images.
  const std::size_t tail_n = B % N, full = B - tail_n;
  const auto tail = hn::FirstN(d, tail_n);
  for (std::size_t j = 0; j < count; ++j) {
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t ow = 0; ow < OW; ++ow) {
        float* o = out + j * g.out_channel + i * g.out_row + ow * ld;
        const float* first = in + j * g.in_channel + i * S * g.in_row + ow * S * ld;
        std::size_t b0 = 0;
        for (; b0 + 4 * N <= full; b0 += 4 * N) PoolVectors<4>(d, o + b0, first + b0, g);
        switch ((full - b0) / N) {  // the rest of the full vectors in one block (a block of images: often 2 or 3)
          case 3: PoolVectors<3>(d, o + b0, first + b0, g); break;
          case 2: PoolVectors<2>(d, o + b0, first + b0, g); break;
          case 1: PoolVectors<1>(d, o + b0, first + b0, g); break;
          default: break;
        }
        if (tail_n != 0) {
          V m = LoadFirst(d, first + full, tail, tail_n);
          for (std::size_t kh = 0; kh < K; ++kh) {
            for (std::size_t kw = 0; kw < K; ++kw) {
              if (kh == 0 && kw == 0) continue;
              const V x = LoadFirst(d, first + kh * g.in_row + kw * ld + full, tail, tail_n);
              m = hn::IfThenElse(hn::Gt(x, m), x, m);
            }
          }
          hn::BlendedStore(m, tail, d, o + full);
        }
      }
    }
  }
}

// The geometry of a pool over whole tensors of `batch` images, computing `ow` columns of `images` images.
PoolGeometry PoolOver(Shape in, const MaxPool2dSpec& pool, std::size_t batch, std::size_t ow, std::size_t images) {
  const std::size_t B = batch;
  const Plane o = OutputPlane(in, pool.kernel, pool.stride);
  return PoolGeometry{pool.kernel, pool.stride, in.h * in.w * B, in.w * B, B, o.h * o.w * B, o.w * B, ow, images};
}

void MaxPool2dImpl(float* out, const float* in, Shape in_shape, const MaxPool2dSpec& pool, std::size_t batch,
                   Slice channels) {
  const Plane o = OutputPlane(in_shape, pool.kernel, pool.stride);
  const PoolGeometry g = PoolOver(in_shape, pool, batch, o.w, batch);
  PoolRows(g, out, in + channels.begin * g.in_channel, channels.count, o.h);
}

// Box `box` of the output, in place in the whole tensors (kernels.hpp: maxpool2d_box_forward).
void MaxPool2dBoxImpl(float* out, const float* in, Shape in_shape, const MaxPool2dSpec& pool, std::size_t batch,
                      const Box& box) {
  if (box.empty()) return;
  const PoolGeometry g = PoolOver(in_shape, pool, batch, box.w.count, box.b.count);
  const std::size_t S = pool.stride;
  PoolRows(g, out + box.c.begin * g.out_channel + box.h.begin * g.out_row + box.w.begin * batch + box.b.begin,
           in + box.c.begin * g.in_channel + box.h.begin * S * g.in_row + box.w.begin * S * batch + box.b.begin,
           box.c.count, box.h.count);
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution then max-pooling without the whole conv output: per group of kFusedConvChannels channels and pooled
// row (a part), the conv rows that row needs are computed into `workspace` (they stay in L1/L2), then pooled. Below
// kFusedWholePlanesBelow images a part is a group's whole conv planes (324 KB at most for the seed): one conv and one
// pool call per group instead of one per pooled row. Every conv and pool element sees the operations of Conv2dImpl /
// PoolRows, so the result is bit for bit the unfused one.
struct FusedGeometry {
  ConvGeometry conv;  // into the workspace: conv_rows rows per channel
  PoolGeometry pool;  // from the workspace into the pooled tensor
  std::size_t ph;
  std::size_t conv_rows;  // conv rows per channel the workspace holds: OH, or the pool's K
};

FusedGeometry Fused(const ConvPoolArgs& a) {
  const std::size_t B = a.batch;
  const Plane o = OutputPlane(a.in_shape, a.conv.kernel, a.conv.stride);
  const std::size_t PK = a.pool.kernel, PS = a.pool.stride;
  const std::size_t PH = (o.h - PK) / PS + 1, PW = (o.w - PK) / PS + 1;
  const std::size_t rows = B < kFusedWholePlanesBelow ? o.h : PK;
  ConvGeometry conv = ConvOver(a.in_shape, a.conv, B, o.w, B);
  conv.out_channel = rows * o.w * B;
  const PoolGeometry pool{PK, PS, rows * o.w * B, o.w * B, B, PH * PW * B, PW * B, PW, B};
  return FusedGeometry{conv, pool, PH, rows};
}

// Which channels and pooled rows a part covers is conv2d_maxpool2d_part's (the public, target-independent answer).
void Conv2dMaxPool2dConvPartImpl(const ConvPoolArgs& a, std::size_t part, float* workspace) {
  const FusedGeometry g = Fused(a);
  const ConvPoolPart p = conv2d_maxpool2d_part(a, part);
  const std::size_t oh0 = p.row * a.pool.stride;
  ConvRows(g.conv, workspace, a.in + oh0 * a.conv.stride * g.conv.in_row, a.weight + p.channel * g.conv.w_channel,
           a.bias + p.channel, p.channels, g.conv_rows);
}

void Conv2dMaxPool2dPoolPartImpl(const ConvPoolArgs& a, std::size_t part, const float* workspace, float* out,
                                 bool compact) {
  FusedGeometry g = Fused(a);
  const ConvPoolPart p = conv2d_maxpool2d_part(a, part);
  if (compact) g.pool.out_channel = p.rows * g.pool.out_row;
  PoolRows(g.pool, compact ? out : out + p.channel * g.pool.out_channel + p.row * g.pool.out_row, workspace,
           p.channels, p.rows);
}

void Conv2dMaxPool2dImpl(const ConvPoolArgs& a, float* out, float* workspace) {
  for (std::size_t p = 0, parts = conv2d_maxpool2d_parts(a); p < parts; ++p) {
    Conv2dMaxPool2dConvPartImpl(a, p, workspace);
    Conv2dMaxPool2dPoolPartImpl(a, p, workspace, out, false);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GELU. Both forms are computed as relu(x) - |x|*s, s in [0, 1/2] the small side of the sigmoid (tanh form) or of
// erfc/2 (erf form): x - x*s for x >= 0 and x*s for x < 0, one fused multiply-add on the FMA targets, so the
// result's error is about one rounding of the result plus |x| times s's error (docs/kernels.md gives the bound and
// the test):
//   tanh: 0.5x(1 + tanh u) = x*sigmoid(2u), u = sqrt(2/pi)(x + 0.044715x^3); s = e/(1+e), e = exp(-2|u|), with
//         -2|u| taken as |x| * (-2c - 2c*0.044715*x^2), c = sqrt(2/pi).
//   erf:  0.5x(1 + erf z), z = x/sqrt2; s = erfc(|z|)/2 = exp(-x^2/2) * t*P(t), t = 1/(1 + p|x|), P of degree 4
//         fitted (minimax, for the result's absolute error: <= 4.4e-8 before roundings).
// One division per element in either form. The constants come from the script in docs/kernels.md (GELU).
// Special values, on every target: NaN gives NaN; +inf gives +inf; -inf gives -0; +0 and -0 give +0; an x < 0
// whose s is 0 (below about -10.02 in the tanh form, -13.24 in the erf form) gives -0.

// exp(m) for m <= 0 (or NaN) in 12 operations. m is clamped to >= -88 (the constant first: a NaN m comes through
// on x86); n = round(m/ln2) by adding 1.5*2^23 + 127, which leaves n + 127 in the low mantissa bits;
// r = m - n*ln2 in one MulAdd (|r| <= ln2/2); e^r by a degree-5 minimax polynomial (relative error 1e-7); times
// 2^n, made by shifting those low bits into the exponent field. At the clamp n = -127 and 2^n comes out as +0, so
// the result is exactly 0 for m below about -87.7.
HWY_INLINE V GeluExp(D d, V m) {
  const hn::RebindToUnsigned<D> du;
  const V mc = hn::Max(hn::Set(d, -88.0f), m);
  const V magic = hn::Set(d, 12583039.0f);  // 1.5 * 2^23 + 127
  const V nm = hn::MulAdd(mc, hn::Set(d, 1.44269504088896341f), magic);
  const V r = hn::NegMulAdd(hn::Sub(nm, magic), hn::Set(d, 6.931471825e-01f), mc);
  V p = hn::Set(d, 8.290305734e-03f);
  p = hn::MulAdd(p, r, hn::Set(d, 4.189797491e-02f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.666763723e-01f));
  p = hn::MulAdd(p, r, hn::Set(d, 4.999915063e-01f));
  p = hn::MulAdd(p, r, hn::Set(d, 9.999997020e-01f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  return hn::Mul(p, hn::BitCast(d, hn::ShiftLeft<23>(hn::BitCast(du, nm))));
}

// relu(x) - min(|x|, 1e4)*s, relu(x) being x for x >= 0 (+0 for -0) and -0 for x < 0, so that an x < 0 whose
// product is 0 gives -0. |x| is clamped where s is already 0, so +-inf never meet 0 in the product. The constants
// come first in Max and Min: on x86 they return their second operand when either is NaN, so a NaN x comes
// through; other targets select it back explicitly.
HWY_INLINE V GeluFinish(D d, V x, V ax, V s) {
  const V relu = hn::Max(hn::Set(d, -0.0f), hn::Add(x, hn::Zero(d)));  // x + 0: -0 becomes +0
  const V res = hn::NegMulAdd(hn::Min(hn::Set(d, 1e4f), ax), s, relu);
#if HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
  return res;
#else
  return hn::IfThenElse(hn::IsNaN(x), x, res);
#endif
}

HWY_INLINE V GeluTanh(D d, V x) {
  const V ax = hn::Abs(x);
  const V k = hn::MulAdd(hn::Mul(x, x), hn::Set(d, -7.135481387e-02f), hn::Set(d, -1.595769167e+00f));
  const V e = GeluExp(d, hn::Mul(ax, k));
  return GeluFinish(d, x, ax, hn::Div(e, hn::Add(hn::Set(d, 1.0f), e)));
}

HWY_INLINE V GeluErf(D d, V x) {
  const V ax = hn::Abs(x);
  const V t = hn::Div(hn::Set(d, 1.0f), hn::MulAdd(ax, hn::Set(d, 3.386774659e-01f), hn::Set(d, 1.0f)));
  V q = hn::Set(d, -1.071461588e-01f);
  q = hn::MulAdd(q, t, hn::Set(d, 3.375687599e-01f));
  q = hn::MulAdd(q, t, hn::Set(d, -4.754334316e-02f));
  q = hn::MulAdd(q, t, hn::Set(d, 1.888152808e-01f));
  q = hn::MulAdd(q, t, hn::Set(d, 1.283034980e-01f));
  const V e = GeluExp(d, hn::Mul(x, hn::Mul(x, hn::Set(d, -0.5f))));  // -x^2/2, one rounding
  return GeluFinish(d, x, ax, hn::Mul(hn::Mul(q, t), e));
}

template <GeluForm kForm>
HWY_INLINE V Gelu(D d, V x) {
  return kForm == GeluForm::tanh ? GeluTanh(d, x) : GeluErf(d, x);
}

// Two vectors per iteration: their chains (each with a division) are independent, which keeps the divider and the
// FMA units a little busier (3-5% on AVX-512 at B = 64; four vectors measured the same). Every element goes through
// the same Gelu, whichever loop or lane holds it.
template <GeluForm kForm>
void GeluLoop(float* out, const float* in, std::size_t count) {
  const D d;
  const std::size_t N = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + 2 * N <= count; i += 2 * N) {
    const V y0 = Gelu<kForm>(d, hn::LoadU(d, in + i));
    const V y1 = Gelu<kForm>(d, hn::LoadU(d, in + i + N));
    hn::StoreU(y0, d, out + i);
    hn::StoreU(y1, d, out + i + N);
  }
  for (; i + N <= count; i += N) hn::StoreU(Gelu<kForm>(d, hn::LoadU(d, in + i)), d, out + i);
  if (i < count) {
    const auto m = hn::FirstN(d, count - i);
    hn::BlendedStore(Gelu<kForm>(d, LoadFirst(d, in + i, m, count - i)), m, d, out + i);
  }
}

void GeluImpl(float* out, const float* in, std::size_t count, GeluForm form) {
  if (form == GeluForm::tanh) {
    GeluLoop<GeluForm::tanh>(out, in, count);
  } else {
    GeluLoop<GeluForm::erf>(out, in, count);
  }
}

// Box `box` of a [C][H][W][B] tensor, B = batch, as the fewest runs of consecutive floats: a run per channel when
// the box has whole planes, per (channel, row) when it has every image (its columns are then consecutive), else per
// position.
template <GeluForm kForm>
void GeluBox(float* out, const float* in, Shape shape, std::size_t batch, const Box& box) {
  const std::size_t col = batch, row = shape.w * col, plane = shape.h * row;
  const bool whole_images = box.b.count == batch, whole_rows = whole_images && box.w.count == shape.w;
  const bool whole_planes = whole_rows && box.h.count == shape.h;
  const std::size_t rows = whole_planes ? 1 : box.h.count, cols = whole_images ? 1 : box.w.count;
  const std::size_t run = whole_planes ? plane : whole_images ? box.w.count * col : box.b.count;
  for (std::size_t c = box.c.begin; c < box.c.end(); ++c)
    for (std::size_t h = 0; h < rows; ++h)
      for (std::size_t w = 0; w < cols; ++w) {
        const std::size_t at = c * plane + (box.h.begin + h) * row + (box.w.begin + w) * col + box.b.begin;
        GeluLoop<kForm>(out + at, in + at, run);
      }
}

void GeluBoxImpl(float* out, const float* in, Shape shape, std::size_t batch, const Box& box, GeluForm form) {
  if (box.empty()) return;
  if (form == GeluForm::tanh) {
    GeluBox<GeluForm::tanh>(out, in, shape, batch, box);
  } else {
    GeluBox<GeluForm::erf>(out, in, shape, batch, box);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Linear layer, lanes over images: out[o][b] = ((0 + p_0) + p_1 + ...) + bias[o], p_i the MulAdd chain over block i
// of kLinearSumBlock features, in feature order. Loops: feature block (its x rows stay in L2), RO output rows (their
// weights stay in L1), NV vectors of images held in registers.
constexpr std::size_t kLinearPrefetchRows = 16;
[[maybe_unused]] constexpr std::size_t kLinearPrefetchFeatures = 128;  // the one-image path (AVX-512 only)

struct LinearGeometry {
  std::size_t f;   // row length of the weight matrix (features summed)
  std::size_t ld;  // row stride of x and out: the tensors' batch
};

template <std::size_t RO, std::size_t NV, bool kTail>
HWY_NOINLINE void LinearBlock(const LinearGeometry& g, float* HWY_RESTRICT out, const float* HWY_RESTRICT x,
                              const float* HWY_RESTRICT w, std::size_t nk, bool first_block, std::size_t tail_lanes) {
  const D d;
  const std::size_t N = hn::Lanes(d);
  const auto tail = hn::FirstN(d, tail_lanes);
  V acc[RO][NV];
  for (std::size_t r = 0; r < RO; ++r)
    for (std::size_t v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  for (std::size_t k = 0; k < nk; ++k) {
    // x's rows are ld floats apart and a block reads NV vectors of each: a stride the hardware prefetchers follow
    // poorly when x comes from L3 (B = 256: 5.5 MB), so ask for row k + kLinearPrefetchRows ahead. A prefetch is a
    // hint: past the end of x it reads nothing and cannot fault.
    for (std::size_t v = 0; v < NV; ++v) hwy::Prefetch(x + (k + kLinearPrefetchRows) * g.ld + v * N);
    V xv[NV];
    for (std::size_t v = 0; v < NV; ++v)
      xv[v] = LoadPart<kTail>(d, x + k * g.ld + v * N, v + 1 == NV, tail, tail_lanes);
    for (std::size_t r = 0; r < RO; ++r) {
      const V wv = hn::Set(d, w[r * g.f + k]);
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(wv, xv[v], acc[r][v]);
    }
  }
  for (std::size_t r = 0; r < RO; ++r) {
    for (std::size_t v = 0; v < NV; ++v) {
      float* o = out + r * g.ld + v * N;
      const V prev = first_block ? hn::Zero(d) : LoadPart<kTail>(d, o, v + 1 == NV, tail, tail_lanes);
      StorePart<kTail>(d, hn::Add(prev, acc[r][v]), o, v + 1 == NV, tail);
    }
  }
}

template <std::size_t RO>
void LinearChunk(const LinearGeometry& g, float* out, const float* x, const float* w, std::size_t nk, bool first,
                 std::size_t nv, std::size_t tail_lanes) {
  const bool t = tail_lanes != 0;
  switch (nv * 2 + t) {
    case 2: return LinearBlock<RO, 1, false>(g, out, x, w, nk, first, 0);
    case 3: return LinearBlock<RO, 1, true>(g, out, x, w, nk, first, tail_lanes);
    case 4: return LinearBlock<RO, 2, false>(g, out, x, w, nk, first, 0);
    case 5: return LinearBlock<RO, 2, true>(g, out, x, w, nk, first, tail_lanes);
    case 6: if constexpr (kLinearVectors >= 3) return LinearBlock<RO, 3, false>(g, out, x, w, nk, first, 0); break;
    case 7:
      if constexpr (kLinearVectors >= 3) return LinearBlock<RO, 3, true>(g, out, x, w, nk, first, tail_lanes);
      break;
    default: break;
  }
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// In-register transpose of 16 rows of 16 floats: r[i] becomes column i (unpack ps, unpack pd, two 128-bit shuffles).
HWY_INLINE void Transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  for (int h = 0; h < 16; h += 8) {
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}
#endif

// Fewer images than lanes: lanes over N output rows instead, each lane's weights gathered from its row (lanes past
// the last row read row 0 and are not stored). Each lane runs exactly the batch path's operations for its (o, b).
template <std::size_t NB>
HWY_NOINLINE void LinearFewImages(float* HWY_RESTRICT out, const float* HWY_RESTRICT x,
                                  const float* HWY_RESTRICT weight, const float* HWY_RESTRICT bias, std::size_t F,
                                  std::size_t ld, std::size_t rows, std::size_t b0) {
  const D d;
  const hn::RebindToSigned<D> di;
  const std::size_t N = hn::Lanes(d);
  HWY_ALIGN float lanes[hn::MaxLanes(d)];
  HWY_ALIGN std::int32_t index[hn::MaxLanes(d)];
  for (std::size_t o0 = 0; o0 < rows; o0 += N) {
    const std::size_t nr = std::min(N, rows - o0);
    for (std::size_t i = 0; i < N; ++i) index[i] = static_cast<std::int32_t>(i < nr ? i * F : 0);
    const auto idx = hn::Load(di, index);
    const float* w = weight + o0 * F;
    V total[NB];
    for (std::size_t b = 0; b < NB; ++b) total[b] = hn::Zero(d);
    for (std::size_t k0 = 0; k0 < F; k0 += kLinearSumBlock) {
      const std::size_t k1 = std::min(F, k0 + kLinearSumBlock);
      V acc[NB];
      for (std::size_t b = 0; b < NB; ++b) acc[b] = hn::Zero(d);
      std::size_t k = k0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
      // 16 rows x 16 features loaded and transposed in registers: cheaper than 16 gathers.
      for (; k + 16 <= k1; k += 16) {
        // One image: the layer streams its weights (2.8 MB for the seed) from L3 through 16 rows at once; prefetch
        // each row kLinearPrefetchFeatures ahead (a hint: past a row's end it only touches the next row).
        for (std::size_t i = 0; i < 16; ++i) hwy::Prefetch(w + (i < nr ? i : 0) * F + k + kLinearPrefetchFeatures);
        __m512 col[16];
        for (std::size_t i = 0; i < 16; ++i) col[i] = _mm512_loadu_ps(w + (i < nr ? i : 0) * F + k);
        Transpose16(col);
        for (std::size_t i = 0; i < 16; ++i)
          for (std::size_t b = 0; b < NB; ++b)
            acc[b] = hn::MulAdd(V{col[i]}, hn::Set(d, x[(k + i) * ld + b0 + b]), acc[b]);
      }
#endif
      for (; k < k1; ++k) {
        const V wv = hn::GatherIndex(d, w + k, idx);
        for (std::size_t b = 0; b < NB; ++b) acc[b] = hn::MulAdd(wv, hn::Set(d, x[k * ld + b0 + b]), acc[b]);
      }
      for (std::size_t b = 0; b < NB; ++b) total[b] = hn::Add(total[b], acc[b]);
    }
    if (F == 0)
      for (std::size_t b = 0; b < NB; ++b) total[b] = hn::Zero(d);
    for (std::size_t b = 0; b < NB; ++b) {
      if (bias != nullptr) {
        for (std::size_t i = 0; i < N; ++i) lanes[i] = i < nr ? bias[o0 + i] : 0.0f;
        total[b] = hn::Add(total[b], hn::Load(d, lanes));
      }
      hn::Store(total[b], d, lanes);
      for (std::size_t i = 0; i < nr; ++i) out[(o0 + i) * ld + b0 + b] = lanes[i];
    }
  }
}

// out [rows][B] = weight [rows][F] . x [F][B] (+ bias when given): B images whose rows are ld floats apart.
void LinearCore(float* out, const float* x, const float* weight, const float* bias, std::size_t F, std::size_t B,
                std::size_t rows, std::size_t ld) {
  const D d;
  const std::size_t N = hn::Lanes(d);
  const LinearGeometry g{F, ld};
  if (B < N && rows * F < (std::size_t{1} << 31)) {  // gather indices are 32-bit
    for (std::size_t b0 = 0; b0 < B; b0 += 4) {
      switch (std::min<std::size_t>(4, B - b0)) {
        case 1: LinearFewImages<1>(out, x, weight, bias, F, ld, rows, b0); break;
        case 2: LinearFewImages<2>(out, x, weight, bias, F, ld, rows, b0); break;
        case 3: LinearFewImages<3>(out, x, weight, bias, F, ld, rows, b0); break;
        default: LinearFewImages<4>(out, x, weight, bias, F, ld, rows, b0); break;
      }
    }
    return;
  }
  if (F == 0)
    for (std::size_t o = 0; o < rows; ++o) std::fill(out + o * ld, out + o * ld + B, 0.0f);
  for (std::size_t k0 = 0; k0 < F; k0 += kLinearSumBlock) {
    const std::size_t nk = std::min(kLinearSumBlock, F - k0);
    std::size_t o = 0;
    const auto run = [&](auto ro_tag, std::size_t o0) {
      constexpr std::size_t RO = decltype(ro_tag)::value;
      for (std::size_t b0 = 0; b0 < B; b0 += kLinearVectors * N) {
        const std::size_t rem = std::min(B - b0, kLinearVectors * N);
        LinearChunk<RO>(g, out + o0 * ld + b0, x + k0 * ld + b0, weight + o0 * F + k0, nk, k0 == 0, (rem + N - 1) / N,
                        rem % N);
      }
    };
    for (; o + kLinearRows <= rows; o += kLinearRows) run(std::integral_constant<std::size_t, kLinearRows>{}, o);
    if constexpr (kLinearRows > 4)
      for (; o + 4 <= rows; o += 4) run(std::integral_constant<std::size_t, 4>{}, o);
    for (; o < rows; ++o) run(std::integral_constant<std::size_t, 1>{}, o);
  }
  if (bias == nullptr) return;
  const auto tail = hn::FirstN(d, B % N);
  for (std::size_t o = 0; o < rows; ++o) {
    const V bv = hn::Set(d, bias[o]);
    for (std::size_t b0 = 0; b0 < B; b0 += N) {
      const bool last = b0 + N > B;
      float* p = out + o * ld + b0;
      StorePart<true>(d, hn::Add(LoadPart<true>(d, p, last, tail, B % N), bv), p, last, tail);
    }
  }
}

void LinearImpl(float* out, const float* in, const float* weight, const float* bias, std::size_t in_features,
                std::size_t batch, Slice features) {
  LinearCore(out, in, weight, bias, in_features, batch, features.count, batch);
}

// Box `box` of the [O][B] output: features box.c (weight and bias hold their rows), images box.b.
void LinearBoxImpl(float* out, const float* in, const float* weight, const float* bias, std::size_t in_features,
                   std::size_t batch, const Box& box) {
  if (box.empty()) return;
  LinearCore(out + box.c.begin * batch + box.b.begin, in + box.b.begin, weight, bias, in_features, box.b.count,
             box.c.count, batch);
}

void LinearPartialImpl(float* out, const float* in, const float* weight, std::size_t out_features, std::size_t batch,
                       Slice in_features) {
  LinearCore(out, in + in_features.begin * batch, weight, nullptr, in_features.count, batch, out_features, batch);
}

// ---------------------------------------------------------------------------------------------------------------
// LogSoftmax, lanes over images: m = running max (k order), sum of exp(x - m) in k order, log of the sum per image
// (std::log on each lane: one call per image), out = (x - m) - log_sum.
// B images whose rows are ld floats apart; out points at out_features' first row.
void LogSoftmaxCore(float* out, const float* in, std::size_t features, std::size_t B, Slice out_features,
                    std::size_t ld) {
  const D d;
  const std::size_t N = hn::Lanes(d);
  const auto tail = hn::FirstN(d, B % N);
  HWY_ALIGN float lanes[hn::MaxLanes(d)];
  for (std::size_t b0 = 0; b0 < B; b0 += N) {
    const bool last = b0 + N > B;
    V m = LoadPart<true>(d, in + b0, last, tail, B % N);
    for (std::size_t k = 1; k < features; ++k) {
      const V x = LoadPart<true>(d, in + k * ld + b0, last, tail, B % N);
      m = hn::IfThenElse(hn::Gt(x, m), x, m);
    }
    V sum = hn::Zero(d);
    for (std::size_t k = 0; k < features; ++k)
      sum = hn::Add(sum, hn::Exp(d, hn::Sub(LoadPart<true>(d, in + k * ld + b0, last, tail, B % N), m)));
    hn::Store(sum, d, lanes);
    for (std::size_t i = 0; i < N; ++i) lanes[i] = std::log(lanes[i]);
    const V log_sum = hn::Load(d, lanes);
    for (std::size_t j = 0; j < out_features.count; ++j) {
      const V x = LoadPart<true>(d, in + (out_features.begin + j) * ld + b0, last, tail, B % N);
      StorePart<true>(d, hn::Sub(hn::Sub(x, m), log_sum), out + j * ld + b0, last, tail);
    }
  }
}

void LogSoftmaxImpl(float* out, const float* in, std::size_t features, std::size_t batch, Slice out_features) {
  LogSoftmaxCore(out, in, features, batch, out_features, batch);
}

// Box `box` of the [features][B] output: features box.c, images box.b.
void LogSoftmaxBoxImpl(float* out, const float* in, std::size_t features, std::size_t batch, const Box& box) {
  if (box.empty()) return;
  LogSoftmaxCore(out + box.c.begin * batch + box.b.begin, in + box.b.begin, features, box.b.count, box.c, batch);
}

// The target this instantiation was compiled for (a HWY_* bit), so the dispatcher can report what it runs.
std::int64_t TargetImpl() { return HWY_TARGET; }

}  // namespace cnnpar::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cctype>
#include <string>

namespace cnnpar {

HWY_EXPORT(Conv2dImpl);
HWY_EXPORT(MaxPool2dImpl);
HWY_EXPORT(Conv2dMaxPool2dImpl);
HWY_EXPORT(Conv2dMaxPool2dConvPartImpl);
HWY_EXPORT(Conv2dMaxPool2dPoolPartImpl);
HWY_EXPORT(GeluImpl);
HWY_EXPORT(LinearImpl);
HWY_EXPORT(LinearPartialImpl);
HWY_EXPORT(LogSoftmaxImpl);
HWY_EXPORT(Conv2dBoxImpl);
HWY_EXPORT(MaxPool2dBoxImpl);
HWY_EXPORT(GeluBoxImpl);
HWY_EXPORT(LinearBoxImpl);
HWY_EXPORT(LogSoftmaxBoxImpl);
HWY_EXPORT(TargetImpl);

void conv2d_forward(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                    const Conv2dSpec& conv, std::size_t batch, Slice channels) {
  HWY_DYNAMIC_DISPATCH(Conv2dImpl)(out, in, weight, bias, in_shape, conv, batch, channels);
}

void maxpool2d_forward(float* out, const float* in, Shape in_shape, const MaxPool2dSpec& pool, std::size_t batch,
                       Slice channels) {
  HWY_DYNAMIC_DISPATCH(MaxPool2dImpl)(out, in, in_shape, pool, batch, channels);
}

void conv2d_maxpool2d_forward(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                              const Conv2dSpec& conv, const MaxPool2dSpec& pool, std::size_t batch, Slice channels,
                              float* workspace) {
  HWY_DYNAMIC_DISPATCH(Conv2dMaxPool2dImpl)(ConvPoolArgs{in, weight, bias, in_shape, conv, pool, batch, channels}, out,
                                            workspace);
}

namespace {
// Pooled rows of the fused layer, and how many parts each group of kFusedConvChannels channels is cut into (1: its
// whole planes, below kFusedWholePlanesBelow images; else one per pooled row).
struct FusedParts {
  std::size_t pooled_rows, per_group;
};
FusedParts fused_parts(const ConvPoolArgs& a) {
  const std::size_t OH = (a.in_shape.h - a.conv.kernel) / a.conv.stride + 1;
  const std::size_t PH = (OH - a.pool.kernel) / a.pool.stride + 1;
  return FusedParts{PH, a.batch < kFusedWholePlanesBelow ? 1 : PH};
}
}  // namespace

std::size_t conv2d_maxpool2d_parts(const ConvPoolArgs& a) {
  return (a.channels.count + kFusedConvChannels - 1) / kFusedConvChannels * fused_parts(a).per_group;
}

void conv2d_maxpool2d_conv_part(const ConvPoolArgs& a, std::size_t part, float* workspace) {
  HWY_DYNAMIC_DISPATCH(Conv2dMaxPool2dConvPartImpl)(a, part, workspace);
}

void conv2d_maxpool2d_pool_part(const ConvPoolArgs& a, std::size_t part, const float* workspace, float* out,
                                bool compact) {
  HWY_DYNAMIC_DISPATCH(Conv2dMaxPool2dPoolPartImpl)(a, part, workspace, out, compact);
}

ConvPoolPart conv2d_maxpool2d_part(const ConvPoolArgs& a, std::size_t part) {
  const auto [PH, per_group] = fused_parts(a);
  const std::size_t j0 = part / per_group * kFusedConvChannels;
  return ConvPoolPart{j0, std::min(kFusedConvChannels, a.channels.count - j0), per_group == 1 ? 0 : part % per_group,
                      per_group == 1 ? PH : 1};
}

std::size_t conv2d_maxpool2d_workspace(Shape in_shape, const Conv2dSpec& conv, const MaxPool2dSpec& pool,
                                       std::size_t batch) {
  const std::size_t OH = (in_shape.h - conv.kernel) / conv.stride + 1;
  const std::size_t OW = (in_shape.w - conv.kernel) / conv.stride + 1;
  return kFusedConvChannels * (batch < kFusedWholePlanesBelow ? OH : pool.kernel) * OW * batch;
}

void gelu_forward(float* out, const float* in, std::size_t count, GeluForm form) {
  HWY_DYNAMIC_DISPATCH(GeluImpl)(out, in, count, form);
}

void linear_forward(float* out, const float* in, const float* weight, const float* bias, std::size_t in_features,
                    std::size_t batch, Slice features) {
  HWY_DYNAMIC_DISPATCH(LinearImpl)(out, in, weight, bias, in_features, batch, features);
}

void linear_partial_forward(float* out, const float* in, const float* weight, std::size_t out_features,
                            std::size_t batch, Slice in_features) {
  HWY_DYNAMIC_DISPATCH(LinearPartialImpl)(out, in, weight, out_features, batch, in_features);
}

void logsoftmax_forward(float* out, const float* in, std::size_t features, std::size_t batch, Slice out_features) {
  HWY_DYNAMIC_DISPATCH(LogSoftmaxImpl)(out, in, features, batch, out_features);
}

void conv2d_box_forward(float* out, const float* in, const float* weight, const float* bias, Shape in_shape,
                        const Conv2dSpec& conv, std::size_t batch, const Box& box) {
  HWY_DYNAMIC_DISPATCH(Conv2dBoxImpl)(out, in, weight, bias, in_shape, conv, batch, box);
}

void maxpool2d_box_forward(float* out, const float* in, Shape in_shape, const MaxPool2dSpec& pool, std::size_t batch,
                           const Box& box) {
  HWY_DYNAMIC_DISPATCH(MaxPool2dBoxImpl)(out, in, in_shape, pool, batch, box);
}

void gelu_box_forward(float* out, const float* in, Shape shape, std::size_t batch, const Box& box, GeluForm form) {
  HWY_DYNAMIC_DISPATCH(GeluBoxImpl)(out, in, shape, batch, box, form);
}

void linear_box_forward(float* out, const float* in, const float* weight, const float* bias, std::size_t in_features,
                        std::size_t batch, const Box& box) {
  HWY_DYNAMIC_DISPATCH(LinearBoxImpl)(out, in, weight, bias, in_features, batch, box);
}

void logsoftmax_box_forward(float* out, const float* in, std::size_t features, std::size_t batch, const Box& box) {
  HWY_DYNAMIC_DISPATCH(LogSoftmaxBoxImpl)(out, in, features, batch, box);
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

// ---------------------------------------------------------------------------------------------------------------
// Target selection. Highway dispatches through one process-wide table index; pinning narrows the set of targets it
// may choose from (hwy::SetSupportedTargetsForTest, despite its name the supported way to mock the CPU) and
// re-initialises the index.
namespace {

std::string_view target_name(std::int64_t target) {
  switch (target) {
    case HWY_AVX3_DL: return "avx3_dl";
    case HWY_AVX3: return "avx3";
    case HWY_AVX2: return "avx2";
    case HWY_SSE4: return "sse4";
    case HWY_SSSE3: return "ssse3";
    case HWY_EMU128: return "emu128";
    case HWY_SCALAR: return "scalar";
    default: return "unknown";
  }
}

// Every target compiled into this file that the CPU runs, best first; taken once, before any pin.
const std::vector<std::int64_t>& available_targets() {
  static const std::vector<std::int64_t> targets = [] {
    std::vector<std::int64_t> t;
    for (std::int64_t bits = hwy::SupportedTargets() & HWY_TARGETS; bits != 0; bits &= bits - 1)
      t.push_back(bits & -bits);  // Highway's bits: lower = better
    return t;
  }();
  return targets;
}

}  // namespace

std::string_view kernel_target() { return target_name(HWY_DYNAMIC_DISPATCH(TargetImpl)()); }

std::vector<std::string> kernel_targets() {
  std::vector<std::string> names;
  for (const std::int64_t t : available_targets()) names.emplace_back(target_name(t));
  return names;
}

bool pin_kernel_target(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "avx512") lower = "avx3";
  const auto& targets = available_targets();
  std::int64_t chosen = 0;
  if (lower != "auto") {
    for (const std::int64_t t : targets)
      if (target_name(t) == lower) chosen = t;
    if (chosen == 0) return false;
  }
  hwy::SetSupportedTargetsForTest(chosen);  // 0: no mock, the CPU's own set
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return true;
}

}  // namespace cnnpar
#endif  // HWY_ONCE
