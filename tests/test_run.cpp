// End-to-end runs on the fixture components: determinism, resume, NaN guard,
// SIGKILL, compare.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <thread>

#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

std::vector<genfw::ScalarRow> losses(const std::string& file) {
  return genfw::RunLog::open(file, false).read_series("/train/loss/model");
}

}  // namespace

TEST(Run, WritesTheDocumentedRunFile) {
  TempDir dir;
  std::string file = run_fixture(dir, "a", fixture_experiment(20));
  auto log = genfw::RunLog::open(file, false);
  EXPECT_CONTAINS(log.read_string("/config"), "plugin = \"fixture_gaussian\"");
  EXPECT_EQ(log.read_string("/env/torch"), GENFW_TORCH_VERSION_STRING);
  for (const char* key : {"/env/compiler", "/env/threads", "/env/device", "/env/git_commit", "/env/host",
                          "/env/flush_denormals", "/env/keep_freed_memory"}) {
    EXPECT_TRUE(log.exists(key)) << key;
  }
  auto rows = losses(file);
  ASSERT_EQ(rows.size(), 20u);
  EXPECT_EQ(rows.front().step, 0);
  EXPECT_EQ(rows.back().step, 19);
  EXPECT_LT(rows.back().value, rows.front().value);  // μ moves from 0 toward 3
  EXPECT_EQ(log.read_series("/train/record/half_loss").size(), 20u);
  EXPECT_EQ(log.read_tensor("/samples").sizes(), (std::vector<int64_t>{50, 2}));
  EXPECT_DOUBLE_EQ(log.read_scalar("/timing/nfe"), 1.0);
  EXPECT_DOUBLE_EQ(log.read_scalar("/timing/train_steps"), 20.0);
  auto metric = log.read_metric("mean_error");
  ASSERT_EQ(metric.size(), 1u);
  EXPECT_EQ(metric[0].step, 20);
  EXPECT_EQ(log.attribute("/metrics/mean_error", "provenance.estimator"), "sample mean");
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  EXPECT_TRUE(fs::exists(dir / "a/fx.png"));
  EXPECT_TRUE(fs::exists(dir / "a/checkpoint.pt"));
}

// A sweep over sampler keys trains once and samples those weights for every
// other value; a sweep over a training key trains every variant.
TEST(Run, SamplerSweepTrainsOnceTrainingSweepTrainsEach) {
  TempDir dir;
  genfw::RunRequest request;
  request.experiment = dir.file("s.toml", fixture_experiment(12) + "[sweep]\n\"sampler.num_samples\" = [10, 30]\n");
  request.out_dir = dir / "sampler_sweep";
  auto files = genfw::run_with_sweep(request, fixtures(), {});
  ASSERT_EQ(files.size(), 2u);
  auto first = genfw::RunLog::open(files[0], false), second = genfw::RunLog::open(files[1], false);
  EXPECT_EQ(fs::path(files[1]).stem(), "fx-num_samples30");
  EXPECT_EQ(first.read_series("/train/loss/model").size(), 12u);
  EXPECT_FALSE(second.exists("/train/loss"));
  EXPECT_EQ(second.attribute("/", "parent"), fs::absolute(files[0]).string());
  EXPECT_EQ(first.read_tensor("/samples").size(0), 10);
  EXPECT_EQ(second.read_tensor("/samples").size(0), 30);
  EXPECT_EQ(second.attribute("/", "status"), "completed");
  // compare shows the training the second run's weights came from.
  std::ostringstream table;
  genfw::write_comparison(files, {genfw::TableFormat::csv}, table, table);
  EXPECT_CONTAINS(table.str(), "fx-num_samples30,fixture_gaussian,fixture_mean,fixture_nll,fixture_prior,completed,2,12,");

  // `runner sample RUN.h5 --sweep ...` (it crashed on an empty list's front()).
  genfw::RunRequest resample;
  resample.parent_run = files[0];
  resample.out_dir = dir / "resampled";
  auto resampled = genfw::run_with_sweep(resample, fixtures(), {"sampler.num_samples=5,7"});
  ASSERT_EQ(resampled.size(), 2u);
  EXPECT_EQ(genfw::RunLog::open(resampled[1], false).read_tensor("/samples").size(0), 7);

  request.out_dir = dir / "train_sweep";
  files = genfw::run_with_sweep(request, fixtures(), {"train.lr=0.05,0.01"});
  ASSERT_EQ(files.size(), 4u);  // 2 learning rates × 2 sample counts
  for (const auto& file : files) {
    auto log = genfw::RunLog::open(file, false);
    EXPECT_EQ(log.read_series("/train/loss/model").size(), 12u) << file;
  }
}

