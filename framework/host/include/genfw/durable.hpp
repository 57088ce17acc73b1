#pragma once
/// Files a run must not lose or half-write, and the safe stop on SIGINT/SIGTERM.
#include <string>

#include "genfw/error.hpp"

namespace genfw {

/// Writes `bytes` to `path` so that a kill, crash or full disk leaves the old
/// file or the new one, never a mix: a sibling `path.tmp` is written and
/// fsynced, renamed over `path`, and the folder fsynced. On failure the .tmp
/// is removed and genfw::Error says "cannot write <path>: <reason>".
GENFW_API void write_file_durably(const std::string& path, const std::string& bytes);
/// The whole file; genfw::Error naming it when it cannot be read.
GENFW_API std::string read_whole_file(const std::string& path);
/// The temporary file write_file_durably uses for `path` (left behind only by a kill).
GENFW_API std::string temporary_of(const std::string& path);
/// "cannot write <path>: <strerror(errno)>" for the errno of a failed write.
GENFW_API std::string write_error(const std::string& path, int error_number);

/// A run stopped on request (SIGINT, SIGTERM) at a safe point: everything up
/// to it is flushed, the run file says "interrupted", --resume continues it.
class GENFW_API Interrupted : public Error {
 public:
  Interrupted(const std::string& message, int signal_number);
  ~Interrupted() override;
  int signal_number() const { return signal_number_; }

 private:
  int signal_number_;
};

/// SIGINT and SIGTERM set a flag the training, sampling and metric loops poll;
/// a second signal of either kind ends the process at once (the default action).
GENFW_API void install_stop_handlers();
GENFW_API bool stop_requested();
/// Throws Interrupted("interrupted by SIGINT <where>") when a stop was requested.
GENFW_API void stop_here_if_requested(const std::string& where);
/// Test hook: behave as if `signal_number` had arrived (0 clears the request).
GENFW_API void request_stop(int signal_number);

}  // namespace genfw
