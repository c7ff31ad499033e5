// The kernels' determinism contract on every instruction set this CPU runs, and their accuracy:
//   - slices of uneven sizes, concatenated, equal the whole layer bit for bit (conv, pool, fused conv+pool over
//     channels; GELU over element ranges; linear and LogSoftmax over output features);
//   - an image's result does not depend on the batch around it: alone, inside batches of 3, 17, 64 and 257, at any
//     position (image tiles and register blocks change, the bits do not);
//   - every kernel's box form (a block of channels x rows x columns x images, in place) equals that part of the
//     whole layer, writing nothing else;
//   - fused conv+pool equals conv then pool; the linear layer's partial sums over all features plus the bias equal it;
//   - accuracy against double precision (GELU within 1e-6 absolute over [-10, 10] and a log-spaced sweep out to the
//     largest floats), and GELU's special values bit for bit.
// Shapes are small but odd so every tail path runs; the seed network's own shapes are covered in test_kernels.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cnnpar/kernels.hpp"
#include "cnnpar/partition.hpp"

using namespace cnnpar;

namespace {

constexpr std::size_t kBatches[] = {1, 3, 17, 64, 257};

std::vector<float> random_floats(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// Nothing to compare is equal (an empty slice's vectors may hold null pointers, which memcmp must not be given).
bool bitwise_equal(const float* a, const float* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(float)) == 0;
}

// The slices a test cuts `items` into: block partitions for P = 2, 3, 5, 7 (uneven) and a hand-made uneven one.
std::vector<std::vector<Slice>> splits(std::size_t items) {
  std::vector<std::vector<Slice>> all;
  for (std::size_t P : {2u, 3u, 5u, 7u}) {
    std::vector<Slice> s;
    for (std::size_t r = 0; r < P; ++r) s.push_back(block_slice(items, P, r));
    all.push_back(s);
  }
  std::vector<Slice> odd;
  for (std::size_t b = 0, n = 1; b < items; b += n, n = n * 2 + 1) odd.push_back(Slice{b, std::min(n, items - b)});
  all.push_back(odd);
  return all;
}

// Image b of an activation [items][B] (batch innermost), as a B=1 activation; and the images [b0, b0+n) as a batch.
std::vector<float> images(const std::vector<float>& act, std::size_t B, std::size_t b0, std::size_t n) {
  const std::size_t items = act.size() / B;
  std::vector<float> out(items * n);
  for (std::size_t i = 0; i < items; ++i)
    for (std::size_t b = 0; b < n; ++b) out[i * n + b] = act[i * B + b0 + b];
  return out;
}

// A kernel as "compute the whole output [items][per_item][B] of this input batch".
using Whole = std::function<std::vector<float>(const std::vector<float>& in, std::size_t B)>;

// An image alone, and images inside smaller batches at odd offsets, equal the same images in the big batch.
void expect_batch_independent(const Whole& run, std::size_t in_per_image, std::size_t B, unsigned seed,
                              const std::string& what) {
  const std::vector<float> in = random_floats(in_per_image * B, seed);
  const std::vector<float> whole = run(in, B);
  const std::size_t out_per_image = whole.size() / B;
  for (std::size_t b0 : {std::size_t{0}, B / 2, B - 1}) {
    for (std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{17}}) {
      if (b0 + n > B) continue;
      const std::vector<float> part = run(images(in, B, b0, n), n);
      ASSERT_TRUE(bitwise_equal(part.data(), images(whole, B, b0, n).data(), out_per_image * n))
          << what << ": images " << b0 << ".." << b0 + n - 1 << " of B=" << B << " computed as a batch of " << n;
    }
  }
}

// Runs `body` once per instruction set this CPU has, each pinned, then restores the automatic choice.
void for_each_target(const std::function<void(const std::string&)>& body) {
  for (const std::string& t : kernel_targets()) {
    ASSERT_TRUE(pin_kernel_target(t)) << t;
    ASSERT_EQ(kernel_target(), t);
    SCOPED_TRACE("kernels " + t);
    body(t);
    if (::testing::Test::HasFatalFailure()) break;
  }
  ASSERT_TRUE(pin_kernel_target("auto"));
}

