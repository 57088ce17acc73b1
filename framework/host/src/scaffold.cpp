// `runner new KIND NAME`: templates of an out-of-tree plugin. Each template is
// a working component (not a stub) so that the folder configures, builds and
// passes its test as written; @NAME@ and @CLASS@ are filled in.
#include "genfw/scaffold.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>

#include "genfw/error.hpp"
#include "genfw/registry.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

const char* kCMakeLists = R"cmake(# The genfw @KIND@ plugin '@NAME@', built against the installed genfw SDK:
#   cmake -S @NAME@ -B @NAME@/build -DCMAKE_PREFIX_PATH=<genfw install prefix>
#   cmake --build @NAME@/build
#   ctest --test-dir @NAME@/build --output-on-failure
# The library lands in @NAME@/build/plugins: pass that folder to
# `runner --plugin-path` (or GENFW_PLUGIN_PATH).
cmake_minimum_required(VERSION 3.18)
project(@NAME@ LANGUAGES CXX)

find_package(genfw REQUIRED)
# More files: SOURCES a.cpp b.cpp; extra libraries: LIBRARIES ...
genfw_add_plugin(@NAME@ SOURCES @NAME@.cpp TESTS test_@NAME@.cpp)
)cmake";

// ---- sampler ---------------------------------------------------------------

const char* kSamplerSource = R"cpp(// @NAME@: a genfw sampler. It starts as annealed Langevin dynamics (Song &
// Ermon 2019, Algorithm 1) so that it works as written on every model with a
// score, learned or derived from a noise predictor. Replace the body of
// sample() with your method, and cite the paper here and in the manifest.
#include <genfw/sdk.hpp>

#include <cmath>
#include <vector>

namespace {

class @CLASS@ : public genfw::Sampler {
 public:
  // The options of the experiment's [sampler] table. The framework validates
  // them (unknown key, type, range), fills in the defaults, logs them and
  // lists them in `runner describe @NAME@`. num_samples and batch_size are
  // the framework's own [sampler] keys.
  static genfw::Schema schema() {
    return genfw::Schema()
        .integer("steps_per_level", 100, "Langevin steps at each noise level of the model", genfw::at_least(1))
        .real("step_size", 0.2, "relative step: the step at level σ is step_size·σ²", genfw::at_least(0.0))
        .merge(genfw::denoiser_schema());  // guidance_scale, discrete_time
  }

  // Built once per run from the validated options; the BuildContext describes
  // the data (shape, range) and the device. Check here what the schema cannot.
  @CLASS@(const genfw::Options& options, const genfw::BuildContext&)
      : options_(options), steps_per_level_(options.integer("steps_per_level")), step_size_(options.real("step_size")) {
    GENFW_CHECK(step_size_ > 0, options.owner(), ": option 'step_size' must be > 0, got ", step_size_);
  }

  // Returns context.num_samples samples [num_samples, data shape...] in data
  // space on context.device. Runs under torch::NoGradGuard (override
  // needs_gradients() to differentiate through the model).
  torch::Tensor sample(genfw::SampleContext& context) override {
    // The model's denoiser D(x, σ) (genfw/denoiser.hpp): its score s(x, σ) ≈
    // ∇x log p_σ(x), the model's own or derived from ε; every call counts one
    // network evaluation (NFE) and lets the run stop there on Ctrl-C.
    auto denoiser = genfw::sampling_denoiser(context, options_);
    // The model's noise levels, descending, read once on the host so that the
    // loop never waits on the device.
    const std::vector<double> sigmas = genfw::host_values(denoiser->levels().sigmas);

    auto options = torch::TensorOptions().dtype(torch::kFloat32).device(context.device);
    torch::Tensor x = context.x_init.defined()
                          ? context.x_init.to(options)
                          : sigmas.front() * context.normal(context.data.shape);
    for (size_t level = 0; level < sigmas.size(); ++level) {
      const double alpha = step_size_ * sigmas[level] * sigmas[level];
      for (int64_t t = 0; t < steps_per_level_; ++t) {
        x = x + 0.5 * alpha * denoiser->score(x, sigmas[level]) + std::sqrt(alpha) * context.normal_like(x);
      }
      // Every sampler reports its steps the same way; the runner logs the
      // first batch's records as the run's trajectory.
      context.report(genfw::StepRecord{int64_t(level), int64_t(sigmas.size()), sigmas[level], x, torch::Tensor()});
    }
    return x;
  }

