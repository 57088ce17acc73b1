#include "genfw/likelihood.hpp"

#include <cmath>
#include <vector>

#include "genfw/error.hpp"

namespace genfw {

double discrete_log_density_offset(const DataInfo& data) {
  if (!data.discrete_levels) return 0.0;
  return double(data.dim()) * std::log(double(data.levels) / (data.high - data.low));
}

torch::Tensor bits_per_dim(const torch::Tensor& log_prob, const DataInfo& data) {
  return -(log_prob - discrete_log_density_offset(data)) / (double(data.dim()) * std::log(2.0));
}

double bits_per_dim(double log_prob, const DataInfo& data) {
  return -(log_prob - discrete_log_density_offset(data)) / (double(data.dim()) * std::log(2.0));
}

torch::Tensor diagonal_gaussian_log_density(const torch::Tensor& z, const torch::Tensor& mean,
                                            const torch::Tensor& log_var) {
  const double log_2pi = std::log(2.0 * M_PI);
  return (-0.5 * ((z - mean).pow(2) * torch::exp(-log_var) + log_var + log_2pi)).sum(-1);
}

torch::Tensor iwae_log_likelihood(LatentVariableModel& model, const torch::Tensor& x, int64_t k) {
  GENFW_CHECK(k >= 1, "iwae_log_likelihood: k must be >= 1, got ", k);
  Posterior q = model.encode(x);
  auto zeros = torch::zeros_like(q.mean);
  std::vector<torch::Tensor> log_weights;
  log_weights.reserve(size_t(k));
  for (int64_t i = 0; i < k; ++i) {
    auto z = q.mean + torch::exp(0.5 * q.log_var) * torch::randn_like(q.mean);
    log_weights.push_back(model.decoder_log_likelihood(x, z) + diagonal_gaussian_log_density(z, zeros, zeros) -
                          diagonal_gaussian_log_density(z, q.mean, q.log_var));
  }
  return torch::logsumexp(torch::stack(log_weights, 0), 0) - std::log(double(k));
}

}  // namespace genfw
