// The RAII layer over the HDF5 C API (see h5.hpp): handle ownership, error conversion, groups, datasets,
// attributes and the write-to-temp-then-rename helper.
#include "cnnpar/h5.hpp"

#include "cnnpar/output_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <system_error>
#include <utility>

namespace cnnpar::h5 {

namespace fs = std::filesystem;

namespace {

// Switches off HDF5's printing of its error stack to stderr: errors reach callers as exceptions instead. Done once;
// every File factory calls this before its first HDF5 call, and every other object comes from a File.
void silence_hdf5_error_printing() {
  static const bool silenced = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}

herr_t collect_error_description(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  try {
    out->emplace_back(err != nullptr && err->desc != nullptr ? err->desc : "");
  } catch (...) {
    return -1;  // never let a C++ exception cross the C library
  }
  return 0;
}

// The most specific description on HDF5's current error stack (the innermost entry that says something), or "".
// Must be called right after the failing HDF5 call: the next API call clears the stack.
std::string hdf5_error_detail() {
  std::vector<std::string> descriptions;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error_description, &descriptions);
  for (const std::string& d : descriptions) {
    if (!d.empty()) return d;
  }
  return {};
}

// Returns `status` when it is non-negative, else throws with the message `what()` builds. `what` runs only on failure
// and after the HDF5 error detail has been captured, so it may build strings freely (but should not call HDF5).
template <class Status, class What>
Status check(Status status, What&& what) {
  if (status < 0) {
    std::string detail = hdf5_error_detail();
    throw Error("HDF5: " + what() + (detail.empty() ? std::string{} : ": " + detail));
  }
  return status;
}

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

// Native (memory) and standard little-endian (file) HDF5 types for the element types.
template <Element T>
hid_t memory_type() {
  if constexpr (std::same_as<T, double>) return H5T_NATIVE_DOUBLE;
  if constexpr (std::same_as<T, float>) return H5T_NATIVE_FLOAT;
  if constexpr (std::same_as<T, std::int64_t>) return H5T_NATIVE_INT64;
  if constexpr (std::same_as<T, std::uint64_t>) return H5T_NATIVE_UINT64;
  if constexpr (std::same_as<T, std::int32_t>) return H5T_NATIVE_INT32;
  if constexpr (std::same_as<T, std::uint8_t>) return H5T_NATIVE_UINT8;
}

template <Element T>
hid_t file_type() {
  if constexpr (std::same_as<T, double>) return H5T_IEEE_F64LE;
  if constexpr (std::same_as<T, float>) return H5T_IEEE_F32LE;
  if constexpr (std::same_as<T, std::int64_t>) return H5T_STD_I64LE;
  if constexpr (std::same_as<T, std::uint64_t>) return H5T_STD_U64LE;
  if constexpr (std::same_as<T, std::int32_t>) return H5T_STD_I32LE;
  if constexpr (std::same_as<T, std::uint8_t>) return H5T_STD_U8LE;
}

// A variable-length string type with character set `cset`.
Handle vlen_string_type(H5T_cset_t cset) {
  Handle t(check(H5Tcopy(H5T_C_S1), [] { return std::string("cannot copy the string type"); }));
  check(H5Tset_size(t.get(), H5T_VARIABLE), [] { return std::string("cannot make a variable-length string type"); });
  check(H5Tset_cset(t.get(), cset), [] { return std::string("cannot set a string type's character set"); });
  return t;
}

// Link creation properties: create missing intermediate groups, link names are UTF-8.
Handle link_create_plist() {
  Handle p(check(H5Pcreate(H5P_LINK_CREATE), [] { return std::string("cannot create a link property list"); }));
  check(H5Pset_create_intermediate_group(p.get(), 1),
        [] { return std::string("cannot enable creation of intermediate groups"); });
  check(H5Pset_char_encoding(p.get(), H5T_CSET_UTF8), [] { return std::string("cannot set link name encoding"); });
  return p;
}

TypeInfo type_info_of(hid_t type) {
  TypeInfo info;
  info.size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      info.type_class = TypeClass::integer;
      info.is_signed = H5Tget_sign(type) == H5T_SGN_2;
      break;
    case H5T_FLOAT:
      info.type_class = TypeClass::floating;
      break;
    case H5T_STRING:
      info.type_class = TypeClass::string;
      info.variable_length = H5Tis_variable_str(type) > 0;
      break;
    default:
      info.type_class = TypeClass::other;
      break;
  }
  return info;
}

