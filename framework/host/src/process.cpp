#include "genfw/process.hpp"

#include "genfw/large_block_cache.hpp"

#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace genfw {

namespace {

ProcessSettings& applied() {
  static ProcessSettings settings{0, false, false};  // nothing applied yet
  return settings;
}

int local_world_size() {
  const char* value = std::getenv("LOCAL_WORLD_SIZE");
  int size = value ? std::atoi(value) : 1;
  return std::max(1, size);
}

void keep_freed_memory() {
  // Blocks up to 32 MiB (glibc's largest mmap threshold on 64-bit) from the heap
  // rather than fresh mmaps, which the kernel must zero and fault in page by
  // page, and no trimming of the heap's top below 1 GiB: the next step's
  // activations reuse the pages. Larger blocks stay mmaps, which the large-block
  // cache keeps and reuses: with every block on the heap (M_MMAP_MAX = 0) the
  // paper-size NCSN on CIFAR-10 fragmented it past 23 GiB and was killed.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  install_large_block_cache();  // the larger blocks: kept and reused (large_block_cache.hpp)
}

}  // namespace

int usable_cores() {
  cpu_set_t cores;
  CPU_ZERO(&cores);
  if (sched_getaffinity(0, sizeof cores, &cores) != 0) return 1;
  return std::max(1, CPU_COUNT(&cores));
}

void set_flush_denormals(bool on) {
  at::globalContext().setFlushDenormal(on);
  // One chunk per pool thread: each runs the setter on its own MXCSR.
  const int64_t threads = at::get_num_threads();
  at::parallel_for(0, threads, 1, [on](int64_t, int64_t) { at::globalContext().setFlushDenormal(on); });
}

ProcessSettings apply_process_settings(ProcessSettings settings) {
  if (settings.threads <= 0) settings.threads = std::max(1, usable_cores() / local_world_size());
  if (settings.keep_freed_memory) keep_freed_memory();  // off: glibc's defaults, untouched
  torch::set_num_threads(settings.threads);  // LibTorch's default here is 1
  set_flush_denormals(settings.flush_denormals);
  applied() = settings;
  return settings;
}

const ProcessSettings& process_settings() { return applied(); }

}  // namespace genfw
