// Kernel microbenchmarks (Google Benchmark): each kernel of the seed network at B = 1, 64 and 256, one rank's region
// of the rows, sample and tiles splits computed in place (the kernels' box forms) at B = 64 and 256, and the whole
// forward pass through the kernels (conv and pool separately, or fused), next to this core's measured FMA peak.
// After Google Benchmark's own lines it prints one table: GF/s and the fraction of peak for the kernels that
// multiply-add, ns per element for the others, images/s for the forward pass.
//
// Usage: build/bench/cnnpar_kernels_bench [--kernels=auto|avx3|avx2|sse4|...] [Google Benchmark flags]
// e.g. --benchmark_filter=linear --benchmark_repetitions=5 (the table then shows the median).
// A table, not a test: timings on a shared machine are noisy; compare runs made back to back. The table uses CPU
// time per call (single-threaded, so it leaves out only the time the process waited for a core).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cnnpar/aligned.hpp"
#include "cnnpar/kernels.hpp"

using namespace cnnpar;

namespace {

// ----- single-core FMA peak: 12 independent chains of vector FMAs (enough to cover latency x ports), in assembly
// so that nothing but the FMAs and the loop counter runs. x86-64 only, as are the kernels' fast paths.
#define CNNPAR_FMA12(R)                                                                                    \
  "vfmadd231ps %%" R "0, %%" R "0, %%" R "1\n vfmadd231ps %%" R "0, %%" R "0, %%" R "2\n"                   \
  "vfmadd231ps %%" R "0, %%" R "0, %%" R "3\n vfmadd231ps %%" R "0, %%" R "0, %%" R "4\n"                   \
  "vfmadd231ps %%" R "0, %%" R "0, %%" R "5\n vfmadd231ps %%" R "0, %%" R "0, %%" R "6\n"                   \
  "vfmadd231ps %%" R "0, %%" R "0, %%" R "7\n vfmadd231ps %%" R "0, %%" R "0, %%" R "8\n"                   \
  "vfmadd231ps %%" R "0, %%" R "0, %%" R "9\n vfmadd231ps %%" R "0, %%" R "0, %%" R "10\n"                  \
  "vfmadd231ps %%" R "0, %%" R "0, %%" R "11\n vfmadd231ps %%" R "0, %%" R "0, %%" R "12\n"
#define CNNPAR_FMA_PEAK(NAME, R, LANES)                                                                    \
  double NAME(long iterations) {                                                                           \
    const auto t0 = std::chrono::steady_clock::now();                                                      \
    asm volatile("vxorps %%" R "0, %%" R "0, %%" R "0\n mov %0, %%rcx\n 1:\n" CNNPAR_FMA12(R)              \
                 "dec %%rcx\n jnz 1b\n"                                                                     \
                 :                                                                                          \
                 : "r"(iterations)                                                                          \
                 : "rcx", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",    \
                   "xmm9", "xmm10", "xmm11", "xmm12");                                                      \
    const auto t1 = std::chrono::steady_clock::now();                                                      \
    return double(iterations) * 12 * LANES * 2 / std::chrono::duration<double>(t1 - t0).count();           \
  }
CNNPAR_FMA_PEAK(peak512, "zmm", 16)
CNNPAR_FMA_PEAK(peak256, "ymm", 8)

// The peak of the vector width the kernels use (the best of 5 short runs); 0 for targets without FMA.
double measure_peak(std::string_view target) {
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    if (target == "avx3" || target == "avx3_dl") best = std::max(best, peak512(20'000'000));
    if (target == "avx2") best = std::max(best, peak256(20'000'000));
  }
  return best;
}

// ----- the seed network's shapes ------------------------------------------------------------------------------
const Shape kImage{1, 28, 28};
const Conv2dSpec kConv{32, 3, 1};
const MaxPool2dSpec kPool{2, 2};
const Shape kConvOut{32, 26, 26}, kPoolOut{32, 13, 13};
constexpr std::size_t kF = 32 * 13 * 13, kO = 128, kClasses = 26;

AlignedFloats random_floats(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  AlignedFloats v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

struct Data {
  AlignedFloats image, conv_w, conv_b, lin_w, lin_b;
  Data()
      : conv_w(random_floats(32 * 9, 2, 1.0f / 3)),
        conv_b(random_floats(32, 3, 1.0f / 3)),
        lin_w(random_floats(kO * kF, 4, 0.0136f)),
        lin_b(random_floats(kO, 5, 0.0136f)) {}
};
const Data& data() {
  static const Data d;
  return d;
}

// What the summary table needs of each benchmark: multiply-add FLOPs, elements, images per iteration.
struct Work {
  double flops = 0, elements = 0, images = 0;
};
std::map<std::string, Work>& work() {
  static std::map<std::string, Work> w;
  return w;
}
void record(benchmark::State& state, const std::string& name, Work w) {
  work()[name + "/" + std::to_string(state.range(0))] = w;
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(w.elements > 0 ? w.elements : w.images));
}

void BM_conv(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kImage.elements() * B, 1);
  AlignedFloats out(kConvOut.elements() * B);
  for (auto _ : state) {
    conv2d_forward(out.data(), in.data(), data().conv_w.data(), data().conv_b.data(), kImage, kConv, B, Slice{0, 32});
    benchmark::DoNotOptimize(out.data());
  }
  record(state, "BM_conv", {2.0 * double(kConvOut.elements() * 9 * B), 0, double(B)});
}

void BM_pool(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kConvOut.elements() * B, 1);
  AlignedFloats out(kPoolOut.elements() * B);
  for (auto _ : state) {
    maxpool2d_forward(out.data(), in.data(), kConvOut, kPool, B, Slice{0, 32});
    benchmark::DoNotOptimize(out.data());
  }
  record(state, "BM_pool", {0, double(kPoolOut.elements() * B), double(B)});
}

