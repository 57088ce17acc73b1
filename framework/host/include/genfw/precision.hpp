#pragma once
/// Mixed precision: LibTorch's autocast, as torch.autocast in Python. Inside
/// a scope, the ops autocast lists (convolutions, matrix products, linear
/// layers) run in bfloat16 and the rest stays float32; weights and gradients
/// stay float32. Off ("fp32") by default: `[train] precision` and
/// `[sampler] precision` turn it on. bf16 needs no loss scaling (fp16 would).
#include <string>
#include <vector>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// The precision names of the settings: "fp32" (autocast off) or "bf16".
GENFW_API const std::vector<std::string>& precision_choices();

/// Autocast on for this thread while the object lives (nothing for "fp32"),
/// on the CPU or CUDA as `device` says; the previous state is restored and the
/// cache of weights cast to bf16 cleared at the end, so changed weights are cast again.
class GENFW_API AutocastScope {
 public:
  AutocastScope(const std::string& precision, torch::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, cuda_ = false, was_enabled_ = false;
  at::ScalarType dtype_before_ = at::kBFloat16;
};

/// Autocast off for this thread while the object lives: backward runs in the
/// dtypes its forward chose, as PyTorch recommends.
class GENFW_API AutocastPause {
 public:
  AutocastPause();
  ~AutocastPause();
  AutocastPause(const AutocastPause&) = delete;
  AutocastPause& operator=(const AutocastPause&) = delete;

 private:
  bool cpu_ = false, cuda_ = false;
};

}  // namespace genfw