struct ConvCase {
  Shape in;
  Conv2dSpec conv;
  MaxPool2dSpec pool;
  Shape conv_out() const {
    const std::size_t K = conv.kernel, S = conv.stride;
    return Shape{conv.out_channels, (in.h - K) / S + 1, (in.w - K) / S + 1};
  }
  Shape pool_out() const {
    const Shape o = conv_out();
    return Shape{o.c, (o.h - pool.kernel) / pool.stride + 1, (o.w - pool.kernel) / pool.stride + 1};
  }
};
const ConvCase kConvCases[] = {
    {Shape{2, 11, 9}, Conv2dSpec{11, 3, 1}, MaxPool2dSpec{2, 2}},  // odd conv output 9x7: the pool drops a row/col
    {Shape{3, 9, 10}, Conv2dSpec{5, 2, 2}, MaxPool2dSpec{3, 2}},   // strided conv, overlapping pool windows
};

}  // namespace

TEST(KernelTargets, ListPinAndRestore) {
  const auto targets = kernel_targets();
  ASSERT_FALSE(targets.empty());
  EXPECT_TRUE(pin_kernel_target("auto"));
  EXPECT_EQ(kernel_target(), targets.front());  // the best first
  EXPECT_FALSE(pin_kernel_target("no-such-set"));
  EXPECT_EQ(kernel_target(), targets.front());  // unchanged
  EXPECT_TRUE(pin_kernel_target(targets.back()));
  EXPECT_EQ(kernel_target(), targets.back());
  EXPECT_TRUE(pin_kernel_target("AUTO"));
  EXPECT_EQ(kernel_target(), targets.front());
}