std::size_t element_count(hid_t space, const std::function<std::string()>& what) {
  const hssize_t n = check(H5Sget_simple_extent_npoints(space), what);
  return static_cast<std::size_t>(n);
}

// Reads every element of a string attribute (`is_attribute`) or dataset `obj`, variable- or fixed-length.
// `where` describes the object for error messages.
std::vector<std::string> read_string_values(hid_t obj, bool is_attribute, const std::string& where) {
  auto what = [&](const char* op) { return [&where, op] { return std::string("cannot ") + op + " " + where; }; };
  Handle ftype(check(is_attribute ? H5Aget_type(obj) : H5Dget_type(obj), what("get the type of")));
  Handle space(check(is_attribute ? H5Aget_space(obj) : H5Dget_space(obj), what("get the dataspace of")));
  const TypeInfo info = type_info_of(ftype.get());
  if (info.type_class != TypeClass::string) {
    throw Error("HDF5: cannot read " + where + " as a string: it holds " + info.name());
  }
  const std::size_t n = element_count(space.get(), what("count the elements of"));
  std::vector<std::string> out;
  out.reserve(n);
  if (n == 0) return out;
  auto read = [&](hid_t mtype, void* buf) {
    check(is_attribute ? H5Aread(obj, mtype, buf) : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf),
          what("read"));
  };

  if (info.variable_length) {
    // Same character set as stored: HDF5 does not convert between ASCII and UTF-8.
    Handle mtype = vlen_string_type(H5Tget_cset(ftype.get()));
    std::vector<char*> ptrs(n, nullptr);
    read(mtype.get(), ptrs.data());
    struct Free {  // HDF5 allocated each string; release them however we leave
      std::vector<char*>& p;
      ~Free() {
        for (char* s : p) {
          if (s != nullptr) H5free_memory(s);
        }
      }
    } free_strings{ptrs};
    for (const char* s : ptrs) out.emplace_back(s != nullptr ? s : "");
    return out;
  }

  // Fixed-length: n slots of info.size bytes, padded with NULs or spaces.
  Handle mtype(check(H5Tcopy(ftype.get()), what("copy the type of")));
  const H5T_str_t pad = H5Tget_strpad(ftype.get());
  std::vector<char> buf(n * info.size);
  read(mtype.get(), buf.data());
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view s(buf.data() + i * info.size, info.size);
    if (pad == H5T_STR_SPACEPAD) {
      s = s.substr(0, s.find_last_not_of(' ') + 1);  // npos + 1 == 0: all spaces
    } else {
      s = s.substr(0, s.find('\0'));
    }
    out.emplace_back(s);
  }
  return out;
}

// Chunk extent for compressing a dataset of `dims` with `elem_size`-byte elements: whole dataset if it is small,
// else the slowest-varying dimensions are halved first (keeping contiguous rows together) until a chunk is at most
// ~1 MiB. Every chunk dimension is in [1, dims[i]] (dims are all non-zero here).
std::vector<hsize_t> chunk_dims(const std::vector<hsize_t>& dims, std::size_t elem_size) {
  constexpr hsize_t kTargetBytes = hsize_t{1} << 20;
  std::vector<hsize_t> chunk = dims;
  auto bytes = [&] {
    hsize_t b = elem_size;
    for (hsize_t d : chunk) b *= d;
    return b;
  };
  for (std::size_t i = 0; i < chunk.size() && bytes() > kTargetBytes; ++i) {
    while (chunk[i] > 1 && bytes() > kTargetBytes) chunk[i] = (chunk[i] + 1) / 2;
  }
  return chunk;
}

std::string dims_string(const std::vector<hsize_t>& dims) {
  std::string s = "{";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "}";
}

bool exists_as_anything(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

std::string refuse_overwrite_message(const fs::path& p) {
  return "output file '" + p.string() + "' exists; pass --force to overwrite it";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------------
// Handle

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.release();
  }
  return *this;
}

hid_t Handle::release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }

void Handle::reset() noexcept { (void)close(); }

