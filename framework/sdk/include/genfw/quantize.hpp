#pragma once
/// Samples as the 8-bit image files they stand for: what the PNG writer stores
/// and what image metrics score (FID/IS implementations read saved PNGs).
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// x mapped from [low, high] to the 8-bit levels an image file stores (uint8,
/// clamped, rounded), on x's device.
GENFW_API torch::Tensor to_8bit(const torch::Tensor& x, double low, double high);
/// x as an 8-bit image file of it gives it back, in data space: clamped to
/// [low, high] and rounded to 256 levels.
GENFW_API torch::Tensor quantize_to_8bit(const torch::Tensor& x, double low, double high);

}  // namespace genfw
