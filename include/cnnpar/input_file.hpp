// Opening the files a user names as inputs (--images, --labels, --weights, a --net spec file) without ever blocking:
// a FIFO, a terminal or a device would block rank 0 in open(2) or read(2) forever while the other ranks wait in the
// next collective. Only regular files are read.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace cnnpar {

class InputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Opens `path` read-only (close-on-exec, never blocking) and returns the descriptor, in blocking mode, for the caller
// to own. Throws InputFileError with the problem only, for the caller to prefix with its own words: "cannot open: No
// such file or directory", "is a FIFO or pipe, not a regular file (...)", "is a directory, not a regular file".
int open_regular_file(const std::string& path);

// The problem with `path` as an input file ("" if it is a regular file, or does not exist: opening it then says why).
// For readers that must open by name themselves (HDF5).
std::string regular_file_problem(const std::string& path);

// The whole of a small text file (e.g. a network spec), at most `max_bytes`. Throws InputFileError naming `what` and
// the path: "--net file 'x.net': is a FIFO or pipe, not a regular file (...)", "... is larger than 1,048,576 B".
std::string read_small_text_file(const std::string& path, const std::string& what, std::size_t max_bytes = 1 << 20);

}  // namespace cnnpar
