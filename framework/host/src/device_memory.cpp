#include "genfw/device_memory.hpp"

#ifdef GENFW_WITH_CUDA  // set by framework/host/CMakeLists.txt when LibTorch was built with CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace genfw {

std::optional<int64_t> peak_device_memory_bytes(torch::Device device) {
#ifdef GENFW_WITH_CUDA
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : c10::DeviceIndex(0);
    // allocated_bytes[0]: the aggregate over small and large pools (StatType::AGGREGATE).
    return c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].peak;
  }
#endif
  return std::nullopt;
}

void reset_peak_device_memory(torch::Device device) {
#ifdef GENFW_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#endif
}

}  // namespace genfw
