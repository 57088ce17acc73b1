#include "torch_compat.hpp"

#include <ATen/autocast_mode.h>
#include <torch/library.h>
#include <torch/version.h>

namespace genfw::torch_compat {

// LibTorch 2.4 replaced the per-device autocast functions (is_cpu_enabled,
// get_autocast_gpu_dtype, ...) by ones taking the device type, and deprecated the old ones.
#if GENFW_TORCH_AT_LEAST(2, 4)
bool autocast_enabled(c10::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
void set_autocast_enabled(c10::DeviceType device, bool enabled) { at::autocast::set_autocast_enabled(device, enabled); }
at::ScalarType autocast_dtype(c10::DeviceType device) { return at::autocast::get_autocast_dtype(device); }
void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype) { at::autocast::set_autocast_dtype(device, dtype); }
#else
bool autocast_enabled(c10::DeviceType device) {
  return device == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
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

#if TORCH_VERSION_MAJOR < 2
namespace {
// LibTorch 1.x's CPU autocast lists neither group_norm nor layer_norm, and
// their CPU kernels refuse a bf16 input with float32 weights ("expected scalar
// type BFloat16 but found Float", in Python too). Under autocast they run in
// float32, as CUDA autocast runs them: the input is cast, the call redispatched.
// LibTorch 2.x lists both (float32 on the CPU), so this exists for 1.x only.
void norm_in_float32(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  c10::IValue& input = (*stack)[stack->size() - op.schema().arguments().size()];
  if (input.isTensor() && input.toTensor().is_floating_point()) input = input.toTensor().to(at::kFloat);
  c10::impl::ExcludeDispatchKeyGuard below_autocast(c10::DispatchKey::AutocastCPU);
  op.callBoxed(stack);
}
}  // namespace

TORCH_LIBRARY_IMPL(aten, AutocastCPU, m) {
  m.impl("group_norm", torch::CppFunction::makeFromBoxedFunction<&norm_in_float32>());
  m.impl("layer_norm", torch::CppFunction::makeFromBoxedFunction<&norm_in_float32>());
}
#endif

}  // namespace genfw::torch_compat
