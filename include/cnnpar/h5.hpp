// A small RAII layer over the HDF5 C API, just wide enough for cnnpar: the results-file writer (groups, N-d numeric
// datasets, string datasets, attributes, write-to-temp-then-rename) and the loader of PyTorch-layout weights files
// (open read-only, look up datasets, query shapes and types, read as float / int64 with HDF5's type conversion).
//
// Conventions:
//  - Every failure throws cnnpar::h5::Error, whose what() names the operation, the file and the object, followed by
//    the most specific message from HDF5's error stack. HDF5's own printing of its error stack to stderr is switched
//    off once, the first time a File is created or opened (HDF5 keeps that setting per thread in thread-safe builds;
//    Debian's serial build is not thread-safe, and this layer is meant for one thread).
//  - Handles are move-only and close their hid_t on destruction; errors while closing in a destructor are ignored.
//    File::close() is the explicit, checked close.
//  - Paths inside a file are HDF5 link paths: relative to the object they are used on ("timing/rank0") or absolute
//    ("/meta"). Creating a group or a dataset creates any missing intermediate groups.
//  - Numbers are stored little-endian with the standard HDF5 types (IEEE F32LE/F64LE, STD I/U), so h5py and
//    PyTorch-side tooling read them without surprises; strings are variable-length UTF-8.
#pragma once

#include <hdf5.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace cnnpar::h5 {

// The one exception type of this layer. Example what(): "HDF5: cannot open file '/x/w.h5' read-only: unable to open
// file: name = '/x/w.h5', errno = 2, error message = 'No such file or directory', ...".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The element types numeric datasets can be written from and read into.
template <class T>
concept Element = std::same_as<T, double> || std::same_as<T, float> || std::same_as<T, std::int64_t> ||
                  std::same_as<T, std::uint64_t> || std::same_as<T, std::int32_t> || std::same_as<T, std::uint8_t>;

// Owns one HDF5 identifier (file, group, dataset, attribute, datatype, dataspace or property list) and closes it with
// the matching H5?close on destruction. Move-only.
class Handle {
 public:
  Handle() noexcept = default;
  // Takes ownership of `id`; a negative id makes an empty handle.
  explicit Handle(hid_t id) noexcept : id_(id) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.release()) {}
  Handle& operator=(Handle&& other) noexcept;
  ~Handle() { reset(); }

  // The identifier (negative when empty); ownership stays here.
  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  // Gives up ownership without closing; the handle becomes empty.
  hid_t release() noexcept;
  // Closes the identifier (ignoring errors) and becomes empty.
  void reset() noexcept;
  // Closes the identifier and becomes empty; returns the close call's status (negative on failure).
  herr_t close() noexcept;

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// What a dataset or attribute holds, as stored in the file.
enum class TypeClass { integer, floating, string, other };

struct TypeInfo {
  TypeClass type_class = TypeClass::other;
  std::size_t size = 0;   // bytes per element in the file (for variable-length strings: the size of the reference)
  bool is_signed = false;  // integers only
  bool variable_length = false;  // strings only
  // "float32", "float64", "int8".."int64", "uint8".."uint64", "string", or "other" (for error messages).
  std::string name() const;
};

// Something that carries attributes: a file (its root group), a group or a dataset. The attribute setters replace
// an existing attribute of the same name and return *this so calls chain: `ds.attr("units", "s").attr("n", n)`.
class Object {
 public:
  Object() = default;

  // True unless default-constructed or moved from.
  bool valid() const noexcept { return handle_.valid(); }
  explicit operator bool() const noexcept { return valid(); }
  // The raw identifier, for HDF5 calls this layer does not wrap; still owned by this object.
  hid_t id() const noexcept { return handle_.get(); }
  // The file's name as it was created/opened.
  const std::string& file_name() const noexcept { return file_; }
  // The absolute path of this object inside the file ("/" for a file).
  const std::string& path() const noexcept { return path_; }
  // "file.h5:/path", as used in error messages.
  std::string describe() const;

