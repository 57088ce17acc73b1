#pragma once
/// Small in-memory datasets for the metric tests (tests only; no plugin needed).
#include <torch/torch.h>

#include "genfw/sdk.hpp"

namespace genfw::metric::testing {

/// A fixed tensor of samples (and optional labels) served as a genfw::Dataset.
class TensorDataset : public Dataset {
 public:
  TensorDataset(DataInfo info, torch::Tensor x, torch::Tensor y = {})
      : info_(std::move(info)), x_(std::move(x)), y_(std::move(y)) {}
  DataInfo info() const override { return info_; }
  int64_t size() const override { return x_.size(0); }
  Batch get(const torch::Tensor& indices) override {
    return {x_.index_select(0, indices), y_.defined() ? y_.index_select(0, indices) : torch::Tensor()};
  }

 private:
  DataInfo info_;
  torch::Tensor x_, y_;
};

/// Class-dependent blobs: class c (of 4) is a bright Gaussian blob in quadrant c
/// of a 1×size×size image in [−1, 1], plus pixel noise. Draws from torch's
/// global generator.
inline std::pair<torch::Tensor, torch::Tensor> blob_images(int64_t n, int64_t size = 16, double noise = 0.15,
                                                           int64_t classes = 4) {
  auto y = torch::arange(n, torch::kLong) % classes;
  auto coords = torch::arange(size, torch::kFloat32);
  auto yy = coords.view({1, size, 1}), xx = coords.view({1, 1, size});
  auto quadrant_r = (y / 2).to(torch::kFloat32), quadrant_c = (y % 2).to(torch::kFloat32);
  auto cr = (quadrant_r * 0.5 + 0.25) * size + torch::randn({n}) * 0.5;
  auto cc = (quadrant_c * 0.5 + 0.25) * size + torch::randn({n}) * 0.5;
  auto d2 = (yy - cr.view({n, 1, 1})).square() + (xx - cc.view({n, 1, 1})).square();
  auto img = torch::exp(-d2 / (2.0 * (size / 8.0) * (size / 8.0))) * 2.0 - 1.0;
  img = (img + noise * torch::randn_like(img)).clamp(-1.0, 1.0);
  return {img.unsqueeze(1), y};
}

inline DataInfo image_info(const std::string& name, int64_t size = 16, int64_t classes = 4) {
  DataInfo info;
  info.name = name;
  info.shape = {1, size, size};
  info.low = -1.0;
  info.high = 1.0;
  info.num_classes = classes;
  return info;
}

inline DataInfo vector_info(const std::string& name, int64_t dim) {
  DataInfo info;
  info.name = name;
  info.shape = {dim};
  info.low = -1e3;
  info.high = 1e3;
  return info;
}

}  // namespace genfw::metric::testing
