#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/gaussian_mixture.hpp"
#include "genfw/testing.hpp"

namespace {

using genfw::Dataset;
using genfw::Kind;
using genfw::OptionValue;
using ::testing::HasSubstr;

std::unique_ptr<Dataset> make(const std::map<std::string, OptionValue>& overrides = {},
                              const std::string& split = "train") {
  genfw::BuildContext context;
  context.split = split;  // the framework chooses the split, not an option
  return genfw::testing::make<Dataset>(Kind::dataset, "toy2d", overrides, context);
}

genfw::Batch all_of(Dataset& ds) { return ds.get(torch::arange(ds.size(), torch::kInt64)); }

const std::vector<std::string> kDistributions{"gmm",        "eight_gaussians", "two_moons",
                                              "swiss_roll", "checkerboard",    "rings"};

TEST(Toy2d, SameSeedGivesIdenticalDataWhateverTheGlobalGenerator) {
  torch::manual_seed(0);
  for (const auto& d : kDistributions) {
    torch::manual_seed(1);
    auto a = all_of(*make({{"distribution", d}, {"size", int64_t(500)}, {"seed", int64_t(7)}}));
    torch::manual_seed(2);
    auto b = all_of(*make({{"distribution", d}, {"size", int64_t(500)}, {"seed", int64_t(7)}}));
    EXPECT_TRUE(torch::equal(a.x, b.x)) << d;
    if (a.y.defined()) {
      EXPECT_TRUE(torch::equal(a.y, b.y)) << d;
    }
  }
  // Building a dataset leaves torch's global generator where it was.
  torch::manual_seed(3);
  auto expected = torch::rand({4});
  torch::manual_seed(3);
  make();
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

TEST(Toy2d, SplitsAndSeedsDiffer) {
  torch::manual_seed(0);
  for (const auto& d : kDistributions) {
    auto train = make({{"distribution", d}, {"size", int64_t(200)}});
    auto test = make({{"distribution", d}, {"size", int64_t(200)}}, "test");
    auto other = make({{"distribution", d}, {"size", int64_t(200)}, {"seed", int64_t(5)}});
    EXPECT_FALSE(torch::equal(all_of(*train).x, all_of(*test).x)) << d;
    EXPECT_FALSE(torch::equal(all_of(*train).x, all_of(*other).x)) << d;
    // test split = seed + 1: identical to the train split of seed 1.
    auto seed1 = make({{"distribution", d}, {"size", int64_t(200)}, {"seed", int64_t(1)}});
    EXPECT_TRUE(torch::equal(all_of(*test).x, all_of(*seed1).x)) << d;
    // Same reported range in both splits.
    EXPECT_EQ(train->info().low, test->info().low) << d;
    EXPECT_EQ(train->info().high, test->info().high) << d;
  }
}

TEST(Toy2d, DefaultMixtureIsSongErmon) {
  torch::manual_seed(0);
  auto ds = make();
  auto info = ds->info();
  EXPECT_EQ(info.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(info.num_classes, 2);
  EXPECT_FALSE(info.discrete_levels);
  EXPECT_EQ(info.low, -11.0);  // 5 + 6σ
  EXPECT_EQ(info.high, 11.0);
  ASSERT_EQ(ds->size(), 10000);
  auto b = all_of(*ds);
  auto x = b.x.to(torch::kFloat64);
  // Weights: the count of component 0 is Binomial(10000, 0.2), std √(0.2·0.8/10⁴) = 0.004,
  // so ±0.02 is 5 standard deviations.
  double w0 = b.y.eq(0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(w0, 0.2, 0.02);
  EXPECT_NEAR(1.0 - w0, 0.8, 0.02);
  std::vector<double> mean_of{-5.0, 5.0};
  for (int64_t k = 0; k < 2; ++k) {
    auto xk = x.index({b.y.eq(k)});
    // ≥ 1800 points per component: the std of the mean is ≤ 1/√1800 = 0.024 (tolerance 0.1,
    // > 4σ) and of the sample std ≈ 1/√(2·1800) = 0.017 (tolerance 0.07, > 4σ).
    auto mean = xk.mean(0);
    auto std = xk.std(0);
    for (int64_t d = 0; d < 2; ++d) {
      EXPECT_NEAR(mean[d].item<double>(), mean_of[k], 0.1) << "component " << k;
      EXPECT_NEAR(std[d].item<double>(), 1.0, 0.07) << "component " << k;
    }
  }
  // The labels are the component that drew each point: with means 10√2 apart,
  // the nearest mean agrees for all but a vanishing fraction (P(miss) ≈ Φ(−7)).
  auto mixture = genfw::GaussianMixture::from_options({{-5, -5}, {5, 5}}, {0.2, 0.8}, {1.0});
  EXPECT_TRUE(torch::equal(mixture.nearest_component(x), b.y));
}

TEST(Toy2d, CustomMixtureOptions) {
  torch::manual_seed(0);
  auto ds = make({{"means", genfw::Matrix{{0, 0}, {3, 0}, {0, 3}}},
                  {"weights", std::vector<double>{1, 1, 2}},
                  {"stds", std::vector<double>{0.1, 0.2, 0.3}},
                  {"size", int64_t(4000)}});
  EXPECT_EQ(ds->info().num_classes, 3);
  EXPECT_EQ(ds->info().high, 5.0);  // ⌈3 + 6·0.3⌉ = ⌈4.8⌉
  auto b = all_of(*ds);
  auto x = b.x.to(torch::kFloat64);
  // Weights normalised to 1/4, 1/4, 1/2: binomial std ≤ 0.008 with 4000 points, tolerance 0.03.
  EXPECT_NEAR(b.y.eq(2).to(torch::kFloat64).mean().item<double>(), 0.5, 0.03);
  EXPECT_NEAR(b.y.eq(0).to(torch::kFloat64).mean().item<double>(), 0.25, 0.03);
  // Per-component std (≥ 800 points: relative std of the sample std ≤ 2.5%, tolerance 10%).
  std::vector<double> stds{0.1, 0.2, 0.3};
  for (int64_t k = 0; k < 3; ++k) {
    EXPECT_NEAR(x.index({b.y.eq(k)}).std(0).mean().item<double>(), stds[k], 0.1 * stds[k]);
  }
}

TEST(Toy2d, BadMixtureOptionsAreRejected) {
  torch::manual_seed(0);
  try {
    make({{"weights", std::vector<double>{1.0}}});
    ADD_FAILURE() << "one weight for two means must throw";
  } catch (const genfw::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("option 'weights' has 1 values but 'means' has 2 rows"));
  }
  try {
    make({{"stds", std::vector<double>{1.0, 2.0, 3.0}}});
    ADD_FAILURE() << "three stds for two means must throw";
  } catch (const genfw::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("option 'stds' needs 1 or 2 values"));
  }
  EXPECT_THROW(make({{"distribution", std::string("spiral")}}), genfw::Error);
}

TEST(Toy2d, EveryDistributionIsFiniteAndInsideItsRange) {
  torch::manual_seed(0);
  for (const auto& d : kDistributions) {
    auto ds = make({{"distribution", d}});
    auto info = ds->info();
    auto b = all_of(*ds);
    ASSERT_EQ(b.x.sizes(), (std::vector<int64_t>{10000, 2})) << d;
    EXPECT_EQ(b.x.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(b.x).all().item<bool>()) << d;
    EXPECT_EQ(info.low, -info.high) << d;
    EXPECT_GE(b.x.min().item<double>(), info.low) << d;
    EXPECT_LE(b.x.max().item<double>(), info.high) << d;
    // The range is not needlessly loose: the data reach past half of it.
    EXPECT_GT(b.x.abs().max().item<double>(), 0.5 * info.high) << d;
    if (info.num_classes > 0) {
      ASSERT_TRUE(b.y.defined()) << d;
      EXPECT_GE(b.y.min().item<int64_t>(), 0);
      EXPECT_EQ(b.y.max().item<int64_t>(), info.num_classes - 1) << d;
    } else {
      EXPECT_FALSE(b.y.defined()) << d;
    }
  }
}

TEST(Toy2d, ShapesMatchTheirDefinitions) {
  torch::manual_seed(0);
  // eight_gaussians: each point within 6·0.02 of mode 2·(cos 2πk/8, sin 2πk/8), k its label.
  {
    auto b = all_of(*make({{"distribution", std::string("eight_gaussians")}}));
    auto angle = b.y.to(torch::kFloat64) * (2 * M_PI / 8);
    auto mode = 2.0 * torch::stack({angle.cos(), angle.sin()}, 1);
    EXPECT_LT((b.x.to(torch::kFloat64) - mode).norm(2, 1).max().item<double>(), 6 * 0.02 * std::sqrt(2.0));
    EXPECT_GT(torch::bincount(b.y).min().item<int64_t>(), 1100);  // 1250 ± 33 expected per mode
  }
  // rings: |x| within 6·noise of 0.75·(label + 1).
  {
    auto b = all_of(*make({{"distribution", std::string("rings")}}));
    auto radius = b.x.to(torch::kFloat64).norm(2, 1);
    auto expected = 0.75 * (b.y.to(torch::kFloat64) + 1.0);
    EXPECT_LT((radius - expected).abs().max().item<double>(), 6 * 0.05 * std::sqrt(2.0));
  }
  // checkerboard: ⌊x1/2⌋ + ⌊x2/2⌋ is even for every point, and all 8 black squares are used.
  {
    auto b = all_of(*make({{"distribution", std::string("checkerboard")}}));
    auto cell = torch::floor(b.x.to(torch::kFloat64) / 2.0);
    EXPECT_TRUE(torch::remainder(cell.sum(1), 2.0).eq(0).all().item<bool>());
    auto id = (cell.select(1, 0) + 2) * 4 + (cell.select(1, 1) + 2);
    EXPECT_EQ(std::get<0>(torch::_unique(id)).numel(), 8);
  }
  // two_moons without noise: back in scikit-learn coordinates, u = (x + (1, 0.2)) / 2,
  // the outer moon has |u| = 1, u_y ≥ 0 and the inner one |u − (1, 1/2)| = 1, u_y ≤ 1/2.
  {
    auto b = all_of(*make({{"distribution", std::string("two_moons")}, {"noise", 0.0}}));
    auto u = (b.x.to(torch::kFloat64) + torch::tensor({1.0, 0.2}, torch::kFloat64)) / 2.0;
    auto outer = u.index({b.y.eq(0)});
    auto inner = u.index({b.y.eq(1)}) - torch::tensor({1.0, 0.5}, torch::kFloat64);
    EXPECT_LT((outer.norm(2, 1) - 1.0).abs().max().item<double>(), 1e-6);
    EXPECT_LT((inner.norm(2, 1) - 1.0).abs().max().item<double>(), 1e-6);
    EXPECT_GE(outer.select(1, 1).min().item<double>(), -1e-6);
    EXPECT_LE(inner.select(1, 1).max().item<double>(), 1e-6);
  }
  // swiss_roll without noise: radius r = t/5 with t ∈ [1.5π, 4.5π], and angle ≡ t (mod 2π).
  {
    auto x = all_of(*make({{"distribution", std::string("swiss_roll")}, {"noise", 0.0}})).x.to(torch::kFloat64);
    auto t = x.norm(2, 1) * 5.0;
    EXPECT_GE(t.min().item<double>(), 1.5 * M_PI - 1e-4);
    EXPECT_LE(t.max().item<double>(), 4.5 * M_PI + 1e-4);
    auto back = torch::stack({t.cos(), t.sin()}, 1) * (t / 5.0).unsqueeze(1);
    EXPECT_LT((back - x).abs().max().item<double>(), 1e-4);  // float32 storage of |x| ≤ 2.9
  }
}

TEST(Toy2d, GetReturnsTheRequestedRows) {
  torch::manual_seed(0);
  auto ds = make({{"size", int64_t(50)}});
  auto all = all_of(*ds);
  auto some = ds->get(torch::tensor({49, 0, 49}, torch::kInt64));
  EXPECT_TRUE(torch::equal(some.x[0], all.x[49]));
  EXPECT_TRUE(torch::equal(some.x[1], all.x[0]));
  EXPECT_TRUE(torch::equal(some.y, torch::stack({all.y[49], all.y[0], all.y[49]})));
  EXPECT_THROW(ds->get(torch::tensor({50}, torch::kInt64)), genfw::Error);
}

}  // namespace
