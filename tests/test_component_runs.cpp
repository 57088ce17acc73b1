// Runs as components: latent diffusion over an exactly known autoencoder
// reproduces the data's mixture; a component experiment is trained once and
// reused; a changed, damaged or incapable component run is refused naming it;
// a cascade's super-resolution stage is conditioned on the base run's samples,
// sample i on its i-th, or on real images averaged down.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "genfw/pipeline.hpp"
#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

// The built-in plugins and the fixtures (the exactly known autoencoder).
const genfw::Registry& registry() {
  static const genfw::Registry registry = [] {
    genfw::Registry r;
    r.load_directory(genfw::Registry::builtin_plugin_dir());
    r.load_directory(fixture_dir("good"));
    return r;
  }();
  return registry;
}

// Data: 20% N((−5, −5), I), 80% N((5, 5), I).
const char* kMixture = R"(
[data]
plugin = "toy2d"
distribution = "gmm"
means = [[-5.0, -5.0], [5.0, 5.0]]
weights = [0.2, 0.8]
stds = [1.0]
size = 4000
)";
constexpr double kGain = 0.5, kAngle = 0.6;  // the fixture autoencoder's defaults: z = 0.5·R(0.6)·x

std::string autoencoder_experiment() {
  std::ostringstream text;
  text << "name = \"ae\"\nseed = 0\n" << kMixture << R"(
[model]
plugin = "fixture_linear_autoencoder"
[objective]
plugin = "fixture_reconstruction"
[train]
steps = 1
batch_size = 16
log_every = 1
checkpoint_every = 1
[log]
progress = "off"
)";
  return text.str();
}

// The exact ε of the mixture the latents z·scale follow: means scale·A·μ_k, stds scale·gain.
std::string latent_experiment(double scale, const std::string& latent_table = "experiment = \"ae.toml\"",
                              double model_scale = 0.8) {
  const double c = std::cos(kAngle), s = std::sin(kAngle), k = model_scale * kGain;
  const double u = k * (-5 * c + 5 * s), v = k * (-5 * s - 5 * c);  // scale·A·(−5, −5)
  std::ostringstream text;
  text << "name = \"ldm\"\nseed = 3\n" << kMixture << "\n[latent]\n" << latent_table << "\nscale = " << scale
       << "\n[model]\nplugin = \"analytic_gmm_eps\"\nmeans = [[" << u << ", " << v << "], [" << -u << ", " << -v
       << "]]\nweights = [0.2, 0.8]\nstds = [" << k << ", " << k << "]\nnum_train_timesteps = 1000\n"
       << "[sampler]\nplugin = \"ddim\"\nnum_inference_steps = 100\nnum_samples = 2000\nbatch_size = 1000\n"
       << "[log]\nprogress = \"off\"\n";
  return text.str();
}

std::string run_in(const TempDir& dir, const std::string& name, const std::string& text) {
  genfw::RunRequest request;
  request.experiment = dir.file(name + ".toml", text);
  request.out_dir = dir / name;
  return genfw::Pipeline(request, registry()).run();
}

std::string resample(const std::string& run_file, const std::vector<std::string>& overrides = {}) {
  genfw::RunRequest request;
  request.parent_run = run_file;
  request.overrides = overrides;
  request.out_dir = (fs::path(run_file).parent_path().parent_path() / "resampled").string();
  fs::remove_all(request.out_dir);
  return genfw::Pipeline(request, registry()).run();
}

}  // namespace

// Sampled in latent space by DDIM on the exact latent mixture and decoded, the
// samples follow the data's mixture: weights 0.2/0.8 (binomial sd 0.009 at n =
// 2000), means (∓5, ∓5) (sd of a mode's mean ≤ 0.05) and unit stds. Undecoded
// they would sit at ±(0.52, 2.78) with std 0.4.
TEST(ComponentRuns, LatentDiffusionOverAnExactAutoencoderReproducesTheMixture) {
  TempDir dir;
  dir.file("ae.toml", autoencoder_experiment());
  const std::string run_file = run_in(dir, "ldm", latent_experiment(0.8));
  EXPECT_TRUE(fs::exists(dir / "ae/ae.h5"));  // trained beside the run
  genfw::RunLog log = genfw::RunLog::open(run_file, false);
  EXPECT_EQ(log.attribute("/", "latent_autoencoder"), fs::absolute(dir / "ae/ae.h5").string());
  const torch::Tensor x = log.read_tensor("/samples").to(torch::kFloat64);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{2000, 2}));
  const torch::Tensor upper = x.sum(1) > 0;
  EXPECT_NEAR(upper.to(torch::kFloat64).mean().item<double>(), 0.8, 0.04);
  for (const auto& [mode, mean] : {std::pair{upper, 5.0}, std::pair{upper.logical_not(), -5.0}}) {
    const torch::Tensor points = x.index({mode});
    for (int64_t d = 0; d < 2; ++d) {
      EXPECT_NEAR(points.select(1, d).mean().item<double>(), mean, 0.15) << "mode " << mean << ", coordinate " << d;
      EXPECT_NEAR(points.select(1, d).std().item<double>(), 1.0, 0.1) << "mode " << mean << ", coordinate " << d;
    }
  }
  // The stored config names the autoencoder's run and its weights.
  const genfw::ExperimentConfig stored = genfw::load_experiment_text(log.read_string("/config"), run_file, {}, registry());
  const genfw::Options* latent = stored.component_run("latent");
  ASSERT_NE(latent, nullptr);
  EXPECT_EQ(latent->string("experiment"), "");
  EXPECT_EQ(latent->string("run"), fs::absolute(dir / "ae/ae.h5").string());
  EXPECT_EQ(latent->string("sha256").size(), 64u);
  EXPECT_DOUBLE_EQ(latent->real("scale"), 0.8);
}

