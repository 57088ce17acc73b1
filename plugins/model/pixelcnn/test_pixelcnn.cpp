// PixelCNN++: the discretized logistic mixture against numpy (edges, 8-bit bins, RGB
// channel conditioning) and its normalisation; the network's causality by gradients;
// the whole model's normalisation over every image of a tiny space; pixel-by-pixel
// sampling from the per-sample noise with progress and stop at every pixel.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/testing.hpp"

namespace {

#include "logistic_mixture_reference.inc"

using genfw::OptionValue;

torch::Tensor from(const std::vector<double>& values, std::vector<int64_t> shape) {
  return torch::tensor(values, torch::kFloat64).view(shape);
}

// Per-pixel log P against the numpy/mpmath reference (logistic_mixture_reference.py: the
// parameters prepared as openai/pixel-cnn does, each bin's mass at 50 digits): RGB with 3
// components and grey with 2, pixels at levels 0 and 255 in every channel, log-scales from
// below the −7 clamp to 0.5, means far from the levels (masses down to e^−1277). Relative
// error below 1e-10: float64 rounding only, in the tails too.
TEST(PixelCnn, LogisticMixtureMatchesNumpy) {
  auto relative_error = [](const torch::Tensor& value, const torch::Tensor& reference) {
    return ((value - reference).abs() / reference.abs().clamp_min(1.0)).max().item<double>();
  };
  auto rgb = genfw::discretized_logistic_mixture_log_prob(
      from(rgb_x, {rgb_n, rgb_c, rgb_h, rgb_w}), from(rgb_params, {rgb_n, -1, rgb_h, rgb_w}), rgb_k, 256);
  const double rgb_error = relative_error(rgb, from(rgb_log_prob, {rgb_n, rgb_h, rgb_w}));
  auto grey = genfw::discretized_logistic_mixture_log_prob(
      from(grey_x, {grey_n, grey_c, grey_h, grey_w}), from(grey_params, {grey_n, -1, grey_h, grey_w}), grey_k, 256);
  const double grey_error = relative_error(grey, from(grey_log_prob, {grey_n, grey_h, grey_w}));
  std::cout << "largest relative |genfw − reference|: RGB " << rgb_error << ", grey " << grey_error << "\n";
  EXPECT_LT(rgb_error, 1e-10);
  EXPECT_LT(grey_error, 1e-10);
}

/// Parameters of one pixel [1, P, 1, 1] with moderate scales (no density fallback).
torch::Tensor pixel_params(int64_t channels, int64_t mixtures) {
  auto p = torch::randn({1, genfw::logistic_mixture_num_params(channels, mixtures), 1, 1}, torch::kFloat64);
  p.narrow(1, mixtures + channels * mixtures, channels * mixtures).uniform_(-3.5, -1.0);
  return p;
}

// Σ over all 256 values of a grey pixel is 1 to 1e-12 (the bins tile the line, edges
// included), and so is Σ over all 32³ values of an RGB pixel at 32 levels, where G is
// conditioned on R and B on R and G (the full 256³ = 1.7·10⁷ values take ~20 s; the bins'
// tiling does not depend on the level count).
TEST(PixelCnn, LogisticMixtureSumsToOne) {
  torch::manual_seed(0);
  auto grid = [](int64_t levels) { return torch::arange(levels, torch::kFloat64) * 2.0 / double(levels - 1) - 1.0; };
  auto grey = pixel_params(1, 4);
  auto grey_mass = torch::exp(genfw::discretized_logistic_mixture_log_prob(
                                  grid(256).view({256, 1, 1, 1}), grey.expand({256, -1, 1, 1}), 4, 256))
                       .sum()
                       .item<double>();
  EXPECT_NEAR(grey_mass, 1.0, 1e-12);

  auto rgb = pixel_params(3, 3);
  auto values = grid(32);
  auto x = torch::stack(torch::meshgrid({values, values, values}, "ij"), 0).view({3, -1}).t().reshape({-1, 3, 1, 1});
  auto rgb_mass =
      torch::exp(genfw::discretized_logistic_mixture_log_prob(x, rgb.expand({x.size(0), -1, 1, 1}), 3, 32))
          .sum()
          .item<double>();
  EXPECT_NEAR(rgb_mass, 1.0, 1e-12);
}

// Sampling draws levels with the probabilities the log-probability gives: the total variation
// between 200 000 draws of one grey pixel and exp(log P) stays below 1.5 × its expected value
// under exact sampling, ½ Σ_k √(2 p_k (1 − p_k) / (π n)) (~0.01 here); a wrong scale, mean or
// component choice gives several times that.
TEST(PixelCnn, LogisticMixtureSamplesFollowTheProbabilities) {
  torch::manual_seed(1);
  auto params = pixel_params(1, 3);
  params.narrow(1, 3, 3).mul_(0.5);
  const int64_t n = 200000;
  auto x = genfw::sample_discretized_logistic_mixture(params.expand({n, -1, 1, 1}), 1, 3,
                                                      torch::rand({n, 3, 1, 1}, torch::kFloat64),
                                                      torch::rand({n, 1, 1, 1}, torch::kFloat64), 256);
  auto counts = torch::bincount(torch::round((x.view({-1}) + 1.0) * 127.5).to(torch::kLong), {}, 256);
  auto levels = torch::arange(256, torch::kFloat64) / 127.5 - 1.0;
  auto p = torch::exp(genfw::discretized_logistic_mixture_log_prob(levels.view({256, 1, 1, 1}),
                                                                  params.expand({256, -1, 1, 1}), 3, 256))
               .view({256});
  const double tv = 0.5 * (counts.to(torch::kFloat64) / double(n) - p).abs().sum().item<double>();
  const double expected = 0.5 * torch::sqrt(2.0 * p * (1.0 - p) / (M_PI * double(n))).sum().item<double>();
  std::cout << "total variation of 200000 samples: " << tv << " (expected from sampling alone: " << expected << ")\n";
  EXPECT_LT(tv, 1.5 * expected);
}

std::unique_ptr<genfw::Model> make_pixelcnn(const genfw::BuildContext& context,
                                            std::map<std::string, OptionValue> options) {
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "pixelcnn", options, context);
}

