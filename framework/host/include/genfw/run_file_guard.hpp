#pragma once
/// Run files read where a corrupt one cannot take the process down: libhdf5
/// 1.10 crashes (SIGSEGV in H5A__close) or loops forever (H5HG_read) on some
/// damaged files (fuzz/findings/), so a file is first read in a child process.
#include <functional>
#include <string>

#include "genfw/export.hpp"

namespace genfw {

/// Runs `read` in a child process and returns its text; a genfw::Error there is
/// thrown here. A crash, an HDF5 error or a hang of more than 60 s
/// (GENFW_COMPARE_SECONDS_PER_FILE overrides it) is a genfw::Error naming
/// `file` as corrupt.
GENFW_API std::string read_in_child_process(const std::string& file, const std::function<std::string()>& read);

/// Reads every group's and dataset's attributes and every dataset (up to 64 MiB
/// each) of run file `file` once, in a child process (read_in_child_process), so
/// that this process can open and read it afterwards without crashing or hanging.
/// Throws genfw::Error "run file FILE: ..." for a file it cannot read.
GENFW_API void check_run_file_readable(const std::string& file);

}  // namespace genfw
