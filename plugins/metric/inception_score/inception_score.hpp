#pragma once
/// Inception score (Salimans et al. 2016): exp(E_x KL(p(y|x) ‖ p(y))), computed
/// on `splits` contiguous chunks of the samples; mean and standard deviation
/// over chunks, as in the original implementation. float64 throughout.
#include <torch/torch.h>

#include <cmath>

#include "genfw/error.hpp"

namespace genfw::metric {

struct InceptionScoreResult {
  double mean = 0.0;
  double std = 0.0;  ///< population standard deviation over splits (numpy's np.std)
  int64_t splits = 0;
};

/// probabilities: [N, C], rows summing to 1.
inline InceptionScoreResult inception_score(const torch::Tensor& probabilities, int64_t splits = 10) {
  GENFW_CHECK(probabilities.dim() == 2, "inception_score: probabilities must be [N, C], got ",
              probabilities.sizes());
  const int64_t n = probabilities.size(0);
  GENFW_CHECK(splits >= 1 && n >= splits, "inception_score: need at least ", splits,
              " samples for ", splits, " splits, got ", n);
  auto p = probabilities.to(torch::kCPU, torch::kFloat64);
  std::vector<double> scores;
  for (int64_t k = 0; k < splits; ++k) {
    auto part = p.slice(0, k * n / splits, (k + 1) * n / splits);
    auto marginal = part.mean(0, /*keepdim=*/true);
    // xlogy: 0·log 0 = 0, so confident (one-hot) predictions are exact.
    auto kl = (torch::xlogy(part, part) - torch::xlogy(part, marginal)).sum(1);
    scores.push_back(std::exp(kl.mean().item<double>()));
  }
  InceptionScoreResult result;
  result.splits = splits;
  for (double s : scores) result.mean += s / double(splits);
  double sq = 0.0;
  for (double s : scores) sq += (s - result.mean) * (s - result.mean);
  result.std = std::sqrt(sq / double(splits));
  return result;
}

}  // namespace genfw::metric
