#include "genfw/precision.hpp"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include "genfw/error.hpp"
#include "torch_compat.hpp"

namespace genfw {

namespace {
// LibTorch's CPU autocast lists neither group_norm nor layer_norm: 1.13's CPU
// kernels then refuse a bf16 input with float32 weights ("expected scalar type
// BFloat16 but found Float", in Python too), and 2.x's run them in bf16. genfw
// runs them in float32 under autocast on every version, as CUDA autocast does:
// the input is cast and the call redispatched below autocast.
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

const std::vector<std::string>& precision_choices() {
  static const std::vector<std::string> choices{"fp32", "tf32", "bf16"};
  return choices;
}

AutocastScope::AutocastScope(const std::string& precision, torch::Device device) {
  GENFW_CHECK(precision == "fp32" || precision == "tf32" || precision == "bf16", "precision '", precision,
              "': expected fp32, tf32 or bf16");
  cuda_ = device.is_cuda();
  if (cuda_) {
    // LibTorch's own default runs cuDNN convolutions in TF32 but not cuBLAS: "fp32" means float32 in both.
    auto& context = at::globalContext();
    tf32_before_ = {context.allowTF32CuBLAS(), context.allowTF32CuDNN()};
    context.setAllowTF32CuBLAS(precision == "tf32");
    context.setAllowTF32CuDNN(precision == "tf32");
  }
  if (precision != "bf16") return;
  active_ = true;
  const auto type = cuda_ ? c10::kCUDA : c10::kCPU;
  was_enabled_ = torch_compat::autocast_enabled(type);
  dtype_before_ = torch_compat::autocast_dtype(type);
  torch_compat::set_autocast_dtype(type, at::kBFloat16);
  torch_compat::set_autocast_enabled(type, true);
}

AutocastScope::~AutocastScope() {
  if (cuda_) {
    at::globalContext().setAllowTF32CuBLAS(tf32_before_.first);
    at::globalContext().setAllowTF32CuDNN(tf32_before_.second);
  }
  if (!active_) return;
  const auto type = cuda_ ? c10::kCUDA : c10::kCPU;
  torch_compat::set_autocast_enabled(type, was_enabled_);
  torch_compat::set_autocast_dtype(type, dtype_before_);
  if (!was_enabled_) at::autocast::clear_cache();
}

AutocastPause::AutocastPause()
    : cpu_(torch_compat::autocast_enabled(c10::kCPU)), cuda_(torch_compat::autocast_enabled(c10::kCUDA)) {
  torch_compat::set_autocast_enabled(c10::kCPU, false);
  torch_compat::set_autocast_enabled(c10::kCUDA, false);
}

AutocastPause::~AutocastPause() {
  torch_compat::set_autocast_enabled(c10::kCPU, cpu_);
  torch_compat::set_autocast_enabled(c10::kCUDA, cuda_);
}

}  // namespace genfw