void BM_conv_pool_fused(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kImage.elements() * B, 1);
  AlignedFloats out(kPoolOut.elements() * B), ws(conv2d_maxpool2d_workspace(kImage, kConv, kPool, B));
  for (auto _ : state) {
    conv2d_maxpool2d_forward(out.data(), in.data(), data().conv_w.data(), data().conv_b.data(), kImage, kConv, kPool,
                             B, Slice{0, 32}, ws.data());
    benchmark::DoNotOptimize(out.data());
  }
  record(state, "BM_conv_pool_fused", {2.0 * double(kConvOut.elements() * 9 * B), 0, double(B)});
}

template <GeluForm kForm>
void BM_gelu(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kF * B, 1, 4.0f);
  AlignedFloats out(kF * B);
  for (auto _ : state) {
    gelu_forward(out.data(), in.data(), kF * B, kForm);
    benchmark::DoNotOptimize(out.data());
  }
  record(state, kForm == GeluForm::tanh ? "BM_gelu_tanh" : "BM_gelu_erf", {0, double(kF * B), double(B)});
}

void BM_linear(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kF * B, 1);
  AlignedFloats out(kO * B);
  for (auto _ : state) {
    linear_forward(out.data(), in.data(), data().lin_w.data(), data().lin_b.data(), kF, B, Slice{0, kO});
    benchmark::DoNotOptimize(out.data());
  }
  record(state, "BM_linear", {2.0 * double(kF * kO * B), 0, double(B)});
}

void BM_logsoftmax(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kClasses * B, 1, 8.0f);
  AlignedFloats out(kClasses * B);
  for (auto _ : state) {
    logsoftmax_forward(out.data(), in.data(), kClasses, B, Slice{0, kClasses});
    benchmark::DoNotOptimize(out.data());
  }
  record(state, "BM_logsoftmax", {0, double(kClasses * B), double(B)});
}

// ----- one rank's region of a spatial or sample split, computed in place by the kernels' box forms: its GF/s (or
// ns/element) against the whole layer's above shows whether a region costs more per element than the whole layer.
// The regions are rank 0's at P = 2 (rows: the first half of the output rows; sample: the first half of the images)
// and rank 0's of a 2 x 2 grid (tiles: the top-left quarter of rows x columns).
enum class Region { rows, sample, tiles };
Box region_box(Region region, const Shape& out, std::size_t B) {
  const Slice c{0, out.c}, h{0, out.h}, w{0, out.w}, b{0, B};
  switch (region) {
    case Region::rows: return Box{c, Slice{0, (out.h + 1) / 2}, w, b};
    case Region::sample: return Box{c, h, w, Slice{0, (B + 1) / 2}};
    case Region::tiles: return Box{c, Slice{0, (out.h + 1) / 2}, Slice{0, (out.w + 1) / 2}, b};
  }
  return {};
}
const char* region_name(Region region) {
  return region == Region::rows ? "rows" : region == Region::sample ? "sample" : "tiles";
}

