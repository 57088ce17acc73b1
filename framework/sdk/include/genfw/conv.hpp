#pragma once
/// Transposed convolution on the CPU's convolution kernels.
///
/// LibTorch 1.13 computes a float32 conv_transpose2d on the CPU with im2col/col2im
/// GEMMs, while a convolution and its two gradients run on oneDNN. A transposed
/// convolution is the input-gradient of a convolution, so it can be computed with
/// those: forward = a convolution's input-gradient, backward = a convolution (for
/// the input) and a convolution's weight-gradient. At DCGAN sizes (64→32 channels,
/// 7×7 → 14×14, batch 64) forward + backward took 4.4 ms instead of 22 ms here.
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// conv_transpose2d(x, weight, bias, stride, padding, output_padding) with dilation 1
/// and one group: on oneDNN for float32 CPU tensors outside autocast, else LibTorch's
/// conv_transpose2d. Both give the same values up to float rounding; gradients
/// flow to x, weight and bias.
GENFW_API torch::Tensor conv_transpose2d(const torch::Tensor& x, const torch::Tensor& weight,
                                         const torch::Tensor& bias, at::IntArrayRef stride,
                                         at::IntArrayRef padding, at::IntArrayRef output_padding);

/// torch::nn::ConvTranspose2d whose forward is genfw::conv_transpose2d: the same
/// parameters, initialisation and checkpoint keys (a model can switch without
/// invalidating checkpoints), and `as<torch::nn::ConvTranspose2d>()` still finds it.
/// Dilation, groups or a padding mode other than zeros use LibTorch's forward.
class GENFW_API ConvTranspose2dImpl : public torch::nn::ConvTranspose2dImpl {
 public:
  using torch::nn::ConvTranspose2dImpl::ConvTranspose2dImpl;
  torch::Tensor forward(const torch::Tensor& input);
};
TORCH_MODULE(ConvTranspose2d);

}  // namespace genfw