herr_t Handle::close() noexcept {
  if (id_ < 0) return 0;
  const hid_t id = release();
  // An identifier may already be gone (objects of a strong-close file die with it): H5Iget_type says H5I_BADID.
  switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    case H5I_GENPROP_LST: return H5Pclose(id);
    case H5I_BADID: return -1;
    default: return H5Idec_ref(id) < 0 ? -1 : 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// TypeInfo

std::string TypeInfo::name() const {
  switch (type_class) {
    case TypeClass::integer: return (is_signed ? "int" : "uint") + std::to_string(size * 8);
    case TypeClass::floating: return "float" + std::to_string(size * 8);
    case TypeClass::string: return "string";
    case TypeClass::other: break;
  }
  return "other";
}

// ---------------------------------------------------------------------------------------------------------------------
// Object and attributes

Object::Object(Handle handle, std::string file_name) : handle_(std::move(handle)), file_(std::move(file_name)) {
  const ssize_t len = H5Iget_name(handle_.get(), nullptr, 0);
  if (len > 0) {
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    H5Iget_name(handle_.get(), name.data(), name.size());
    name.resize(static_cast<std::size_t>(len));
    path_ = std::move(name);
  } else {
    path_ = "/";
  }
}

std::string Object::describe() const {
  return path_ == "/" ? in_quotes(file_) : in_quotes(file_ + ":" + path_);
}

std::string Object::describe(std::string_view rel) const {
  std::string full;
  if (!rel.empty() && rel.front() == '/') {
    full = rel;
  } else {
    full = path_;
    if (full.empty() || full.back() != '/') full += '/';
    full += rel;
  }
  return in_quotes(file_ + ":" + full);
}

namespace {

// Creates (replacing any existing one) attribute `name` on `obj` and writes `buf` into it.
void write_attribute(const Object& obj, std::string_view name, hid_t ftype, hid_t mtype, hid_t space,
                     const void* buf) {
  const std::string n(name);
  auto what = [&](const char* op) {
    return [&obj, &n, op] {
      return std::string("cannot ") + op + " attribute " + in_quotes(n) + " of " + obj.describe();
    };
  };
  if (check(H5Aexists(obj.id(), n.c_str()), what("look up")) > 0) {
    check(H5Adelete(obj.id(), n.c_str()), what("replace"));
  }
  Handle attr(check(H5Acreate2(obj.id(), n.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT), what("create")));
  if (H5Sget_simple_extent_npoints(space) > 0) {  // HDF5 rejects a null buffer even for zero elements
    check(H5Awrite(attr.get(), mtype, buf), what("write"));
  }
}

Handle scalar_space() {
  return Handle(check(H5Screate(H5S_SCALAR), [] { return std::string("cannot create a scalar dataspace"); }));
}

Handle vector_space(std::size_t n) {
  const hsize_t dim = n;
  return Handle(check(H5Screate_simple(1, &dim, nullptr), [] { return std::string("cannot create a 1-D dataspace"); }));
}

Handle open_attribute(const Object& obj, std::string_view name) {
  const std::string n(name);
  return Handle(check(H5Aopen(obj.id(), n.c_str(), H5P_DEFAULT),
                      [&] { return "cannot open attribute " + in_quotes(n) + " of " + obj.describe(); }));
}

template <Element T>
std::vector<T> read_numeric_attribute(const Object& obj, std::string_view name) {
  Handle attr = open_attribute(obj, name);
  auto what = [&] { return "cannot read attribute " + in_quotes(name) + " of " + obj.describe(); };
  Handle ftype(check(H5Aget_type(attr.get()), what));
  const TypeInfo info = type_info_of(ftype.get());
  if (info.type_class != TypeClass::integer && info.type_class != TypeClass::floating) {
    throw Error("HDF5: cannot read attribute " + in_quotes(name) + " of " + obj.describe() + " as a number: it holds " +
                info.name());
  }
  Handle space(check(H5Aget_space(attr.get()), what));
  std::vector<T> out(element_count(space.get(), what));
  if (!out.empty()) check(H5Aread(attr.get(), memory_type<T>(), out.data()), what);
  return out;
}

template <class T>
T single(std::vector<T> values, const Object& obj, std::string_view name) {
  if (values.size() != 1) {
    throw Error("HDF5: attribute " + in_quotes(name) + " of " + obj.describe() + " has " +
                std::to_string(values.size()) + " elements, expected 1");
  }
  return std::move(values.front());
}

}  // namespace

const Object& Object::attr(std::string_view name, std::string_view value) const {
  Handle type = vlen_string_type(H5T_CSET_UTF8);
  Handle space = scalar_space();
  const std::string s(value);
  const char* p = s.c_str();
  write_attribute(*this, name, type.get(), type.get(), space.get(), &p);
  return *this;
}

const Object& Object::attr_f64(std::string_view name, double value) const {
  Handle space = scalar_space();
  write_attribute(*this, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &value);
  return *this;
}

const Object& Object::attr_i64(std::string_view name, std::int64_t value) const {
  Handle space = scalar_space();
  write_attribute(*this, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value);
  return *this;
}

const Object& Object::attr_u64(std::string_view name, std::uint64_t value) const {
  Handle space = scalar_space();
  write_attribute(*this, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, space.get(), &value);
  return *this;
}

const Object& Object::attr(std::string_view name, std::span<const std::int64_t> values) const {
  Handle space = vector_space(values.size());
  write_attribute(*this, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), values.data());
  return *this;
}

