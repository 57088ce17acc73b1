// prior sampler: one batched network call per family (D sequential passes for MAF), samples of the data shape.
#include <gtest/gtest.h>

#include "genfw/testing.hpp"

namespace {

using genfw::OptionValue;

torch::Tensor draw(genfw::Sampler& sampler, genfw::Model& model, const genfw::BuildContext& build, int64_t n,
                   int64_t* nfe = nullptr, int* steps = nullptr) {
  auto context = genfw::SampleContext::for_model(model, n, build.data);
  context.on_step = [&](const genfw::StepRecord& record) {
    if (steps) ++*steps;
    EXPECT_EQ(record.total, 1);
  };
  auto x = genfw::draw(sampler, context);
  if (nfe) *nfe = context.nfe;
  return x;
}

TEST(Prior, ShapeAndNfePerFamily) {
  torch::manual_seed(0);
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior");
  struct Case {
    std::string model;
    std::vector<int64_t> shape;
    std::map<std::string, OptionValue> options;
    int64_t nfe = 1;  // whole-network passes one batch costs
  };
  std::vector<Case> cases{
      {"vae", {1, 28, 28}, {{"channels", int64_t(8)}}},
      {"vae", {3}, {}},
      {"realnvp", {1, 8, 8}, {{"num_blocks", int64_t(1)}, {"hidden", int64_t(8)}}},
      {"realnvp", {2}, {}},
      {"gan", {3, 32, 32}, {{"ngf", int64_t(8)}, {"ndf", int64_t(8)}}},
      {"gan", {1, 28, 28}, {{"ngf", int64_t(8)}, {"ndf", int64_t(8)}}},
      {"gan", {2}, {}},
      {"glow", {1, 8, 8}, {{"levels", int64_t(2)}, {"steps_per_level", int64_t(1)}, {"hidden", int64_t(8)}}},
      {"maf", {5}, {{"num_layers", int64_t(2)}, {"hidden", int64_t(16)}}, 5},  // inverted variable by variable
  };
  for (const auto& c : cases) {
    auto build = genfw::testing::context_for(c.shape);
    auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, c.model, c.options, build);
    model->eval();
    int64_t nfe = -1;
    int steps = 0;
    auto x = draw(*sampler, *model, build, 7, &nfe, &steps);
    std::vector<int64_t> expected{7};
    expected.insert(expected.end(), c.shape.begin(), c.shape.end());
    EXPECT_EQ(x.sizes(), expected) << c.model;
    EXPECT_EQ(nfe, c.nfe) << c.model;
    EXPECT_EQ(steps, 1) << c.model;
    EXPECT_TRUE(torch::isfinite(x).all().item<bool>()) << c.model;
    // Distinct z → distinct samples.
    EXPECT_GT((x[0] - x[1]).abs().max().item<double>(), 0.0) << c.model;
  }
}

// VAE: the decoder mean is a deterministic function of z (same seed → same samples);
// mean = false with a Bernoulli decoder returns only the two ends of the range.
// Flow: temperature 0 maps every sample to the image of z = 0.
TEST(Prior, OptionsMeanAndTemperature) {
  torch::manual_seed(0);
  auto build = genfw::testing::context_for({4}, 0.0, 1.0);
  auto vae = genfw::testing::make<genfw::Model>(genfw::Kind::model, "vae", {{"likelihood", std::string("bernoulli")}},
                                                build);
  auto mean_sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior");
  torch::manual_seed(5);
  auto a = draw(*mean_sampler, *vae, build, 10);
  torch::manual_seed(5);
  auto b = draw(*mean_sampler, *vae, build, 10);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_GT(((a > 0) & (a < 1)).sum().item<int64_t>(), 0);
  auto random_sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior", {{"mean", false}});
  auto c = draw(*random_sampler, *vae, build, 50);
  EXPECT_TRUE(((c == 0) | (c == 1)).all().item<bool>());

  auto flow_build = genfw::testing::context_for({2});
  auto flow = genfw::testing::make<genfw::Model>(genfw::Kind::model, "realnvp", {}, flow_build);
  flow->eval();
  auto cold = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior", {{"temperature", 0.0}});
  auto x = draw(*cold, *flow, flow_build, 5);
  EXPECT_EQ((x - x[0]).abs().max().item<double>(), 0.0);
}

}  // namespace

// z comes from each sample's own stream (SampleContext::noise), so batch sizes 1, 7 and
// 64 give the same samples up to float32 kernel rounding (printed) for every family.
TEST(Prior, SamplesDoNotDependOnTheBatchSize) {
  torch::manual_seed(0);
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "prior");
  auto build = genfw::testing::context_for({2});
  for (const std::string family : {"vae", "realnvp", "gan"}) {
    auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, family, {}, build);
    model->eval();
    EXPECT_LT(genfw::testing::batch_size_spread(*sampler, *model, 64, build.data, 5, "prior " + family),
              genfw::testing::kBatchSizeTolerance);
  }
}
