#pragma once
/// The LibTorch API differences a plugin can meet between Debian's 1.13 and the
/// 2.x in PyPI's torch wheel (docs/libtorch.md), behind names that mean the same
/// on both, so that no plugin tests the version itself. (The host's own
/// differences — autocast, the 1.x group-norm policy — are in
/// framework/host/src/torch_compat.cpp.)
#include <variant>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

/// Whether the LibTorch genfw is built against is at least major.minor.
#define GENFW_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#if !GENFW_TORCH_AT_LEAST(2, 1)
#include <c10/util/variant.h>
#endif

namespace genfw::torch_compat {

/// Alternatives of the variants in torch::nn options (padding, padding_mode, ...):
/// c10::variant until LibTorch 2.0, std::variant since 2.1.
#if !GENFW_TORCH_AT_LEAST(2, 1)
using c10::get;
using c10::holds_alternative;
#else
using std::get;
using std::holds_alternative;
#endif

/// Whether autocast is on for `device`: LibTorch 2.4 replaced the per-device functions
/// (is_cpu_enabled, is_enabled for CUDA) by one taking the device type, and deprecated
/// the old ones with a warning at every call.
inline bool autocast_enabled(c10::DeviceType device) {
#if GENFW_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

}  // namespace genfw::torch_compat
