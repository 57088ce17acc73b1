#include "genfw/quantize.hpp"

namespace genfw {

torch::Tensor to_8bit(const torch::Tensor& x, double low, double high) {
  return ((x - low) / (high - low)).clamp(0, 1).mul(255).round().to(torch::kUInt8);
}

torch::Tensor quantize_to_8bit(const torch::Tensor& x, double low, double high) {
  return to_8bit(x, low, high).to(x.scalar_type()).mul((high - low) / 255.0).add(low);
}

}  // namespace genfw