TEST(KernelContract, ConvPoolAndFusedSlicesAndBatches) {
  for_each_target([](const std::string&) {
    for (const ConvCase& c : kConvCases) {
      const std::size_t K = c.conv.kernel, C = c.conv.out_channels;
      const Shape conv_out = c.conv_out(), pool_out = c.pool_out();
      const auto weight = random_floats(C * c.in.c * K * K, 3), bias = random_floats(C, 4);
      const auto conv = [&](const std::vector<float>& in, std::size_t B, Slice s) {
        std::vector<float> out(s.count * conv_out.h * conv_out.w * B);
        conv2d_forward(out.data(), in.data(), weight.data() + s.begin * c.in.c * K * K, bias.data() + s.begin, c.in,
                       c.conv, B, s);
        return out;
      };
      const auto pool = [&](const std::vector<float>& in, std::size_t B, Slice s) {
        std::vector<float> out(s.count * pool_out.h * pool_out.w * B);
        maxpool2d_forward(out.data(), in.data(), conv_out, c.pool, B, s);
        return out;
      };
      const auto fused = [&](const std::vector<float>& in, std::size_t B, Slice s) {
        std::vector<float> out(s.count * pool_out.h * pool_out.w * B);
        std::vector<float> ws(conv2d_maxpool2d_workspace(c.in, c.conv, c.pool, B));
        conv2d_maxpool2d_forward(out.data(), in.data(), weight.data() + s.begin * c.in.c * K * K,
                                 bias.data() + s.begin, c.in, c.conv, c.pool, B, s, ws.data());
        // The same call in parts (how the experiment times conv and pool apart) gives the same bits.
        std::vector<float> parts_out(out.size());
        const ConvPoolArgs args{in.data(), weight.data() + s.begin * c.in.c * K * K, bias.data() + s.begin,
                                c.in, c.conv, c.pool, B, s};
        // With `compact` a part's pooled rows come alone: [its channels][its rows][PW][B], the same values.
        const std::size_t pw_b = pool_out.w * B;
        std::vector<float> compact(kFusedConvChannels * pool_out.h * pw_b);
        for (std::size_t p = 0, n = conv2d_maxpool2d_parts(args); p < n; ++p) {
          conv2d_maxpool2d_conv_part(args, p, ws.data());
          conv2d_maxpool2d_pool_part(args, p, ws.data(), parts_out.data());
          conv2d_maxpool2d_pool_part(args, p, ws.data(), compact.data(), true);
          const ConvPoolPart part = conv2d_maxpool2d_part(args, p);
          for (std::size_t j = 0; j < part.channels; ++j)
            EXPECT_TRUE(bitwise_equal(compact.data() + j * part.rows * pw_b,
                                      out.data() + ((part.channel + j) * pool_out.h + part.row) * pw_b,
                                      part.rows * pw_b))
                << "compact part " << p << ", B=" << B;
        }
        EXPECT_TRUE(bitwise_equal(parts_out.data(), out.data(), out.size())) << "fused in parts, B=" << B;
        return out;
      };
      for (const std::size_t B : kBatches) {
        const auto in = random_floats(c.in.elements() * B, 5 + unsigned(B));
        const auto conv_whole = conv(in, B, Slice{0, C});
        const auto pool_whole = pool(conv_whole, B, Slice{0, C});
        ASSERT_TRUE(bitwise_equal(fused(in, B, Slice{0, C}).data(), pool_whole.data(), pool_whole.size()))
            << "fused conv+pool vs conv then pool, B=" << B;
        for (const auto& split : splits(C)) {
          std::vector<float> conv_cat, pool_cat, fused_cat;
          for (const Slice s : split) {
            for (float x : conv(in, B, s)) conv_cat.push_back(x);
            for (float x : pool(conv_whole, B, s)) pool_cat.push_back(x);
            for (float x : fused(in, B, s)) fused_cat.push_back(x);
          }
          ASSERT_TRUE(bitwise_equal(conv_cat.data(), conv_whole.data(), conv_whole.size())) << "conv B=" << B;
          ASSERT_TRUE(bitwise_equal(pool_cat.data(), pool_whole.data(), pool_whole.size())) << "pool B=" << B;
          ASSERT_TRUE(bitwise_equal(fused_cat.data(), pool_whole.data(), pool_whole.size())) << "fused B=" << B;
        }
        const Slice all{0, C};
        expect_batch_independent([&](const auto& x, std::size_t b) { return conv(x, b, all); }, c.in.elements(), B,
                                 9, "conv");
        expect_batch_independent([&](const auto& x, std::size_t b) { return pool(x, b, all); }, conv_out.elements(),
                                 B, 10, "pool");
        expect_batch_independent([&](const auto& x, std::size_t b) { return fused(x, b, all); }, c.in.elements(), B,
                                 11, "fused conv+pool");
      }
    }
  });
}

namespace {
// Boxes that cut every axis of a C x H x W x B tensor unevenly: each axis whole, its first item, a middle block and
// its last item (one image alone, images from the middle of a vector, a tail; columns not starting at 0; ...).
std::vector<Box> odd_boxes(const Shape& shape, std::size_t batch) {
  const auto cuts = [](std::size_t n) {
    std::vector<Slice> c{Slice{0, n}, Slice{0, 1}, Slice{n - 1, 1}};
    if (n > 2) c.push_back(Slice{1, n - 2});
    return c;
  };
  std::vector<Box> boxes;
  for (const Slice c : cuts(shape.c))
    for (const Slice h : cuts(shape.h))
      for (const Slice w : cuts(shape.w))
        for (const Slice b : cuts(batch)) boxes.push_back(Box{c, h, w, b});
  return boxes;
}

// The box form of a kernel (kernels.hpp: *_box_forward) computes exactly `box` of the whole output: those values bit
// for bit, nothing written outside it (the output starts as NaN there and stays so).
void expect_box_of_whole(const std::function<void(float* out, const Box& box)>& run_box,
                         const std::vector<float>& whole, const Shape& shape, std::size_t B, const std::string& what) {
  for (const Box& box : odd_boxes(shape, B)) {
    std::vector<float> got(whole.size(), std::nanf("")), want(whole.size(), std::nanf(""));
    run_box(got.data(), box);
    for (std::size_t c = box.c.begin; c < box.c.end(); ++c)
      for (std::size_t h = box.h.begin; h < box.h.end(); ++h)
        for (std::size_t w = box.w.begin; w < box.w.end(); ++w)
          for (std::size_t b = box.b.begin; b < box.b.end(); ++b) {
            const std::size_t at = ((c * shape.h + h) * shape.w + w) * B + b;
            want[at] = whole[at];
          }
    ASSERT_TRUE(bitwise_equal(got.data(), want.data(), want.size()))
        << what << " B=" << B << " box c" << box.c.begin << "+" << box.c.count << " h" << box.h.begin << "+"
        << box.h.count << " w" << box.w.begin << "+" << box.w.count << " b" << box.b.begin << "+" << box.b.count;
  }
}
}  // namespace

