#include "genfw/precision.hpp"

#include <ATen/autocast_mode.h>
#include <torch/library.h>
#include <torch/version.h>

#include "genfw/error.hpp"

namespace genfw {

#if TORCH_VERSION_MAJOR < 2
namespace {
// LibTorch 1.x's CPU autocast lists neither group_norm nor layer_norm, and
// their CPU kernels refuse a bf16 input with float32 weights ("expected scalar
// type BFloat16 but found Float", in Python too). Under autocast they run in
// float32, as CUDA autocast runs them: the input is cast, the call redispatched.
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

const std::vector<std::string>& precision_choices() {
  static const std::vector<std::string> choices{"fp32", "bf16"};
  return choices;
}

AutocastScope::AutocastScope(const std::string& precision, torch::Device device) {
  GENFW_CHECK(precision == "fp32" || precision == "bf16", "precision '", precision, "': expected fp32 or bf16");
  if (precision == "fp32") return;
  active_ = true;
  cuda_ = device.is_cuda();
  if (cuda_) {
    was_enabled_ = at::autocast::is_enabled();
    dtype_before_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    was_enabled_ = at::autocast::is_cpu_enabled();
    dtype_before_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (cuda_) {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(dtype_before_);
  } else {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(dtype_before_);
  }
  if (!was_enabled_) at::autocast::clear_cache();
}

AutocastPause::AutocastPause() : cpu_(at::autocast::is_cpu_enabled()), cuda_(at::autocast::is_enabled()) {
  at::autocast::set_cpu_enabled(false);
  at::autocast::set_enabled(false);
}

AutocastPause::~AutocastPause() {
  at::autocast::set_cpu_enabled(cpu_);
  at::autocast::set_enabled(cuda_);
}

}  // namespace genfw
