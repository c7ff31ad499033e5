// Input files opened without blocking (see input_file.hpp).
#include "cnnpar/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cnnpar {

namespace {

std::string not_a_regular_file(mode_t mode) {
  const char* what = S_ISFIFO(mode)   ? "a FIFO or pipe"
                     : S_ISDIR(mode)  ? "a directory"
                     : S_ISCHR(mode)  ? "a character device"
                     : S_ISBLK(mode)  ? "a block device"
                     : S_ISSOCK(mode) ? "a socket"
                                      : "not a regular file";
  return std::string("is ") + what + ", not a regular file (give a file; decompress a stream to a file first)";
}

}  // namespace

int open_regular_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw InputFileError(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw InputFileError(std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputFileError(not_a_regular_file(st.st_mode));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

std::string regular_file_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return {};
  return not_a_regular_file(st.st_mode);
}

std::string read_small_text_file(const std::string& path, const std::string& what, std::size_t max_bytes) {
  const std::string prefix = what + " '" + path + "': ";
  int fd = -1;
  try {
    fd = open_regular_file(path);
  } catch (const InputFileError& e) {
    throw InputFileError(prefix + e.what());
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw InputFileError(prefix + "cannot read: " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) {
      ::close(fd);
      throw InputFileError(prefix + "is larger than " + std::to_string(max_bytes) + " B; is it the right file?");
    }
  }
  ::close(fd);
  return text;
}

}  // namespace cnnpar
