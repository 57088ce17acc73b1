// RealNVP through the plugin boundary: exact invertibility, log-det against an
// autograd Jacobian, normalisation of the density, the data-space convention.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/testing.hpp"

namespace {

using genfw::OptionValue;

std::unique_ptr<genfw::Model> make_flow(const genfw::BuildContext& context,
                                        std::map<std::string, OptionValue> overrides = {}) {
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "realnvp", overrides, context);
}

/// Actnorm's init / batch norm's running statistics from three passes, then perturbed parameters.
void randomise(genfw::Model& model, const torch::Tensor& x, double scale) {
  genfw::testing::perturb_density_model(model, x, scale, 3);
}

genfw::InvertibleFlow& flow_of(genfw::Model& model) {
  auto* flow = dynamic_cast<genfw::InvertibleFlow*>(&model);
  if (flow == nullptr) throw std::runtime_error("realnvp does not expose InvertibleFlow");
  return *flow;
}

struct Variant {
  std::vector<int64_t> shape;
  std::map<std::string, OptionValue> options;
};

std::vector<Variant> variants() {
  using S = std::string;
  return {
      {{1, 4, 4}, {{"num_scales", int64_t(2)}, {"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}}},
      {{1, 4, 4},
       {{"num_scales", int64_t(2)}, {"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}, {"norm", S("batch")}}},
      {{1, 4, 4},
       {{"num_scales", int64_t(1)}, {"num_blocks", int64_t(2)}, {"hidden", int64_t(8)}, {"coupling", S("additive")},
        {"norm", S("none")}}},
      {{3, 4, 4}, {{"num_scales", int64_t(3)}, {"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}}},
      {{2}, {{"num_couplings", int64_t(4)}, {"hidden", int64_t(16)}}},
      {{2}, {{"num_couplings", int64_t(4)}, {"hidden", int64_t(16)}, {"norm", S("batch")}}},
      {{5}, {{"num_couplings", int64_t(3)}, {"hidden", int64_t(16)}, {"coupling", S("additive")}}},
  };
}

torch::Tensor inputs(const std::vector<int64_t>& shape, int64_t n, bool image) {
  std::vector<int64_t> full{n};
  full.insert(full.end(), shape.begin(), shape.end());
  // Images: inside (low, high) = (−1, 1); vectors: anywhere.
  return image ? torch::rand(full, torch::kFloat64) * 1.9 - 0.95 : torch::randn(full, torch::kFloat64) * 2.0;
}

// inverse(forward(x)) = x. Float64: the tolerance 1e-9 leaves room for the ~30
// layers' rounding (observed ~1e-14) while any wrong inverse shows as O(1).
TEST(RealNvp, InverseOfForwardIsIdentity) {
  torch::manual_seed(0);
  for (const auto& v : variants()) {
    auto context = genfw::testing::context_for(v.shape);
    auto model = make_flow(context, v.options);
    model->to(torch::kFloat64);
    auto x = inputs(v.shape, 16, context.data.is_image());
    randomise(*model, x, 0.05);
    auto& flow = flow_of(*model);
    auto [z, logdet] = flow.to_latent(x);
    EXPECT_EQ(z.sizes(), (std::vector<int64_t>{16, context.data.dim()}));
    EXPECT_EQ(logdet.sizes(), (std::vector<int64_t>{16}));
    double err = (flow.from_latent(z) - x).abs().max().item<double>();
    EXPECT_LT(err, 1e-9) << "shape rank " << v.shape.size();
    // And the other way round, z → x → z.
    auto z2 = torch::randn_like(z) * 0.5;
    EXPECT_LT((flow.to_latent(flow.from_latent(z2)).first - z2).abs().max().item<double>(), 1e-9);
  }
}

// Float32 round trip at the brief's 1e-5 on a 28×28 image flow with 3 scales.
TEST(RealNvp, InverseFloat32Image28) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 28, 28});
  auto model = make_flow(context, {{"num_scales", int64_t(3)}, {"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}});
  auto x = torch::rand({4, 1, 28, 28}) * 1.9 - 0.95;
  randomise(*model, x, 0.02);
  auto& flow = flow_of(*model);
  EXPECT_LT((flow.from_latent(flow.to_latent(x).first) - x).abs().max().item<double>(), 1e-5);
}

// The log-det the flow accumulates equals log|det J| of z(x) from autograd (float64,
// tolerance 1e-8: both are exact up to rounding; a missing term such as the logit's
// or the data-range Jacobian would be off by ≥ 0.1).
TEST(RealNvp, LogDetMatchesAutogradJacobian) {
  torch::manual_seed(0);
  for (const auto& v : variants()) {
    auto context = genfw::testing::context_for(v.shape);
    auto model = make_flow(context, v.options);
    model->to(torch::kFloat64);
    auto x = inputs(v.shape, 3, context.data.is_image());
    randomise(*model, inputs(v.shape, 32, context.data.is_image()), 0.05);
    auto& flow = flow_of(*model);
    auto logdet = flow.to_latent(x).second;
    auto reference =
        genfw::testing::autograd_log_det([&](const torch::Tensor& xi) { return flow.to_latent(xi).first; }, x);
    EXPECT_LT((logdet - reference).abs().max().item<double>(), 1e-8)
        << "flow " << logdet << " autograd " << reference;
    // log_prob = log N(z; 0, I) + log-det (no dequantisation for continuous data).
    auto z = flow.to_latent(x).first;
    auto expected = -0.5 * (z.pow(2) + std::log(2 * M_PI)).sum(1) + reference;
    EXPECT_LT((genfw::as<genfw::DensityModel>(*model)->log_prob(x) - expected).abs().max().item<double>(), 1e-8);
  }
}

// A randomised 2-D flow's density integrates to 1 (midpoint rule on [−10, 10]², 500²
// cells; tolerance 2e-3 covers the quadrature and the mass outside the box).
TEST(RealNvp, DensityIntegratesToOne) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({2});
  auto model = make_flow(context, {{"num_couplings", int64_t(4)}, {"hidden", int64_t(16)}});
  model->to(torch::kFloat64);
  randomise(*model, torch::randn({256, 2}, torch::kFloat64), 0.2);
  const int64_t n = 500;
  const double lo = -10, hi = 10, h = (hi - lo) / n;
  auto centres = torch::linspace(lo + h / 2, hi - h / 2, n, torch::kFloat64);
  auto grid = torch::stack(torch::meshgrid({centres, centres}, "ij"), -1).view({-1, 2});
  torch::NoGradGuard guard;
  double mass = torch::exp(genfw::as<genfw::DensityModel>(*model)->log_prob(grid)).sum().item<double>() * h * h;
  EXPECT_NEAR(mass, 1.0, 2e-3);
}

// The data range is a linear Jacobian: the same flow on [−1, 1] and on [0, 1] data
// (same parameters, same underlying image) differs by exactly D·log 2 in log_prob,
// and the bits/dim of discrete data is the same in both conventions.
TEST(RealNvp, DataRangeJacobianAndBitsPerDim) {
  torch::manual_seed(0);
  auto wide = genfw::testing::context_for({1, 4, 4}, -1.0, 1.0);
  auto unit = genfw::testing::context_for({1, 4, 4}, 0.0, 1.0);
  wide.data.discrete_levels = unit.data.discrete_levels = true;
  std::map<std::string, OptionValue> options{{"num_scales", int64_t(2)}, {"num_blocks", int64_t(1)},
                                             {"hidden", int64_t(8)}, {"dequantize", false}};
  torch::manual_seed(1);
  auto a = make_flow(wide, options);
  torch::manual_seed(1);
  auto b = make_flow(unit, options);
  a->to(torch::kFloat64);
  b->to(torch::kFloat64);
  {
    torch::NoGradGuard guard;
    auto pa = a->parameters(), pb = b->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      pa[i].add_(0.05 * torch::randn_like(pa[i]));
      pb[i].copy_(pa[i]);
    }
  }
  a->eval();
  b->eval();
  auto u = torch::randint(0, 256, {4, 1, 4, 4}, torch::kFloat64) / 255.0;
  auto la = genfw::as<genfw::DensityModel>(*a)->log_prob(2 * u - 1);
  auto lb = genfw::as<genfw::DensityModel>(*b)->log_prob(u);
  EXPECT_LT((lb - la - 16 * std::log(2.0)).abs().max().item<double>(), 1e-9);
  auto ba = genfw::bits_per_dim(la, wide.data), bb = genfw::bits_per_dim(lb, unit.data);
  EXPECT_LT((ba - bb).abs().max().item<double>(), 1e-9);
}

// Dequantisation makes log_prob of discrete data random, and the dequantised
// density of an untrained (identity-in-logit-space) flow gives a bits/dim near the
// analytic value of that density: 8-bit uniform-ish images land in (6, 12) bits/dim.
TEST(RealNvp, DequantisedLogProbOnDiscreteData) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 8, 8});
  context.data.discrete_levels = true;
  auto model = make_flow(context, {{"num_scales", int64_t(2)}, {"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}});
  model->eval();
  auto x = torch::randint(0, 256, {8, 1, 8, 8}) / 127.5 - 1.0;
  auto* density = genfw::as<genfw::DensityModel>(*model);
  auto l1 = density->log_prob(x), l2 = density->log_prob(x);
  EXPECT_GT((l1 - l2).abs().max().item<double>(), 1e-4);
  double bpd = genfw::bits_per_dim(l1, context.data).mean().item<double>();
  EXPECT_GT(bpd, 6.0);
  EXPECT_LT(bpd, 12.0);
}

// Samples: shape, range and pixel grid for discrete images; temperature 0 gives
// the image of z = 0 for every sample.
TEST(RealNvp, SampleShapeRangeAndTemperature) {
  torch::manual_seed(0);
  auto context = genfw::testing::context_for({1, 8, 8});
  context.data.discrete_levels = true;
  auto model = make_flow(context, {{"num_scales", int64_t(2)}, {"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}});
  model->eval();
  torch::NoGradGuard guard;
  auto* density = genfw::as<genfw::DensityModel>(*model);
  auto x = density->sample(6, 1.0);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{6, 1, 8, 8}));
  EXPECT_GE(x.min().item<double>(), -1.0);
  EXPECT_LE(x.max().item<double>(), 1.0);
  auto levels = (x + 1) * 127.5;
  EXPECT_LT((levels - levels.round()).abs().max().item<double>(), 1e-4);
  auto cold = density->sample(3, 0.0);
  EXPECT_EQ((cold - cold[0]).abs().max().item<double>(), 0.0);

  auto vectors = make_flow(genfw::testing::context_for({3}));
  EXPECT_EQ(genfw::as<genfw::DensityModel>(*vectors)->sample(5, 1.0).sizes(), (std::vector<int64_t>{5, 3}));
}

TEST(RealNvp, RejectsIndivisibleImageSize) {
  torch::manual_seed(0);
  EXPECT_THROW(make_flow(genfw::testing::context_for({1, 28, 28}), {{"num_scales", int64_t(4)}}), genfw::Error);
}

}  // namespace
