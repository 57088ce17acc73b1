#include <gtest/gtest.h>

#include "genfw/testing.hpp"

#include "memorization.hpp"
#include "../../../data/fixtures/knn_references.hpp"
#include "../../../data/fixtures/metric_datasets.hpp"

using namespace genfw;
namespace mt = genfw::metric::testing;
namespace ref = genfw::metric::testing::naive;

// Worked by hand, 1-D, training set {0, 10, 11}. Query 0.2: NN1 0 at 0.2, NN2
// 10 at 9.8, ratio 0.02 → memorized. Query 5: 5 and 5 → 1, not. Query 10.3:
// 0.3 and 0.7 → 0.43, not at 1/3, memorized at ratio 1/2.
TEST(Memorization, HandWorkedExample) {
  auto train = torch::tensor({0.0, 10.0, 11.0}).unsqueeze(1);
  auto queries = torch::tensor({0.2, 5.0, 10.3}).unsqueeze(1);
  auto third = metric::memorized_by_distance_ratio(queries, train, 1.0 / 3.0);
  EXPECT_TRUE(third.equal(torch::tensor({true, false, false})));
  auto half = metric::memorized_by_distance_ratio(queries, train, 0.5);
  EXPECT_TRUE(half.equal(torch::tensor({true, false, true})));
}

// Against the rule written as a naive loop, at ratios where many pass (2-D).
TEST(Memorization, MatchesTheNaiveRule) {
  torch::manual_seed(0);
  auto train = torch::randn({300, 2}), queries = torch::randn({200, 2});
  for (double ratio : {1.0 / 3.0, 0.6, 0.9}) {
    auto flags = metric::memorized_by_distance_ratio(queries, train, ratio);
    auto expected = ref::memorized(queries, train, ratio);
    for (int64_t q = 0; q < 200; ++q) EXPECT_EQ(flags[q].item<bool>(), bool(expected[q])) << q << " at " << ratio;
  }
}

// Copies of training points are flagged, exact or with noise 1/20 of the
// typical nearest-neighbour distance; fresh draws of the same distribution
// are not (16-D: a fresh point's two nearest training points are at similar
// distances). 100 copies + 100 fresh → exactly 0.5.
TEST(Memorization, CopiesOfTrainingPointsAreFlagged) {
  torch::manual_seed(1);
  auto train = torch::randn({2000, 16});
  auto copies = train.slice(0, 0, 2000, 20);  // 100 training points
  auto near_copies = copies + 0.05 * torch::randn_like(copies);  // NN distance in 16-D ≈ 3
  auto fresh = torch::randn({100, 16});
  EXPECT_DOUBLE_EQ(metric::fraction_memorized(copies, train, 1.0 / 3.0), 1.0);
  EXPECT_DOUBLE_EQ(metric::fraction_memorized(near_copies, train, 1.0 / 3.0), 1.0);
  EXPECT_DOUBLE_EQ(metric::fraction_memorized(fresh, train, 1.0 / 3.0), 0.0);
  EXPECT_DOUBLE_EQ(metric::fraction_memorized(torch::cat({copies, fresh}), train, 1.0 / 3.0), 0.5);
}

// The rule's rate on data that copies nothing: for points of a locally
// uniform density in d dimensions, NN1 is uniform in the ball reaching NN2,
// so (d1/d2)^d is uniform on [0, 1] and P(d1/d2 < r) = r^d. Uniform on the
// unit square, 20 000 training points, 4 000 queries: 1/9 at r = 1/3, 0.36 at
// r = 0.6 (edge effects and sampling error < 0.015).
TEST(Memorization, FreshDataRateIsRatioToTheDimension) {
  torch::manual_seed(5);
  auto train = torch::rand({20000, 2}, torch::kFloat64), queries = torch::rand({4000, 2}, torch::kFloat64);
  EXPECT_NEAR(metric::fraction_memorized(queries, train, 1.0 / 3.0), 1.0 / 9.0, 0.015);
  EXPECT_NEAR(metric::fraction_memorized(queries, train, 0.6), 0.36, 0.015);
}

