#include "genfw/run_file_guard.hpp"

#include <H5Cpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <vector>

#include "genfw/error.hpp"
#include "genfw/run_log.hpp"

namespace genfw {

std::string read_in_child_process(const std::string& file, const std::function<std::string()>& read) {
  const char* limit = std::getenv("GENFW_COMPARE_SECONDS_PER_FILE");
  const int kSecondsPerFile = limit && std::atoi(limit) > 0 ? std::atoi(limit) : 60;
  int channel[2];
  GENFW_CHECK(::pipe(channel) == 0, "cannot create a pipe to read ", file, ": ", std::strerror(errno));
  std::cout.flush();
  std::cerr.flush();
  pid_t child = ::fork();
  GENFW_CHECK(child >= 0, "cannot fork to read ", file, ": ", std::strerror(errno));
  if (child == 0) {
    ::close(channel[0]);
    std::string answer;
    try {
      answer = "R" + read();
    } catch (const std::exception& e) {
      answer = std::string("E") + e.what();
    }
    for (size_t done = 0; done < answer.size();) {
      ssize_t wrote = ::write(channel[1], answer.data() + done, answer.size() - done);
      if (wrote <= 0) break;
      done += size_t(wrote);
    }
    ::_exit(0);  // no atexit handlers or static destructors of the parent's state
  }
  ::close(channel[1]);
  std::string answer;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kSecondsPerFile);
  for (char buffer[65536];;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd ready{channel[0], POLLIN, 0};
    int polled = left.count() > 0 ? ::poll(&ready, 1, int(left.count())) : 0;
    if (polled < 0 && errno == EINTR) continue;
    if (polled == 0) {
      timed_out = true;
      ::kill(child, SIGKILL);
      break;
    }
    ssize_t got = ::read(channel[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    answer.append(buffer, size_t(got));
  }
  ::close(channel[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  GENFW_CHECK(!timed_out, "run file ", file, ": reading it took more than ", kSecondsPerFile,
              " s; the HDF5 library is stuck on it: the file is corrupt");
  if (WIFSIGNALED(status)) {
    throw Error(detail::concat("run file ", file, ": the HDF5 library crashed reading it (signal ", WTERMSIG(status),
                               ", ", ::strsignal(WTERMSIG(status)), "): the file is corrupt"));
  }
  GENFW_CHECK(!answer.empty() && WIFEXITED(status) && WEXITSTATUS(status) == 0, "run file ", file,
              ": reading it failed inside the HDF5 library (exit status ", WEXITSTATUS(status), "): the file is corrupt");
  if (answer[0] == 'E') throw Error(answer.substr(1));
  return answer.substr(1);
}

namespace {

constexpr hsize_t kLargestDatasetRead = hsize_t(64) << 20;

// Reads `count` values of `type` with `read` into memory and frees what variable-length values allocated.
template <typename Read>
herr_t read_values(hid_t stored_type, hid_t space, hssize_t count, Read&& read) {
  const hid_t type = H5Tget_native_type(stored_type, H5T_DIR_DEFAULT);
  if (type < 0) return -1;
  const size_t bytes = H5Tget_size(type) * size_t(std::max<hssize_t>(count, 0));
  herr_t status = 0;
  if (count >= 0 && bytes <= kLargestDatasetRead) {
    std::vector<unsigned char> buffer(std::max<size_t>(bytes, 1));
    status = read(type, buffer.data());
    if (status >= 0 && H5Tdetect_class(type, H5T_VLEN) + H5Tis_variable_str(type) > 0) {
      H5Dvlen_reclaim(type, space, H5P_DEFAULT, buffer.data());
    }
  }
  H5Tclose(type);
  return status;
}

herr_t read_attribute(hid_t object, const char* name, const H5A_info_t*, void*) {
  const hid_t attribute = H5Aopen(object, name, H5P_DEFAULT);
  if (attribute < 0) return -1;
  const hid_t type = H5Aget_type(attribute), space = H5Aget_space(attribute);
  herr_t status = type < 0 || space < 0 ? -1 : read_values(type, space, H5Sget_simple_extent_npoints(space), [&](hid_t native, void* into) {
    return H5Aread(attribute, native, into);
  });
  if (space >= 0) H5Sclose(space);
  if (type >= 0) H5Tclose(type);
  H5Aclose(attribute);
  return status;
}

herr_t read_object(hid_t root, const char* name, const H5O_info_t* info, void*) {
  const hid_t object = H5Oopen(root, name, H5P_DEFAULT);
  if (object < 0) return -1;
  herr_t status = H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, read_attribute, nullptr);
  if (status >= 0 && info->type == H5O_TYPE_DATASET) {
    const hid_t type = H5Dget_type(object), space = H5Dget_space(object);
    status = type < 0 || space < 0 ? -1 : read_values(type, space, H5Sget_simple_extent_npoints(space), [&](hid_t native, void* into) {
      return H5Dread(object, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, into);
    });
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
  }
  H5Oclose(object);
  return status;
}

}  // namespace

void check_run_file_readable(const std::string& file) {
  read_in_child_process(file, [&] {
    H5::Exception::dontPrint();
    const hid_t opened = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    GENFW_CHECK(opened >= 0, "run file ", file, ": cannot open it (missing, or not an HDF5 run file)");
    const herr_t status = H5Ovisit2(opened, H5_INDEX_NAME, H5_ITER_NATIVE, read_object, nullptr, H5O_INFO_BASIC);
    const herr_t closed = H5Fclose(opened);
    GENFW_CHECK(status >= 0 && closed >= 0, "run file ", file,
                ": the HDF5 library cannot read all of it: the file is corrupt");
    return std::string();
  });
}

}  // namespace genfw
