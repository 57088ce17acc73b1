// The one pipeline with the built-in plugins: classifier guidance wired from
// TOML, a training-only run, and the features shared by the sample metrics.
#include <filesystem>

#include "genfw/pipeline.hpp"
#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

// Two labelled modes at (∓2, 0), std 0.5: the classifier's task is easy, and a
// sample's mode is its nearest mean.
const std::string kData = two_mode_mixture_data(2000);

std::string classifier_experiment() {
  return std::string(R"(name = "toy_classifier"
seed = 1
)") + kData + R"(
[model]
plugin = "noisy_classifier"
width = 32
layers = 2
num_train_timesteps = 100
[objective]
plugin = "noisy_classifier"
[train]
steps = 300
batch_size = 128
lr = 3e-3
log_every = 100
checkpoint_every = 300
[log]
progress = "off"
)";
}

// The exact ε of the same mixture (nothing to train), sampled by DDIM with
// classifier guidance toward classes 0, 1, 0, 1, ...
std::string guided_experiment(double scale) {
  return std::string(R"(name = "toy_guided"
seed = 2
)") + kData + two_mode_mixture_eps_model(100) + R"(
[sampler]
plugin = "ddim"
num_inference_steps = 50
guidance_scale = )" + std::to_string(scale) + R"(
num_samples = 400
batch_size = 150
[guidance]
experiment = "classifier.toml"
[log]
progress = "off"
)";
}

// Fraction of samples nearest the mean of the class they were drawn for.
double fraction_on_requested_mode(const std::string& run_file) {
  genfw::RunLog log = genfw::RunLog::open(run_file, false);
  auto x = log.read_tensor("/samples");
  auto labels = log.read_tensor("/sample_labels").to(torch::kLong);
  auto nearest = (x.select(1, 0) > 0).to(torch::kLong);
  return nearest.eq(labels).to(torch::kFloat64).mean().item<double>();
}

}  // namespace

// [guidance] experiment = FILE trains the classifier first, beside the run's
// folder; the run names it, stores it as `run = ...` (so a re-sample reuses it),
// and guidance moves the samples to the requested modes: ≈ 0.5 unguided
// (binomial sd 0.025 at n = 400), > 0.9 at s = 4.
TEST(Pipeline, ClassifierGuidanceFromAnExperimentFile) {
  TempDir dir;
  dir.file("classifier.toml", classifier_experiment());
  genfw::RunRequest request;
  request.experiment = dir.file("guided.toml", guided_experiment(4.0));
  request.out_dir = dir / "guided";
  const std::string guided = genfw::Pipeline(request, builtins()).run();
  EXPECT_TRUE(fs::exists(dir / "toy_classifier/toy_classifier.h5"));
  genfw::RunLog log = genfw::RunLog::open(guided, false);
  EXPECT_CONTAINS(log.attribute("/", "guidance_classifier"), "toy_classifier.h5");
  EXPECT_CONTAINS(log.read_string("/config"), "toy_classifier.h5");
  const double on_mode = fraction_on_requested_mode(guided);

  request.experiment = dir.file("unguided.toml", guided_experiment(0.0));
  request.out_dir = dir / "unguided";
  const double unguided = fraction_on_requested_mode(genfw::Pipeline(request, builtins()).run());
  std::cout << "on the requested mode: unguided " << unguided << ", guided (s = 4) " << on_mode << "\n";
  EXPECT_NEAR(unguided, 0.5, 0.1);
  EXPECT_GT(on_mode, 0.9);

  // The stored config names the trained classifier, so re-sampling reuses it.
  genfw::ExperimentConfig stored =
      genfw::load_experiment_text(log.read_string("/config"), guided, {}, builtins());
  const genfw::Options* guidance = stored.component_run("guidance");
  ASSERT_NE(guidance, nullptr);
  EXPECT_EQ(guidance->string("experiment"), "");
  EXPECT_CONTAINS(guidance->string("run"), "toy_classifier.h5");
  EXPECT_EQ(guidance->string("sha256").size(), 64u);
}