namespace {

struct Splits {
  mt::TensorDataset train, test;
};

Splits gaussian_splits(const std::string& name, int64_t train_count, int64_t test_count) {
  auto info = mt::vector_info(name, 16);
  return {mt::TensorDataset(info, torch::randn({train_count, 16})),
          mt::TensorDataset(info, torch::randn({test_count, 16}))};
}

MetricContext context_of(Splits& splits) {
  MetricContext context;
  context.data = splits.train.info();
  context.train_data = &splits.train;
  context.test_data = &splits.test;
  return context;
}

}  // namespace

// Through the plugin (identity extractor, 16-D): samples that are a quarter
// copies of training examples give memorized = 0.25; the held-out test
// examples, as many as the samples, are flagged at the fresh-data rate (3^−16 ≈ 0).
TEST(MemorizationPlugin, EndToEndFlagsTheCopiedQuarter) {
  torch::manual_seed(2);
  auto splits = gaussian_splits("memo_gauss8", 1000, 800);
  MetricContext context = context_of(splits);
  auto copies = splits.train.get(torch::arange(0, 1000, 10, torch::kLong)).x;  // 100 copies
  context.samples = torch::cat({copies, torch::randn({300, 16})});
  auto features = genfw::testing::attach_features(context);
  auto metric = genfw::testing::make<Metric>(Kind::metric, "memorization");
  auto result = metric->compute(context);
  EXPECT_DOUBLE_EQ(result.values.at("memorized"), 0.25);
  EXPECT_DOUBLE_EQ(result.values.at("memorized_held_out"), 0.0);
  EXPECT_EQ(result.provenance.at("train_searched"), "1000 of 1000");
  EXPECT_EQ(result.provenance.at("held_out"), "400 test examples");
  EXPECT_NE(result.provenance.at("rule").find("d(x, NN1) < 0.3333333333333333 * d(x, NN2)"), std::string::npos)
      << result.provenance.at("rule");
}

// max_train searches an evenly strided part of the train split: copies of the
// examples left out are no longer found (the documented limit of the option).
TEST(MemorizationPlugin, MaxTrainSearchesAStridedPart) {
  torch::manual_seed(3);
  auto splits = gaussian_splits("memo_strided", 1000, 200);
  MetricContext context = context_of(splits);
  // The rows max_train = 500 keeps (evenly strided, as the reference's), and 50 of each kind copied.
  auto kept = torch::linspace(0, 999, 500, torch::kFloat64).round().to(torch::kLong);
  auto left_out = torch::ones({1000}, torch::kBool).index_fill_(0, kept, false).nonzero().squeeze(1);
  context.samples = torch::cat({splits.train.get(kept.slice(0, 0, 50)).x, splits.train.get(left_out.slice(0, 0, 50)).x});
  auto features = genfw::testing::attach_features(context);
  auto metric = genfw::testing::make<Metric>(Kind::metric, "memorization", {{"max_train", int64_t(500)}});
  auto result = metric->compute(context);
  EXPECT_DOUBLE_EQ(result.values.at("memorized"), 0.5);
  EXPECT_EQ(result.provenance.at("train_searched"), "500 of 1000");
}

TEST(MemorizationPlugin, NeedsBothSplits) {
  torch::manual_seed(4);
  auto splits = gaussian_splits("memo_no_test", 100, 100);
  MetricContext context = context_of(splits);
  context.test_data = nullptr;
  context.samples = torch::randn({10, 16});
  auto features = genfw::testing::attach_features(context);
  auto metric = genfw::testing::make<Metric>(Kind::metric, "memorization");
  try {
    metric->compute(context);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("metric 'memorization': needs the train split"), std::string::npos)
        << e.what();
  }
}
