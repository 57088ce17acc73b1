// Evaluation during training ([eval]): it scores the model at its steps without
// changing the training, its time is not training time, and the snapshots it
// keeps hold the weights of their step.
#include <gtest/gtest.h>

#include <algorithm>

#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "genfw/trainer.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

// The fixture model's one parameter, as a checkpoint holds it.
struct MeanWeights : torch::nn::Module {
  torch::Tensor mu = register_parameter("mu", torch::zeros({2}));
};

torch::Tensor weights_of(const std::string& run_file, int64_t step = -1) {
  MeanWeights weights;
  genfw::load_weights_for_sampling(weights, genfw::RecordedCheckpoint::of_run(run_file, step));
  return weights.mu.detach().clone();
}

std::vector<int64_t> steps_of(const std::vector<genfw::ScalarRow>& rows) {
  std::vector<int64_t> steps;
  for (const auto& row : rows) steps.push_back(row.step);
  return steps;
}

const std::string kEvaluateEvery10 = "[eval]\nevery = 10\nkeep_last = 2\nkeep_best = \"mean_error\"\n";

}  // namespace

// The evaluation samples with the EMA weights and draws random numbers; the training around
// it must not notice: the same losses and the same final weights as a run without one.
TEST(TrainingEvaluation, EvaluatingDoesNotChangeTheTraining) {
  TempDir dir;
  const std::vector<std::string> ema{"train.ema_decay=0.9"};
  const std::string plain = run_fixture(dir, "plain", fixture_experiment(30), false, ema);
  const std::string evaluated = run_fixture(dir, "evaluated", fixture_experiment(30, kEvaluateEvery10), false, ema);
  auto a = genfw::RunLog::open(plain, false), b = genfw::RunLog::open(evaluated, false);
  const auto losses = a.read_series("/train/loss/model"), losses_evaluated = b.read_series("/train/loss/model");
  ASSERT_EQ(losses.size(), losses_evaluated.size());
  for (size_t i = 0; i < losses.size(); ++i) EXPECT_EQ(losses[i].value, losses_evaluated[i].value) << "step " << i;
  EXPECT_TRUE(torch::equal(weights_of(plain), weights_of(evaluated)));
  EXPECT_EQ(steps_of(b.read_series("/eval/mean_error")), (std::vector<int64_t>{10, 20, 30}));
  EXPECT_FALSE(a.exists("/eval"));
  EXPECT_EQ(b.attribute("/eval/mean_error", "metric"), "fixture_mean_error");
  EXPECT_EQ(b.attribute("/eval/mean_error", "provenance.better.mean_error"), "lower");
}

// A snapshot of step S holds what a run trained for S steps ends with (the EMA weights, which
// sampling uses); keep_last keeps the last K, keep_best the evaluation with the best value.
TEST(TrainingEvaluation, SnapshotsHoldTheWeightsOfTheirStep) {
  TempDir dir;
  const std::vector<std::string> ema{"train.ema_decay=0.9"};
  const std::string run = run_fixture(dir, "run", fixture_experiment(40, kEvaluateEvery10), false, ema);
  const std::string shorter = run_fixture(dir, "shorter", fixture_experiment(30), false, ema);
  EXPECT_TRUE(torch::equal(weights_of(run, 30), weights_of(shorter)));
  EXPECT_TRUE(torch::equal(weights_of(run, 40), weights_of(run)));  // the last checkpoint's step
  auto log = genfw::RunLog::open(run, false);
  EXPECT_FALSE(fs::exists(dir / "run/snapshots/step_00000010.pt"));
  EXPECT_FALSE(fs::exists(dir / "run/snapshots/step_00000020.pt"));
  EXPECT_TRUE(fs::exists(dir / "run/snapshots/step_00000030.pt"));
  EXPECT_TRUE(fs::exists(dir / "run/snapshots/step_00000040.pt"));
  const auto rows = log.read_series("/eval/mean_error");
  const auto best = std::min_element(rows.begin(), rows.end(), [](auto& x, auto& y) { return x.value < y.value; });
  EXPECT_EQ(log.attribute("/", "best_step"), std::to_string(best->step));
  EXPECT_EQ(std::stod(log.attribute("/", "best_value")), best->value);
  EXPECT_EQ(log.attribute("/", "best_metric"), "mean_error");
  int64_t best_files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "run/snapshots")) {
    best_files += entry.path().filename().string().rfind("best_", 0) == 0;
  }
  EXPECT_EQ(best_files, 1);
  weights_of(run, best->step);  // loads, its digest checked
  EXPECT_CONTAINS(error_of([&] { weights_of(run, 10); }),
                  "kept no weights of step 10; it has its checkpoint at step 40");
  EXPECT_CONTAINS(error_of([&] { weights_of(run, 10); }), "snapshots at steps 30, 40");
}

