#pragma once
/// Causal convolutions for autoregressive image models (PixelCNN++, Salimans et al.
/// 2017, §2.4; van den Oord et al. 2016's two stacks without the blind spot), as
/// openai/pixel-cnn's nn.py defines them:
///   down-shifted       kernel [2, 3]: output (i, j) reads rows ≤ i, columns j−1..j+1
///   down-right-shifted kernel [2, 2]: output (i, j) reads rows ≤ i, columns ≤ j
/// with the padding placed so that nothing below (or, for down-right, to the right)
/// is read. Combined with down_shift / right_shift of the first layer's output, the
/// network's output at (i, j) never sees pixel (i, j) or any later one in raster order.
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// Moves rows down by one (row 0 becomes zeros): [N, C, H, W] → same shape.
GENFW_API torch::Tensor down_shift(const torch::Tensor& x);
/// Moves columns right by one (column 0 becomes zeros).
GENFW_API torch::Tensor right_shift(const torch::Tensor& x);

/// Which causal shape a ShiftedConv2d has.
enum class Shift { down, down_right };

/// Causal convolution, stride 1 or 2 (downsampling keeps the causal structure).
class GENFW_API ShiftedConv2dImpl : public torch::nn::Module {
 public:
  ShiftedConv2dImpl(int64_t in, int64_t out, Shift shift, int64_t kernel_h, int64_t kernel_w, int64_t stride = 1);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};

 private:
  Shift shift_;
  int64_t kernel_h_, kernel_w_;
};
TORCH_MODULE(ShiftedConv2d);

/// Causal transposed convolution with stride 2 (upsampling ×2), cropped as
/// openai/pixel-cnn's down_shifted_deconv2d / down_right_shifted_deconv2d.
class GENFW_API ShiftedConvTranspose2dImpl : public torch::nn::Module {
 public:
  ShiftedConvTranspose2dImpl(int64_t in, int64_t out, Shift shift, int64_t kernel_h, int64_t kernel_w);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ConvTranspose2d conv{nullptr};

 private:
  Shift shift_;
  int64_t kernel_h_, kernel_w_;
};
TORCH_MODULE(ShiftedConvTranspose2d);

}  // namespace genfw
