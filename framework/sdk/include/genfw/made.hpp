#pragma once
/// Masked autoencoder for distribution estimation (MADE; Germain, Gregor, Murray &
/// Larochelle 2015): an MLP whose weight masks make output i a function of the
/// inputs that come before i in a given order only, so one pass gives every
/// conditional of an autoregressive model. The MAF and IAF building block.
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// y = x·(W ⊙ M)ᵀ + b with a fixed binary mask M [out, in] (MADE eq. 10–11).
class GENFW_API MaskedLinearImpl : public torch::nn::Module {
 public:
  MaskedLinearImpl(int64_t in, int64_t out, const torch::Tensor& mask);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear linear{nullptr};
  torch::Tensor mask;
};
TORCH_MODULE(MaskedLinear);

/// MADE over D inputs with autoregressive `order` (a permutation of 0..D−1: input d
/// is the order[d]-th variable). forward(x [N, D]) → [N, outputs_per_dim, D], where
/// output (k, i) depends only on inputs j with order[j] < order[i]. Degrees (MADE §4):
/// input d has m(d) = order[d] + 1, hidden unit k of every layer m = 1 + k mod (D − 1)
/// (all of 1..D−1 used, none wasted), and the masks are hidden m(k) ≥ m(d),
/// output m(i) > m(k). The last layer starts at zero (an identity flow step).
class GENFW_API MadeImpl : public torch::nn::Module {
 public:
  MadeImpl(const torch::Tensor& order, int64_t hidden, int64_t layers, int64_t outputs_per_dim,
           const std::string& activation = "relu");
  torch::Tensor forward(const torch::Tensor& x);
  const torch::Tensor& order() const { return order_; }

 private:
  torch::Tensor order_;
  std::vector<MaskedLinear> layers_;
  std::string activation_;
  int64_t outputs_per_dim_;
};
TORCH_MODULE(Made);

}  // namespace genfw