  // Scalar variable-length UTF-8 string attribute (a NUL inside `value` ends the stored string).
  const Object& attr(std::string_view name, std::string_view value) const;
  const Object& attr(std::string_view name, const char* value) const { return attr(name, std::string_view(value)); }
  // Scalar numeric attribute: floating point is stored as float64, signed integers as int64, unsigned integers as
  // uint64. bool is rejected at compile time (store it as an integer if you mean it).
  template <class T>
    requires std::is_arithmetic_v<T> && (!std::same_as<T, bool>)
  const Object& attr(std::string_view name, T value) const {
    if constexpr (std::is_floating_point_v<T>) {
      return attr_f64(name, static_cast<double>(value));
    } else if constexpr (std::is_signed_v<T>) {
      return attr_i64(name, static_cast<std::int64_t>(value));
    } else {
      return attr_u64(name, static_cast<std::uint64_t>(value));
    }
  }
  // 1-D array attributes (an empty span is stored as a 1-D attribute of length 0).
  const Object& attr(std::string_view name, std::span<const std::int64_t> values) const;
  const Object& attr(std::string_view name, std::span<const double> values) const;

  // Explicitly typed scalar setters (the template above forwards here).
  const Object& attr_f64(std::string_view name, double value) const;
  const Object& attr_i64(std::string_view name, std::int64_t value) const;
  const Object& attr_u64(std::string_view name, std::uint64_t value) const;

  // Whether an attribute named `name` is attached to this object.
  bool has_attr(std::string_view name) const;
  // Names of this object's attributes, in name order.
  std::vector<std::string> attr_names() const;
  // The stored type of attribute `name`.
  TypeInfo attr_type(std::string_view name) const;
  // Readers for a single-element attribute; numeric readers convert from any stored numeric type (HDF5 conversion),
  // the string reader accepts variable- and fixed-length strings. Throw if missing, not one element, or unconvertible.
  std::string string_attr(std::string_view name) const;
  double double_attr(std::string_view name) const;
  std::int64_t int64_attr(std::string_view name) const;
  std::uint64_t uint64_attr(std::string_view name) const;
  // Readers for array attributes, flattened (a scalar attribute reads as one element).
  std::vector<std::int64_t> int64_array_attr(std::string_view name) const;
  std::vector<double> double_array_attr(std::string_view name) const;

 protected:
  Object(Handle handle, std::string file_name);
  // `where` for something not opened yet: this object's path joined with `rel` (or `rel` if it is absolute).
  std::string describe(std::string_view rel) const;

  Handle handle_;
  std::string file_;
  std::string path_;
};

// A numeric or string dataset, opened from a File or Group.
class Dataset : public Object {
 public:
  Dataset() = default;

  // The extent, slowest-varying dimension first (empty for a scalar dataset).
  std::vector<hsize_t> dims() const;
  // Number of elements (the product of dims(); 1 for a scalar dataset).
  std::size_t size() const;
  // The stored element type.
  TypeInfo type() const;

  // All elements, in row-major order, converted to T by HDF5 (e.g. float from float64 storage). Throws when HDF5 has
  // no conversion (e.g. strings to numbers).
  template <Element T>
  std::vector<T> read() const;
  // All elements of a string dataset (variable- or fixed-length), flattened.
  std::vector<std::string> read_strings() const;

 private:
  friend class Location;
  Dataset(Handle handle, std::string file_name) : Object(std::move(handle), std::move(file_name)) {}
};

class Group;

// Options for writing numeric datasets.
struct WriteOptions {
  // gzip (deflate) level 1..9 for datasets at or above compress_min_bytes; 0 never compresses. Compressed datasets
  // are chunked (chunks of at most ~1 MiB, whole rows where possible) and byte-shuffled before deflate. Without the
  // deflate filter in the HDF5 build, data are written uncompressed.
  int gzip_level = 4;
  std::size_t compress_min_bytes = std::size_t{64} * 1024;
};

// A place that holds links: a File (its root group) or a Group.
class Location : public Object {
 public:
  Location() = default;

  // Creates group `path` and any missing intermediate groups. Throws if `path` already exists.
  Group create_group(std::string_view path) const;
  // Opens existing group `path`.
  Group group(std::string_view path) const;
  // Opens group `path` if it exists, otherwise creates it (with intermediate groups).
  Group require_group(std::string_view path) const;
  // Opens existing dataset `path`.
  Dataset dataset(std::string_view path) const;

