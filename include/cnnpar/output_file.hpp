// The results file on disk: reserved before the run, published whole at the end, never left half-written or as a
// stray temporary, whatever ends the job.
//
//  - reserve() runs before the run (rank 0). It creates the file that will become the output, in the output's own
//    directory, so a path that cannot be written (/proc/x.h5, a read-only mount, a missing permission) fails then,
//    not after the run. Where the file system supports it the file is anonymous (O_TMPFILE): nothing is visible,
//    and the kernel removes it however the process ends, SIGKILL included. Elsewhere it is `.NAME.tmp.PID`,
//    created exclusively, and SIGINT, SIGTERM and SIGHUP remove it (a signal-safe handler: unlink(2), then the
//    signal's default action).
//  - commit() writes the whole file (the HDF5 image is built in memory first, so a full disk is one write(2)
//    error, never a half-closed HDF5 file), syncs it and moves it into place: without --force by linking the
//    anonymous file to the final name, which fails rather than replace a file that appeared meanwhile; with
//    --force by renaming over the old file, which is replaced atomically.
//  - Destroying an uncommitted reservation removes it.
// One reservation per process at a time (a second reserve() throws): the signal handler has one path to remove.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cnnpar {

// What reserve() and commit() throw; what() is one line naming the path and the problem.
class OutputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An input the output must not replace: the option that named it and its path ("" = not given).
struct NamedInput {
  std::string option;  // "--images"
  std::string path;
};

class OutputFile {
 public:
  // Reserves `final_path`. Throws OutputFileError if it exists and !force ("... exists; pass --force to overwrite
  // it"), if it is the same file as one of `inputs` (even with force), or if its directory cannot hold a new file.
  static std::unique_ptr<OutputFile> reserve(const std::filesystem::path& final_path, bool force,
                                             const std::vector<NamedInput>& inputs = {});
  // The uncommitted reservation of `final_path` in this process, or nullptr.
  static OutputFile* reserved_for(const std::filesystem::path& final_path);

  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();  // removes the reserved file unless committed

  // Writes `bytes` as the whole file, syncs it and publishes it at final_path(). Once only. On failure the
  // reservation is removed and final_path() is left as it was.
  void commit(std::span<const std::uint8_t> bytes);

  const std::filesystem::path& final_path() const { return final_; }
  // Whether the reserved file is anonymous (O_TMPFILE): nothing to see or clean up in the directory.
  bool anonymous() const { return anonymous_; }
  // The visible temporary file (empty when anonymous).
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  OutputFile(std::filesystem::path final_path, bool force) : final_(std::move(final_path)), force_(force) {}
  void discard() noexcept;

  std::filesystem::path final_, temp_;
  bool force_ = false;
  bool anonymous_ = false;
  bool done_ = false;
  int fd_ = -1;
};

// `.NAME.tmp.PID` next to `final_path`: the visible temporary file name of this process.
std::filesystem::path temporary_name(const std::filesystem::path& final_path);

// Test hook, for the fault tests only: when the environment variable CNNPAR_TEST_HOLD_WRITE_S is a number of
// seconds, commit() prints "cnnpar_mpi: test hook: holding the write" to stderr and sleeps that long with the file
// written but not yet published, so a test can signal the job "during the write". Unset: no effect.
inline constexpr const char* kHoldWriteEnv = "CNNPAR_TEST_HOLD_WRITE_S";
// Test hook: when CNNPAR_TEST_NO_TMPFILE is set (non-empty), reserve() uses the visible `.NAME.tmp.PID` file, as on
// a file system without O_TMPFILE, so the tests can check that the signal handler removes it.
inline constexpr const char* kNoTmpfileEnv = "CNNPAR_TEST_NO_TMPFILE";

}  // namespace cnnpar
