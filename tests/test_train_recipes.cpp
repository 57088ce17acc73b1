// The papers' training recipes: learning-rate schedules, EMA warm-up, gradient
// accumulation and a wall-clock budget, each against its definition.
#include <gtest/gtest.h>

#include <cmath>

#include "genfw/ema.hpp"
#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "genfw/trainer.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

std::vector<genfw::ScalarRow> model_losses(const std::string& run_file) {
  return genfw::RunLog::open(run_file, false).read_series("/train/loss/model");
}

// The fixture experiment without its objective's noise: accumulation changes only how the batch is cut.
std::string noiseless(int64_t steps) { return fixture_experiment(steps, "", "noise = 0.0\n"); }

}  // namespace

TEST(TrainRecipes, LearningRateScheduleFollowsItsFormula) {
  // Warm-up: (step + 1)/warmup, then 1 for constant.
  EXPECT_DOUBLE_EQ(genfw::lr_factor(0, 100, 10, "constant", 0.0), 0.1);
  EXPECT_DOUBLE_EQ(genfw::lr_factor(9, 100, 10, "constant", 0.0), 1.0);
  EXPECT_DOUBLE_EQ(genfw::lr_factor(99, 100, 10, "constant", 0.0), 1.0);
  // Cosine from 1 at the first step after warm-up to lr_final at the last step (99), half way at 54.
  EXPECT_DOUBLE_EQ(genfw::lr_factor(10, 100, 10, "cosine", 0.0), 1.0);
  EXPECT_NEAR(genfw::lr_factor(99, 100, 10, "cosine", 0.0), 0.0, 1e-15);
  EXPECT_NEAR(genfw::lr_factor(99, 100, 10, "cosine", 0.1), 0.1, 1e-15);
  EXPECT_NEAR(genfw::lr_factor(10 + 44, 100, 10, "cosine", 0.0), 0.5 * (1 + std::cos(M_PI * 44.0 / 89.0)), 1e-15);
  // Linear: 1 − progress.
  EXPECT_NEAR(genfw::lr_factor(10 + 89 / 2, 100, 10, "linear", 0.0), 1.0 - 44.0 / 89.0, 1e-15);
  EXPECT_NEAR(genfw::lr_factor(99, 100, 0, "linear", 0.2), 0.2, 1e-15);
}

// EMA with warm-up: decay_n = min(decay, (1 + n)/(10 + n)); after the first update the
// shadow is 0.9·start + 0.1·new, the value (1 + 0)/(10 + 0) = 0.1 gives.
TEST(TrainRecipes, EmaUpdateWithAnotherDecay) {
  torch::nn::Linear layer(1, 1);
  torch::NoGradGuard no_grad;
  layer->weight.fill_(1.0);
  genfw::Ema ema(*layer, 0.999);
  layer->weight.fill_(3.0);
  ema.update(std::min(0.999, 1.0 / 10.0));
  EXPECT_NEAR(ema.shadow()[0].item<double>(), 0.1 * 1.0 + 0.9 * 3.0, 1e-6);
  ema.update();  // the constructor's decay
  EXPECT_NEAR(ema.shadow()[0].item<double>(), 0.999 * 2.8 + 0.001 * 3.0, 1e-6);
}

// Accumulating 4 micro-batches of 4 is one batch of 16 for a loss that is a mean over
// the batch: the same loss curve to float32 rounding.
TEST(TrainRecipes, GradientAccumulationGivesTheLossCurveOfTheWholeBatch) {
  TempDir dir;
  auto whole = model_losses(run_fixture(dir, "whole", noiseless(20)));
  auto micro = model_losses(run_fixture(dir, "micro", noiseless(20), false, {"train.accumulate=4"}));
  ASSERT_EQ(whole.size(), 20u);
  ASSERT_EQ(micro.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(micro[i].step, whole[i].step);
    EXPECT_NEAR(micro[i].value, whole[i].value, 1e-5 * std::abs(whole[i].value)) << "step " << i;
  }
  EXPECT_CONTAINS(error_of([&] { run_fixture(dir, "odd", noiseless(2), false, {"train.accumulate=3"}); }),
                  "with accumulate = 3 on 1 rank(s) it must be divisible by 3");
}

// A budget ends training as a normal completion: checkpoint, status, the budget recorded.
TEST(TrainRecipes, AWallClockBudgetEndsTrainingAsACompletedRun) {
  TempDir dir;
  const std::string file = run_fixture(dir, "budget", fixture_experiment(100000000, "", "sleep_seconds = 0.002\n"),
                                       false, {"train.max_minutes=0.002"});
  auto log = genfw::RunLog::open(file, false);
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  const double steps = log.read_scalar("/timing/train_steps");
  EXPECT_GT(steps, 0);
  EXPECT_LT(steps, 1000);  // 0.12 s of 2 ms steps
  EXPECT_DOUBLE_EQ(log.read_scalar("/timing/max_minutes"), 0.002);
  EXPECT_GE(log.read_scalar("/timing/train_seconds"), 0.12);
  EXPECT_EQ(log.attribute("/", "checkpoint_step"), std::to_string(int64_t(steps)));
}

// [data] hflip: whole images mirrored, about half of them, reproducibly from the seed.
TEST(TrainRecipes, RandomHorizontalFlipMirrorsWholeImagesHalfTheTime) {
  auto images = torch::rand({2000, 3, 4, 5});
  torch::manual_seed(3);
  auto flipped = genfw::randomly_flipped(images);
  torch::manual_seed(3);
  EXPECT_TRUE(torch::equal(flipped, genfw::randomly_flipped(images)));
  int64_t mirrored = 0;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const bool same = torch::equal(flipped[i], images[i]), mirror = torch::equal(flipped[i], images[i].flip({2}));
    ASSERT_TRUE(same || mirror) << "image " << i << " is neither itself nor its mirror";
    mirrored += mirror;
  }
  EXPECT_NEAR(double(mirrored) / 2000.0, 0.5, 0.05);  // 4.5 standard deviations of a fair coin
}
