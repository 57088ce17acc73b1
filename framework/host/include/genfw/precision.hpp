#pragma once
/// Mixed precision: LibTorch's autocast, as torch.autocast in Python. Inside
/// a scope, the ops autocast lists (convolutions, matrix products, linear
/// layers) run in bfloat16 and the rest stays float32; weights and gradients
/// stay float32. Off ("fp32") by default: `[train] precision` and
/// `[sampler] precision` turn it on. bf16 needs no loss scaling (fp16 would).
/// "tf32" keeps float32 tensors but lets CUDA's matrix products and cuDNN's
/// convolutions round their inputs to TF32 (10-bit mantissa) on the tensor
/// cores, as torch.backends.{cuda.matmul,cudnn}.allow_tf32 do; on the CPU it
/// computes in float32. On CUDA, "fp32" turns TF32 off in both (LibTorch's own
/// default leaves it on for cuDNN convolutions).
#include <string>
#include <vector>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// The precision names of the settings: "fp32" (autocast off), "tf32" (CUDA
/// tensor cores on float32) or "bf16" (autocast).
GENFW_API const std::vector<std::string>& precision_choices();

/// The precision on for this thread while the object lives, on the CPU or CUDA
/// as `device` says: autocast for "bf16"; on CUDA the TF32 switches (which are
/// process-wide in LibTorch) for every choice. The previous state is restored
/// and the cache of weights cast to bf16 cleared at the end, so changed weights
/// are cast again.
class GENFW_API AutocastScope {
 public:
  AutocastScope(const std::string& precision, torch::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, cuda_ = false, was_enabled_ = false;
  at::ScalarType dtype_before_ = at::kBFloat16;
  std::pair<bool, bool> tf32_before_{false, false};  ///< cuBLAS, cuDNN
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