// Every layer's box form against its whole-layer kernel, on every instruction set: strided and overlapping windows,
// boxes of single rows, columns and images, at batch sizes below and above a vector's lanes.
TEST(KernelContract, BoxFormsEqualTheWholeLayerBitForBit) {
  for_each_target([](const std::string&) {
    for (const ConvCase& c : kConvCases) {
      const std::size_t K = c.conv.kernel, C = c.conv.out_channels;
      const Shape conv_out = c.conv_out(), pool_out = c.pool_out();
      const auto weight = random_floats(C * c.in.c * K * K, 31), bias = random_floats(C, 32);
      for (const std::size_t B : {1u, 3u, 17u, 40u}) {
        const auto in = random_floats(c.in.elements() * B, 33 + unsigned(B));
        std::vector<float> conv(conv_out.elements() * B), pool(pool_out.elements() * B), gelu(conv.size());
        conv2d_forward(conv.data(), in.data(), weight.data(), bias.data(), c.in, c.conv, B, Slice{0, C});
        maxpool2d_forward(pool.data(), conv.data(), conv_out, c.pool, B, Slice{0, C});
        gelu_forward(gelu.data(), conv.data(), conv.size(), GeluForm::erf);
        expect_box_of_whole(
            [&](float* out, const Box& box) {
              conv2d_box_forward(out, in.data(), weight.data() + box.c.begin * c.in.c * K * K,
                                 bias.data() + box.c.begin, c.in, c.conv, B, box);
            },
            conv, conv_out, B, "conv");
        expect_box_of_whole([&](float* out, const Box& box) {
          maxpool2d_box_forward(out, conv.data(), conv_out, c.pool, B, box);
        }, pool, pool_out, B, "pool");
        expect_box_of_whole([&](float* out, const Box& box) {
          gelu_box_forward(out, conv.data(), conv_out, B, box, GeluForm::erf);
        }, gelu, conv_out, B, "gelu");
      }
    }
    const std::size_t F = 37, O = 11;
    const auto weight = random_floats(O * F, 41), bias = random_floats(O, 42);
    for (const std::size_t B : {1u, 3u, 17u, 40u}) {
      const auto in = random_floats(F * B, 43 + unsigned(B));
      std::vector<float> linear(O * B), logsoftmax(F * B);
      linear_forward(linear.data(), in.data(), weight.data(), bias.data(), F, B, Slice{0, O});
      logsoftmax_forward(logsoftmax.data(), in.data(), F, B, Slice{0, F});
      expect_box_of_whole([&](float* out, const Box& box) {
        linear_box_forward(out, in.data(), weight.data() + box.c.begin * F, bias.data() + box.c.begin, F, B, box);
      }, linear, Shape{O, 1, 1}, B, "linear");
      expect_box_of_whole([&](float* out, const Box& box) {
        logsoftmax_box_forward(out, in.data(), F, B, box);
      }, logsoftmax, Shape{F, 1, 1}, B, "logsoftmax");
    }
  });
}

