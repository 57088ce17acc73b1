#pragma once
// An image's 8-bit codes: what the classifier extractor sees and digests, and
// what the reference set's digest is taken of (the features' own files only).
#include <torch/torch.h>

namespace genfw::metric {

/// An image's 8-bit codes 0..255 (as float): the numbers an image file holds,
/// the same whichever range ([0, 1], [-1, 1]) the dataset was read in.
inline torch::Tensor image_codes(const torch::Tensor& x, double low, double high) {
  return ((x.clamp(low, high) - low) * (255.0 / (high - low))).round();
}

}  // namespace genfw::metric
