#include "genfw/shifted_conv.hpp"

namespace genfw {

namespace F = torch::nn::functional;

torch::Tensor down_shift(const torch::Tensor& x) {
  return F::pad(x.narrow(2, 0, x.size(2) - 1), F::PadFuncOptions({0, 0, 1, 0}));
}

torch::Tensor right_shift(const torch::Tensor& x) {
  return F::pad(x.narrow(3, 0, x.size(3) - 1), F::PadFuncOptions({1, 0, 0, 0}));
}

ShiftedConv2dImpl::ShiftedConv2dImpl(int64_t in, int64_t out, Shift shift, int64_t kernel_h, int64_t kernel_w,
                                     int64_t stride)
    : shift_(shift), kernel_h_(kernel_h), kernel_w_(kernel_w) {
  conv = register_module("conv",
                         torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, {kernel_h, kernel_w}).stride(stride)));
}

torch::Tensor ShiftedConv2dImpl::forward(const torch::Tensor& x) {
  const int64_t kh = kernel_h_, kw = kernel_w_;
  // Pad (left, right, top, bottom): rows only from above; columns centred (down) or from the left (down-right).
  auto padding = shift_ == Shift::down ? std::vector<int64_t>{(kw - 1) / 2, (kw - 1) / 2, kh - 1, 0}
                                       : std::vector<int64_t>{kw - 1, 0, kh - 1, 0};
  return conv(F::pad(x, F::PadFuncOptions(padding)));
}

ShiftedConvTranspose2dImpl::ShiftedConvTranspose2dImpl(int64_t in, int64_t out, Shift shift, int64_t kernel_h,
                                                       int64_t kernel_w)
    : shift_(shift), kernel_h_(kernel_h), kernel_w_(kernel_w) {
  // output_padding 1: the size TensorFlow's 'VALID' deconvolution gives, in·2 + kernel − 1.
  auto options = torch::nn::ConvTranspose2dOptions(in, out, {kernel_h, kernel_w}).stride(2).output_padding(1);
  conv = register_module("conv", torch::nn::ConvTranspose2d(options));
}

torch::Tensor ShiftedConvTranspose2dImpl::forward(const torch::Tensor& x) {
  const int64_t kh = kernel_h_, kw = kernel_w_;
  auto y = conv(x);
  const int64_t h = y.size(2) - kh + 1, w = y.size(3) - kw + 1;
  const int64_t left = shift_ == Shift::down ? (kw - 1) / 2 : 0;
  return y.narrow(2, 0, h).narrow(3, left, w);
}

}  // namespace genfw