TEST(KernelContract, ConvAndPoolMatchDoublePrecision) {
  const ConvCase& c = kConvCases[0];
  const std::size_t K = c.conv.kernel, C = c.conv.out_channels, B = 17;
  const std::size_t OH = c.in.h - K + 1, OW = c.in.w - K + 1;
  const auto in = random_floats(c.in.elements() * B, 21), weight = random_floats(C * c.in.c * K * K, 22),
             bias = random_floats(C, 23);
  std::vector<float> out(C * OH * OW * B);
  conv2d_forward(out.data(), in.data(), weight.data(), bias.data(), c.in, c.conv, B, Slice{0, C});
  for (std::size_t j = 0; j < C; ++j)
    for (std::size_t oh = 0; oh < OH; ++oh)
      for (std::size_t ow = 0; ow < OW; ++ow)
        for (std::size_t b = 0; b < B; ++b) {
          double want = bias[j];
          for (std::size_t ci = 0; ci < c.in.c; ++ci)
            for (std::size_t kh = 0; kh < K; ++kh)
              for (std::size_t kw = 0; kw < K; ++kw)
                want += double(weight[((j * c.in.c + ci) * K + kh) * K + kw]) *
                        in[((ci * c.in.h + oh + kh) * c.in.w + ow + kw) * B + b];
          ASSERT_NEAR(out[((j * OH + oh) * OW + ow) * B + b], want, 2e-6);
        }
  // Max-pooling is exact.
  const std::size_t PH = (OH - 2) / 2 + 1, PW = (OW - 2) / 2 + 1;
  std::vector<float> pooled(C * PH * PW * B);
  maxpool2d_forward(pooled.data(), out.data(), Shape{C, OH, OW}, c.pool, B, Slice{0, C});
  for (std::size_t j = 0; j < C; ++j)
    for (std::size_t ph = 0; ph < PH; ++ph)
      for (std::size_t pw = 0; pw < PW; ++pw)
        for (std::size_t b = 0; b < B; ++b) {
          float m = -std::numeric_limits<float>::infinity();
          for (std::size_t kh = 0; kh < 2; ++kh)
            for (std::size_t kw = 0; kw < 2; ++kw)
              m = std::max(m, out[((j * OH + 2 * ph + kh) * OW + 2 * pw + kw) * B + b]);
          ASSERT_EQ(pooled[((j * PH + ph) * PW + pw) * B + b], m);
        }
}

// A filter of 130 x 3 x 3 = 1,170 taps runs in two passes over the taps (the second resumes from stored sums): still
// one chain per element, so it matches double precision and its slices and batches agree bit for bit.
TEST(KernelContract, ConvWithManyTapsRunsInExactPasses) {
  const Shape in_shape{130, 5, 6};
  const Conv2dSpec spec{9, 3, 1};
  const std::size_t C = 9, K = 3, OH = 3, OW = 4;
  const auto weight = random_floats(C * 130 * K * K, 81, -0.1f, 0.1f), bias = random_floats(C, 82);
  const auto conv = [&](const std::vector<float>& in, std::size_t B, Slice s) {
    std::vector<float> out(s.count * OH * OW * B);
    conv2d_forward(out.data(), in.data(), weight.data() + s.begin * 130 * K * K, bias.data() + s.begin, in_shape,
                   spec, B, s);
    return out;
  };
  for (const std::size_t B : {1u, 17u}) {
    const auto in = random_floats(in_shape.elements() * B, 83);
    const auto whole = conv(in, B, Slice{0, C});
    std::vector<float> cat;
    const auto split = splits(C);  // a named copy: a range-for over splits(C)[1] would outlive its temporary
    for (const Slice s : split[1])
      for (float x : conv(in, B, s)) cat.push_back(x);
    ASSERT_TRUE(bitwise_equal(cat.data(), whole.data(), whole.size()));
    expect_batch_independent([&](const auto& x, std::size_t b) { return conv(x, b, Slice{0, C}); },
                             in_shape.elements(), B, 84, "conv 1170 taps");
    for (std::size_t j = 0; j < C; ++j)
      for (std::size_t p = 0; p < OH * OW; ++p)
        for (std::size_t b = 0; b < B; ++b) {
          double want = bias[j];
          for (std::size_t ci = 0; ci < 130; ++ci)
            for (std::size_t kh = 0; kh < K; ++kh)
              for (std::size_t kw = 0; kw < K; ++kw)
                want += double(weight[((j * 130 + ci) * K + kh) * K + kw]) *
                        in[((ci * 5 + p / OW + kh) * 6 + p % OW + kw) * B + b];
          ASSERT_NEAR(whole[(j * OH * OW + p) * B + b], want, 1e-5);
        }
  }
}