 private:
  genfw::Options options_;
  int64_t steps_per_level_;
  double step_size_;
};

}  // namespace

// The library's manifest: its components, a one-line summary citing the
// paper, and what each needs from the model, which the runner checks before
// anything is built.
GENFW_PLUGIN(manifest) {
  manifest.add<@CLASS@>("@NAME@", genfw::Kind::sampler, "annealed Langevin dynamics (Song & Ermon 2019, Alg. 1)")
      .require(genfw::Capability::score);
}
)cpp";

const char* kSamplerTest = R"cpp(// Tests of the sampler @NAME@, made through the real plugin boundary from the
// library this project builds: the conformance checks every sampler passes,
// and one target whose samples are known exactly.
#include <gtest/gtest.h>

#include <genfw/testing.hpp>

namespace {

// N(mean, I) in 2-D with its exact noised score −(x − mean)/(1 + σ²): a model
// whose samples are known, defined here so the test needs no other plugin.
class Gaussian : public genfw::Model, public genfw::ScoreModel {
 public:
  explicit Gaussian(double mean) : mean_(mean) {}
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) override {
    return -(x - mean_) / (1 + sigma.to(x.options()).pow(2)).reshape({-1, 1});
  }
  torch::Tensor noise_levels() const override { return genfw::geometric_sigmas(5.0, 0.1, 8); }

 private:
  double mean_;
};

std::unique_ptr<genfw::Sampler> make_sampler() {
  return genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "@NAME@", {}, genfw::testing::context_for({2}));
}

torch::Tensor draw(genfw::Sampler& sampler, genfw::Model& model, int64_t n, int64_t* nfe = nullptr) {
  auto context = genfw::SampleContext::for_model(model, n, genfw::testing::context_for({2}).data);
  torch::Tensor x = genfw::draw(sampler, context);  // as the runner does: grad off, shape checked
  if (nfe) *nfe = context.nfe;
  return x;
}

}  // namespace

TEST(@CLASS@, ShapeSeedAndNfe) {
  Gaussian model(0.0);
  auto sampler = make_sampler();
  int64_t nfe = 0;
  torch::manual_seed(1);
  torch::Tensor a = draw(*sampler, model, 64, &nfe);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{64, 2}));
  EXPECT_TRUE(torch::isfinite(a).all().item<bool>());
  EXPECT_GT(nfe, 0);
  torch::manual_seed(1);
  EXPECT_TRUE(torch::equal(a, draw(*sampler, model, 64))) << "same seed, other samples";
}

// The target at the smallest level σ = 0.1 is N(2, 1.01 I). With 4000 samples
// the mean's standard error is 0.016 and the variance's 0.017; the tolerance
// on the variance leaves room for the sampler's own bias (annealed Langevin
// with the default options ends at 1.075: 100 steps per level do not fully
// forget the larger levels' variance).
TEST(@CLASS@, SamplesAGaussian) {
  torch::manual_seed(0);
  Gaussian model(2.0);
  auto sampler = make_sampler();
  torch::Tensor x = draw(*sampler, model, 4000);
  EXPECT_NEAR(x.mean().item<double>(), 2.0, 0.1);
  EXPECT_NEAR(x.var().item<double>(), 1.01, 0.15);
}

TEST(@CLASS@, DeclaresWhatItNeeds) {
  const genfw::ComponentInfo& info = genfw::testing::find("@NAME@", genfw::Kind::sampler);
  ASSERT_EQ(info.requires_all.size(), 1u);
  EXPECT_EQ(info.requires_all[0], std::vector<genfw::Capability>{genfw::Capability::score});
}
)cpp";

// ---- model -----------------------------------------------------------------

const char* kModelSource = R"cpp(// @NAME@: a genfw model. It starts as a small noise-conditional score network
// s(x, σ) = f([x, log σ]) / σ for flat data (dividing by σ: Song & Ermon 2020,
// technique 3), trainable by the dsm objective and sampled by any sampler that
// needs a score. Replace the network, and offer the capabilities you implement.
#include <genfw/nn.hpp>
#include <genfw/sdk.hpp>

