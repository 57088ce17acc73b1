#include "genfw/gaussian_mixture.hpp"

#include <cmath>

#include "genfw/error.hpp"

namespace genfw {

GaussianMixture::GaussianMixture(torch::Tensor m, torch::Tensor w, torch::Tensor s)
    : means(m.to(torch::kFloat64).cpu()), weights(w.to(torch::kFloat64).cpu()), stds(s.to(torch::kFloat64).cpu()) {
  GENFW_CHECK(means.dim() == 2 && means.size(0) >= 1, "mixture means must be a non-empty [K, D] array");
  int64_t k = means.size(0);
  GENFW_CHECK(weights.dim() == 1 && weights.size(0) == k, "mixture has ", k, " means but ",
              weights.numel(), " weights");
  if (stds.numel() == 1) stds = stds.reshape({1}).expand({k}).clone();
  GENFW_CHECK(stds.dim() == 1 && stds.size(0) == k, "mixture has ", k, " means but ", stds.numel(),
              " stds (give one, or one per component)");
  GENFW_CHECK((weights > 0).all().item<bool>(), "mixture weights must be positive");
  GENFW_CHECK((stds > 0).all().item<bool>(), "mixture stds must be positive");
  weights = weights / weights.sum();
}

GaussianMixture GaussianMixture::from_options(const Matrix& m, const std::vector<double>& w,
                                              const std::vector<double>& s) {
  GENFW_CHECK(!m.empty(), "mixture needs at least one mean");
  std::vector<double> flat;
  for (const auto& row : m) {
    GENFW_CHECK(row.size() == m[0].size(), "mixture means must all have the same dimension");
    flat.insert(flat.end(), row.begin(), row.end());
  }
  auto means = torch::tensor(flat, torch::kFloat64).reshape({int64_t(m.size()), int64_t(m[0].size())});
  auto weights = w.empty() ? torch::ones({int64_t(m.size())}, torch::kFloat64) : torch::tensor(w, torch::kFloat64);
  auto stds = s.empty() ? torch::ones({1}, torch::kFloat64) : torch::tensor(s, torch::kFloat64);
  return GaussianMixture(means, weights, stds);
}

GaussianMixture GaussianMixture::transformed(double scale, double noise_variance) const {
  return GaussianMixture(means * scale, weights, torch::sqrt(stds.pow(2) * scale * scale + noise_variance));
}

torch::Tensor GaussianMixture::log_components(const torch::Tensor& x, const torch::Tensor& scale,
                                              const torch::Tensor& variance) const {
  // log w_k + log N(x; a μ_k, v_k I) for per-sample scale a [N] and variance v [N, K].
  auto xd = x.to(torch::kFloat64);
  auto mu = means.to(xd.device());
  auto diff = xd.unsqueeze(1) - scale.view({-1, 1, 1}) * mu.unsqueeze(0);  // [N, K, D]
  auto sq = diff.pow(2).sum(2);
  double d = double(dim());
  return weights.to(xd.device()).log().unsqueeze(0) - 0.5 * sq / variance -
         0.5 * d * torch::log(2 * M_PI * variance);
}

torch::Tensor GaussianMixture::score_general(const torch::Tensor& x, const torch::Tensor& scale,
                                             const torch::Tensor& noise_variance) const {
  auto xd = x.to(torch::kFloat64);
  auto a = scale.to(xd.device(), torch::kFloat64);
  auto variance = stds.to(xd.device()).pow(2).unsqueeze(0) * a.pow(2).unsqueeze(1) +
                  noise_variance.to(xd.device(), torch::kFloat64).unsqueeze(1);  // [N, K]
  auto r = torch::softmax(log_components(xd, a, variance), 1);                  // [N, K]
  auto mu = means.to(xd.device());
  auto diff = a.view({-1, 1, 1}) * mu.unsqueeze(0) - xd.unsqueeze(1);           // [N, K, D]
  auto s = (r.unsqueeze(2) * diff / variance.unsqueeze(2)).sum(1);
  return s.to(x.dtype());
}

torch::Tensor GaussianMixture::log_prob(const torch::Tensor& x) const {
  auto n = x.size(0);
  auto ones = torch::ones({n}, torch::dtype(torch::kFloat64).device(x.device()));
  auto variance = stds.to(x.device()).pow(2).unsqueeze(0).expand({n, means.size(0)});
  return torch::logsumexp(log_components(x, ones, variance), 1).to(x.dtype());
}

torch::Tensor GaussianMixture::responsibilities(const torch::Tensor& x) const {
  auto n = x.size(0);
  auto ones = torch::ones({n}, torch::dtype(torch::kFloat64).device(x.device()));
  auto variance = stds.to(x.device()).pow(2).unsqueeze(0).expand({n, means.size(0)});
  return torch::softmax(log_components(x, ones, variance), 1).to(x.dtype());
}

torch::Tensor GaussianMixture::score(const torch::Tensor& x) const {
  auto zeros = torch::zeros({x.size(0)}, torch::kFloat64);
  return score_general(x, torch::ones({x.size(0)}, torch::kFloat64), zeros);
}

torch::Tensor GaussianMixture::score_with_noise(const torch::Tensor& x, const torch::Tensor& sigma) const {
  return score_general(x, torch::ones({x.size(0)}, torch::kFloat64), sigma.to(torch::kFloat64).pow(2));
}

torch::Tensor GaussianMixture::score_vp(const torch::Tensor& x, const torch::Tensor& alpha_bar) const {
  auto a = alpha_bar.to(torch::kFloat64);
  return score_general(x, a.sqrt(), 1 - a);
}

torch::Tensor GaussianMixture::sample(int64_t n) const {
  auto k = torch::multinomial(weights, n, /*replacement=*/true);
  auto noise = torch::randn({n, dim()}, torch::kFloat64);
  return means.index_select(0, k) + stds.index_select(0, k).unsqueeze(1) * noise;
}

torch::Tensor GaussianMixture::nearest_component(const torch::Tensor& x) const {
  auto d = torch::cdist(x.to(torch::kFloat64).cpu(), means);
  return d.argmin(1);
}

}  // namespace genfw
