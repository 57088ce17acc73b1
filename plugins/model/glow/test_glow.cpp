// Glow through the plugin boundary, and the SDK layers it is built from: the 1×1
// convolution's log-determinant and the whole flow's against autograd Jacobians,
// invertibility, actnorm's data-dependent initialisation, sampling temperature.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/testing.hpp"

namespace {

using genfw::OptionValue;

std::map<std::string, OptionValue> small(int64_t levels, const std::string& permutation = "conv1x1",
                                         const std::string& coupling = "affine") {
  return {{"levels", levels}, {"steps_per_level", int64_t(2)}, {"hidden", int64_t(8)},
          {"permutation", permutation}, {"coupling", coupling}};
}

std::map<std::string, OptionValue> logit(std::map<std::string, OptionValue> options) {
  options["logit_alpha"] = 0.05;
  return options;
}

std::unique_ptr<genfw::Model> make_glow(const genfw::BuildContext& context,
                                        std::map<std::string, OptionValue> options) {
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "glow", options, context);
}


genfw::InvertibleFlow& flow_of(genfw::Model& model) { return *genfw::as<genfw::InvertibleFlow>(model); }

torch::Tensor images(std::vector<int64_t> shape, int64_t n, torch::ScalarType dtype = torch::kFloat64) {
  shape.insert(shape.begin(), n);
  return torch::rand(shape, dtype) * 1.9 - 0.95;
}

// The LU-parametrised 1×1 convolution: log|det| = H·W·Σ log|s| equals the log|det|
// of the whole map's Jacobian (float64; the two agree to rounding, 1e-10), its weight
// is W = P·L·U with det W = ±Π s, and inverse∘forward = id.
TEST(Glow, InvertibleConv1x1LogDetMatchesAutograd) {
  torch::manual_seed(0);
  genfw::InvertibleConv1x1 conv(6);
  conv.to(torch::kFloat64);
  {
    torch::NoGradGuard guard;
    for (auto& p : conv.parameters()) p.add_(0.3 * torch::randn_like(p));
  }
  auto x = torch::randn({3, 6, 3, 2}, torch::kFloat64);
  auto logdet = torch::zeros({3}, torch::kFloat64);
  auto y = conv.forward(x, logdet);
  auto reference = genfw::testing::autograd_log_det(
      [&](const torch::Tensor& xi) {
        auto unused = torch::zeros({1}, torch::kFloat64);
        return conv.forward(xi, unused);
      },
      x);
  EXPECT_LT((logdet - reference).abs().max().item<double>(), 1e-10) << logdet << reference;
  const double per_pixel = std::get<1>(torch::slogdet(conv.weight())).item<double>();
  EXPECT_NEAR(logdet[0].item<double>(), 6 * per_pixel, 1e-10);
  EXPECT_LT((conv.inverse(y) - x).abs().max().item<double>(), 1e-12);
}

// Actnorm's first training-mode batch sets zero mean and unit variance per channel
// (Glow §3.1), whatever the input's per-channel mean and scale; later batches leave it fixed.
TEST(Glow, ActNormDataDependentInit) {
  torch::manual_seed(0);
  genfw::ActNorm norm(3, true);
  norm.train();
  auto offsets = torch::tensor({5.0, -2.0, 0.5}).view({1, 3, 1, 1});
  auto scales = torch::tensor({3.0, 0.1, 1.0}).view({1, 3, 1, 1});
  auto x = torch::randn({64, 3, 5, 5}) * scales + offsets;
  auto logdet = torch::zeros({64});
  auto y = norm.forward(x, logdet);
  auto mean = y.mean({0, 2, 3}), var = y.var({0, 2, 3}, false);
  EXPECT_LT(mean.abs().max().item<double>(), 1e-5) << mean;
  EXPECT_LT((var - 1).abs().max().item<double>(), 1e-4) << var;
  // log|det| = H·W·Σ log scale = −25·Σ log std.
  EXPECT_NEAR(logdet[0].item<double>(), -25.0 * torch::log(x.std({0, 2, 3}, false)).sum().item<double>(), 1e-3);
  auto again = norm.forward(x * 2, logdet);
  EXPECT_GT((again.mean({0, 2, 3}) - mean).abs().max().item<double>(), 0.5);  // not re-initialised

  genfw::ActNorm vector_norm(2, false);
  vector_norm.train();
  auto v = torch::randn({256, 2}) * torch::tensor({4.0, 0.5}) + torch::tensor({1.0, -3.0});
  auto w = vector_norm.forward(v, logdet);
  EXPECT_LT(w.mean(0).abs().max().item<double>(), 1e-5);
  EXPECT_LT((w.var(0, false) - 1).abs().max().item<double>(), 1e-4);
}