namespace {

// A model is a torch::nn::Module (parameters, checkpoints, to(device)) and
// inherits one interface per capability it offers: here genfw::ScoreModel.
class @CLASS@ : public genfw::Model, public genfw::ScoreModel {
 public:
  // The options of the experiment's [model] table (validated, defaulted,
  // logged, listed by `runner describe @NAME@`).
  static genfw::Schema schema() {
    return genfw::Schema()
        .integer("hidden", 64, "width of each hidden layer", genfw::at_least(1))
        .integer("layers", 2, "number of hidden layers", genfw::at_least(1))
        .real("sigma_begin", 10.0, "largest noise level σ_1", genfw::at_least(0.0))
        .real("sigma_end", 0.1, "smallest noise level σ_L", genfw::at_least(0.0))
        .integer("num_levels", 10, "number L of geometric noise levels", genfw::at_least(1));
  }

  // The BuildContext gives the data's shape (one sample) and the device.
  @CLASS@(const genfw::Options& options, const genfw::BuildContext& context) {
    GENFW_CHECK(options.real("sigma_end") > 0 && options.real("sigma_begin") > options.real("sigma_end"),
                options.owner(), ": options need sigma_begin > sigma_end > 0, got ", options.real("sigma_begin"),
                " and ", options.real("sigma_end"));
    for (int64_t size : context.data.shape) dim_ *= size;
    levels_ = genfw::geometric_sigmas(options.real("sigma_begin"), options.real("sigma_end"),
                                      options.integer("num_levels"));
    net_ = register_module("net", genfw::make_mlp(dim_ + 1, options.integer("hidden"), dim_,
                                                   options.integer("layers"), "silu"));
    to(context.device);
  }

  // x: [N, data shape...] in data space, sigma: [N]. Returns ∇x log p_σ(x), shaped like x.
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) override {
    torch::Tensor flat = x.reshape({x.size(0), dim_});
    torch::Tensor s = sigma.to(flat.options()).reshape({-1, 1}).expand({x.size(0), 1});
    return (net_->forward(torch::cat({flat, s.log()}, 1)) / s).reshape(x.sizes());
  }

  // The levels the model is trained for (what dsm and annealed samplers use), descending.
  torch::Tensor noise_levels() const override { return levels_; }

 private:
  int64_t dim_ = 1;
  torch::Tensor levels_;
  torch::nn::Sequential net_{nullptr};
};

}  // namespace

// The manifest derives the model's capabilities from the interfaces the class
// implements, so that the runner can check a composition before anything is built.
GENFW_PLUGIN(manifest) {
  manifest.add<@CLASS@>("@NAME@", genfw::Kind::model, "noise-conditional score MLP s(x,σ) = f([x, log σ])/σ");
}
)cpp";

const char* kModelTest = R"cpp(// Tests of the model @NAME@, made through the real plugin boundary from the
// library this project builds.
#include <gtest/gtest.h>

#include <genfw/testing.hpp>

namespace {

std::unique_ptr<genfw::Model> make_model() {
  return genfw::testing::make<genfw::Model>(genfw::Kind::model, "@NAME@", {}, genfw::testing::context_for({2}));
}

// Denoising score matching (Vincent 2011), σ²-weighted, written out here so
// that the test needs no objective plugin.
class DenoisingScoreMatching : public genfw::LossObjective {
 public:
  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    genfw::ModelDenoiser denoiser(model);
    torch::Tensor levels = denoiser.levels().sigmas.to(batch.x.options());
    torch::Tensor sigma = levels.index_select(0, torch::randint(levels.size(0), {batch.x.size(0)}, torch::kLong));
    torch::Tensor z = torch::randn_like(batch.x);
    torch::Tensor s = denoiser.score(batch.x + genfw::per_sample(sigma, batch.x) * z, sigma);
    return 0.5 * (genfw::per_sample(sigma, s) * s + z).pow(2).sum(1).mean();
  }
};

}  // namespace

TEST(@CLASS@, ScoreHasTheShapeOfItsInputAndGradientsReachEveryParameter) {
  auto model = make_model();
  auto* score_model = genfw::as<genfw::ScoreModel>(*model);
  ASSERT_NE(score_model, nullptr) << "the class must implement genfw::ScoreModel to offer 'score'";
  torch::Tensor x = torch::randn({5, 2});
  torch::Tensor s = score_model->score(x, score_model->noise_levels().index({torch::arange(5)}).to(torch::kFloat32));
  EXPECT_EQ(s.sizes(), x.sizes());
  s.sum().backward();
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.grad().defined() && p.grad().abs().sum().item<double>() > 0);
  torch::Tensor levels = score_model->noise_levels();
  EXPECT_TRUE((levels.slice(0, 1) < levels.slice(0, 0, -1)).all().item<bool>()) << "levels must descend";
}