// A swept string value with a relative path in it ("../a") still names a run: '/' and
// ".." become '_' (a run name may hold neither).
TEST(Run, SweepOverRelativePathsNamesItsRuns) {
  TempDir dir;
  genfw::RunRequest request;
  request.experiment = dir.file("p.toml", fixture_experiment(6));
  request.out_dir = dir / "paths";
  auto files = genfw::run_with_sweep(request, fixtures(), {"metrics.fixture_mean_error.provenance_tag=../a,../b"});
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(fs::path(files[0]).stem(), "fx-provenance_tag__a");
  EXPECT_EQ(fs::path(files[1]).stem(), "fx-provenance_tag__b");
  EXPECT_EQ(genfw::RunLog::open(files[1], false).attribute("/metrics/mean_error", "provenance.tag"), "../b");
}

// Without --out each sweep has a folder of its own under runs/, so the next sweep's
// table and pictures never land on its.
TEST(Run, ASweepWithoutOutGetsItsOwnFolder) {
  TempDir dir;
  const auto previous = fs::current_path();
  fs::current_path(dir.path);
  genfw::RunRequest request;
  request.experiment = dir.file("w.toml", fixture_experiment(3));
  auto first = genfw::run_with_sweep(request, fixtures(), {"sampler.num_samples=10,20"});
  auto second = genfw::run_with_sweep(request, fixtures(), {"sampler.num_samples=10,20"});
  fs::current_path(previous);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(fs::path(first[1]).parent_path().parent_path().filename(), "fx");
  EXPECT_EQ(fs::path(second[1]).parent_path().parent_path().filename(), "fx-2");
  EXPECT_EQ(fs::path(first[1]).stem(), "fx-num_samples20");
}

// A run sampled from another states the sampler options it used, not its parent's:
// "ddpm-guidance_scale0" sampled with guidance_scale = 2 is "ddpm-ddim-guidance_scale2".
TEST(Run, ASampledRunIsNamedByTheOptionsItUsed) {
  const std::vector<std::string> all{"name", "seed", "plugin", "guidance_scale", "num_samples", "s", "steps",
                                     "steps_per_level", "lr", "eta"};
  // Another guidance scale: the parent's part is no longer true.
  EXPECT_EQ(genfw::sampled_run_name("ddpm-guidance_scale0", {"plugin", "guidance_scale"}, all,
                                    {{"guidance_scale", "2.0"}}, "ddim", {"sampler.guidance_scale=2"}),
            "ddpm-ddim-guidance_scale2");
  // The same value (a sampler sweep's own name part, "0" for 0.0): kept, not repeated.
  EXPECT_EQ(genfw::sampled_run_name("fx-steps2", {"steps"}, all, {{"steps", "2"}}, "prior", {"sampler.steps=2"}),
            "fx-steps2-prior");
  EXPECT_EQ(genfw::sampled_run_name("fx-guidance_scale0", {"guidance_scale"}, all, {{"guidance_scale", "0.0"}}, "",
                                    {}),
            "fx-guidance_scale0");
  EXPECT_EQ(genfw::sampled_run_name("fx-seed8", {"s"}, all, {}, "prior", {"seed=8"}), "fx-seed8-prior");
  EXPECT_EQ(genfw::sampled_run_name("fx-steps_per_level10-lr0.1", {"steps", "steps_per_level"}, all, {}, "ode", {}),
            "fx-lr0.1-ode");
  EXPECT_EQ(genfw::sampled_run_name("fx-eta-1e-3-lr0.1", {"eta"}, all, {{"eta", "0.5"}}, "", {"sampler.eta=0.5"}),
            "fx-lr0.1-eta0.5");
  EXPECT_EQ(genfw::name_part("metrics.fid.reference=../data/x"), "-reference__data_x");
}