const Object& Object::attr(std::string_view name, std::span<const double> values) const {
  Handle space = vector_space(values.size());
  write_attribute(*this, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), values.data());
  return *this;
}

bool Object::has_attr(std::string_view name) const {
  const std::string n(name);
  return check(H5Aexists(id(), n.c_str()),
               [&] { return "cannot look up attribute " + in_quotes(n) + " of " + describe(); }) > 0;
}

std::vector<std::string> Object::attr_names() const {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    try {
      static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    } catch (...) {
      return -1;
    }
    return 0;
  };
  hsize_t index = 0;
  check(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &index, collect, &names),
        [&] { return "cannot list the attributes of " + describe(); });
  return names;
}

TypeInfo Object::attr_type(std::string_view name) const {
  Handle attr = open_attribute(*this, name);
  Handle type(check(H5Aget_type(attr.get()),
                    [&] { return "cannot get the type of attribute " + in_quotes(name) + " of " + describe(); }));
  return type_info_of(type.get());
}

std::string Object::string_attr(std::string_view name) const {
  Handle attr = open_attribute(*this, name);
  const std::string where = "attribute " + in_quotes(name) + " of " + describe();
  return single(read_string_values(attr.get(), true, where), *this, name);
}

double Object::double_attr(std::string_view name) const {
  return single(read_numeric_attribute<double>(*this, name), *this, name);
}

std::int64_t Object::int64_attr(std::string_view name) const {
  return single(read_numeric_attribute<std::int64_t>(*this, name), *this, name);
}

std::uint64_t Object::uint64_attr(std::string_view name) const {
  return single(read_numeric_attribute<std::uint64_t>(*this, name), *this, name);
}

std::vector<std::int64_t> Object::int64_array_attr(std::string_view name) const {
  return read_numeric_attribute<std::int64_t>(*this, name);
}

std::vector<double> Object::double_array_attr(std::string_view name) const {
  return read_numeric_attribute<double>(*this, name);
}

// ---------------------------------------------------------------------------------------------------------------------
// Dataset

std::vector<hsize_t> Dataset::dims() const {
  auto what = [&] { return "cannot get the extent of dataset " + describe(); };
  Handle space(check(H5Dget_space(id()), what));
  const int rank = check(H5Sget_simple_extent_ndims(space.get()), what);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0) check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), what);
  return dims;
}

std::size_t Dataset::size() const {
  auto what = [&] { return "cannot count the elements of dataset " + describe(); };
  Handle space(check(H5Dget_space(id()), what));
  return element_count(space.get(), what);
}

TypeInfo Dataset::type() const {
  Handle type(check(H5Dget_type(id()), [&] { return "cannot get the type of dataset " + describe(); }));
  return type_info_of(type.get());
}