template <Region kRegion>
void BM_conv_box(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kImage.elements() * B, 1);
  AlignedFloats out(kConvOut.elements() * B);
  const Box box = region_box(kRegion, kConvOut, B);
  for (auto _ : state) {
    conv2d_box_forward(out.data(), in.data(), data().conv_w.data(), data().conv_b.data(), kImage, kConv, B, box);
    benchmark::DoNotOptimize(out.data());
  }
  record(state, std::string("BM_conv_") + region_name(kRegion),
         {2.0 * double(box.volume() * 9), 0, double(box.volume()) / double(kConvOut.elements())});
}

template <Region kRegion>
void BM_pool_box(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kConvOut.elements() * B, 1);
  AlignedFloats out(kPoolOut.elements() * B);
  const Box box = region_box(kRegion, kPoolOut, B);
  for (auto _ : state) {
    maxpool2d_box_forward(out.data(), in.data(), kConvOut, kPool, B, box);
    benchmark::DoNotOptimize(out.data());
  }
  record(state, std::string("BM_pool_") + region_name(kRegion),
         {0, double(box.volume()), double(box.volume()) / double(kPoolOut.elements())});
}

template <Region kRegion>
void BM_gelu_box(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kF * B, 1, 4.0f);
  AlignedFloats out(kF * B);
  const Box box = region_box(kRegion, kPoolOut, B);
  for (auto _ : state) {
    gelu_box_forward(out.data(), in.data(), kPoolOut, B, box, GeluForm::tanh);
    benchmark::DoNotOptimize(out.data());
  }
  record(state, std::string("BM_gelu_tanh_") + region_name(kRegion),
         {0, double(box.volume()), double(box.volume()) / double(kF)});
}

void BM_linear_sample(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kF * B, 1);
  AlignedFloats out(kO * B);
  const Box box = region_box(Region::sample, Shape{kO, 1, 1}, B);
  for (auto _ : state) {
    linear_box_forward(out.data(), in.data(), data().lin_w.data(), data().lin_b.data(), kF, B, box);
    benchmark::DoNotOptimize(out.data());
  }
  record(state, "BM_linear_sample", {2.0 * double(kF * kO * box.b.count), 0, double(box.b.count)});
}

// The seed network's whole pass through the kernels, one layer after another (as the per-layer plan runs it on
// one rank) or with conv+pool fused. No MPI, no timing records: what the kernels allow.
template <bool kFused>
void BM_forward(benchmark::State& state) {
  const std::size_t B = std::size_t(state.range(0));
  const auto in = random_floats(kImage.elements() * B, 1);
  AlignedFloats conv(kFused ? 0 : kConvOut.elements() * B), pool(kF * B), act(kF * B), out(kO * B);
  AlignedFloats ws(kFused ? conv2d_maxpool2d_workspace(kImage, kConv, kPool, B) : 0);
  const Data& d = data();
  for (auto _ : state) {
    if (kFused) {
      conv2d_maxpool2d_forward(pool.data(), in.data(), d.conv_w.data(), d.conv_b.data(), kImage, kConv, kPool, B,
                               Slice{0, 32}, ws.data());
    } else {
      conv2d_forward(conv.data(), in.data(), d.conv_w.data(), d.conv_b.data(), kImage, kConv, B, Slice{0, 32});
      maxpool2d_forward(pool.data(), conv.data(), kConvOut, kPool, B, Slice{0, 32});
    }
    gelu_forward(act.data(), pool.data(), kF * B, GeluForm::tanh);
    linear_forward(out.data(), act.data(), d.lin_w.data(), d.lin_b.data(), kF, B, Slice{0, kO});
    benchmark::DoNotOptimize(out.data());
  }
  record(state, kFused ? "BM_forward_fused" : "BM_forward_per_layer", {0, 0, double(B)});
}

// Collects every run (medians when --benchmark_repetitions > 1) for the summary table.
class TableReporter : public benchmark::ConsoleReporter {
 public:
  struct Row {
    std::string name;
    double secs;  // CPU time per iteration
  };
  std::vector<Row> rows;
  bool repeated = false;
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Aggregate) {
        repeated = true;
        if (r.aggregate_name != "median") continue;
      } else if (r.repetitions > 1) {
        continue;
      }
      rows.push_back({r.run_name.str(), r.GetAdjustedCPUTime() * 1e-9});  // time unit: ns
    }
  }
};

}  // namespace

