#pragma once
/// The discretized logistic mixture likelihood of PixelCNN++ (Salimans, Karpathy,
/// Chen & Kingma 2017, §2.1–2.2), written once: log-probabilities of quantised
/// pixels and sampling from them, channel-conditional for several channels.
///
/// Pixels are on [−1, 1] at L levels (bin centres −1 + 2k/(L − 1), half-width
/// 1/(L − 1)). Per pixel the network gives P = K + 2·C·K + K·C(C − 1)/2 values,
/// channel-first in `params` [N, P, H, W]:
///   [0, K)                 mixture logits π
///   [K, K + C·K)           means μ_{c,k}            (channel-major: index K + c·K + k)
///   [K + C·K, K + 2·C·K)   log-scales log s_{c,k}   (clamped below at −7)
///   then C(C − 1)/2 blocks of K raw coefficients, pairs (c, j < c) in the order
///   (1,0), (2,0), (2,1), …; the coefficient is tanh(raw).
/// Channel c's mean given the earlier channels of the same pixel (§2.2, the RGB case
/// μ_G = μ + α·x_R, μ_B = μ + β·x_R + γ·x_G): μ̃_c = μ_c + Σ_{j<c} tanh(a_{c,j})·x_j.
/// One channel's bin mass: σ((x + b − μ̃)/s) − σ((x − b − μ̃)/s) with the first and last
/// bins extended to ∓∞ (§2.1, eq. 2), computed as σ(a)·σ(−b)·(1 − e^(b − a)) in log space,
/// exact in the tails (openai/pixel-cnn replaces masses below 1e-5 by density × width),
/// so the probabilities of all L^C values of a pixel sum to 1 to rounding.
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// P for C channels and K components.
GENFW_API int64_t logistic_mixture_num_params(int64_t channels, int64_t mixtures);

/// log P(x_ij) in nats per pixel [N, H, W] (the joint of the pixel's C channels under
/// the mixture) for x [N, C, H, W] on [−1, 1] at `levels` levels.
GENFW_API torch::Tensor discretized_logistic_mixture_log_prob(const torch::Tensor& x, const torch::Tensor& params,
                                                              int64_t mixtures, int64_t levels = 256);

/// One draw per pixel of params [N, P, H, W] → [N, C, H, W] on the level grid of [−1, 1],
/// from uniforms in (0, 1): `component_noise` [N, K, H, W] picks the component by the
/// Gumbel-max trick, `logistic_noise` [N, C, H, W] gives each channel's logistic draw
/// μ̃ + s·(log u − log(1 − u)), channels in order so later ones condition on earlier ones.
GENFW_API torch::Tensor sample_discretized_logistic_mixture(const torch::Tensor& params, int64_t channels,
                                                            int64_t mixtures, const torch::Tensor& component_noise,
                                                            const torch::Tensor& logistic_noise, int64_t levels = 256);

}  // namespace genfw
