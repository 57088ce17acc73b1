#pragma once
#include <string>

#include <torch/torch.h>

#include "genfw/dataset.hpp"
#include "genfw/export.hpp"
#include "genfw/quantize.hpp"

namespace genfw {

/// Writes the first `count` samples [N, C, H, W] (C = 1 or 3) as a square-ish
/// grid PNG, mapping [low, high] to [0, 255] with a 2-pixel border.
GENFW_API void write_image_grid(const std::string& path, const torch::Tensor& samples, double low,
                                double high, int64_t count = 64);
/// Writes a 2-D histogram of points [N, 2] over [low, high]² as a `size`×`size`
/// PNG (log-scaled counts, dark = dense), the usual toy-data picture.
GENFW_API void write_histogram_2d(const std::string& path, const torch::Tensor& points, double low,
                                  double high, int64_t size = 256);
/// The picture of a run's samples at `png`: a grid of the first `count` images, or a
/// 2-D histogram of points; nothing for other data or a count of 0.
GENFW_API void write_sample_picture(const torch::Tensor& samples, const DataInfo& data, const std::string& png,
                                    int64_t count);
/// Writes an 8-bit RGB image [H, W, 3] (uint8, CPU).
GENFW_API void write_png(const std::string& path, const torch::Tensor& rgb);

}  // namespace genfw