// The runner's own command line, each way of sweeping a sampler option: `runner
// sample RUN.h5 --sampler NAME --sweep`, and an experiment's sampler-only sweep.
TEST(Run, RunnerSampleSweepsASamplerOptionOneRunFilePerValue) {
  TempDir dir;
  const std::string trained = run_fixture(dir, "trained", fixture_experiment(6));
  ASSERT_EQ(wait_for(start_runner({"sample", trained, "--sampler", "fixture_prior", "--sweep", "sampler.steps=2,5",
                                   "--out", dir / "sampled"},
                                  {}, dir / "sample.log")),
            0)
      << text_of(dir / "sample.log");
  for (int steps : {2, 5}) {
    const std::string name = "fx-steps" + std::to_string(steps);
    auto log = genfw::RunLog::open(dir / ("sampled/" + name + "/" + name + "-fixture_prior.h5"), false);
    EXPECT_DOUBLE_EQ(log.read_scalar("/timing/nfe"), steps);
    EXPECT_EQ(log.attribute("/", "status"), "completed");
  }
  // --shard takes every N-th variant of the sweep, as for an experiment.
  ASSERT_EQ(wait_for(start_runner({"sample", trained, "--sampler", "fixture_prior", "--sweep", "sampler.steps=2,5,7",
                                   "--shard", "1/2", "--out", dir / "shard1"},
                                  {}, dir / "shard.log")),
            0)
      << text_of(dir / "shard.log");
  EXPECT_FALSE(fs::exists(dir / "shard1/fx-steps2"));
  EXPECT_TRUE(fs::exists(dir / "shard1/fx-steps5/fx-steps5-fixture_prior.h5"));
  EXPECT_FALSE(fs::exists(dir / "shard1/fx-steps7"));
  const std::string experiment = dir.file("fx.toml", fixture_experiment(6));
  ASSERT_EQ(wait_for(start_runner({experiment, "--sweep", "sampler.steps=2,5", "--out", dir / "swept"}, {},
                                  dir / "sweep.log")),
            0)
      << text_of(dir / "sweep.log");
  EXPECT_TRUE(fs::exists(dir / "swept/fx-steps2/fx-steps2.h5"));
  EXPECT_DOUBLE_EQ(genfw::RunLog::open(dir / "swept/fx-steps5/fx-steps5.h5", false).read_scalar("/timing/nfe"), 5);
}

// A sampling plan of 10^6 network evaluations is named before it runs, and its
// progress shows with an ETA; the run is stopped after the first progress line.
TEST(Run, SamplingWarnsOfAHugePlanAndShowsProgress) {
  TempDir dir;
  const std::string trained = run_fixture(dir, "trained", fixture_experiment(3));
  const std::string log_file = dir / "sample.log";
  pid_t runner = start_runner({"sample", trained, "--sampler", "fixture_prior", "--set", "sampler.steps=100000",
                               "--set", "sampler.sleep_seconds=0.001", "--set", "sampler.num_samples=50",
                               "--set", "sampler.batch_size=5", "--set", "log.progress=\"plain\"", "--out",
                               dir / "huge"},
                              {}, log_file);
  for (int i = 0; i < 300 && text_of(log_file).find("sampling: ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(runner, SIGINT);
  EXPECT_EQ(wait_for(runner), 128 + SIGINT);
  const std::string text = text_of(log_file);
  EXPECT_CONTAINS(text, "warning: sampler 'fixture_prior' plans about 1000000 network evaluations");
  EXPECT_CONTAINS(text, "NFE about 100000 per sample, 50 samples in 10 batches of 5");
  EXPECT_CONTAINS(text, "[sampler] steps = 100000");
  EXPECT_CONTAINS(text, " of batch 1/10, ");
  EXPECT_CONTAINS(text, " elapsed, ETA ");
  EXPECT_LT(text.find("warning: sampler"), text.find("sampling: "));
}

// [sampler] x_init hands each batch its slice of the given points: the fixture
// sampler returns them, so the second run's samples are the first run's.
TEST(Run, ShardsOfASweepRunDisjointSetsWhoseUnionIsTheWholeSweep) {
  TempDir dir;
  genfw::RunRequest request;
  request.experiment = dir.file("s.toml", fixture_experiment(6));
  const std::vector<std::string> sweep{"seed=1,2,3", "train.lr=0.05,0.01"};
  request.out_dir = dir / "whole";
  std::set<std::string> whole, shards;
  for (const auto& file : genfw::run_with_sweep(request, fixtures(), sweep)) whole.insert(fs::path(file).filename());
  for (int shard = 0; shard < 4; ++shard) {
    genfw::parse_shard(std::to_string(shard) + "/4", request);
    request.out_dir = dir / ("shard" + std::to_string(shard));
    auto files = genfw::run_with_sweep(request, fixtures(), sweep);
    EXPECT_EQ(files.size(), shard < 2 ? 2u : 1u);  // 6 runs over 4 shards
    for (const auto& file : files) EXPECT_TRUE(shards.insert(fs::path(file).filename()).second) << file;
  }
  EXPECT_EQ(shards, whole);
  for (const char* bad : {"4/4", "-1/2", "1", "a/b", "1/0", "0/2x"}) {
    EXPECT_CONTAINS(error_of([&] { genfw::parse_shard(bad, request); }), "expected i/N");
  }
}

TEST(Run, SamplerStartsFromXInitOfAnEarlierRun) {
  TempDir dir;
  std::string first = run_fixture(dir, "a", fixture_experiment(5));
  std::string second = run_fixture(dir, "b", fixture_experiment(5), false, {"sampler.x_init=\"" + first + ":/samples\""});
  auto a = genfw::RunLog::open(first, false).read_tensor("/samples");
  EXPECT_TRUE(torch::equal(a, genfw::RunLog::open(second, false).read_tensor("/samples")));
  std::string message = error_of([&] {
    run_fixture(dir, "c", fixture_experiment(5), false, {"sampler.x_init=\"" + first + ":/samples\"", "sampler.num_samples=60"});
  });
  EXPECT_CONTAINS(message, "[sampler] x_init");
  EXPECT_CONTAINS(message, "expected at least 60 points of shape [2]");
  message = error_of([&] { run_fixture(dir, "d", fixture_experiment(5), false, {"sampler.x_init=\"missing.pt\""}); });
  EXPECT_CONTAINS(message, "file missing.pt does not exist");
}

TEST(Run, SameSeedSameLossCurveBitForBit) {
  TempDir dir;
  auto a = losses(run_fixture(dir, "a", fixture_experiment(25)));
  auto b = losses(run_fixture(dir, "b", fixture_experiment(25)));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].value, b[i].value) << "step " << i;
  auto c = losses(run_fixture(dir, "c", fixture_experiment(25), false, {"seed=8"}));
  EXPECT_NE(a[5].value, c[5].value);
}