// Trained on N((3, 3), 0.5² I) the model must learn that the data lie towards
// (3, 3): at the origin, at a level that covers it, the score points there.
TEST(@CLASS@, LearnsTheDirectionOfTheData) {
  torch::manual_seed(0);
  auto model = make_model();
  DenoisingScoreMatching dsm;
  auto next_batch = [] { return genfw::Batch{3.0 + 0.5 * torch::randn({128, 2}), {}}; };
  double before = 0;
  for (int i = 0; i < 10; ++i) before += dsm.loss(*model, next_batch()).item<double>() / 10;
  double after = genfw::testing::fit(*model, dsm, next_batch, 400, 3e-3).at("model");
  EXPECT_LT(after, 0.7 * before);
  torch::NoGradGuard no_grad;
  torch::Tensor s = genfw::as<genfw::ScoreModel>(*model)->score(torch::zeros({1, 2}), torch::full({1}, 2.0));
  EXPECT_GT(s.min().item<double>(), 0.0) << s;  // exact: 3 / (0.25 + 4) ≈ 0.7 per coordinate
}
)cpp";

// ---- objective -------------------------------------------------------------

const char* kObjectiveSource = R"cpp(// @NAME@: a genfw objective. It starts as denoising score matching over the
// model's noise levels (Vincent 2011; Song & Ermon 2019, Eq. 5–6):
//   ℓ = ½ ‖s(x + σz, σ) + z/σ‖² · σ^anneal_power, one level σ drawn per sample.
// Replace loss() with yours. Objectives with several parameter groups (a GAN's
// generator and discriminator) derive from genfw::Objective and override
// train_step(), calling context.update(group, loss) once per group.
#include <genfw/sdk.hpp>

namespace {

class @CLASS@ : public genfw::LossObjective {
 public:
  // The options of the experiment's [objective] table.
  static genfw::Schema schema() {
    return genfw::Schema().real("anneal_power", 2.0, "weight λ(σ) = σ^anneal_power (2 makes every level O(1))");
  }

  @CLASS@(const genfw::Options& options, const genfw::BuildContext&) : anneal_power_(options.real("anneal_power")) {}

  // Mean loss over the batch, differentiable with respect to the model's
  // parameters; the trainer backpropagates it and steps the optimizer of the
  // parameter group "model". batch.x is in data space, on the run's device.
  torch::Tensor loss(genfw::Model& model, const genfw::Batch& batch) override {
    genfw::ModelDenoiser denoiser(model);  // the model's score, or one derived from ε
    const torch::Tensor& x = batch.x;
    torch::Tensor levels = denoiser.levels().sigmas.to(x.options());
    auto index_options = torch::TensorOptions().dtype(torch::kLong).device(x.device());
    torch::Tensor sigma = levels.index_select(0, torch::randint(levels.size(0), {x.size(0)}, index_options));
    torch::Tensor z = torch::randn_like(x);
    torch::Tensor s = denoiser.score(x + genfw::per_sample(sigma, x) * z, sigma);
    torch::Tensor target = -z / genfw::per_sample(sigma, x);  // ∇ log N(x̃; x, σ²I)
    torch::Tensor squared_error = (s - target).pow(2).reshape({x.size(0), -1}).sum(1);
    return (0.5 * squared_error * sigma.pow(anneal_power_)).mean();
  }

 private:
  double anneal_power_;
};

}  // namespace

// The manifest says what the objective needs from the model; the runner
// refuses a model without it before training starts.
GENFW_PLUGIN(manifest) {
  manifest.add<@CLASS@>("@NAME@", genfw::Kind::objective, "denoising score matching (Vincent 2011; Song & Ermon 2019)")
      .require(genfw::Capability::score);
}
)cpp";

const char* kObjectiveTest = R"cpp(// Tests of the objective @NAME@, made through the real plugin boundary from
// the library this project builds.
#include <gtest/gtest.h>

#include <genfw/testing.hpp>

