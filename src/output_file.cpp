// The reserved, atomically published results file (see output_file.hpp).
#include "cnnpar/output_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cnnpar/report.hpp"  // with_commas

namespace cnnpar {

namespace fs = std::filesystem;

namespace {

// What the signal handler may touch: a NUL-terminated path in a static buffer and a flag, both written only while
// the signals are blocked (so the handler never sees half of a path).
char g_temp_path[4096];
volatile std::sig_atomic_t g_temp_set = 0;
OutputFile* g_reservation = nullptr;  // not for the handler

constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_previous[std::size(kCleanupSignals)];

extern "C" void remove_temp_and_die(int sig) {
  if (g_temp_set) ::unlink(g_temp_path);
  // SA_RESETHAND made the disposition the default again; the signal is blocked until this handler returns, then
  // ends the process as it would have without us (same signal, same exit status for mpirun to report).
  ::raise(sig);
}

class BlockCleanupSignals {
 public:
  BlockCleanupSignals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : kCleanupSignals) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~BlockCleanupSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

void set_signal_temp(const fs::path& p) {
  BlockCleanupSignals block;
  const std::string s = p.string();
  if (s.size() >= sizeof g_temp_path) return;  // cannot happen for a path open(2) accepted
  std::memcpy(g_temp_path, s.c_str(), s.size() + 1);
  g_temp_set = 1;
}

void clear_signal_temp() {
  BlockCleanupSignals block;
  g_temp_set = 0;
}

void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = remove_temp_and_die;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  for (std::size_t i = 0; i < std::size(kCleanupSignals); ++i) sigaction(kCleanupSignals[i], &sa, &g_previous[i]);
}

void restore_handlers() {
  for (std::size_t i = 0; i < std::size(kCleanupSignals); ++i) sigaction(kCleanupSignals[i], &g_previous[i], nullptr);
}

std::string errno_text(int err) { return std::strerror(err); }

fs::path directory_of(const fs::path& p) { return p.has_parent_path() ? p.parent_path() : fs::path("."); }

bool exists_as_anything(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

void hold_if_testing() {
  const char* hold = std::getenv(kHoldWriteEnv);
  if (hold == nullptr || *hold == '\0') return;
  std::cerr << "cnnpar_mpi: test hook: holding the write" << std::endl;
  ::usleep(static_cast<useconds_t>(std::atof(hold) * 1e6));
}

}  // namespace

fs::path temporary_name(const fs::path& final_path) {
  std::string name(1, '.');
  name.append(final_path.filename().string()).append(".tmp.").append(std::to_string(::getpid()));
  return directory_of(final_path) / name;
}

std::unique_ptr<OutputFile> OutputFile::reserve(const fs::path& final_path, bool force,
                                                const std::vector<NamedInput>& inputs) {
  if (g_reservation != nullptr)
    throw OutputFileError("output file '" + final_path.string() + "': '" + g_reservation->final_.string() +
                          "' is already reserved by this process");
  if (final_path.filename().empty() || final_path.filename() == "." || final_path.filename() == "..")
    throw OutputFileError("output path '" + final_path.string() + "' does not name a file");
  struct stat out_st {};
  if (::stat(final_path.c_str(), &out_st) == 0) {
    for (const NamedInput& in : inputs) {
      struct stat in_st {};
      if (in.path.empty() || ::stat(in.path.c_str(), &in_st) != 0) continue;
      if (in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino)
        throw OutputFileError("output file '" + final_path.string() + "' is the " + in.option + " file '" + in.path +
                              "'; an input is never overwritten, even with --force");
    }
  }
  if (!force && exists_as_anything(final_path))
    throw OutputFileError("output file '" + final_path.string() + "' exists; pass --force to overwrite it");

  std::unique_ptr<OutputFile> r(new OutputFile(final_path, force));
  const fs::path dir = directory_of(final_path);
  // Anonymous first: it vanishes on any death. Publishing it needs /proc/self/fd (linkat through the magic link).
  const char* no_tmpfile = std::getenv(kNoTmpfileEnv);
  if (::access("/proc/self/fd", X_OK) == 0 && (no_tmpfile == nullptr || *no_tmpfile == '\0')) {
    r->fd_ = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    r->anonymous_ = r->fd_ >= 0;
  }
  if (r->fd_ < 0) {  // a file system without O_TMPFILE (or none at all: the error below says why)
    const fs::path temp = temporary_name(final_path);
    BlockCleanupSignals block;  // created and registered for removal as one step
    r->fd_ = ::open(temp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
    if (r->fd_ < 0) {
      const int err = errno;
      throw OutputFileError("output file '" + final_path.string() + "' cannot be created: " +
                            (err == EEXIST ? "a temporary file '" + temp.string() + "' is in the way (left by a crash?)"
                                           : "cannot create a file in '" + dir.string() + "': " + errno_text(err)));
    }
    r->temp_ = temp;
    set_signal_temp(temp);
  }
  install_handlers();
  g_reservation = r.get();
  return r;
}

OutputFile* OutputFile::reserved_for(const fs::path& final_path) {
  return g_reservation != nullptr && g_reservation->final_ == final_path ? g_reservation : nullptr;
}

// Removes what is left of the reservation (the anonymous file goes with its descriptor) and unregisters it: after
// this, another reserve() may follow.
void OutputFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
  clear_signal_temp();
  if (g_reservation == this) {
    restore_handlers();
    g_reservation = nullptr;
  }
}

OutputFile::~OutputFile() { discard(); }

void OutputFile::commit(std::span<const std::uint8_t> bytes) {
  if (done_) throw OutputFileError("output file '" + final_.string() + "' was already written");
  done_ = true;  // from here on, every way out either publishes the file or discards it
  auto fail = [&](const std::string& what, int err) {
    discard();
    throw OutputFileError("cannot write output file '" + final_.string() + "' (" + with_commas(bytes.size()) +
                          " B): " + what + errno_text(err));
  };
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("", errno);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd_) != 0 && errno != EINVAL) fail("", errno);  // EINVAL: a special file system without fsync
  hold_if_testing();

  if (anonymous_) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd_);
    if (!force_) {
      // Publishing by link fails (EEXIST) rather than replace a file that appeared during the run.
      if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, final_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
        const int err = errno;
        if (err == EEXIST) {
          discard();
          throw OutputFileError("output file '" + final_.string() + "' appeared during the run; it was left as it "
                                "is (pass --force to overwrite it)");
        }
        fail("", err);
      }
      discard();
      return;
    }
    // With --force: a visible name first, then rename over the old file (rename replaces atomically).
    const fs::path temp = temporary_name(final_);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temp.c_str(), AT_SYMLINK_FOLLOW) != 0) fail("", errno);
    temp_ = temp;
    set_signal_temp(temp);
  } else if (!force_ && exists_as_anything(final_)) {
    discard();
    throw OutputFileError("output file '" + final_.string() + "' appeared during the run; it was left as it is "
                          "(pass --force to overwrite it)");
  }
  if (::rename(temp_.c_str(), final_.c_str()) != 0) fail("cannot rename '" + temp_.string() + "' into place: ", errno);
  {
    BlockCleanupSignals block;
    temp_.clear();  // published: nothing to remove any more
    g_temp_set = 0;
  }
  discard();
}

}  // namespace cnnpar
