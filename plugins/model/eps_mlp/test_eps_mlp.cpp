#include <gtest/gtest.h>

#include <genfw/testing.hpp>

using genfw::Kind;

TEST(EpsMlp, ShapeScheduleAndPredictionTypeFromOptions) {
  torch::manual_seed(0);
  auto model = genfw::testing::make<genfw::Model>(
      Kind::model, "eps_mlp",
      {{"num_train_timesteps", int64_t(50)}, {"beta_schedule", std::string("squaredcos_cap_v2")},
       {"prediction_type", std::string("v_prediction")}},
      genfw::testing::context_for({3}));
  auto* net = genfw::as<genfw::NoisePredictor>(*model);
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->schedule().num_steps(), 50);
  EXPECT_EQ(net->prediction_type(), genfw::PredictionType::v_prediction);
  EXPECT_EQ(net->num_classes(), 0);
  auto expected = genfw::DiffusionSchedule::from_betas(
      genfw::beta_schedule("squaredcos_cap_v2", 50, 1e-4, 0.02));
  EXPECT_TRUE(torch::allclose(net->schedule().alphas_cumprod, expected.alphas_cumprod));
  auto out = net->predict(torch::randn({5, 3}), torch::randint(0, 50, {5}, torch::kLong), {});
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 3}));
}

TEST(EpsMlp, ConditionalModelTreatsMissingLabelsAsNullClass) {
  torch::manual_seed(0);
  auto model = genfw::testing::make<genfw::Model>(Kind::model, "eps_mlp",
                                                  {{"num_classes", int64_t(4)}},
                                                  genfw::testing::context_for({2}));
  auto* net = genfw::as<genfw::NoisePredictor>(*model);
  EXPECT_EQ(net->num_classes(), 4);
  auto x = torch::randn({6, 2});
  auto t = torch::randint(0, 1000, {6}, torch::kLong);
  auto none = net->predict(x, t, {});
  auto null = net->predict(x, t, torch::full({6}, 4, torch::kLong));
  auto cls0 = net->predict(x, t, torch::zeros({6}, torch::kLong));
  EXPECT_TRUE(torch::equal(none, null));
  EXPECT_FALSE(torch::allclose(none, cls0));
}

TEST(EpsMlp, RejectsBadScheduleOptions) {
  EXPECT_THROW(genfw::testing::make<genfw::Model>(Kind::model, "eps_mlp",
                                                  {{"beta_start", 0.1}, {"beta_end", 0.01}},
                                                  genfw::testing::context_for({2})),
               genfw::Error);
  EXPECT_THROW(genfw::testing::make<genfw::Model>(Kind::model, "eps_mlp",
                                                  {{"prediction_type", std::string("score")}},
                                                  genfw::testing::context_for({2})),
               genfw::Error);
}
