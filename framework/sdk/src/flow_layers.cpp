#include "genfw/flow_layers.hpp"
#include "genfw/replicas.hpp"

#include <cmath>
#include <functional>
#include <numeric>

namespace genfw {

torch::Tensor per_sample_sum(const torch::Tensor& t) { return t.flatten(1).sum(1); }

torch::Tensor standard_normal_log_density(const torch::Tensor& z) {
  return per_sample_sum(-0.5 * (z.pow(2) + std::log(2.0 * M_PI)));
}

std::vector<torch::Tensor> split_latent(const torch::Tensor& z, const std::vector<std::vector<int64_t>>& shapes) {
  std::vector<torch::Tensor> pieces;
  int64_t offset = 0;
  for (const auto& shape : shapes) {
    std::vector<int64_t> full{z.size(0)};
    full.insert(full.end(), shape.begin(), shape.end());
    const int64_t size = std::accumulate(shape.begin(), shape.end(), int64_t(1), std::multiplies<int64_t>());
    pieces.push_back(z.narrow(1, offset, size).reshape(full));
    offset += size;
  }
  return pieces;
}

torch::Tensor join_latent(const std::vector<torch::Tensor>& pieces) {
  std::vector<torch::Tensor> flat;
  for (const auto& piece : pieces) flat.push_back(piece.flatten(1));
  return torch::cat(flat, 1);
}

FlowLayer::~FlowLayer() = default;

namespace {
std::vector<int64_t> channel_shape(int64_t channels, bool image) {
  return image ? std::vector<int64_t>{1, channels, 1, 1} : std::vector<int64_t>{1, channels};
}
/// Pixels per channel: a per-channel log-scale counts once per position.
double positions(const torch::Tensor& x) { return x.dim() == 4 ? double(x.size(2) * x.size(3)) : 1.0; }
}  // namespace

ActNorm::ActNorm(int64_t channels, bool image) : image_(image) {
  bias_ = register_parameter("bias", torch::zeros(channel_shape(channels, image)));
  log_scale_ = register_parameter("log_scale", torch::zeros(channel_shape(channels, image)));
  initialized_ = register_buffer("initialized", torch::zeros({1}));
}

torch::Tensor ActNorm::forward(const torch::Tensor& x, torch::Tensor& logdet) {
  // One host read of the buffer (it may come from a checkpoint), then a C++ flag.
  if (!known_initialized_) known_initialized_ = initialized_.item<double>() != 0.0;
  if (is_training() && !known_initialized_) {
    torch::NoGradGuard guard;
    std::vector<int64_t> dims = image_ ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
    torch::Tensor mean, std;
    if (replicated()) {  // the global batch's statistics: every rank's slice is of the same size
      auto moments = mean_over_replicas(torch::stack({x.mean(dims, true), x.square().mean(dims, true)}));
      mean = moments[0];
      std = (moments[1] - mean.square()).clamp_min(0.0).sqrt();
    } else {
      mean = x.mean(dims, true), std = x.std(dims, false, true);
    }
    bias_.copy_(-mean);
    log_scale_.copy_(-torch::log(std + 1e-6));
    initialized_.fill_(1.0);
    known_initialized_ = true;
  }
  logdet = logdet + log_scale_.sum() * positions(x);
  return (x + bias_) * torch::exp(log_scale_);
}

torch::Tensor ActNorm::inverse(const torch::Tensor& y) { return y * torch::exp(-log_scale_) - bias_; }

torch::Tensor Squeeze::forward(const torch::Tensor& x, torch::Tensor&) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  return x.view({n, c, h / 2, 2, w / 2, 2}).permute({0, 1, 3, 5, 2, 4}).reshape({n, 4 * c, h / 2, w / 2});
}

torch::Tensor Squeeze::inverse(const torch::Tensor& y) {
  const int64_t n = y.size(0), c = y.size(1) / 4, h = y.size(2), w = y.size(3);
  return y.view({n, c, 2, 2, h, w}).permute({0, 1, 4, 2, 5, 3}).reshape({n, c, 2 * h, 2 * w});
}

InvertibleConv1x1::InvertibleConv1x1(int64_t channels) {
  // A random rotation (Glow's initialisation), factored once: rotation = P·L·U.
  auto rotation = std::get<0>(torch::linalg_qr(torch::randn({channels, channels}, torch::kFloat64)));
  auto [p, l, u] = torch::linalg_lu(rotation);
  auto s = torch::diagonal(u);
  permutation_ = register_buffer("permutation", p.to(torch::kFloat32));
  sign_s_ = register_buffer("sign_s", torch::sign(s).to(torch::kFloat32));
  lower_mask_ = register_buffer("lower_mask", torch::tril(torch::ones({channels, channels}), -1));
  lower_ = register_parameter("lower", l.to(torch::kFloat32));
  upper_ = register_parameter("upper", torch::triu(u, 1).to(torch::kFloat32));
  log_abs_s_ = register_parameter("log_abs_s", torch::log(torch::abs(s)).to(torch::kFloat32));
}

torch::Tensor InvertibleConv1x1::weight() const {
  const int64_t c = lower_.size(0);
  auto eye = torch::eye(c, lower_.options());
  auto l = lower_ * lower_mask_ + eye;
  auto u = upper_ * lower_mask_.t() + torch::diag(sign_s_ * torch::exp(log_abs_s_));
  return torch::matmul(permutation_, torch::matmul(l, u));  // Glow eq. 10
}

torch::Tensor InvertibleConv1x1::forward(const torch::Tensor& x, torch::Tensor& logdet) {
  const int64_t c = lower_.size(0);
  logdet = logdet + log_abs_s_.sum() * positions(x);  // Glow Table 1: h·w·Σ log|s|
  return torch::conv2d(x, weight().view({c, c, 1, 1}));
}

torch::Tensor InvertibleConv1x1::inverse(const torch::Tensor& y) {
  const int64_t c = lower_.size(0);
  return torch::conv2d(y, torch::inverse(weight()).view({c, c, 1, 1}));
}

torch::Tensor to_logit_space(const torch::Tensor& x, const DataInfo& data, double alpha, torch::Tensor& logdet) {
  const double range = data.high - data.low;
  auto p = alpha + (1.0 - 2.0 * alpha) * (x - data.low) / range;
  auto log_p = torch::log(p), log_1mp = torch::log1p(-p);
  // d y / d x = (1 − 2α) / (range · p · (1 − p)) per element.
  logdet = logdet - double(data.dim()) * std::log(range) +
           per_sample_sum(std::log(1.0 - 2.0 * alpha) - log_p - log_1mp);
  return log_p - log_1mp;
}

torch::Tensor from_logit_space(const torch::Tensor& y, const DataInfo& data, double alpha) {
  auto u = (torch::sigmoid(y) - alpha) / (1.0 - 2.0 * alpha);
  return data.low + (data.high - data.low) * u;
}

torch::Tensor uniformly_dequantized(const torch::Tensor& x, const DataInfo& data) {
  if (!data.discrete_levels) return x;
  const double range = data.high - data.low, levels = double(data.levels);
  auto k = torch::round((x - data.low) / range * (levels - 1.0));
  return data.low + range * (k + torch::rand_like(x)) / levels;
}

torch::Tensor onto_data_levels(const torch::Tensor& x, const DataInfo& data) {
  if (!data.discrete_levels) return x.clamp(data.low, data.high);
  const double range = data.high - data.low, levels = double(data.levels);
  auto k = torch::floor((x - data.low) / range * levels).clamp(0.0, levels - 1.0);
  return data.low + range * k / (levels - 1.0);
}

}  // namespace genfw