// The clock: evaluation time is recorded apart and never counted as training time, so a
// training budget buys the same training whatever the evaluations cost.
TEST(TrainingEvaluation, EvaluationTimeIsNotTrainingTime) {
  TempDir dir;
  const std::string run = run_fixture(dir, "slow_eval", fixture_experiment(20, "[eval]\nevery = 5\n"), false,
                                      {"sampler.sleep_seconds=0.2"});
  auto log = genfw::RunLog::open(run, false);
  const double eval_seconds = log.read_scalar("/timing/eval_seconds");
  EXPECT_GE(eval_seconds, 4 * 3 * 0.2);  // 4 evaluations of 3 batches, each sleeping 0.2 s
  EXPECT_LT(log.read_scalar("/timing/train_seconds"), eval_seconds / 2);
  for (const auto& row : log.read_series("/eval/mean_error")) EXPECT_LT(row.wall_seconds, eval_seconds / 2);
}

// every_minutes counts training time, and the budget's end is evaluated too.
TEST(TrainingEvaluation, TimedEvaluationsFollowTrainingTime) {
  TempDir dir;
  const std::string run =
      run_fixture(dir, "timed", fixture_experiment(100000000, "[eval]\nevery_minutes = 0.001\n", "sleep_seconds = 0.002\n"),
                  false, {"train.max_minutes=0.004", "sampler.sleep_seconds=0.05"});
  auto log = genfw::RunLog::open(run, false);
  const auto rows = log.read_series("/eval/mean_error");
  ASSERT_GE(rows.size(), 3u);  // at 0.06 s, 0.12 s, 0.18 s of training, and at the budget's end (0.24 s)
  ASSERT_LE(rows.size(), 5u);
  for (size_t i = 0; i + 1 < rows.size(); ++i) EXPECT_GE(rows[i].wall_seconds, 0.06 * double(i + 1)) << "row " << i;
  EXPECT_EQ(rows.back().step, int64_t(log.read_scalar("/timing/train_steps")));
  EXPECT_LT(log.read_scalar("/timing/train_seconds"), 0.24 + 0.05);
}

// A resumed run evaluates its new steps; the earlier attempt's rows and snapshots after its
// checkpoint are forgotten, not repeated.
TEST(TrainingEvaluation, AResumedRunContinuesItsEvaluations) {
  TempDir dir;
  const std::string text = fixture_experiment(20, kEvaluateEvery10);
  run_fixture(dir, "resumed", text);
  const std::string run = run_fixture(dir, "resumed", text, true, {}, {"train.steps=40"});
  auto log = genfw::RunLog::open(run, false);
  EXPECT_EQ(steps_of(log.read_series("/eval/mean_error")), (std::vector<int64_t>{10, 20, 30, 40}));
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  EXPECT_TRUE(torch::equal(weights_of(run, 30), weights_of(run_fixture(dir, "thirty", fixture_experiment(30)))));
}

TEST(TrainingEvaluation, APlanThatCannotEvaluateIsRefusedNamingWhy) {
  TempDir dir;
  EXPECT_CONTAINS(error_of([&] { run_fixture(dir, "a", fixture_experiment(5, "[eval]\nkeep_last = 2\n")); }),
                  "[eval] keep_best, keep_last and num_samples need evaluations");
  EXPECT_CONTAINS(error_of([&] {
                    run_fixture(dir, "b", fixture_experiment(5, "[eval]\nevery = 5\nkeep_best = \"fid\"\n"));
                  }),
                  "[eval] keep_best = \"fid\" is no value of the run's sample metrics; they give: mean_error");
}