TEST(KernelContract, LinearSlicesBatchesAndPartialSums) {
  for_each_target([](const std::string&) {
    const std::size_t F = 1100, O = 37;  // crosses two sum blocks; O is no multiple of any register block
    const auto weight = random_floats(O * F, 31), bias = random_floats(O, 32);
    const auto linear = [&](const std::vector<float>& in, std::size_t B, Slice s) {
      std::vector<float> out(s.count * B);
      linear_forward(out.data(), in.data(), weight.data() + s.begin * F, bias.data() + s.begin, F, B, s);
      return out;
    };
    for (const std::size_t B : kBatches) {
      const auto in = random_floats(F * B, 33 + unsigned(B));
      const auto whole = linear(in, B, Slice{0, O});
      for (const auto& split : splits(O)) {
        std::vector<float> cat;
        for (const Slice s : split)
          for (float x : linear(in, B, s)) cat.push_back(x);
        ASSERT_TRUE(bitwise_equal(cat.data(), whole.data(), whole.size())) << "B=" << B;
      }
      // Partial sums over all input features, plus the bias added the same way, are the layer.
      std::vector<float> partial(O * B);
      linear_partial_forward(partial.data(), in.data(), weight.data(), O, B, Slice{0, F});
      for (std::size_t o = 0; o < O; ++o)
        for (std::size_t b = 0; b < B; ++b) partial[o * B + b] += bias[o];
      ASSERT_TRUE(bitwise_equal(partial.data(), whole.data(), whole.size())) << "partial B=" << B;
      expect_batch_independent([&](const auto& x, std::size_t b) { return linear(x, b, Slice{0, O}); }, F, B, 34,
                               "linear");
      // A rank's partial sums over an uneven feature range do not depend on the batch either.
      const Slice cols{401, 600};
      std::vector<float> w_cols(O * cols.count);
      for (std::size_t o = 0; o < O; ++o)
        for (std::size_t k = 0; k < cols.count; ++k) w_cols[o * cols.count + k] = weight[o * F + cols.begin + k];
      expect_batch_independent(
          [&](const auto& x, std::size_t b) {
            std::vector<float> out(O * b);
            linear_partial_forward(out.data(), x.data(), w_cols.data(), O, b, cols);
            return out;
          },
          F, B, 35, "linear partial");
    }
  });
}

TEST(KernelContract, LinearMatchesDoublePrecision) {
  const std::size_t F = 5408, O = 19, B = 5;  // the seed's fan-in
  const auto in = random_floats(F * B, 41), weight = random_floats(O * F, 42, -0.0136f, 0.0136f),
             bias = random_floats(O, 43, -0.0136f, 0.0136f);
  std::vector<float> out(O * B);
  linear_forward(out.data(), in.data(), weight.data(), bias.data(), F, B, Slice{0, O});
  for (std::size_t o = 0; o < O; ++o)
    for (std::size_t b = 0; b < B; ++b) {
      double want = bias[o];
      for (std::size_t k = 0; k < F; ++k) want += double(weight[o * F + k]) * in[k * B + b];
      EXPECT_NEAR(out[o * B + b], want, 1e-6) << o << "," << b;
    }
}

TEST(KernelContract, GeluSlicesAndBatches) {
  for_each_target([](const std::string&) {
    for (const GeluForm form : {GeluForm::tanh, GeluForm::erf}) {
      const auto gelu_all = [&](const std::vector<float>& in, std::size_t) {
        std::vector<float> out(in.size());
        gelu_forward(out.data(), in.data(), in.size(), form);
        return out;
      };
      for (const std::size_t B : kBatches) {
        const std::size_t items = 45;  // elements per image
        const auto in = random_floats(items * B, 51 + unsigned(B), -6.0f, 6.0f);
        const auto whole = gelu_all(in, B);
        for (const auto& split : splits(items)) {
          std::vector<float> cat(whole.size(), std::nanf(""));
          for (const Slice s : split)
            gelu_forward(cat.data() + s.begin * B, in.data() + s.begin * B, s.count * B, form);
          ASSERT_TRUE(bitwise_equal(cat.data(), whole.data(), whole.size())) << "B=" << B;
        }
        expect_batch_independent(gelu_all, items, B, 52, "gelu");
      }
    }
  });
}