template <Element T>
std::vector<T> Dataset::read() const {
  const TypeInfo info = type();
  if (info.type_class != TypeClass::integer && info.type_class != TypeClass::floating) {
    throw Error("HDF5: cannot read dataset " + describe() + " as numbers: it holds " + info.name());
  }
  std::vector<T> out(size());
  if (!out.empty()) {
    check(H5Dread(id(), memory_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          [&] { return "cannot read dataset " + describe(); });
  }
  return out;
}

std::vector<std::string> Dataset::read_strings() const {
  return read_string_values(id(), false, "dataset " + describe());
}

// ---------------------------------------------------------------------------------------------------------------------
// Location

Group Location::create_group(std::string_view path) const {
  const std::string p(path);
  Handle lcpl = link_create_plist();
  Handle g(check(H5Gcreate2(id(), p.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                 [&] { return "cannot create group " + describe(p); }));
  return Group(std::move(g), file_);
}

Group Location::group(std::string_view path) const {
  const std::string p(path);
  Handle g(check(H5Gopen2(id(), p.c_str(), H5P_DEFAULT), [&] { return "cannot open group " + describe(p); }));
  return Group(std::move(g), file_);
}

Group Location::require_group(std::string_view path) const {
  return exists(path) ? group(path) : create_group(path);
}

Dataset Location::dataset(std::string_view path) const {
  const std::string p(path);
  Handle d(check(H5Dopen2(id(), p.c_str(), H5P_DEFAULT), [&] { return "cannot open dataset " + describe(p); }));
  return Dataset(std::move(d), file_);
}

bool Location::exists(std::string_view path) const {
  // H5Lexists fails (rather than returning false) when an intermediate component is missing, so walk the path one
  // component at a time, checking that each intermediate resolves to a group.
  std::string prefix = (!path.empty() && path.front() == '/') ? "/" : "";
  std::size_t pos = 0;
  std::vector<std::string_view> components;
  while (pos <= path.size()) {
    const std::size_t slash = std::min(path.find('/', pos), path.size());
    const std::string_view c = path.substr(pos, slash - pos);
    if (!c.empty() && c != ".") components.push_back(c);
    pos = slash + 1;
  }
  for (std::size_t i = 0; i < components.size(); ++i) {
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    prefix += components[i];
    const htri_t found = check(H5Lexists(id(), prefix.c_str(), H5P_DEFAULT),
                               [&] { return "cannot check whether " + describe(prefix) + " exists"; });
    if (found == 0) return false;
    if (i + 1 < components.size()) {
      // An intermediate must be a group we can go through (not a dataset, not a dangling soft link).
      Handle obj(H5Oopen(id(), prefix.c_str(), H5P_DEFAULT));
      if (!obj.valid() || H5Iget_type(obj.get()) != H5I_GROUP) return false;
    }
  }
  return true;
}

std::vector<std::string> Location::members() const {
  auto what = [&] { return "cannot list the members of " + describe(); };
  H5G_info_t info{};
  check(H5Gget_info(id(), &info), what);
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(info.nlinks));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len =
        check(H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT), what);
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    check(H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT), what);
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

template <Element T>
Dataset Location::write(std::string_view path, std::span<const T> data, const std::vector<hsize_t>& dims_in,
                        const WriteOptions& options) const {
  const std::string p(path);
  auto what = [&] { return "cannot write dataset " + describe(p); };
  const std::vector<hsize_t> dims = dims_in.empty() ? std::vector<hsize_t>{data.size()} : dims_in;
  hsize_t count = 1;
  for (hsize_t d : dims) count *= d;
  if (count != data.size()) {
    throw Error("HDF5: " + what() + ": " + std::to_string(data.size()) + " elements given for dims " +
                dims_string(dims) + " (" + std::to_string(count) + " elements)");
  }
  if (options.gzip_level < 0 || options.gzip_level > 9) {
    throw Error("HDF5: " + what() + ": gzip level " + std::to_string(options.gzip_level) + " is not in 0..9");
  }
  const int rank = static_cast<int>(dims.size());
  Handle space(check(H5Screate_simple(rank, dims.data(), nullptr), what));
  Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), what));
  const std::size_t bytes = data.size() * sizeof(T);
  if (options.gzip_level > 0 && bytes > 0 && bytes >= options.compress_min_bytes &&
      H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
    const std::vector<hsize_t> chunk = chunk_dims(dims, sizeof(T));
    check(H5Pset_chunk(dcpl.get(), rank, chunk.data()), what);
    check(H5Pset_shuffle(dcpl.get()), what);
    check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.gzip_level)), what);
  }
  Handle lcpl = link_create_plist();
  Handle ds(check(H5Dcreate2(id(), p.c_str(), file_type<T>(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
                  what));
  if (!data.empty()) {
    check(H5Dwrite(ds.get(), memory_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), what);
  }
  return Dataset(std::move(ds), file_);
}

Dataset Location::write(std::string_view path, const std::vector<std::string>& strings) const {
  const std::string p(path);
  auto what = [&] { return "cannot write dataset " + describe(p); };
  Handle type = vlen_string_type(H5T_CSET_UTF8);
  Handle space = vector_space(strings.size());
  Handle lcpl = link_create_plist();
  Handle ds(check(H5Dcreate2(id(), p.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), what));
  if (!strings.empty()) {
    std::vector<const char*> ptrs;
    ptrs.reserve(strings.size());
    for (const std::string& s : strings) ptrs.push_back(s.c_str());
    check(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), what);
  }
  return Dataset(std::move(ds), file_);
}