  // Whether every link along `path` exists (each intermediate component must be a group; the last may be anything,
  // including a dangling soft link). Returns false, quietly, for missing components at any depth; "" and "/" are
  // true. Throws only when HDF5 fails for another reason.
  bool exists(std::string_view path) const;
  // Names of the links in this group, in name order.
  std::vector<std::string> members() const;

  // Writes a numeric dataset `path` (missing intermediate groups are created; throws if `path` exists) holding
  // `data` in row-major order with extent `dims`; `data.size()` must equal the product of `dims`. Empty `dims`
  // means 1-D of data.size(). Returns the new dataset, e.g. to attach attributes.
  template <Element T>
  Dataset write(std::string_view path, std::span<const T> data, const std::vector<hsize_t>& dims = {},
                const WriteOptions& options = {}) const;
  template <Element T>
  Dataset write(std::string_view path, const std::vector<T>& data, const std::vector<hsize_t>& dims = {},
                const WriteOptions& options = {}) const {
    return write(path, std::span<const T>(data), dims, options);
  }
  // Writes a 1-D dataset of variable-length UTF-8 strings (a NUL inside a string ends it). Never compressed.
  Dataset write(std::string_view path, const std::vector<std::string>& strings) const;

 protected:
  Location(Handle handle, std::string file_name) : Object(std::move(handle), std::move(file_name)) {}
};

class Group : public Location {
 public:
  Group() = default;

 private:
  friend class Location;
  Group(Handle handle, std::string file_name) : Location(std::move(handle), std::move(file_name)) {}
};

// An HDF5 file. Files made by create() use HDF5's "strong" close degree: closing the File closes every object
// opened from it (Groups/Datasets that outlive it become invalid), so close() really flushes and releases the file.
// Files opened read-only use the default ("weak") degree: objects opened from them stay usable after the File goes.
class File : public Location {
 public:
  File() = default;

  // Creates a new file; throws if `path` already exists (H5F_ACC_EXCL) or cannot be created.
  static File create(const std::filesystem::path& path);
  // Opens an existing file read-only; throws (naming `path`) if it is missing or not HDF5.
  static File open_read(const std::filesystem::path& path);
  // Creates a file that lives in memory only (HDF5's core driver, no backing store); `name` is for messages.
  // image() then gives its bytes, a complete HDF5 file, for the caller to write wherever it wants.
  static File create_in_memory(const std::string& name);
  // The whole file as bytes (flushes first). For a file from create_in_memory.
  std::vector<std::uint8_t> image() const;

  // Flushes and closes the file, throwing on failure (unlike the destructor, which ignores errors). Idempotent.
  void close();

 private:
  File(Handle handle, std::string file_name) : Location(std::move(handle), std::move(file_name)) {}
};

// Writes an HDF5 file so that `final_path` either keeps its previous state or holds the complete new file, never a
// partial one, and no temporary file is left behind (cnnpar::OutputFile, output_file.hpp):
//  1. If `final_path` exists (as anything, even a dangling symlink) and `force` is false, throws Error("output file
//     '<final_path>' exists; pass --force to overwrite it") before calling fill.
//  2. Uses this process's reservation of `final_path` (OutputFile::reserve, made before the run), or reserves it now
//     (an anonymous file in the same directory, or `.NAME.tmp.PID` where the file system has no O_TMPFILE).
//  3. Calls fill(file) on a file built in memory, then writes its image to the reserved file in one go: a full disk
//     or a quota is one write error naming the bytes, never a half-closed HDF5 file.
//  4. Publishes it at `final_path`: without force by a link that fails if a file appeared meanwhile, with force by a
//     rename that replaces the old file atomically.
// If any step throws (including fill), a reservation made here is removed; one made before the call stays with its
// owner (whose destructor removes it). Errors other than fill's are thrown as Error.
void write_atomically(const std::filesystem::path& final_path, bool force, const std::function<void(File&)>& fill);

// The visible temp-file name write_atomically uses for `final_path` in this process where it needs one (exposed for
// tests and messages): `.NAME.tmp.PID` in the same directory.
std::filesystem::path temp_path_for(const std::filesystem::path& final_path);

}  // namespace cnnpar::h5