genfw::BuildContext discrete(std::vector<int64_t> shape, int64_t levels = 256) {
  auto context = genfw::testing::context_for(shape);
  context.data.discrete_levels = true;
  context.data.levels = levels;
  return context;
}

std::map<std::string, OptionValue> tiny(int64_t resolutions) {
  return {{"num_resnet", int64_t(1)}, {"filters", int64_t(8)}, {"mixtures", int64_t(2)},
          {"resolutions", resolutions}, {"dropout", 0.0}};
}

// The output at pixel (i, j) has zero gradient with respect to every input pixel at or
// after (i, j) in raster order (all channels), and a non-zero one with respect to its
// left and upper neighbours (the receptive field is not empty): RGB 8×8, three
// resolutions (8, 4, 2), every output pixel.
TEST(PixelCnn, ReceptiveFieldIsCausal) {
  torch::manual_seed(0);
  auto context = discrete({3, 8, 8});
  auto model = make_pixelcnn(context, tiny(3));
  model->to(torch::kFloat64);
  model->eval();
  auto* autoregressive = genfw::as<genfw::AutoregressiveModel>(*model);
  ASSERT_NE(autoregressive, nullptr);
  auto x = (torch::randint(0, 256, {1, 3, 8, 8}, torch::kFloat64) / 127.5 - 1.0).requires_grad_(true);
  auto out = autoregressive->conditional_params(x);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, genfw::logistic_mixture_num_params(3, 2), 8, 8}));
  for (int64_t t = 0; t < 64; ++t) {
    const int64_t i = t / 8, j = t % 8;
    auto grad = torch::autograd::grad({out.select(2, i).select(2, j).sum()}, {x}, {}, true)[0];
    auto per_pixel = grad.abs().sum(1).view({64});  // raster order
    EXPECT_EQ(per_pixel.slice(0, t).max().item<double>(), 0.0) << "output " << i << "," << j << " sees itself or later";
    if (j > 0) {
      EXPECT_GT(per_pixel[t - 1].item<double>(), 0.0) << "output " << i << "," << j;
    }
    if (i > 0) {
      EXPECT_GT(per_pixel[t - 8].item<double>(), 0.0) << "output " << i << "," << j;
    }
  }
  // Causal in rows, so the top rows of an image alone give the same parameters there
  // (what sampling relies on to skip the rows below the current pixel).
  torch::NoGradGuard guard;
  EXPECT_LT((autoregressive->conditional_params(x.narrow(2, 0, 4)) - out.narrow(2, 0, 4)).abs().max().item<double>(),
            1e-12);
}

// The model is a distribution over images: Σ_x P(x) over all 4⁴ grey 2×2 images at 4 levels,
// and over all 2¹² RGB 2×2 images at 2 levels, is 1 to 1e-9 (float64, randomised weights). A
// conditional that saw its own pixel, or a wrong channel conditioning, breaks this.
TEST(PixelCnn, ModelNormalisesOverAllImages) {
  torch::manual_seed(0);
  struct Case {
    std::vector<int64_t> shape;
    int64_t levels;
  };
  for (const auto& c : {Case{{1, 2, 2}, 4}, Case{{3, 2, 2}, 2}}) {
    auto context = discrete(c.shape, c.levels);
    auto model = make_pixelcnn(context, tiny(2));
    model->to(torch::kFloat64);
    {
      torch::NoGradGuard guard;
      for (auto& p : model->parameters()) p.add_(0.3 * torch::randn_like(p));
    }
    model->eval();
    const int64_t d = context.data.dim(), count = int64_t(std::pow(double(c.levels), double(d)));
    auto index = torch::arange(count, torch::kLong).unsqueeze(1);
    auto place = torch::pow(c.levels, torch::arange(d, torch::kLong)).unsqueeze(0);
    auto digits = torch::div(index, place, "floor").remainder(c.levels);  // image `index` in base L
    auto images = (digits.to(torch::kFloat64) * 2.0 / double(c.levels - 1) - 1.0).view({count, c.shape[0], 2, 2});
    torch::NoGradGuard guard;
    auto log_prob = genfw::as<genfw::DensityModel>(*model)->log_prob(images);
    const double mass =
        torch::exp(log_prob - genfw::discrete_log_density_offset(context.data)).sum().item<double>();
    EXPECT_NEAR(mass, 1.0, 1e-9) << "channels " << c.shape[0];
  }
}