#define CNNPAR_H5_INSTANTIATE(T)                                                                                   \
  template Dataset Location::write<T>(std::string_view, std::span<const T>, const std::vector<hsize_t>&,           \
                                      const WriteOptions&) const;                                                  \
  template std::vector<T> Dataset::read<T>() const;
CNNPAR_H5_INSTANTIATE(double)
CNNPAR_H5_INSTANTIATE(float)
CNNPAR_H5_INSTANTIATE(std::int64_t)
CNNPAR_H5_INSTANTIATE(std::uint64_t)
CNNPAR_H5_INSTANTIATE(std::int32_t)
CNNPAR_H5_INSTANTIATE(std::uint8_t)
#undef CNNPAR_H5_INSTANTIATE

// ---------------------------------------------------------------------------------------------------------------------
// File

File File::create(const fs::path& path) {
  silence_hdf5_error_printing();
  const std::string name = path.string();
  auto what = [&] { return "cannot create file " + in_quotes(name); };
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), what));
  check(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), what);
  Handle f(check(H5Fcreate(name.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()), what));
  return File(std::move(f), name);
}

File File::open_read(const fs::path& path) {
  silence_hdf5_error_printing();
  const std::string name = path.string();
  Handle f(check(H5Fopen(name.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                 [&] { return "cannot open file " + in_quotes(name) + " read-only"; }));
  return File(std::move(f), name);
}

File File::create_in_memory(const std::string& name) {
  silence_hdf5_error_printing();
  auto what = [&] { return "cannot create in-memory file " + in_quotes(name); };
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), what));
  check(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), what);
  check(H5Pset_fapl_core(fapl.get(), std::size_t{1} << 20, /*backing_store=*/0), what);
  Handle f(check(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), what));
  return File(std::move(f), name);
}

std::vector<std::uint8_t> File::image() const {
  auto what = [&] { return "cannot take the image of file " + in_quotes(file_); };
  check(H5Fflush(id(), H5F_SCOPE_GLOBAL), what);
  const ssize_t size = check(H5Fget_file_image(id(), nullptr, 0), what);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  check(H5Fget_file_image(id(), bytes.data(), bytes.size()), what);
  return bytes;
}

void File::close() {
  if (!valid()) return;
  check(handle_.close(), [&] { return "cannot close file " + in_quotes(file_); });
}

// ---------------------------------------------------------------------------------------------------------------------
// write_atomically

fs::path temp_path_for(const fs::path& final_path) { return temporary_name(final_path); }

void write_atomically(const fs::path& final_path, bool force, const std::function<void(File&)>& fill) {
  if (final_path.filename().empty()) {
    throw Error("output path '" + final_path.string() + "' does not name a file");
  }
  if (!force && exists_as_anything(final_path)) throw Error(refuse_overwrite_message(final_path));
  try {
    std::unique_ptr<OutputFile> own;
    OutputFile* reserved = OutputFile::reserved_for(final_path);
    if (reserved == nullptr) {
      own = OutputFile::reserve(final_path, force);
      reserved = own.get();
    }
    std::vector<std::uint8_t> bytes;
    {
      File file = File::create_in_memory(final_path.string());
      fill(file);
      bytes = file.image();
      file.close();
    }
    reserved->commit(bytes);
  } catch (const OutputFileError& e) {
    throw Error(e.what());
  }
}

}  // namespace cnnpar::h5
