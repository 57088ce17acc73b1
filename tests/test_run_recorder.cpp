// The RunRecorder alone, without a pipeline: what a run writes into its file
// (run_log.hpp's layout) when it starts, samples, is scored, ends and resumes.
#include <gtest/gtest.h>

#include "genfw/config.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/run_log.hpp"
#include "genfw/run_recorder.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

genfw::ExperimentConfig recorded_experiment(const TempDir& dir) {
  const std::string text = "name = \"recorded\"\nseed = 4\n" + two_mode_mixture_data(100) +
                           two_mode_mixture_eps_model(10) + "[sampler]\nplugin = \"ddpm\"\n";
  return genfw::load_experiment_text(text, dir / "recorded.toml", {}, builtins());
}

}  // namespace

TEST(RunRecorder, BeginsWithThePlanTheEnvironmentAndTheComponents) {
  TempDir dir;
  const genfw::ExperimentConfig config = recorded_experiment(dir);
  genfw::RunLog log = genfw::RunLog::create(dir / "recorded.h5");
  genfw::RunRecorder recorder(log);
  genfw::RunOrigin origin;
  origin.num_parameters = 12;
  recorder.begin(config, torch::kCPU, origin);
  EXPECT_EQ(log.read_string("/config"), config.resolved_toml());
  EXPECT_EQ(log.attribute("/", "experiment"), "recorded");
  EXPECT_EQ(log.attribute("/", "model"), "analytic_gmm_eps");
  EXPECT_EQ(log.attribute("/", "sampler"), "ddpm");
  EXPECT_EQ(log.attribute("/", "objective"), "");
  EXPECT_EQ(log.attribute("/", "num_parameters"), "12");
  EXPECT_EQ(log.attribute("/", "status"), "running");
  EXPECT_EQ(log.read_string("/env/seed"), "4");
  EXPECT_EQ(log.read_string("/env/device"), "cpu");
  EXPECT_EQ(log.read_string("/env/world_size"), "1");
  EXPECT_FALSE(log.read_string("/env/git_commit").empty());
  EXPECT_EQ(log.read_string("/env/segments/0/from_step"), "0");

  // A resumed segment records its own environment and keeps the first one's.
  origin.from_step = 5;
  recorder.begin(config, torch::kCPU, origin);
  EXPECT_EQ(log.children("/env/segments").size(), 2u);
  EXPECT_EQ(log.read_string("/env/from_step"), "5");
  EXPECT_EQ(log.read_string("/env/segments/0/from_step"), "0");
  EXPECT_EQ(log.read_string("/env/segments/1/from_step"), "5");
}

TEST(RunRecorder, RecordsSamplesMetricsTheFloorAndHowTheRunEnded) {
  TempDir dir;
  genfw::RunLog log = genfw::RunLog::create(dir / "recorded.h5");
  genfw::RunRecorder recorder(log);
  genfw::SampleOutcome drawn;
  drawn.samples = torch::arange(6, torch::kFloat32).view({3, 2});
  drawn.labels = torch::tensor({0, 1, 0}, torch::kLong);
  drawn.seconds = 2.0;
  drawn.nfe = 10;
  recorder.record_samples(drawn, -1.0, 1.0);
  EXPECT_TRUE(torch::equal(log.read_tensor("/samples"), drawn.samples));
  EXPECT_TRUE(torch::equal(log.read_tensor("/sample_labels"), drawn.labels.to(torch::kFloat32)));
  EXPECT_EQ(log.attribute("/samples", "low"), "-1.0");
  EXPECT_EQ(log.read_scalar("/timing/nfe"), 10.0);
  EXPECT_EQ(log.read_scalar("/timing/samples_per_second"), 1.5);

  genfw::MetricOutcome outcome;
  outcome.info = &builtins().find("fid", genfw::Kind::metric);
  outcome.result.values = {{"fid", 0.25}};
  outcome.result.provenance = {{"extractor", "identity"}};
  outcome.wall_seconds = 3.0;
  recorder.record_metric(outcome, 7);
  const auto rows = log.read_metric("fid");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].value, 0.25);
  EXPECT_EQ(rows[0].step, 7);
  EXPECT_EQ(log.attribute("/metrics/fid", "provenance.extractor"), "identity");
  recorder.discard_metrics_from(7);  // a resumed run computes them again
  EXPECT_TRUE(log.read_metric("fid").empty());

  recorder.record_floor("/floor", "fid", 0.1, "fid", "train", 3, 7, 1.0);
  EXPECT_EQ(log.read_series("/floor/fid")[0].value, 0.1);
  EXPECT_EQ(log.attribute("/floor/fid", "count"), "3");
  EXPECT_EQ(log.attribute("/floor/fid", "split"), "train");

  recorder.complete();
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  recorder.mark_ended("failed: the disk is full");
  EXPECT_EQ(log.attribute("/", "status"), "failed: the disk is full");
}