// scale = 0 is LDM's 1/std of the latents (here all 4000 training points: exact);
// the finished autoencoder run of the same plan beside it is reused, not retrained.
TEST(ComponentRuns, TheLatentScaleIsMeasuredAndAFinishedComponentIsReused) {
  TempDir dir;
  dir.file("ae.toml", autoencoder_experiment());
  run_in(dir, "ldm", latent_experiment(0.8));
  const auto trained_at = fs::last_write_time(dir / "ae/ae.h5");
  genfw::RunRequest request;
  request.experiment = dir.file("auto.toml", latent_experiment(0.0, "experiment = \"ae.toml\"", 1.0));
  genfw::Pipeline pipeline(request, registry());
  pipeline.resolve_component_runs(dir.path.string());
  EXPECT_EQ(pipeline.component_run_file("latent"), (dir.path / "ae/ae.h5").string());
  EXPECT_EQ(fs::last_write_time(dir / "ae/ae.h5"), trained_at);
  EXPECT_FALSE(fs::exists(dir / "ae-2"));
  pipeline.components();
  auto data = registry().create<genfw::Dataset>("toy2d", genfw::Kind::dataset, pipeline.config().data.options, {});
  const torch::Tensor x = data->get(torch::arange(data->size())).x.to(torch::kFloat64);
  const double c = std::cos(kAngle), s = std::sin(kAngle);
  const torch::Tensor map = kGain * torch::tensor({c, -s, s, c}, torch::kFloat64).view({2, 2});
  const double expected = 1.0 / x.matmul(map.t()).std().item<double>();
  EXPECT_NEAR(pipeline.config().component_run("latent")->real("scale"), expected, 1e-4 * expected);
}

// The run's stored config, run again as an experiment: what `runner sample` and a re-run see.
std::string rerun_stored(const TempDir& dir, const std::string& run_file) {
  fs::remove_all(dir / "rerun");
  return run_in(dir, "rerun", genfw::RunLog::open(run_file, false).read_string("/config"));
}

// The run's config recorded the digest of the weights it used: an autoencoder run
// trained again (other weights at the same path) is refused, and so is a damaged
// checkpoint and a run whose model is no autoencoder; each message names the run.
TEST(ComponentRuns, AChangedDamagedOrIncapableComponentRunIsRefusedNamingIt) {
  TempDir dir;
  dir.file("ae.toml", autoencoder_experiment());
  const std::string run_file = run_in(dir, "ldm", latent_experiment(0.8));
  const std::string autoencoder = dir / "ae/ae.h5";

  // Trained again with other weights, into the same folder.
  fs::remove_all(dir / "ae");
  genfw::RunRequest retrain;
  retrain.experiment = dir / "ae.toml";
  retrain.overrides = {"model.angle=0.7"};
  retrain.out_dir = dir / "ae";
  genfw::Pipeline(retrain, registry()).run();
  std::string message = error_of([&] { rerun_stored(dir, run_file); });
  EXPECT_CONTAINS(message, "[latent] run = " + fs::absolute(autoencoder).string());
  EXPECT_CONTAINS(message, "weights changed since this run recorded them");

  // Damaged: one byte of its checkpoint flipped.
  fs::remove_all(dir / "ae");
  fs::remove_all(dir / "ldm");
  const std::string fresh = run_in(dir, "ldm", latent_experiment(0.8));
  {
    std::fstream checkpoint(dir / "ae/checkpoint.pt", std::ios::in | std::ios::out | std::ios::binary);
    checkpoint.seekg(100);
    char byte = 0;
    checkpoint.read(&byte, 1);
    checkpoint.seekp(100);
    byte = char(byte ^ 0x40);
    checkpoint.write(&byte, 1);
  }
  message = error_of([&] { rerun_stored(dir, fresh); });
  EXPECT_CONTAINS(message, "[latent] run = " + fs::absolute(autoencoder).string());
  EXPECT_CONTAINS(message, "damaged");

  // A run whose model is no autoencoder.
  const std::string not_an_autoencoder = run_fixture(dir, "fx", fixture_experiment(2));
  genfw::RunRequest request;
  request.experiment = dir.file("wrong.toml", latent_experiment(0.8, "run = \"" + not_an_autoencoder + "\""));
  message = error_of([&] { genfw::Pipeline(request, registry()).components(); });
  EXPECT_CONTAINS(message, "[latent] run = " + not_an_autoencoder);
  EXPECT_CONTAINS(message, "offers no 'latent-variable'");
}

