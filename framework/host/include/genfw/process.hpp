#pragma once
/// Process-wide settings the runner applies once at start-up, before any run,
/// and records in every run file's /env (docs in README.md, "Speed").
#include <string>

#include "genfw/export.hpp"

namespace genfw {

struct ProcessSettings {
  /// Intra-op threads; 0: this process's share of the cores it may run on
  /// (sched_getaffinity, so SLURM/taskset cpusets count, divided by
  /// LOCAL_WORLD_SIZE when several workers share the machine).
  int threads = 0;
  /// Flush-to-zero and denormals-are-zero on every intra-op thread: subnormal
  /// floats (e.g. softplus of a score sampler far from the data) are 10-100x
  /// slower on x86 CPUs and numerically irrelevant to generative models.
  bool flush_denormals = true;
  /// glibc malloc keeps freed memory in the process (no mmap for large blocks,
  /// trimming only above 1 GiB), so the activations of each step reuse the
  /// pages of the previous one instead of faulting fresh zeroed pages in.
  /// Off leaves glibc's defaults untouched (a process cannot undo it once on).
  bool keep_freed_memory = true;
};

/// Applies `settings` (threads resolved as above) and remembers them for
/// process_settings(). Safe to call again, e.g. from tests.
GENFW_API ProcessSettings apply_process_settings(ProcessSettings settings);
/// What apply_process_settings last applied (threads 0 and both off before).
GENFW_API const ProcessSettings& process_settings();
/// The cores this process may run on (sched_getaffinity; at least 1).
GENFW_API int usable_cores();
/// Sets flush-to-zero/denormals-are-zero on the calling thread and on every
/// thread of LibTorch's intra-op pool (each thread has its own MXCSR).
GENFW_API void set_flush_denormals(bool on);

}  // namespace genfw