// The accumulated log-det equals log|det ∂z/∂x| of the whole flow from autograd, for
// grey and RGB images, 1 and 2 levels (split priors included), 1×1 conv or reversal,
// affine or additive couplings, linear or logit pixel space (float64, 1e-8: a missing term — a split prior's
// scale, the data range — is off by ≥ 0.1); log_prob = log N(z; 0, I) + log-det.
TEST(Glow, LogDetMatchesAutogradJacobian) {
  torch::manual_seed(0);
  struct Case {
    std::vector<int64_t> shape;
    std::map<std::string, OptionValue> options;
  };
  std::vector<Case> cases{{{1, 4, 4}, small(2)},
                          {{3, 4, 4}, small(2)},
                          {{1, 4, 4}, small(1, "reverse", "additive")},
                          {{2, 4, 4}, small(2, "reverse", "affine")},
                          {{1, 4, 4}, logit(small(1))}};
  for (const auto& c : cases) {
    auto context = genfw::testing::context_for(c.shape);
    auto model = make_glow(context, c.options);
    model->to(torch::kFloat64);
    genfw::testing::perturb_density_model(*model, images(c.shape, 32), 0.1);
    auto& flow = flow_of(*model);
    auto x = images(c.shape, 3);
    auto [z, logdet] = flow.to_latent(x);
    EXPECT_EQ(z.sizes(), (std::vector<int64_t>{3, context.data.dim()}));
    auto reference =
        genfw::testing::autograd_log_det([&](const torch::Tensor& xi) { return flow.to_latent(xi).first; }, x);
    EXPECT_LT((logdet - reference).abs().max().item<double>(), 1e-8) << logdet << reference;
    auto expected = -0.5 * (z.pow(2) + std::log(2 * M_PI)).sum(1) + reference;
    EXPECT_LT((genfw::as<genfw::DensityModel>(*model)->log_prob(x) - expected).abs().max().item<double>(), 1e-8);
  }
}

// inverse∘forward = id to the brief's 1e-5 in float32 on a 28×28 Fashion-sized flow
// (2 levels, 4 steps each), and forward∘inverse on random latents.
TEST(Glow, InverseOfForwardIsIdentity) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 28, 28});
  auto model = make_glow(context, {{"levels", int64_t(2)}, {"steps_per_level", int64_t(4)}, {"hidden", int64_t(16)}});
  genfw::testing::perturb_density_model(*model, images({1, 28, 28}, 16, torch::kFloat32), 0.02);
  auto& flow = flow_of(*model);
  torch::NoGradGuard guard;
  auto x = images({1, 28, 28}, 4, torch::kFloat32);
  auto z = flow.to_latent(x).first;
  double err = (flow.from_latent(z) - x).abs().max().item<double>();
  EXPECT_LT(err, 1e-5);
  std::cout << "float32 round trip max |x - f^-1(f(x))| = " << err << "\n";
  auto z2 = torch::randn_like(z) * 0.7;
  EXPECT_LT((flow.to_latent(flow.from_latent(z2)).first - z2).abs().max().item<double>(), 1e-4);
}

// Sampling: the prior sampler's per-sample noise through sample_from_latent gives
// pixel-grid images in range; temperature 0 maps every sample to the image of z = 0;
// samples do not depend on the batch size.
TEST(Glow, SamplingTemperatureAndBatchIndependence) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 8, 8});
  context.data.discrete_levels = true;
  auto model = make_glow(context, small(2));
  genfw::testing::perturb_density_model(*model, images({1, 8, 8}, 16, torch::kFloat32), 0.02);
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior");
  auto x = genfw::testing::run_sampler(*sampler, *model, 6, {1, 8, 8});
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{6, 1, 8, 8}));
  EXPECT_GE(x.min().item<double>(), -1.0);
  EXPECT_LE(x.max().item<double>(), 1.0);
  auto levels = (x + 1) * 127.5;
  EXPECT_LT((levels - levels.round()).abs().max().item<double>(), 1e-4);
  EXPECT_GT((x[0] - x[1]).abs().max().item<double>(), 0.0);
  auto cold = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior", {{"temperature", 0.0}});
  auto c = genfw::testing::run_sampler(*cold, *model, 3, {1, 8, 8});
  EXPECT_EQ((c - c[0]).abs().max().item<double>(), 0.0);
  EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 16, context.data, 3, "prior glow"),
            genfw::testing::kBatchSizeTolerance);
}

// Dequantised discrete data through an untrained additive Glow, which is an orthogonal map
// (zero-initialised couplings and split priors, identity actnorm, rotations): for 8-bit
// uniform noise u ~ U(0, 1) on [−½, ½], −log p = ½ log 2π + E[(u − ½)²]/2 = ½ log 2π + 1/24
// nats per dim, and the 1/256 bins add 8 bits. 0.05 bits covers the Monte Carlo spread of
// 64 × 64 pixels; a missing bin offset or range Jacobian is off by ≥ 1 bit.
TEST(Glow, BitsPerDimOfUntrainedFlow) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 8, 8});
  context.data.discrete_levels = true;
  auto model = make_glow(context, small(2, "conv1x1", "additive"));
  model->eval();
  torch::NoGradGuard guard;
  auto x = torch::randint(0, 256, {64, 1, 8, 8}) / 127.5 - 1.0;
  auto log_p = genfw::as<genfw::DensityModel>(*model)->log_prob(x);
  double bpd = genfw::bits_per_dim(log_p, context.data).mean().item<double>();
  EXPECT_NEAR(bpd, 8.0 + (0.5 * std::log(2 * M_PI) + 1.0 / 24.0) / std::log(2.0), 0.05);
}

TEST(Glow, RejectsIndivisibleImageSizeAndVectors) {
  EXPECT_THROW(make_glow(genfw::testing::context_for({1, 28, 28}), small(3)), genfw::Error);
  EXPECT_THROW(make_glow(genfw::testing::context_for({2}), small(1)), genfw::Error);
}

}  // namespace