// Ancestral sampling draws images with the probabilities log_prob gives: 10 000 samples of
// grey 2×2 images at 4 levels (256 images) through the prior sampler, total variation to
// exp(log P) within 1.5× its expectation under exact sampling (~0.013). A sampler reading
// the wrong pixel's parameters, or conditioning on unfinished pixels, is far off.
TEST(PixelCnn, SamplesFollowTheModelsProbabilities) {
  torch::manual_seed(0);
  auto context = discrete({1, 2, 2}, 4);
  auto model = make_pixelcnn(context, tiny(2));
  model->to(torch::kFloat64);
  {
    torch::NoGradGuard guard;
    for (auto& p : model->parameters()) p.add_(0.3 * torch::randn_like(p));
  }
  model->eval();
  torch::NoGradGuard guard;
  auto place = torch::pow(4, torch::arange(4, torch::kLong)).unsqueeze(0);
  auto digits = torch::div(torch::arange(256, torch::kLong).unsqueeze(1), place, "floor").remainder(4);
  auto images = (digits.to(torch::kFloat64) * 2.0 / 3.0 - 1.0).view({256, 1, 2, 2});
  auto p = torch::exp(genfw::as<genfw::DensityModel>(*model)->log_prob(images) -
                      genfw::discrete_log_density_offset(context.data));
  const int64_t n = 10000;
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior");
  auto sample_context = genfw::SampleContext::for_model(*model, n, context.data);
  auto x = genfw::draw(*sampler, sample_context);
  auto index = (torch::round((x.view({n, 4}) + 1.0) * 1.5).to(torch::kLong) * place).sum(1);
  auto frequency = torch::bincount(index, {}, 256).to(torch::kFloat64) / double(n);
  const double tv = 0.5 * (frequency - p).abs().sum().item<double>();
  const double expected = 0.5 * torch::sqrt(2.0 * p * (1.0 - p) / (M_PI * double(n))).sum().item<double>();
  std::cout << "total variation of " << n << " sampled images: " << tv << " (sampling alone: " << expected << ")\n";
  EXPECT_LT(tv, 1.5 * expected);
}

// Sampling through the prior sampler: one network pass and one reported step per pixel
// (NFE = H·W), samples on the 8-bit grid, a stop request (an exception from on_step, as the
// pipeline's) ends sampling at the pixel where it is raised, and each sample's noise is its own.
TEST(PixelCnn, SamplesPixelByPixel) {
  torch::manual_seed(0);
  auto context = discrete({3, 4, 4});
  auto model = make_pixelcnn(context, tiny(2));
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior");
  auto sample_context = genfw::SampleContext::for_model(*model, 5, context.data);
  std::vector<int64_t> steps;
  sample_context.on_step = [&](const genfw::StepRecord& record) {
    EXPECT_EQ(record.total, 16);
    steps.push_back(record.index);
  };
  auto x = genfw::draw(*sampler, sample_context);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{5, 3, 4, 4}));
  EXPECT_EQ(sample_context.nfe, 16);
  ASSERT_EQ(steps.size(), 16u);
  for (int64_t t = 0; t < 16; ++t) EXPECT_EQ(steps[size_t(t)], t);
  auto levels = (x + 1) * 127.5;
  EXPECT_LT((levels - levels.round()).abs().max().item<double>(), 1e-4);
  EXPECT_GE(x.min().item<double>(), -1.0);
  EXPECT_LE(x.max().item<double>(), 1.0);
  EXPECT_GT((x[0] - x[1]).abs().max().item<double>(), 0.0);

  auto stopped = genfw::SampleContext::for_model(*model, 2, context.data);
  int64_t seen = 0;
  stopped.on_step = [&](const genfw::StepRecord&) {
    if (++seen == 6) throw genfw::Error("stop requested");
  };
  EXPECT_THROW(genfw::draw(*sampler, stopped), genfw::Error);
  EXPECT_EQ(seen, 6);
  EXPECT_EQ(stopped.nfe, 6);

  EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 8, context.data, 5, "prior pixelcnn"),
            genfw::testing::kBatchSizeTolerance);
}

TEST(PixelCnn, RejectsContinuousDataAndIndivisibleSizes) {
  EXPECT_THROW(make_pixelcnn(genfw::testing::context_for({1, 4, 4}), tiny(1)), genfw::Error);
  EXPECT_THROW(make_pixelcnn(discrete({1, 6, 6}), tiny(3)), genfw::Error);
}

}  // namespace
