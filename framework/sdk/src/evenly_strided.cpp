#include "genfw/evenly_strided.hpp"

namespace genfw {

torch::Tensor evenly_strided_indices(int64_t count, int64_t size) {
  return torch::linspace(0, double(size - 1), count, torch::kFloat64).round().to(torch::kLong);
}

}  // namespace genfw