namespace {

// Fashion-MNIST (64 images) at 14×14 for a tiny base stage, and its 28×28 super-resolution stage.
std::string fashion(int64_t resolution) {
  return "[data]\nplugin = \"fashion_mnist\"\nsubset = 64\nresolution = " + std::to_string(resolution) + "\n";
}

const char* kTinyTraining = R"(
[objective]
plugin = "ddpm"
[train]
steps = 2
batch_size = 8
log_every = 1
checkpoint_every = 2
)";

std::string base_experiment(int64_t samples) {
  return "name = \"base\"\nseed = 1\n" + fashion(14) + R"(
[model]
plugin = "ddpm_unet"
ch = 8
ch_mult = [1]
num_res_blocks = 1
attn_resolutions = []
num_train_timesteps = 10
)" + kTinyTraining + R"(
[sampler]
plugin = "ddim"
num_inference_steps = 2
num_samples = )" + std::to_string(samples) + R"(
batch_size = 8
[log]
progress = "off"
)";
}

// The super-resolution stage sampled by 'upsample' (nearest): each sample is its
// condition in 2×2 blocks, so averaging it down gives the condition back exactly.
std::string cascade_experiment(const std::string& condition) {
  return "name = \"cascade\"\nseed = 2\n" + fashion(28) + R"(
[cascade]
experiment = "base.toml"
[model]
plugin = "sr_unet"
low_resolution = 14
ch = 8
ch_mult = [1]
num_res_blocks = 1
attn_resolutions = []
num_train_timesteps = 10
)" + kTinyTraining + R"(
[sampler]
plugin = "upsample"
mode = "nearest"
condition = ")" + condition + R"("
num_samples = 10
batch_size = 4
[log]
progress = "off"
)";
}

torch::Tensor averaged_down(const torch::Tensor& images) { return torch::avg_pool2d(images, 2); }

}  // namespace

TEST(ComponentRuns, ACascadeIsConditionedOnTheBaseRunsSamplesInOrder) {
  TempDir dir;
  dir.file("base.toml", base_experiment(12));
  const std::string run_file = run_in(dir, "cascade", cascade_experiment("auto"));
  genfw::RunLog log = genfw::RunLog::open(run_file, false);
  EXPECT_EQ(log.attribute("/", "cascade_base"), fs::absolute(dir / "base/base.h5").string());
  const torch::Tensor samples = log.read_tensor("/samples");
  ASSERT_EQ(samples.sizes(), (std::vector<int64_t>{10, 1, 28, 28}));
  const torch::Tensor base = genfw::RunLog::open(dir / "base/base.h5", false).read_tensor("/samples");
  EXPECT_TRUE(torch::allclose(averaged_down(samples), base.slice(0, 0, 10), 0, 1e-6));

  // condition = "data": real training images averaged down, evenly spread over the split.
  const std::string on_data = resample(run_file, {"sampler.condition=data"});
  const torch::Tensor conditioned = genfw::RunLog::open(on_data, false).read_tensor("/samples");
  auto images = registry().create<genfw::Dataset>("fashion_mnist", genfw::Kind::dataset,
                                                  genfw::Options::with_defaults(
                                                      registry().find("fashion_mnist", genfw::Kind::dataset).schema,
                                                      "data"),
                                                  {});
  const torch::Tensor real = images->get(torch::round(torch::linspace(0, 63, 10)).to(torch::kLong)).x;
  EXPECT_TRUE(torch::allclose(averaged_down(conditioned), averaged_down(real), 0, 1e-6));
}

TEST(ComponentRuns, ACascadeRefusesABaseWithTooFewSamplesOrTheWrongShape) {
  TempDir dir;
  dir.file("base.toml", base_experiment(6));
  std::string message = error_of([&] { run_in(dir, "cascade", cascade_experiment("cascade")); });
  EXPECT_CONTAINS(message, "[cascade] run = " + fs::absolute(dir / "base/base.h5").string());
  EXPECT_CONTAINS(message, "this run needs 10 low-resolution images of shape [1, 14, 14]");

  // A base stage at the full resolution.
  TempDir other;
  std::string full = base_experiment(12);
  full.replace(full.find("resolution = 14"), 15, "resolution = 28");
  other.file("base.toml", full);
  message = error_of([&] { run_in(other, "cascade", cascade_experiment("cascade")); });
  EXPECT_CONTAINS(message, "of shape [1, 14, 14]");
}
