#pragma once
/// Network building blocks shared by several families (one copy each).
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// in → [hidden → act]×layers → out, with SiLU/ReLU/... activations (Linear layers).
GENFW_API torch::nn::Sequential make_mlp(int64_t in, int64_t hidden, int64_t out, int64_t layers,
                                         const std::string& activation = "silu");
/// Sinusoidal embedding of a per-sample scalar [N] → [N, dim] (Vaswani et al. 2017;
/// the DDPM time embedding). `max_period` 10000 as in the Transformer.
GENFW_API torch::Tensor sinusoidal_embedding(const torch::Tensor& values, int64_t dim,
                                             double max_period = 10000.0);
/// The same with diffusers' two variants (get_timestep_embedding): frequencies
/// exp(−ln(max_period)·i / (dim/2 − freq_shift)) (freq_shift 1 is the DDPM TF
/// original's half−1; the overload above is 0), and [cos, sin] when `cos_first`.
GENFW_API torch::Tensor sinusoidal_embedding(const torch::Tensor& values, int64_t dim, double max_period,
                                             int64_t freq_shift, bool cos_first);
/// Activation by name: "silu", "relu", "elu", "softplus", "tanh", "leaky_relu".
GENFW_API torch::Tensor activate(const torch::Tensor& x, const std::string& activation);

}  // namespace genfw
