#include <gtest/gtest.h>

#include <genfw/testing.hpp>

using genfw::Kind;

TEST(NoisyClassifier, LogitShapesForImagesAndVectors) {
  torch::manual_seed(0);
  auto image = genfw::testing::make<genfw::Model>(
      Kind::model, "noisy_classifier", {{"width", int64_t(8)}, {"layers", int64_t(2)}},
      genfw::testing::context_for({1, 28, 28}, -1, 1, 10));
  auto* c = genfw::as<genfw::NoisyClassifier>(*image);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->classify(torch::randn({3, 1, 28, 28}), torch::tensor({0, 5, 999}, torch::kLong)).sizes(),
            (std::vector<int64_t>{3, 10}));
  auto vec = genfw::testing::make<genfw::Model>(Kind::model, "noisy_classifier",
                                                {{"num_classes", int64_t(4)}},
                                                genfw::testing::context_for({2}));
  EXPECT_EQ(genfw::as<genfw::NoisyClassifier>(*vec)->classify(torch::randn({5, 2}),
                                                               torch::zeros({5}, torch::kLong)).sizes(),
            (std::vector<int64_t>{5, 4}));
  auto* carrier = genfw::as<genfw::NoisyClassifier>(*vec);
  ASSERT_NE(carrier, nullptr);
  EXPECT_EQ(carrier->num_classes(), 4);
  EXPECT_EQ(carrier->schedule().num_steps(), 1000);
}

TEST(NoisyClassifier, NeedsClasses) {
  EXPECT_THROW(genfw::testing::make<genfw::Model>(Kind::model, "noisy_classifier", {},
                                                  genfw::testing::context_for({2})),
               genfw::Error);
}
