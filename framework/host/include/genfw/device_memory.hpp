#pragma once
/// Peak GPU memory of this process, as torch.cuda.max_memory_allocated() and
/// reset_peak_memory_stats() report it in Python: bytes held by tensors (not
/// the caching allocator's reserve, not the CUDA context). For the bench and
/// the run file's environment record.
#include <cstdint>
#include <optional>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// The peak bytes allocated on `device` since the process started or the last
/// reset; nullopt for the CPU and for builds of LibTorch without CUDA.
GENFW_API std::optional<int64_t> peak_device_memory_bytes(torch::Device device);
/// Starts a new peak on `device` (nothing on the CPU).
GENFW_API void reset_peak_device_memory(torch::Device device);

}  // namespace genfw
