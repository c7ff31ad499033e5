// PyTorch-layout weights files (see weights_file.hpp).
#include "cnnpar/weights_file.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "cnnpar/h5.hpp"
#include "cnnpar/input_file.hpp"

namespace cnnpar {

namespace {

std::string shape_string(const std::vector<hsize_t>& dims) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < dims.size(); ++i) os << (i ? "," : "") << dims[i];
  return os.str() + "]";
}

// "<name>" at the root, else "tensors/<name>" (a results file written with --dump-tensors); empty if neither.
std::string locate(const h5::File& f, const std::string& name) {
  if (f.exists(name)) return name;
  if (f.exists("tensors/" + name)) return "tensors/" + name;
  return {};
}

// "HDF5 filter 32001 ('blosc')" for the first filter of the dataset that this HDF5 build lacks, or "". Without
// this check the read fails with HDF5's plugin-loader message ("can't open directory: .../plugins").
std::string unavailable_filter(const h5::Dataset& ds) {
  const h5::Handle dcpl(H5Dget_create_plist(ds.id()));
  if (!dcpl.valid()) return {};
  const int n = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0, config = 0;
    std::size_t nvalues = 0;
    char name[64] = "";
    const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags, &nvalues, nullptr,
                                           sizeof name, name, &config);
    if (id < 0 || H5Zfilter_avail(id) > 0) continue;
    std::string what = "HDF5 filter " + std::to_string(id);
    if (name[0] != '\0') what += std::string(" ('") + name + "')";
    return what;
  }
  return {};
}

void check_dataset(const h5::File& f, const std::filesystem::path& path, const std::string& name,
                   const std::vector<std::size_t>& want) {
  const std::string where = locate(f, name);
  if (where.empty())
    throw WeightsFileError("weights file '" + path.string() + "': dataset '" + name + "' is missing");
  const h5::Dataset ds = f.dataset(where);
  const std::vector<hsize_t> want_dims(want.begin(), want.end());
  if (ds.dims() != want_dims)
    throw WeightsFileError("weights file '" + path.string() + "': dataset '" + name + "' has shape " +
                           shape_string(ds.dims()) + ", expected " + shape_string(want_dims));
  if (ds.type().type_class != h5::TypeClass::floating)
    throw WeightsFileError("weights file '" + path.string() + "': dataset '" + name + "' holds " + ds.type().name() +
                           ", expected float32 or float64");
  if (const std::string missing = unavailable_filter(ds); !missing.empty())
    throw WeightsFileError("weights file '" + path.string() + "': dataset '" + name + "' is compressed with " + missing +
                           ", which this HDF5 build cannot decode (rewrite it uncompressed or with gzip)");
  // Checked in the range of the type the values become: a float64 1e39 is finite but float's infinity.
  const std::vector<double> values = ds.read<double>();
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i]) && std::fabs(values[i]) <= kFloatMax) continue;
    std::string problem = std::isnan(values[i]) ? "nan" : std::isinf(values[i]) ? "infinite" : "";
    if (problem.empty()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g, outside float32's range (|x| <= %g)", values[i], kFloatMax);
      problem = buf;
    }
    throw WeightsFileError("weights file '" + path.string() + "': dataset '" + name + "' value " + std::to_string(i) +
                           " is " + problem);
  }
}

// A block of a dataset, as float: `count` indices from `first` along dimension `dim`, everything along the others.
std::vector<float> read_block(const h5::Dataset& ds, std::size_t dim, std::size_t first, std::size_t count) {
  const std::vector<hsize_t> dims = ds.dims();
  std::vector<hsize_t> start(dims.size(), 0), extent = dims;
  start[dim] = first;
  extent[dim] = count;
  hsize_t total = 1;
  for (hsize_t e : extent) total *= e;
  std::vector<float> out(total);
  if (total == 0) return out;
  const h5::Handle file_space(H5Dget_space(ds.id()));
  const h5::Handle mem_space(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr));
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr) < 0 ||
      H5Dread(ds.id(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(), H5P_DEFAULT, out.data()) < 0)
    throw WeightsFileError("cannot read indices " + std::to_string(first) + "-" + std::to_string(first + count - 1) +
                           " of dimension " + std::to_string(dim) + " of " + ds.describe());
  return out;
}

}  // namespace

void validate_weights_file(const std::filesystem::path& path, const std::vector<LayerInfo>& layers) {
  h5::File f;
  // HDF5 opens the path blocking: a FIFO would hang rank 0 (and the job) in open(2). Regular files only.
  if (const std::string problem = regular_file_problem(path.string()); !problem.empty())
    throw WeightsFileError("weights file '" + path.string() + "' " + problem);
  try {
    f = h5::File::open_read(path);
  } catch (const h5::Error&) {
    throw WeightsFileError("weights file '" + path.string() + "' cannot be opened as HDF5 (missing, unreadable or "
                           "not an HDF5 file)");
  }
  try {
    for (const LayerInfo& layer : layers) {
      const std::vector<std::size_t> shape = weight_shape(layer);
      if (shape.empty()) continue;
      check_dataset(f, path, layer.name + ".weight", shape);
      check_dataset(f, path, layer.name + ".bias", {shape[0]});
    }
  } catch (const h5::Error& e) {
    throw WeightsFileError("weights file '" + path.string() + "': " + e.what());
  }
}

LayerWeights load_layer_weights(const std::filesystem::path& path, const LayerInfo& layer, Slice items) {
  LayerWeights lw{items, {}, {}};
  if (weight_shape(layer).empty()) return lw;
  const h5::File f = h5::File::open_read(path);
  lw.weight = read_block(f.dataset(locate(f, layer.name + ".weight")), 0, items.begin, items.count);
  lw.bias = read_block(f.dataset(locate(f, layer.name + ".bias")), 0, items.begin, items.count);
  return lw;
}

LayerWeights load_linear_columns(const std::filesystem::path& path, const LayerInfo& layer, Slice in_features) {
  const h5::File f = h5::File::open_read(path);
  LayerWeights lw{in_features, {}, {}};
  lw.weight = read_block(f.dataset(locate(f, layer.name + ".weight")), 1, in_features.begin, in_features.count);
  lw.bias = f.dataset(locate(f, layer.name + ".bias")).read<float>();
  return lw;
}

}  // namespace cnnpar