// Against the formulas in double precision: dense over [-10, 10] (every 2^-12, ~82,000 points), then 64 points a
// decade from the smallest denormal to 1e30 and the largest floats, both signs (~9,600 points). Prints each
// target's worst error (docs/kernels.md quotes them).
TEST(KernelContract, GeluWithinOneMillionthOfDoublePrecision) {
  using lim = std::numeric_limits<float>;
  std::vector<float> x;
  for (float v = -10.0f; v <= 10.0f; v += 1.0f / 4096) x.push_back(v);
  for (int k = -45 * 64; k <= 30 * 64; ++k) {  // 10^(k/64): 1e-45 rounds to the smallest denormal
    const float v = float(std::pow(10.0, k / 64.0));
    x.push_back(v);
    x.push_back(-v);
  }
  for (float v : {0.0f, lim::min(), std::nextafter(lim::min(), 0.0f), 3e38f, lim::max()}) {
    x.push_back(v);
    x.push_back(-v);
  }
  for_each_target([&](const std::string& target) {
    for (const GeluForm form : {GeluForm::tanh, GeluForm::erf}) {
      std::vector<float> y(x.size());
      gelu_forward(y.data(), x.data(), x.size(), form);
      double worst = 0, at = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double v = x[i];
        const double want = form == GeluForm::tanh
                                ? 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
                                : 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
        const double err = std::abs(double(y[i]) - want);
        if (!(err <= worst)) worst = err, at = v;
      }
      const char* name = form == GeluForm::tanh ? "tanh" : "erf";
      std::printf("GELU %s form, kernels %s: max abs error %.3g at x = %.9g\n", name, target.c_str(), worst, at);
      EXPECT_LE(worst, 1e-6) << target << " " << name << ": worst at x=" << at;
    }
  });
}

// The special values docs/kernels.md lists, bit for bit, on every target: NaN gives NaN, +inf +inf, -inf -0, +0
// and -0 give +0, x >= 8 gives x, very negative x gives -0; tiny x give a result between x and 0 of x's sign.
TEST(KernelContract, GeluSpecialValues) {
  using lim = std::numeric_limits<float>;
  const float inf = lim::infinity();
  const std::vector<std::pair<float, float>> exact = {
      {inf, inf},     {-inf, -0.0f},  {0.0f, 0.0f},        {-0.0f, 0.0f},       {8.0f, 8.0f},
      {10.0f, 10.0f}, {16.0f, 16.0f}, {1e4f, 1e4f},        {1e10f, 1e10f},      {lim::max(), lim::max()},
      {-20.0f, -0.0f}, {-1e4f, -0.0f}, {-1e10f, -0.0f},    {-lim::max(), -0.0f}};
  const std::vector<float> tiny = {lim::denorm_min(), 1e-40f, std::nextafter(lim::min(), 0.0f), lim::min(),
                                   1e-30f, 1e-7f};
  std::vector<float> in = {std::nanf(""), -std::nanf("")};
  for (const auto& [x, want] : exact) in.push_back(x);
  for (const float v : tiny) {
    in.push_back(v);
    in.push_back(-v);
  }
  const auto bits = [](float v) {
    std::uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    return u;
  };
  for_each_target([&](const std::string&) {
    for (const GeluForm form : {GeluForm::tanh, GeluForm::erf}) {
      SCOPED_TRACE(form == GeluForm::tanh ? "tanh" : "erf");
      std::vector<float> out(in.size());
      gelu_forward(out.data(), in.data(), in.size(), form);
      EXPECT_TRUE(std::isnan(out[0]));
      EXPECT_TRUE(std::isnan(out[1]));
      for (std::size_t i = 0; i < exact.size(); ++i)
        EXPECT_EQ(bits(out[2 + i]), bits(exact[i].second)) << "x=" << exact[i].first << " gave " << out[2 + i];
      for (std::size_t i = 2 + exact.size(); i < in.size(); ++i) {
        const float x = in[i], y = out[i];
        EXPECT_TRUE(x > 0 ? (y >= 0 && y <= x && !std::signbit(y)) : (y <= 0 && y >= x && std::signbit(y)))
            << "x=" << x << " gave " << y;
      }
    }
  });
}

