// Per-sample noise (genfw/noise.hpp): Philox4x32-10 against Random123's
// known-answer vectors, the moments of its normals and uniforms, noise that is
// bit-identical for sample i whatever the batching, and the pipeline drawing the
// same samples for batch sizes 1, 7 and 64.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/noise.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/sampler.hpp"
#include "genfw/testing.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

constexpr uint64_t kSeed = 0x0123456789abcdefULL;

// One draw of each kind for samples [first, first + count), concatenated per sample.
torch::Tensor draws_of(int64_t first, int64_t count) {
  genfw::SampleNoise noise(kSeed, first, count);
  auto normal = noise.normal({3, 5}, torch::kFloat64).reshape({count, -1});  // odd: 15 values per sample
  auto uniform = noise.uniform({4}, torch::kFloat64);
  auto second_normal = noise.normal({2}, torch::kFloat64);
  return torch::cat({normal, uniform, second_normal}, 1);
}

// Samples [0, total) drawn in consecutive ranges of `size`, as batches or processes would.
torch::Tensor draws_in_ranges(int64_t total, int64_t size) {
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < total; first += size) parts.push_back(draws_of(first, std::min(size, total - first)));
  return torch::cat(parts);
}

}  // namespace

// Random123's kat_vectors for philox4x32 with 10 rounds: counter, key → output.
TEST(Noise, PhiloxMatchesKnownAnswers) {
  struct Case {
    genfw::PhiloxCounter counter;
    genfw::PhiloxKey key;
    genfw::PhiloxCounter expected;
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const auto& c : cases) EXPECT_EQ(genfw::philox4x32_10(c.counter, c.key), c.expected);
}

// n = 2^20 values: the mean has standard error 1/√n ≈ 0.001, the variance √(2/n) ≈ 0.0014,
// E[z⁴] √(96/n) ≈ 0.0096; uniforms: mean √(1/12n) ≈ 0.00028. Bounds at 5 standard errors.
TEST(Noise, NormalAndUniformMoments) {
  genfw::SampleNoise noise(kSeed, 1000, 1024);
  const auto z = noise.normal({1024}, torch::kFloat64).flatten();
  const double n = double(z.numel());
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(z.var().item<double>(), 1.0, 5 * std::sqrt(2 / n));
  EXPECT_NEAR(z.pow(4).mean().item<double>(), 3.0, 5 * std::sqrt(96 / n));
  const auto u = noise.uniform({1024}, torch::kFloat64).flatten();
  EXPECT_GE(u.min().item<double>(), 0.0);
  EXPECT_LT(u.max().item<double>(), 1.0);
  EXPECT_NEAR(u.mean().item<double>(), 0.5, 5 / std::sqrt(12 * n));
  // Successive draws are independent streams: their correlation is within 5/√n of 0.
  const auto next = noise.normal({1024}, torch::kFloat64).flatten();
  EXPECT_NEAR((z * next).mean().item<double>(), 0.0, 5 / std::sqrt(n));
  EXPECT_EQ(noise.draws(), 3u);
}

// Sample i's noise depends on (seed, i, draw, element) alone: batches of 1, 7 and 64
// and a split into two halves (two processes) give the same bits.
TEST(Noise, BitIdenticalWhateverTheBatching) {
  const torch::Tensor whole = draws_of(0, 64);
  for (int64_t size : {1, 7, 32, 64}) EXPECT_TRUE(torch::equal(draws_in_ranges(64, size), whole)) << size;
  // float32 noise is the float64 noise rounded, and a new seed gives other noise.
  genfw::SampleNoise single(kSeed, 0, 64), twice(kSeed, 0, 64), other(kSeed + 1, 0, 64);
  EXPECT_TRUE(torch::equal(single.normal({3, 5}), twice.normal({3, 5}, torch::kFloat64).to(torch::kFloat32)));
  EXPECT_FALSE(torch::equal(other.normal({3, 5}, torch::kFloat64), whole.slice(1, 0, 15).reshape({64, 3, 5})));
}

TEST(Noise, RefusesAStreamForOtherSamples) {
  genfw::SampleNoise noise(kSeed, 0, 4);
  EXPECT_CONTAINS(error_of([&] { noise.normal_like(torch::zeros({5, 2})); }), "needs a tensor of 4 samples");
  EXPECT_CONTAINS(error_of([&] { noise.normal({2}, torch::kLong); }), "floating-point dtype");
  genfw::SampleContext context;
  context.num_samples = 3;
  context.noise = noise;
  EXPECT_CONTAINS(error_of([&] { context.normal({2}); }), "covers 4 samples, but num_samples is 3");
}

namespace {

// The exact ε of a two-mode mixture (nothing to train) sampled by DDPM ancestral sampling.
std::string ddpm_experiment() {
  return "name = \"noise_batches\"\nseed = 11\n" + two_mode_mixture_data(100) + two_mode_mixture_eps_model(100) + R"(
[sampler]
plugin = "ddpm"
num_samples = 64
[log]
progress = "off"
)";
}

}  // namespace

// The pipeline gives each batch the noise of its sample indices under the run
// seed: batch sizes 1, 7 and 64 draw the same samples up to kernel rounding
// (genfw::testing::kBatchSizeTolerance).
TEST(Noise, PipelineSamplesDoNotDependOnTheBatchSize) {
  TempDir dir;
  genfw::RunRequest request;
  request.experiment = dir.file("noise.toml", ddpm_experiment());
  auto samples_for = [&](int64_t batch_size) {
    request.overrides = {"sampler.batch_size=" + std::to_string(batch_size)};
    return genfw::Pipeline(request, builtins()).sample().samples;
  };
  const torch::Tensor whole = samples_for(64);
  double spread = 0.0;
  for (int64_t batch_size : {1, 7}) spread = std::max(spread, (samples_for(batch_size) - whole).abs().max().item<double>());
  std::cout << "pipeline (ddpm): largest difference between batch sizes 1, 7 and 64: " << spread << "\n";
  EXPECT_LT(spread, genfw::testing::kBatchSizeTolerance);
  // Another run seed draws other samples.
  request.overrides = {"seed=12"};
  EXPECT_GT((genfw::Pipeline(request, builtins()).sample().samples - whole).abs().max().item<double>(), 0.1);
}