TEST(Run, ResumeGivesTheUninterruptedLossCurve) {
  TempDir dir;
  auto full = losses(run_fixture(dir, "full", fixture_experiment(30)));
  // "Interrupted" at step 13: the checkpoint is from step 10, rows up to 12 were flushed.
  run_fixture(dir, "part", fixture_experiment(13));
  auto resumed = losses(run_fixture(dir, "part", fixture_experiment(13), true, {}, {"train.steps=30"}));
  ASSERT_EQ(resumed.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    EXPECT_EQ(resumed[i].step, full[i].step);
    EXPECT_EQ(resumed[i].value, full[i].value) << "step " << i;
  }
}

TEST(Run, NanLossStopsNamingStepAndKeepsLogAndCheckpoint) {
  TempDir dir;
  std::string message = error_of([&] { run_fixture(dir, "nan", fixture_experiment(40, ""), false, {"objective.nan_at_step=15"}); });
  EXPECT_CONTAINS(message, "training stopped at step 15: loss 'model' is nan");
  EXPECT_CONTAINS(message, "checkpoint.pt");
  auto log = genfw::RunLog::open(dir / "nan/fx.h5", false);
  auto rows = log.read_series("/train/loss/model");
  ASSERT_EQ(rows.size(), 15u);  // steps 0..14, all finite
  EXPECT_EQ(rows.back().step, 14);
  EXPECT_CONTAINS(log.attribute("/", "status"), "failed: training stopped at step 15");
  EXPECT_EQ(log.attribute("/", "checkpoint_step"), "10");
}

TEST(Run, SigkillLeavesAReadableRunFile) {
  TempDir dir;
  std::string path = dir.file("long.toml", fixture_experiment(100000000, ""));
  std::string out = dir / "long";
  pid_t child = start_runner({path, "--out", out}, {}, dir / "runner.log");
  ASSERT_GE(child, 0);
  // Wait until a few checkpoints have been written, then kill without warning.
  for (int i = 0; i < 600 && !fs::exists(out + "/checkpoint.pt"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto log = genfw::RunLog::open(out + "/fx.h5", false);
  auto rows = log.read_series("/train/loss/model");
  EXPECT_GE(rows.size(), 10u);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].step, int64_t(i));
  EXPECT_EQ(log.attribute("/", "status"), "running");
  EXPECT_CONTAINS(log.read_string("/config"), "fixture_nll");
}