namespace {

// N(mean, I) with a learnable mean and its exact noised score
// −(x − mean)/(1 + σ²): the objective's minimum is at the data's mean.
class GaussianWithLearnableMean : public genfw::Model, public genfw::ScoreModel {
 public:
  GaussianWithLearnableMean() { mean_ = register_parameter("mean", torch::zeros({2})); }
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) override {
    return -(x - mean_) / (1 + sigma.to(x.options()).pow(2)).reshape({-1, 1});
  }
  torch::Tensor noise_levels() const override { return genfw::geometric_sigmas(2.0, 0.1, 5); }
  torch::Tensor mean_;
};

}  // namespace

TEST(@CLASS@, LossIsAFiniteScalarWithGradients) {
  GaussianWithLearnableMean model;
  auto objective = genfw::testing::make<genfw::LossObjective>(genfw::Kind::objective, "@NAME@");
  torch::Tensor loss = objective->loss(model, {torch::randn({16, 2}), {}});
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  loss.backward();
  EXPECT_TRUE(model.mean_.grad().defined());
}

// Data N((2, −1), I): training the mean must find it, up to the jitter of
// Adam's last steps (about lr) and the batches' noise.
TEST(@CLASS@, TrainsAGaussianToTheDataMean) {
  torch::manual_seed(0);
  GaussianWithLearnableMean model;
  auto objective = genfw::testing::make<genfw::LossObjective>(genfw::Kind::objective, "@NAME@");
  torch::Tensor data_mean = torch::tensor({2.0f, -1.0f});
  genfw::testing::fit(model, *objective, [&] { return genfw::Batch{data_mean + torch::randn({256, 2}), {}}; }, 800, 0.01);
  EXPECT_TRUE(torch::allclose(model.mean_.detach(), data_mean, 0.0, 0.1)) << model.mean_;
}
)cpp";

// ---- metric ----------------------------------------------------------------

const char* kMetricSource = R"cpp(// @NAME@: a genfw metric. It starts as the distance between the mean of the
// samples and the mean of the test split, a first-moment check. Replace
// compute() with yours; say in the provenance how the value was computed, so
// that `runner compare` never puts values computed differently in one column.
#include <genfw/sdk.hpp>

#include <algorithm>
#include <string>

namespace {

class @CLASS@ : public genfw::Metric {
 public:
  // The options of the experiment's [[metrics]] entry.
  static genfw::Schema schema() {
    return genfw::Schema().integer("max_reference", 10000, "at most this many test examples as the reference",
                                   genfw::at_least(1));
  }

  @CLASS@(const genfw::Options& options, const genfw::BuildContext&) : max_reference_(options.integer("max_reference")) {}

  // context.samples: float32 on the CPU in data space; context.test_data: the
  // dataset's test split; context.model: the trained model.
  genfw::MetricResult compute(genfw::MetricContext& context) override {
    GENFW_CHECK(context.test_data != nullptr, "needs the dataset's test split");
    const int64_t n = std::min(max_reference_, context.test_data->size());
    torch::Tensor reference = context.test_data->get(torch::arange(n)).x.to(torch::kFloat64).reshape({n, -1});
    torch::Tensor samples = context.samples.to(torch::kFloat64).reshape({context.samples.size(0), -1});
    const double distance = (samples.mean(0) - reference.mean(0)).norm().item<double>();
    // The first value is the headline of `runner compare`.
    return {{{"@NAME@", distance}},
            {{"estimator", "L2 distance of sample and reference means"},
             {"reference", "test split, first " + std::to_string(n)},
             {"num_samples", std::to_string(samples.size(0))}}};
  }

 private:
  int64_t max_reference_;
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest.add<@CLASS@>("@NAME@", genfw::Kind::metric, "distance between the sample mean and the test-split mean");
}
)cpp";

const char* kMetricTest = R"cpp(// Tests of the metric @NAME@, made through the real plugin boundary from the
// library this project builds.
#include <gtest/gtest.h>

#include <genfw/testing.hpp>

namespace {

// A fixed set of 2-D points, defined here so the test needs no dataset plugin.
class Points : public genfw::Dataset {
 public:
  explicit Points(torch::Tensor x) : x_(std::move(x)) {}
  genfw::DataInfo info() const override { return {"points", {2}}; }
  int64_t size() const override { return x_.size(0); }
  genfw::Batch get(const torch::Tensor& indices) override { return {x_.index_select(0, indices), {}}; }

 private:
  torch::Tensor x_;
};

}  // namespace

