// libFuzzer target: the weights-file reader (validate_weights_file, then load_layer_weights / load_linear_columns as
// every rank does). The input does not become the HDF5 file's bytes: HDF5's own parser is not ours to fuzz, and
// Debian's 1.10 falls over on damaged files long before our code runs. It describes a well-formed file instead:
// which datasets exist (at the root or under /tensors), their shapes (often right, sometimes not), their types
// (float32, float64, integers, strings, gzip or not) and every value (NaN, infinities, float64 beyond float32),
// for a small network also chosen by the input. The property: validation passes only for files whose every weight
// then loads as a finite float of the right count; otherwise it throws WeightsFileError, never anything else.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cnnpar/h5.hpp"
#include "cnnpar/network.hpp"
#include "cnnpar/weights_file.hpp"

using namespace cnnpar;

namespace {

// Values of one dataset: mostly ordinary weights (so that valid files, and the loads after validation, are common),
// sometimes anything at all in any element.
template <class T>
std::vector<T> values(FuzzedDataProvider& in, std::size_t n) {
  std::vector<T> v(n);
  const bool wild = in.ConsumeIntegralInRange<int>(0, 3) == 3;
  for (T& x : v) {
    if constexpr (std::is_floating_point_v<T>) {
      switch (wild ? in.ConsumeIntegralInRange<int>(0, 7) : 0) {
        case 5: x = NAN; break;
        case 6: x = in.ConsumeBool() ? INFINITY : -INFINITY; break;
        case 7: x = static_cast<T>(in.ConsumeFloatingPoint<double>()); break;  // anything, float64 beyond float32
        default: x = static_cast<T>(in.ConsumeIntegralInRange<int>(-1000, 1000)) / T(1000);
      }
    } else {
      x = in.ConsumeIntegral<T>();
    }
  }
  return v;
}

void write_dataset(const h5::File& f, FuzzedDataProvider& in, const std::string& name, std::vector<hsize_t> dims) {
  // (Choices read as 0 once the input is used up, so 0 always picks the well-formed option.)
  if (in.ConsumeIntegralInRange<int>(0, 9) == 9) return;  // missing
  const std::string where = in.ConsumeBool() ? "tensors/" + name : name;
  if (in.ConsumeIntegralInRange<int>(0, 5) == 5) {  // a wrong shape
    if (in.ConsumeBool() && !dims.empty()) dims.pop_back();
    else dims.push_back(in.ConsumeIntegralInRange<hsize_t>(1, 3));
    if (!dims.empty()) dims[0] = in.ConsumeIntegralInRange<hsize_t>(1, 5);
  }
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  h5::WriteOptions gz;
  gz.compress_min_bytes = 0;
  const h5::WriteOptions options = in.ConsumeBool() ? gz : h5::WriteOptions{};
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 1: case 2: f.write(where, values<double>(in, n), dims, options); break;
    case 3: f.write(where, values<std::int64_t>(in, n), dims, options); break;
    case 4: f.write(where, values<std::uint8_t>(in, n), dims, options); break;
    case 5: f.write(where, std::vector<std::string>(n, in.ConsumeRandomLengthString(8))); break;
    default: f.write(where, values<float>(in, n), dims, options);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::size_t rows = in.ConsumeIntegralInRange<std::size_t>(3, 8), filters = in.ConsumeIntegralInRange(1, 3),
                    hidden = in.ConsumeIntegralInRange(1, 3), kernel = in.ConsumeIntegralInRange(1, 3);
  const std::vector<LayerInfo> layers = describe(seed_network(rows, rows, filters, hidden, GeluForm::tanh, kernel, 1));
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("cnnpar_fuzz_weights_" + std::to_string(getpid()) + ".h5");
  std::filesystem::remove(path);
  {
    h5::File f = h5::File::create(path);
    for (const LayerInfo& l : layers) {
      const std::vector<std::size_t> shape = weight_shape(l);
      if (shape.empty()) continue;
      write_dataset(f, in, l.name + ".weight", std::vector<hsize_t>(shape.begin(), shape.end()));
      write_dataset(f, in, l.name + ".bias", {shape[0]});
    }
    f.close();
  }
  try {
    validate_weights_file(path, layers);
  } catch (const WeightsFileError&) {
    return 0;
  }
  // Valid: every rank's reads succeed and give finite floats of the right count.
  static std::size_t valid = 0;
  if (++valid == 1 || valid == 10 || valid == 100 || valid == 1000)
    std::fprintf(stderr, "fuzz_weights: %zu valid files so far\n", valid);
  for (const LayerInfo& l : layers) {
    const std::vector<std::size_t> shape = weight_shape(l);
    if (shape.empty()) continue;
    const std::size_t per_item = l.weight_count / shape[0];
    const std::size_t first = in.ConsumeIntegralInRange<std::size_t>(0, shape[0] - 1);
    const Slice items{first, in.ConsumeIntegralInRange<std::size_t>(1, shape[0] - first)};
    const LayerWeights w = load_layer_weights(path, l, items);
    if (w.weight.size() != items.count * per_item || w.bias.size() != items.count) std::abort();
    for (float v : w.weight) if (!std::isfinite(v)) std::abort();
    for (float v : w.bias) if (!std::isfinite(v)) std::abort();
    if (std::holds_alternative<LinearSpec>(l.spec) && l.fan_in > 0) {  // row-parallel steps read columns
      const std::size_t c0 = in.ConsumeIntegralInRange<std::size_t>(0, l.fan_in - 1);
      const LayerWeights cols = load_linear_columns(path, l, Slice{c0, in.ConsumeIntegralInRange<std::size_t>(1, l.fan_in - c0)});
      for (float v : cols.weight) if (!std::isfinite(v)) std::abort();
    }
  }
  return 0;
}
