#include <gtest/gtest.h>

#include <genfw/gaussian_mixture.hpp>
#include <genfw/testing.hpp>

using genfw::Kind;

// Trained on x_t, the classifier is accurate where the noise is small and at chance
// where x_t is pure noise — the behaviour classifier guidance relies on.
TEST(NoisyClassifierObjective, LearnsLabelsOfNoisedData) {
  torch::manual_seed(0);
  auto mixture = genfw::GaussianMixture::from_options({{-2.0, -2.0}, {2.0, 2.0}}, {0.5, 0.5},
                                                      {1.0, 1.0});
  auto model = genfw::testing::make<genfw::Model>(
      Kind::model, "noisy_classifier", {{"num_train_timesteps", int64_t(100)}, {"beta_end", 0.2}},
      genfw::testing::context_for({2}, -1, 1, 2));
  auto objective = genfw::testing::make<genfw::Objective>(Kind::objective, "noisy_classifier");
  auto data = [&](int64_t n) {
    auto k = torch::randint(0, 2, {n}, torch::kLong);
    return genfw::Batch{(mixture.means.index_select(0, k) + torch::randn({n, 2}, torch::kFloat64))
                            .to(torch::kFloat32),
                        k};
  };
  auto loss = genfw::testing::fit(*model, *objective, [&] { return data(256); }, 600, 3e-3);
  auto* c = genfw::as<genfw::NoisyClassifier>(*model);
  auto test = data(4000);
  torch::NoGradGuard no_grad;
  auto acc = [&](int64_t t) {
    auto pred = c->classify(test.x, torch::full({4000}, t, torch::kLong)).argmax(1);
    return (pred == test.y).to(torch::kFloat64).mean().item<double>();
  };
  // t = 0 input is the clean data: Bayes accuracy Φ(2√2) = 0.9977; pure noise (t = 99,
  // √ᾱ ≈ 0.005) must not be classified better than chance + 3 sd (0.5 + 0.025).
  // Note: here x is the clean data evaluated as if at t — only t = 0 is meaningful.
  std::cout << "noisy classifier: final loss " << loss["model"] << ", accuracy on clean data at t=0 "
            << acc(0) << "\n";
  EXPECT_GT(acc(0), 0.97);
  EXPECT_LT(loss["model"], 0.6);  // chance is ln 2 = 0.693; the noisy-t average is between
  auto* loss_objective = dynamic_cast<genfw::LossObjective*>(objective.get());
  ASSERT_NE(loss_objective, nullptr);
  EXPECT_THROW(loss_objective->loss(*model, genfw::Batch{test.x, {}}), genfw::Error);  // no labels
}