// Samples = the reference shifted by (0.3, 0.4): the means are 0.5 apart.
TEST(@CLASS@, MeasuresTheShiftOfTheMean) {
  torch::manual_seed(0);
  Points test_split(torch::randn({500, 2}));
  auto metric = genfw::testing::make<genfw::Metric>(genfw::Kind::metric, "@NAME@");
  genfw::MetricContext context;
  context.test_data = &test_split;
  context.samples = test_split.get(torch::arange(500)).x + torch::tensor({0.3f, 0.4f});
  genfw::MetricResult result = metric->compute(context);
  ASSERT_EQ(result.values.count("@NAME@"), 1u);
  EXPECT_NEAR(result.values.at("@NAME@"), 0.5, 1e-5);
  EXPECT_FALSE(result.provenance.empty());
}
)cpp";

struct Template {
  Kind kind;
  const char* source;
  const char* test;
};

const std::vector<Template>& templates() {
  static const std::vector<Template> all{{Kind::sampler, kSamplerSource, kSamplerTest},
                                         {Kind::model, kModelSource, kModelTest},
                                         {Kind::objective, kObjectiveSource, kObjectiveTest},
                                         {Kind::metric, kMetricSource, kMetricTest}};
  return all;
}

// my_sampler → MySampler.
std::string class_name(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
    } else {
      out += upper ? char(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    }
  }
  return out;
}

std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

}  // namespace

std::vector<Kind> scaffold_kinds() {
  std::vector<Kind> kinds;
  for (const auto& t : templates()) kinds.push_back(t.kind);
  return kinds;
}

Kind parse_scaffold_kind(const std::string& name) {
  std::string known;
  for (Kind kind : scaffold_kinds()) {
    if (name == kind_name(kind)) return kind;
    known += std::string(known.empty() ? "" : ", ") + kind_name(kind);
  }
  throw Error("runner new: unknown kind '" + name + "'; expected one of: " + known);
}

std::vector<std::string> write_plugin_scaffold(Kind kind, const std::string& name, const std::string& parent_dir) {
  // The name becomes a file, a CMake target, a C++ class and a TOML value.
  bool valid = !name.empty() && std::islower(static_cast<unsigned char>(name[0]));
  for (char c : name) valid = valid && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_');
  GENFW_CHECK(valid, "runner new: name '", name, "' must start with a lower-case letter and hold only a-z, 0-9 and _");
  const Template* chosen = nullptr;
  for (const auto& t : templates()) {
    if (t.kind == kind) chosen = &t;
  }
  GENFW_CHECK(chosen != nullptr, "runner new: no template for kind '", kind_name(kind), "'");
  fs::path folder = parent_dir.empty() || parent_dir == "." ? fs::path(name) : fs::path(parent_dir) / name;
  GENFW_CHECK(!fs::exists(folder), "runner new: ", folder.string(), " already exists; choose another name or --dir");
  fs::create_directories(folder);

  const std::map<std::string, std::string> values{{"@NAME@", name}, {"@CLASS@", class_name(name)},
                                                  {"@KIND@", kind_name(kind)}};
  std::vector<std::pair<std::string, const char*>> files{
      {"CMakeLists.txt", kCMakeLists}, {name + ".cpp", chosen->source}, {"test_" + name + ".cpp", chosen->test}};
  std::vector<std::string> written;
  for (const auto& [file, text] : files) {
    fs::path path = folder / file;
    std::ofstream out(path);
    out << fill(text, values);
    GENFW_CHECK(out.good(), "runner new: cannot write ", path.string());
    written.push_back(path.string());
  }
  return written;
}

std::string scaffold_next_steps(const std::string& folder) {
  // <libdir>/genfw/plugins exists only in an installed SDK; its package is in <libdir>/cmake/genfw.
  fs::path package = fs::path(Registry::installed_plugin_dir()).parent_path().parent_path() / "cmake" / "genfw";
  std::string find_sdk = fs::exists(package / "genfwConfig.cmake") ? "-Dgenfw_DIR=" + package.string()
                                                                     : "-DCMAKE_PREFIX_PATH=<genfw install prefix>";
  return "build and test it against the installed SDK:\n  cmake -S " + folder + " -B " + folder + "/build " +
         find_sdk + "\n  cmake --build " + folder + "/build\n  ctest --test-dir " + folder +
         "/build --output-on-failure\nthen load it with --plugin-path " + folder + "/build/plugins\n";
}

}  // namespace genfw
