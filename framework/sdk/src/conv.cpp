#include "genfw/conv.hpp"

#include "genfw/torch_compat.hpp"

#include <ATen/autocast_mode.h>

namespace genfw {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

const std::vector<int64_t> kNoDilation{1, 1}, kNoOutputPadding{0, 0};

// y = conv_transpose(x, w) is the input-gradient of c = conv(·, w) taken at
// grad_output x, for an input the size of y. Its gradients: ∂L/∂x = conv(g, w),
// and ∂L/∂w = the weight-gradient of conv(g, w) at grad_output x.
struct TransposedConvolutionByConvolution : torch::autograd::Function<TransposedConvolutionByConvolution> {
  static torch::Tensor forward(AutogradContext* context, const torch::Tensor& x, const torch::Tensor& weight,
                               std::vector<int64_t> stride, std::vector<int64_t> padding,
                               std::vector<int64_t> output_padding) {
    std::vector<int64_t> shape{x.size(0), weight.size(1), 0, 0};
    for (int d = 0; d < 2; ++d) {
      shape[2 + d] = (x.size(2 + d) - 1) * stride[d] - 2 * padding[d] + weight.size(2 + d) + output_padding[d];
    }
    auto output_like = torch::empty(shape, x.options());  // only its shape is read
    auto y = std::get<0>(at::convolution_backward(x, output_like, weight, c10::nullopt, stride, padding, kNoDilation,
                                                  false, kNoOutputPadding, 1, {true, false, false}));
    context->save_for_backward({x, weight});
    context->saved_data["stride"] = stride;
    context->saved_data["padding"] = padding;
    return y;
  }

  static variable_list backward(AutogradContext* context, variable_list grad_outputs) {
    auto saved = context->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1];
    auto stride = context->saved_data["stride"].toIntVector();
    auto padding = context->saved_data["padding"].toIntVector();
    auto g = grad_outputs[0].contiguous();
    torch::Tensor grad_x, grad_weight;
    if (context->needs_input_grad(0)) grad_x = at::conv2d(g, weight, {}, stride, padding);
    if (context->needs_input_grad(1)) {
      grad_weight = std::get<1>(at::convolution_backward(x, g, weight, c10::nullopt, stride, padding, kNoDilation,
                                                         false, kNoOutputPadding, 1, {false, true, false}));
    }
    return {grad_x, grad_weight, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

bool on_convolution_kernels(const torch::Tensor& x, const torch::Tensor& weight) {
  return x.dim() == 4 && x.device().is_cpu() && weight.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
         weight.scalar_type() == torch::kFloat32 && !torch_compat::autocast_enabled(c10::kCPU);
}

}  // namespace

torch::Tensor conv_transpose2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding) {
  if (!on_convolution_kernels(x, weight)) {
    return torch::conv_transpose2d(x, weight, bias, stride, padding, output_padding);
  }
  auto y = TransposedConvolutionByConvolution::apply(x, weight, stride.vec(), padding.vec(), output_padding.vec());
  return bias.defined() ? y + bias.view({1, -1, 1, 1}) : y;
}

torch::Tensor ConvTranspose2dImpl::forward(const torch::Tensor& input) {
  const auto& o = options;
  const bool plain = o.groups() == 1 && (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1 &&
                     torch_compat::holds_alternative<torch::enumtype::kZeros>(o.padding_mode());
  if (!plain) return torch::nn::ConvTranspose2dImpl::forward(input);
  const auto& padding = torch_compat::get<torch::ExpandingArray<2>>(o.padding());
  return genfw::conv_transpose2d(input, weight, bias, *o.stride(), *padding, *o.output_padding());
}

}  // namespace genfw