BENCHMARK(BM_conv)->Arg(1)->Arg(16)->Arg(64)->Arg(256);
BENCHMARK(BM_pool)->Arg(1)->Arg(64)->Arg(256);
BENCHMARK(BM_conv_pool_fused)->Arg(1)->Arg(64)->Arg(256);
BENCHMARK(BM_gelu<GeluForm::tanh>)->Name("BM_gelu_tanh")->Arg(1)->Arg(64)->Arg(256);
BENCHMARK(BM_gelu<GeluForm::erf>)->Name("BM_gelu_erf")->Arg(1)->Arg(64)->Arg(256);
BENCHMARK(BM_linear)->Arg(1)->Arg(64)->Arg(256);
BENCHMARK(BM_logsoftmax)->Arg(1)->Arg(64)->Arg(256);
BENCHMARK(BM_conv_box<Region::rows>)->Name("BM_conv_rows")->Arg(64)->Arg(256);
BENCHMARK(BM_conv_box<Region::sample>)->Name("BM_conv_sample")->Arg(64)->Arg(256);
BENCHMARK(BM_conv_box<Region::tiles>)->Name("BM_conv_tiles")->Arg(64)->Arg(256);
BENCHMARK(BM_pool_box<Region::rows>)->Name("BM_pool_rows")->Arg(64)->Arg(256);
BENCHMARK(BM_pool_box<Region::sample>)->Name("BM_pool_sample")->Arg(64)->Arg(256);
BENCHMARK(BM_pool_box<Region::tiles>)->Name("BM_pool_tiles")->Arg(64)->Arg(256);
BENCHMARK(BM_gelu_box<Region::rows>)->Name("BM_gelu_tanh_rows")->Arg(64)->Arg(256);
BENCHMARK(BM_gelu_box<Region::sample>)->Name("BM_gelu_tanh_sample")->Arg(64)->Arg(256);
BENCHMARK(BM_gelu_box<Region::tiles>)->Name("BM_gelu_tanh_tiles")->Arg(64)->Arg(256);
BENCHMARK(BM_linear_sample)->Arg(64)->Arg(256);
BENCHMARK(BM_forward<false>)->Name("BM_forward_per_layer")->Arg(1)->Arg(64)->Arg(256);
BENCHMARK(BM_forward<true>)->Name("BM_forward_fused")->Arg(1)->Arg(64)->Arg(256);

int main(int argc, char** argv) {
  std::vector<char*> args;
  bool peak_wanted = true;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-peak") == 0) {  // e.g. under valgrind, which runs no AVX-512
      peak_wanted = false;
      continue;
    }
    if (std::strncmp(argv[i], "--kernels=", 10) == 0) {
      if (!pin_kernel_target(argv[i] + 10)) {
        std::fprintf(stderr, "unknown or unsupported --kernels=%s (this CPU:", argv[i] + 10);
        for (const auto& t : kernel_targets()) std::fprintf(stderr, " %s", t.c_str());
        std::fprintf(stderr, ")\n");
        return 2;
      }
      continue;
    }
    args.push_back(argv[i]);
  }
  int n = int(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;

  const std::string target(kernel_target());
  const double peak = peak_wanted ? measure_peak(target) : 0.0;
  std::printf("kernels: %s; single-core FMA peak (%s vectors, 12 chains, best of 5): %.1f GF/s\n", target.c_str(),
              target.c_str(), peak * 1e-9);
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf("\nkernels %s, peak %.1f GF/s; CPU time per call%s\n", target.c_str(), peak * 1e-9,
              reporter.repeated ? ", medians of the repetitions" : " (one run each; add --benchmark_repetitions=5)");
  std::printf("%-22s %5s %12s %10s %8s %10s %12s\n", "benchmark", "B", "us/call", "GF/s", "of peak", "ns/elem",
              "images/s");
  for (const auto& row : reporter.rows) {
    const auto slash = row.name.rfind('/');
    const std::string base = row.name.substr(0, slash);
    const std::string B = row.name.substr(slash + 1);
    const Work& w = work()[base + "/" + B];
    char gf[32] = "", frac[32] = "", ns[32] = "";
    if (w.flops > 0) {
      std::snprintf(gf, sizeof gf, "%.1f", w.flops / row.secs * 1e-9);
      if (peak > 0) std::snprintf(frac, sizeof frac, "%.0f%%", 100 * w.flops / row.secs / peak);
    }
    if (w.elements > 0) std::snprintf(ns, sizeof ns, "%.3f", row.secs / w.elements * 1e9);
    std::printf("%-22s %5s %12.1f %10s %8s %10s %12.0f\n", base.substr(3).c_str(), B.c_str(), row.secs * 1e6, gf, frac,
                ns, w.images / row.secs);
  }
  benchmark::Shutdown();
  return 0;
}
