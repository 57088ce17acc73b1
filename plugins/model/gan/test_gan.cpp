// GAN model through the plugin boundary: DCGAN shapes for 28×28 and 32×32, MLPs
// for vectors, two disjoint parameter groups, outputs in the data range.
#include <gtest/gtest.h>

#include <set>

#include "genfw/testing.hpp"

namespace {

using genfw::OptionValue;

TEST(Gan, ShapesRangesAndGroups) {
  torch::manual_seed(0);
  struct Case {
    std::vector<int64_t> shape;
    double low, high;
    int64_t latent;
  };
  for (const Case& c : {Case{{1, 28, 28}, 0.0, 1.0, 64}, Case{{3, 32, 32}, -1.0, 1.0, 64}, Case{{2}, -1.0, 1.0, 2}}) {
    auto context = genfw::testing::context_for(c.shape, c.low, c.high);
    auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, "gan",
                                                    {{"ngf", int64_t(8)}, {"ndf", int64_t(8)}}, context);
    auto* g = genfw::as<genfw::GeneratorModel>(*model);
    auto* d = genfw::as<genfw::DiscriminatorModel>(*model);
    ASSERT_NE(g, nullptr);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(g->latent_dim(), c.latent);
    auto x = g->generate(torch::randn({5, g->latent_dim()}));
    std::vector<int64_t> full{5};
    full.insert(full.end(), c.shape.begin(), c.shape.end());
    EXPECT_EQ(x.sizes(), full);
    if (c.shape.size() == 3) {
      EXPECT_GE(x.min().item<double>(), c.low);
      EXPECT_LE(x.max().item<double>(), c.high);
    }
    EXPECT_EQ(d->discriminate(x).sizes(), (std::vector<int64_t>{5}));

    auto groups = model->parameter_groups();
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(groups[0].name, "generator");
    EXPECT_EQ(groups[1].name, "discriminator");
    std::set<const void*> g_params, d_params;
    for (auto& p : groups[0].parameters) g_params.insert(p.data_ptr());
    for (auto& p : groups[1].parameters) d_params.insert(p.data_ptr());
    for (auto* p : g_params) EXPECT_EQ(d_params.count(p), 0u);
    EXPECT_EQ(g_params.size() + d_params.size(), model->parameters().size());
  }
}

// The discriminator's gradient reaches the generator's parameters only through G(z).
TEST(Gan, DiscriminatorGradientFlowsIntoGenerator) {
  torch::manual_seed(0);
  auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, "gan", {{"ngf", int64_t(8)}, {"ndf", int64_t(8)}},
                                                  genfw::testing::context_for({1, 28, 28}));
  auto* g = genfw::as<genfw::GeneratorModel>(*model);
  auto* d = genfw::as<genfw::DiscriminatorModel>(*model);
  d->discriminate(g->generate(torch::randn({4, 64}))).sum().backward();
  for (auto& group : model->parameter_groups()) {
    double norm = 0;
    for (auto& p : group.parameters) norm += p.grad().defined() ? p.grad().abs().sum().item<double>() : 0.0;
    EXPECT_GT(norm, 0.0) << group.name;
  }
}

TEST(Gan, RejectsUnsupportedImageSize) {
  torch::manual_seed(0);
  EXPECT_THROW(genfw::testing::make<genfw::Model>(genfw::Kind::model, "gan", {}, genfw::testing::context_for({1, 30, 30})),
               genfw::Error);
}

}  // namespace