// The classifier of a [guidance] experiment is resolved before it is built and
// trained into a folder the caller names (run() names the run's own), never
// into ./runs: outside run(), sampling refuses until it is resolved, naming the
// remedy, and trains nothing.
TEST(Pipeline, GuidanceClassifierIsTrainedOnlyIntoTheFolderItIsResolvedInto) {
  TempDir dir;
  dir.file("classifier.toml", classifier_experiment());
  genfw::RunRequest request;
  request.experiment = dir.file("guided.toml", guided_experiment(4.0));
  genfw::Pipeline pipeline(request, builtins());
  const std::string message = error_of([&] { pipeline.sample(); });
  EXPECT_CONTAINS(message, "[guidance] experiment = \"classifier.toml\"");
  EXPECT_CONTAINS(message, "[guidance] run = \"FILE.h5\"");
  EXPECT_FALSE(fs::exists("runs/toy_classifier"));
  pipeline.resolve_component_runs(dir / "folder");
  const std::string run_file = pipeline.component_run_file("guidance");
  EXPECT_EQ(run_file, dir / "folder/toy_classifier/toy_classifier.h5");
  EXPECT_TRUE(fs::exists(run_file));
  EXPECT_FALSE(fs::exists("runs/toy_classifier"));
  EXPECT_EQ(pipeline.sample().samples.size(0), 400);
}

// Capabilities come from the classes: the manifest of every built-in model
// lists exactly the interfaces an instance implements.
TEST(Pipeline, ModelCapabilitiesAgreeWithTheirInterfaces) {
  for (const auto* info : builtins().components()) {
    if (info->kind != genfw::Kind::model) continue;
    EXPECT_FALSE(info->offers.empty()) << info->name << " offers nothing";
  }
  genfw::BuildContext context;
  context.data.shape = {2};
  context.data.num_classes = 2;
  const auto& info = builtins().find("noisy_classifier", genfw::Kind::model);
  auto model = builtins().create<genfw::Model>("noisy_classifier", genfw::Kind::model,
                                               genfw::Options::with_defaults(info.schema, "model"), context);
  EXPECT_EQ(info.offers, std::vector<genfw::Capability>{genfw::Capability::classifier});
  EXPECT_NE(genfw::as<genfw::NoisyClassifier>(*model), nullptr);
}

// A metric that scores samples in an experiment without [sampler] fails before training.
TEST(Pipeline, SampleMetricWithoutSamplerFailsBeforeTraining) {
  TempDir dir;
  std::string text = classifier_experiment() + "\n[features]\nextractor = \"identity\"\n[[metrics]]\nplugin = \"fid\"\n";
  genfw::RunRequest request;
  request.experiment = dir.file("c.toml", text);
  request.out_dir = dir / "c";
  std::string message = error_of([&] { genfw::Pipeline(request, builtins()).run(); });
  EXPECT_CONTAINS(message, "metric 'fid' scores samples, but the experiment has no [sampler]");
  EXPECT_FALSE(fs::exists(dir / "c/toy_classifier.h5"));
}

// The feature extractor is built before the run file exists: a missing TorchScript file fails
// at once, not after the training (and leaves no run behind).
TEST(Pipeline, AnExtractorThatCannotBeBuiltFailsBeforeTraining) {
  TempDir dir;
  const std::string text = "name = \"mixture\"\n" + two_mode_mixture_data(200) + two_mode_mixture_eps_model(50) +
                           "[sampler]\nplugin = \"ddpm\"\nnum_samples = 20\n[features]\nextractor = \"torchscript\"\n"
                           "torchscript_path = \"" + dir / "missing.pt" + "\"\n[[metrics]]\nplugin = \"fid\"\n";
  genfw::RunRequest request;
  request.experiment = dir.file("m.toml", text);
  request.out_dir = dir / "m";
  EXPECT_CONTAINS(error_of([&] { genfw::Pipeline(request, builtins()).run(); }),
                  "option 'torchscript_path' = \"" + dir / "missing.pt" + "\" does not exist");
  EXPECT_FALSE(fs::exists(dir / "m/mixture.h5"));
}
