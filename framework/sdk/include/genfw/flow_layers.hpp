#pragma once
/// Invertible layers shared by the flow families (RealNVP, Glow, MAF), written once.
///
/// Each layer maps x → y, adds log|det ∂y/∂x| per sample to a running total
/// `logdet` [N], and inverts exactly. Parameter and buffer names are part of the
/// checkpoint format.
#include <torch/torch.h>

#include "genfw/component.hpp"
#include "genfw/export.hpp"

namespace genfw {

/// Σ over every dimension but the first: [N, ...] → [N].
GENFW_API torch::Tensor per_sample_sum(const torch::Tensor& t);

/// log N(z; 0, I) summed over every dimension but the first, [N] (nats).
GENFW_API torch::Tensor standard_normal_log_density(const torch::Tensor& z);

/// A multi-scale flow's latent [N, D] cut into the pieces factored out at each
/// scale, shaped [N, shape...] for each of `shapes` (in order; sizes sum to D).
GENFW_API std::vector<torch::Tensor> split_latent(const torch::Tensor& z,
                                                  const std::vector<std::vector<int64_t>>& shapes);
/// The inverse of split_latent: each piece flattened, concatenated to [N, D].
GENFW_API torch::Tensor join_latent(const std::vector<torch::Tensor>& pieces);

/// One invertible step.
class GENFW_API FlowLayer : public torch::nn::Module {
 public:
  ~FlowLayer() override;
  virtual torch::Tensor forward(const torch::Tensor& x, torch::Tensor& logdet) = 0;
  virtual torch::Tensor inverse(const torch::Tensor& y) = 0;
};

/// Per-channel (images [N, C, H, W]) or per-dimension (vectors [N, C]) affine map
/// y = (x + bias)·exp(log_scale) with data-dependent initialisation (Kingma &
/// Dhariwal 2018, Glow §3.1): the first training-mode batch sets bias and scale
/// so that y has zero mean and unit variance per channel. Data-parallel, the
/// statistics are the global batch's (mean_over_replicas), so every rank
/// initialises alike, as one process does on the whole batch.
class GENFW_API ActNorm : public FlowLayer {
 public:
  ActNorm(int64_t channels, bool image);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor& logdet) override;
  torch::Tensor inverse(const torch::Tensor& y) override;

 private:
  bool image_;
  bool known_initialized_ = false;  // C++ copy of the buffer, read from it once
  torch::Tensor bias_, log_scale_, initialized_;
};

/// Space-to-depth [N, C, H, W] → [N, 4C, H/2, W/2] (RealNVP §3.6; volume preserving).
class GENFW_API Squeeze : public FlowLayer {
 public:
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor& logdet) override;
  torch::Tensor inverse(const torch::Tensor& y) override;
};

/// Invertible 1×1 convolution with an LU-decomposed weight (Glow §3.2, eq. 10):
///   W = P·L·(U + diag(sign(s)·exp(log|s|))),
/// P a fixed permutation, L unit lower triangular, U strictly upper triangular;
/// log|det ∂y/∂x| = H·W·Σ log|s| (Glow Table 1). Starts as a random rotation.
class GENFW_API InvertibleConv1x1 : public FlowLayer {
 public:
  explicit InvertibleConv1x1(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor& logdet) override;
  torch::Tensor inverse(const torch::Tensor& y) override;
  /// The C×C matrix W the layer applies at every pixel.
  torch::Tensor weight() const;

 private:
  torch::Tensor permutation_, lower_, upper_, log_abs_s_, sign_s_, lower_mask_;
};

/// Images on [data.low, data.high] → logit space (RealNVP §4.1):
///   u = (x − low)/(high − low),  p = α + (1 − 2α)u,  y = log p − log(1 − p),
/// adding the exact log|det| (the data-range Jacobian included) to `logdet`.
GENFW_API torch::Tensor to_logit_space(const torch::Tensor& x, const DataInfo& data, double alpha,
                                       torch::Tensor& logdet);
/// The exact inverse of to_logit_space.
GENFW_API torch::Tensor from_logit_space(const torch::Tensor& y, const DataInfo& data, double alpha);

/// Discrete data x (levels k on [low, high]) uniformly dequantised:
///   x' = low + (high − low)·(k + U(0, 1))/L,
/// so E[log p(x')] − D·log(L/(high − low)) bounds the discrete log-likelihood
/// (see likelihood.hpp). Continuous data is returned unchanged.
GENFW_API torch::Tensor uniformly_dequantized(const torch::Tensor& x, const DataInfo& data);
/// A continuous sample x back on the data's grid: the dequantisation bin
/// [k/L, (k+1)/L) of [0, 1] is level k; continuous images are clamped to the range.
GENFW_API torch::Tensor onto_data_levels(const torch::Tensor& x, const DataInfo& data);

}  // namespace genfw
