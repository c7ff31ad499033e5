// PyTorch-layout weights files (see weights_file.hpp).
#include "cnnpar/weights_file.hpp"

#include <cmath>
#include <sstream>

#include "cnnpar/h5.hpp"

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
  const std::vector<double> values = ds.read<double>();
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw WeightsFileError("weights file '" + path.string() + "': dataset '" + name + "' value " +
                             std::to_string(i) + " is " + (std::isnan(values[i]) ? "nan" : "infinite"));
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
