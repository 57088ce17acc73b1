#include "genfw/durable.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace genfw {

namespace fs = std::filesystem;

namespace {

std::atomic<int> requested_signal{0};

void on_stop_signal(int signal_number) {
  requested_signal.store(signal_number);
  // The next SIGINT/SIGTERM takes the default action: a user who presses
  // Ctrl-C twice means it.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR; false with errno set on failure.
bool write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return false;
    }
    done += size_t(n);
  }
  return true;
}

void sync_folder(const fs::path& folder) {
  int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // durability of the rename is best effort where the folder cannot be opened
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string temporary_of(const std::string& path) { return path + ".tmp"; }

std::string write_error(const std::string& path, int error_number) {
  return "cannot write " + path + ": " + std::strerror(error_number);
}

void write_file_durably(const std::string& path, const std::string& bytes) {
  const std::string temporary = temporary_of(path);
  // A fresh file, never one reached through a link planted under the temporary's name.
  ::unlink(temporary.c_str());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(write_error(temporary, errno));
  bool written = write_all(fd, bytes) && ::fsync(fd) == 0;
  int error_number = errno;
  if (::close(fd) != 0 && written) {
    written = false;
    error_number = errno;
  }
  if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
    if (written) error_number = errno;
    ::unlink(temporary.c_str());
    throw Error(write_error(path, error_number));
  }
  sync_folder(fs::path(path).parent_path());
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GENFW_CHECK(in.good(), "cannot read ", path, ": ", std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  GENFW_CHECK(!in.bad(), "cannot read ", path, ": ", std::strerror(errno));
  return bytes.str();
}

Interrupted::Interrupted(const std::string& message, int signal_number)
    : Error(message), signal_number_(signal_number) {}
Interrupted::~Interrupted() = default;

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // slow system calls continue; the loops poll the flag
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

bool stop_requested() { return requested_signal.load() != 0; }

void request_stop(int signal_number) { requested_signal.store(signal_number); }

void stop_here_if_requested(const std::string& where) {
  int signal_number = requested_signal.load();
  if (signal_number == 0) return;
  const char* name = signal_number == SIGINT ? "SIGINT" : signal_number == SIGTERM ? "SIGTERM" : "a signal";
  throw Interrupted(std::string("interrupted by ") + name + " " + where, signal_number);
}

}  // namespace genfw
