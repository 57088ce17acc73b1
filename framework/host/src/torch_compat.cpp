#include "torch_compat.hpp"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace genfw::torch_compat {

// LibTorch 2.4 replaced the per-device autocast functions (is_cpu_enabled,
// get_autocast_gpu_dtype, ...) by ones taking the device type, and deprecated the old ones.
#if GENFW_TORCH_AT_LEAST(2, 4)
void set_autocast_enabled(c10::DeviceType device, bool enabled) { at::autocast::set_autocast_enabled(device, enabled); }
at::ScalarType autocast_dtype(c10::DeviceType device) { return at::autocast::get_autocast_dtype(device); }
void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype) { at::autocast::set_autocast_dtype(device, dtype); }
#else
void set_autocast_enabled(c10::DeviceType device, bool enabled) {
  if (device == c10::kCUDA) at::autocast::set_enabled(enabled);
  else at::autocast::set_cpu_enabled(enabled);
}
at::ScalarType autocast_dtype(c10::DeviceType device) {
  return device == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype) {
  if (device == c10::kCUDA) at::autocast::set_autocast_gpu_dtype(dtype);
  else at::autocast::set_autocast_cpu_dtype(dtype);
}
#endif

}  // namespace genfw::torch_compat