TEST(KernelContract, LogSoftmaxSlicesAndBatches) {
  for_each_target([](const std::string&) {
    for (const std::size_t F : {26u, 128u}) {
      const auto run = [&](const std::vector<float>& in, std::size_t B, Slice s) {
        std::vector<float> out(s.count * B);
        logsoftmax_forward(out.data(), in.data(), F, B, s);
        return out;
      };
      for (const std::size_t B : kBatches) {
        const auto in = random_floats(F * B, 61 + unsigned(B), -8.0f, 8.0f);
        const auto whole = run(in, B, Slice{0, F});
        for (const auto& split : splits(F)) {
          std::vector<float> cat;
          for (const Slice s : split)
            for (float x : run(in, B, s)) cat.push_back(x);
          ASSERT_TRUE(bitwise_equal(cat.data(), whole.data(), whole.size())) << "F=" << F << " B=" << B;
        }
        expect_batch_independent([&](const auto& x, std::size_t b) { return run(x, b, Slice{0, F}); }, F, B, 62,
                                 "logsoftmax");
        for (std::size_t b = 0; b < B; ++b) {
          double m = in[b], sum = 0;
          for (std::size_t k = 0; k < F; ++k) m = std::max(m, double(in[k * B + b]));
          for (std::size_t k = 0; k < F; ++k) sum += std::exp(double(in[k * B + b]) - m);
          for (std::size_t k = 0; k < F; ++k)
            ASSERT_NEAR(whole[k * B + b], double(in[k * B + b]) - m - std::log(sum), 2e-6);
        }
      }
    }
  });
}

// Instruction sets with FMA (avx3, avx2) agree bit for bit with each other, and those without do too: every lane runs
// the same operations whatever the vector width.
TEST(KernelContract, SameBitsAcrossVectorWidths) {
  const std::size_t F = 700, O = 9, B = 21;
  const auto in = random_floats(F * B, 71, -4.0f, 4.0f), weight = random_floats(O * F, 72), bias = random_floats(O, 73);
  const ConvCase& c = kConvCases[0];
  const std::size_t C = c.conv.out_channels, K = c.conv.kernel;
  const auto cin = random_floats(c.in.elements() * B, 74), cw = random_floats(C * c.in.c * K * K, 75),
             cb = random_floats(C, 76);
  const auto everything = [&] {
    std::vector<float> r(O * B + 2 * F * B + F / 7 * B + C * 9 * 7 * B);
    float* p = r.data();
    linear_forward(p, in.data(), weight.data(), bias.data(), F, B, Slice{0, O});
    p += O * B;
    gelu_forward(p, in.data(), F * B, GeluForm::tanh);
    p += F * B;
    gelu_forward(p, in.data(), F * B, GeluForm::erf);
    p += F * B;
    logsoftmax_forward(p, in.data(), F / 7, B, Slice{0, F / 7});
    p += F / 7 * B;
    conv2d_forward(p, cin.data(), cw.data(), cb.data(), c.in, c.conv, B, Slice{0, C});
    return r;
  };
  std::vector<float> fma_bits, plain_bits;
  for_each_target([&](const std::string& t) {
    const bool fma = t == "avx3" || t == "avx3_dl" || t == "avx2";
    std::vector<float>& ref = fma ? fma_bits : plain_bits;
    const auto got = everything();
    if (ref.empty()) {
      ref = got;
    } else {
      EXPECT_TRUE(bitwise_equal(got.data(), ref.data(), ref.size())) << t;
    }
  });
}
