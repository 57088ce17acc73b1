#include "genfw/noise.hpp"

#include <limits>

#include <ATen/Parallel.h>

#include <cmath>

#include "genfw/error.hpp"

namespace genfw {

namespace {

// Salmon et al. 2011, §4.2: the Philox multipliers and the Weyl key increments.
constexpr uint32_t kPhiloxM0 = 0xD2511F53, kPhiloxM1 = 0xCD9E8D57;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9, kPhiloxW1 = 0xBB67AE85;

PhiloxCounter philox_round(const PhiloxCounter& c, const PhiloxKey& key) {
  const uint64_t product0 = uint64_t(kPhiloxM0) * c[0], product1 = uint64_t(kPhiloxM1) * c[2];
  const uint32_t hi0 = uint32_t(product0 >> 32), lo0 = uint32_t(product0);
  const uint32_t hi1 = uint32_t(product1 >> 32), lo1 = uint32_t(product1);
  return {hi1 ^ c[1] ^ key[0], lo1, hi0 ^ c[3] ^ key[1], lo0};
}

// Two 32-bit words → the 53 high bits of their concatenation, as a double in [0, 1).
double unit_interval(uint32_t high, uint32_t low) {
  constexpr double kTwoToMinus53 = 1.0 / 9007199254740992.0;
  return double(((uint64_t(high) << 32) | low) >> 11) * kTwoToMinus53;
}

// Fills `out` [size] with elements of one sample's draw (the mapping in noise.hpp).
void fill_stream(double* out, int64_t size, PhiloxCounter counter, const PhiloxKey& key, bool normal) {
  for (int64_t element = 0; element < size; element += 2) {
    counter[0] = uint32_t(element / 2);
    const PhiloxCounter words = philox4x32_10(counter, key);
    double pair[2] = {unit_interval(words[0], words[1]), unit_interval(words[2], words[3])};
    if (normal) {
      // 1 − a is exact and in (0, 1], so the logarithm is finite.
      const double radius = std::sqrt(-2.0 * std::log(1.0 - pair[0])), angle = 2.0 * M_PI * pair[1];
      pair[0] = radius * std::cos(angle);
      pair[1] = radius * std::sin(angle);
    }
    out[element] = pair[0];
    if (element + 1 < size) out[element + 1] = pair[1];
  }
}

}  // namespace

PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) key = {key[0] + kPhiloxW0, key[1] + kPhiloxW1};
    counter = philox_round(counter, key);
  }
  return counter;
}

SampleNoise SampleNoise::seeded_by_torch(int64_t count) {
  const int64_t seed = torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>();
  return SampleNoise(uint64_t(seed), 0, count);
}

SampleNoise::SampleNoise(uint64_t seed, int64_t first, int64_t count) : seed_(seed), first_(first), count_(count) {
  GENFW_CHECK(first >= 0 && count >= 0, "SampleNoise: need first >= 0 and count >= 0, got first = ", first,
              ", count = ", count);
}

torch::Tensor SampleNoise::normal(at::IntArrayRef sample_shape, const torch::TensorOptions& options) {
  return next(sample_shape, options, Distribution::normal);
}

torch::Tensor SampleNoise::normal_like(const torch::Tensor& x) {
  GENFW_CHECK(x.dim() >= 1 && x.size(0) == count_, "SampleNoise: normal_like needs a tensor of ", count_,
              " samples, got shape ", x.sizes());
  return normal(x.sizes().slice(1), x.options());
}

torch::Tensor SampleNoise::uniform(at::IntArrayRef sample_shape, const torch::TensorOptions& options) {
  return next(sample_shape, options, Distribution::uniform);
}

torch::Tensor SampleNoise::next(at::IntArrayRef sample_shape, const torch::TensorOptions& options,
                                Distribution distribution) {
  GENFW_CHECK(at::isFloatingType(c10::typeMetaToScalarType(options.dtype())),
              "SampleNoise: noise needs a floating-point dtype, got ", options.dtype());
  std::vector<int64_t> shape{count_};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  auto values = torch::empty(shape, torch::kFloat64);
  const int64_t per_sample = count_ > 0 ? values.numel() / count_ : 0;
  const PhiloxKey key{uint32_t(seed_), uint32_t(seed_ >> 32)};
  const uint32_t draw = draws_++;
  double* data = values.data_ptr<double>();
  // ~40 ns per pair of values: small samples are grouped so a task is worth a thread.
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, per_sample));
  at::parallel_for(0, count_, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const uint64_t index = uint64_t(first_ + i);
      const PhiloxCounter counter{0, draw, uint32_t(index), uint32_t(index >> 32)};
      fill_stream(data + i * per_sample, per_sample, counter, key, distribution == Distribution::normal);
    }
  });
  return values.to(options.device(), c10::typeMetaToScalarType(options.dtype()));
}

}  // namespace genfw
