#include "genfw/made.hpp"

#include "genfw/error.hpp"
#include "genfw/nn.hpp"

namespace genfw {

MaskedLinearImpl::MaskedLinearImpl(int64_t in, int64_t out, const torch::Tensor& mask_) {
  linear = register_module("linear", torch::nn::Linear(in, out));
  mask = register_buffer("mask", mask_.to(torch::kFloat32));
}

torch::Tensor MaskedLinearImpl::forward(const torch::Tensor& x) {
  return torch::nn::functional::linear(x, linear->weight * mask, linear->bias);
}

MadeImpl::MadeImpl(const torch::Tensor& order, int64_t hidden, int64_t layers, int64_t outputs_per_dim,
                   const std::string& activation)
    : activation_(activation), outputs_per_dim_(outputs_per_dim) {
  const int64_t d = order.size(0);
  GENFW_CHECK(d >= 2, "MADE needs at least 2 inputs, got ", d);
  GENFW_CHECK(layers >= 1, "MADE needs at least one hidden layer, got ", layers);
  order_ = register_buffer("order", order.to(torch::kLong));
  auto input_degrees = order_ + 1;                                          // 1..D
  auto hidden_degrees = torch::arange(hidden, torch::kLong).remainder(d - 1) + 1;  // 1..D−1
  auto previous = input_degrees;
  int64_t width = d;
  for (int64_t l = 0; l < layers; ++l) {
    auto mask = hidden_degrees.unsqueeze(1) >= previous.unsqueeze(0);  // MADE eq. 12
    layers_.push_back(register_module("layer" + std::to_string(l), MaskedLinear(width, hidden, mask)));
    previous = hidden_degrees;
    width = hidden;
  }
  // Output (k, i) sits at row k·D + i; strictly greater degree (MADE eq. 13).
  auto output_mask = (input_degrees.unsqueeze(1) > previous.unsqueeze(0)).repeat({outputs_per_dim, 1});
  layers_.push_back(register_module("output", MaskedLinear(width, outputs_per_dim * d, output_mask)));
  torch::NoGradGuard guard;
  layers_.back()->linear->weight.zero_();
  layers_.back()->linear->bias.zero_();
}

torch::Tensor MadeImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (size_t l = 0; l + 1 < layers_.size(); ++l) h = activate(layers_[l]->forward(h), activation_);
  return layers_.back()->forward(h).view({x.size(0), outputs_per_dim_, x.size(1)});
}

}  // namespace genfw