TEST(Run, CompareTablesTwoRunsAndGuardsProvenance) {
  TempDir dir;
  std::string a = run_fixture(dir, "a", fixture_experiment(10));
  std::string b = run_fixture(dir, "b", fixture_experiment(10), false, {"seed=9", "name=\"fy\""});
  std::ostringstream table;
  genfw::write_comparison({a, b}, {}, table, table);
  std::string text = table.str();
  EXPECT_CONTAINS(text, "| experiment | dataset | model | objective | sampler | status | parameters | train steps |");
  EXPECT_CONTAINS(text, "mean_error (data units) ↓ |");
  EXPECT_CONTAINS(text, "| fx | fixture_gaussian | fixture_mean | fixture_nll | fixture_prior | completed | 2 | 10 |");
  EXPECT_CONTAINS(text, "| fy |");
  std::ostringstream csv;
  genfw::write_comparison({a, b}, {genfw::TableFormat::csv}, csv, csv);
  EXPECT_CONTAINS(csv.str(), "experiment,dataset,model");

  std::string other = fixture_experiment(10);
  const std::string metric_line = "plugin = \"fixture_mean_error\"";
  other.replace(other.find(metric_line), metric_line.size(), metric_line + "\nprovenance_tag = \"b\"");
  std::string c = run_fixture(dir, "c", other);
  std::ostringstream refused;
  std::string message = error_of([&] { genfw::write_comparison({a, c}, {}, refused, refused); });
  EXPECT_CONTAINS(message, "metric 'mean_error'");
  EXPECT_CONTAINS(message, "differ in tag (a vs b)");
  EXPECT_CONTAINS(message, "--force");
  std::ostringstream forced;
  genfw::write_comparison({a, c}, {genfw::TableFormat::markdown, true}, forced, forced);
  EXPECT_CONTAINS(forced.str(), "warning (--force)");
}

// `--members-at-once 2`: a suite's experiments run two at a time, each in a
// child process of its own, and give exactly the runs and the table of the
// suite run one experiment after another.
TEST(Suite, MembersAtOnceGiveTheRunsAndTableOfOneAtATime) {
  TempDir dir;
  std::string list;
  for (const std::string name : {"a", "b", "c"}) {
    std::string text = fixture_experiment(12);
    text.replace(text.find("name = \"fx\""), 11, "name = \"" + name + "\"");
    dir.file(name + ".toml", text);
    list += (list.empty() ? "\"" : ", \"") + name + ".toml\"";
  }
  const std::string suite = dir.file("trio.toml", "[suite]\nname = \"trio\"\nexperiments = [" + list + "]\n");
  pid_t one = start_runner({suite, "--out", dir / "one"}, {{"GENFW_PLOTS", "off"}}, dir / "one.log");
  ASSERT_EQ(wait_for(one), 0) << text_of(dir / "one.log");
  pid_t two = start_runner({suite, "--out", dir / "two", "--members-at-once", "2"}, {{"GENFW_PLOTS", "off"}},
                           dir / "two.log");
  ASSERT_EQ(wait_for(two), 0) << text_of(dir / "two.log");
  const std::string output = text_of(dir / "two.log");
  EXPECT_CONTAINS(output, "suite trio: 3 experiments, 2 at a time, 1 thread(s) each");
  EXPECT_EQ(output.find("shard "), std::string::npos) << output;  // the children do not ask for a compare
  const std::string table = text_of(dir / "two/trio.md");
  for (const std::string name : {"a", "b", "c"}) {
    EXPECT_CONTAINS(table, "| " + name + " |");
    auto sequential = genfw::RunLog::open(dir / ("one/" + name + "/" + name + ".h5"), false);
    auto concurrent = genfw::RunLog::open(dir / ("two/" + name + "/" + name + ".h5"), false);
    EXPECT_EQ(concurrent.attribute("/", "status"), "completed");
    EXPECT_TRUE(torch::equal(concurrent.read_tensor("/samples"), sequential.read_tensor("/samples"))) << name;
    const auto losses = concurrent.read_series("/train/loss/model"), expected = sequential.read_series("/train/loss/model");
    ASSERT_EQ(losses.size(), expected.size());
    for (size_t i = 0; i < losses.size(); ++i) EXPECT_EQ(losses[i].value, expected[i].value) << name << " row " << i;
  }
}
