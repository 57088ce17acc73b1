// The experiment files shipped in experiments/ and examples/: every one, every
// suite profile and every [sweep] value resolves with the built-in plugins as
// the runner resolves it before any work, and the *_cifar.toml files do what
// their header comments say.
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>

#include "genfw/config.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

const fs::path kSource = GENFW_TEST_SOURCE_DIR;

// What stops `path` with `overrides` from running, as the runner checks it
// before any work (and as a run file's stored config is read back), or "".
std::string resolution_error(const std::string& path, const std::vector<std::string>& overrides) {
  try {
    const genfw::ExperimentConfig config = genfw::load_experiment(path, overrides, builtins());
    genfw::check_composition(config, builtins());
    genfw::load_experiment_text(config.resolved_toml(), path + " (stored)", {}, builtins());
    for (const auto& [key, values] : config.sweep) {
      for (const auto& value : values) {
        std::vector<std::string> variant = overrides;
        variant.push_back(key + "=" + value);
        genfw::check_composition(genfw::load_experiment(path, variant, builtins()), builtins());
      }
    }
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::vector<std::string> profiles_of(const std::string& suite_file) {
  std::vector<std::string> names{"cpu"};
  const toml::table root = toml::parse_file(suite_file);
  if (const toml::table* profiles = root["suite"]["profiles"].as_table()) {
    for (auto&& [name, table] : *profiles) names.emplace_back(name.str());
  }
  return names;
}

std::vector<fs::path> tomls_in(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The leading '#' lines of an experiment file, lower-cased.
std::string header_of(const fs::path& file) {
  std::istringstream lines(text_of(file.string()));
  std::string header;
  for (std::string line; std::getline(lines, line) && line.rfind('#', 0) == 0;) header += line + "\n";
  std::transform(header.begin(), header.end(), header.begin(), [](unsigned char c) { return std::tolower(c); });
  return header;
}

const genfw::Options& table_of(const genfw::ExperimentConfig& config, const std::string& table, const std::string& key) {
  if (table == "data") return config.data.options;
  if (table == "model") return config.model.options;
  if (table == "objective") return config.objective->options;
  if (table == "train") return *config.train;
  return config.sampling.has(key) ? config.sampling : config.sampler->options;
}

// A header phrase and the resolved value it promises.
struct Claim {
  std::string phrase, table, key;
  genfw::OptionValue value;
};

using Ints = std::vector<int64_t>;
using Reals = std::vector<double>;

const std::map<std::string, std::vector<Claim>>& cifar_claims() {
  static const std::map<std::string, std::vector<Claim>> claims{
      {"ddpm_cifar.toml",
       {{"t = 1000", "model", "num_train_timesteps", int64_t(1000)},
        {"linear β 1e-4 → 0.02", "model", "beta_schedule", std::string("linear")},
        {"linear β 1e-4 → 0.02", "model", "beta_start", 1e-4},
        {"linear β 1e-4 → 0.02", "model", "beta_end", 0.02},
        {"u-net ch 128", "model", "ch", int64_t(128)},
        {"ch_mult [1, 2, 2, 2]", "model", "ch_mult", Ints{1, 2, 2, 2}},
        {"2 res blocks", "model", "num_res_blocks", int64_t(2)},
        {"attention at 16×16", "model", "attn_resolutions", Ints{16}},
        {"dropout 0.1", "model", "dropout", 0.1},
        {"adam lr 2e-4", "train", "lr", 2e-4},
        {"batch 128", "train", "batch_size", int64_t(128)},
        {"warm-up 5000", "train", "warmup_steps", int64_t(5000)},
        {"grad clip 1", "train", "grad_clip", 1.0},
        {"ema 0.9999", "train", "ema_decay", 0.9999},
        {"800k steps", "train", "steps", int64_t(800000)},
        {"σ² = β (fixed_large", "sampler", "variance", std::string("fixed_large")},
        {"on 50k samples", "sampler", "num_samples", int64_t(50000)}}},
      {"gan_cifar.toml",
       {{"z ∈ r^100", "model", "latent_dim", int64_t(100)},
        {"ngf = ndf = 64", "model", "ngf", int64_t(64)},
        {"ngf = ndf = 64", "model", "ndf", int64_t(64)},
        {"batch norm in both", "model", "discriminator_norm", std::string("batch")},
        {"adam lr 2e-4", "train", "lr", 2e-4},
        {"β = (0.5, 0.999)", "train", "betas", Reals{0.5, 0.999}},
        {"batch 128", "train", "batch_size", int64_t(128)},
        {"non-saturating loss", "objective", "loss", std::string("non_saturating")}}},
      {"ncsn_cifar.toml",
       {{"ngf = 128", "model", "ngf", int64_t(128)},
        {"l = 10 geometric levels 1 → 0.01", "model", "num_levels", int64_t(10)},
        {"l = 10 geometric levels 1 → 0.01", "model", "sigma_begin", 1.0},
        {"l = 10 geometric levels 1 → 0.01", "model", "sigma_end", 0.01},
        {"λ(σ) = σ²", "objective", "anneal_power", 2.0},
        {"adam lr 1e-3", "train", "lr", 1e-3},
        {"batch 128", "train", "batch_size", int64_t(128)},
        {"200k iterations", "train", "steps", int64_t(200000)},
        {"annealed langevin t = 100", "sampler", "steps_per_level", int64_t(100)},
        {"ε = 2e-5", "sampler", "step_size", 2e-5},
        {"data in [0, 1]", "data", "range", std::string("zero_one")}}},
      {"realnvp_cifar.toml",
       {{"8 blocks", "model", "num_blocks", int64_t(8)},
        {"64 feature maps", "model", "hidden", int64_t(64)},
        {"(2 scales)", "model", "num_scales", int64_t(2)},
        {"batch\n# normalisation", "model", "norm", std::string("batch")},
        {"affine couplings", "model", "coupling", std::string("affine")},
        {"logit(0.05 + 0.9·x)", "model", "logit_alpha", 0.05},
        {"dequantised pixels", "model", "dequantize", true},
        {"lr 1e-3", "train", "lr", 1e-3},
        {"batch 64", "train", "batch_size", int64_t(64)},
        {"l2 5e-5", "train", "weight_decay", 5e-5}}},
      {"glow_cifar.toml",
       {{"--n_level 3", "model", "levels", int64_t(3)},
        {"--depth 32", "model", "steps_per_level", int64_t(32)},
        {"width 512", "model", "hidden", int64_t(512)},
        {"--flow_permutation 2 (1x1 conv)", "model", "permutation", std::string("conv1x1")},
        {"--flow_coupling 1 (affine)", "model", "coupling", std::string("affine")},
        {"--lr 0.001", "train", "lr", 1e-3},
        {"minibatch 512", "train", "batch_size", int64_t(512)},
        {"differences: adam", "train", "optimizer", std::string("adam")}}},
      {"pixelcnn_cifar.toml",
       {{"5 gated resnet blocks per resolution", "model", "num_resnet", int64_t(5)},
        {"160 filters", "model", "filters", int64_t(160)},
        {"10 logistic mixture components", "model", "mixtures", int64_t(10)},
        {"dropout 0.5", "model", "dropout", 0.5},
        {"adam lr 1e-3", "train", "lr", 1e-3},
        {"= 128", "train", "batch_size", int64_t(128)},
        {"polyak averaging 0.9995", "train", "ema_decay", 0.9995}}},
      {"vae_cifar.toml",
       {{"discretized-logistic decoder", "model", "likelihood", std::string("discretized_logistic")},
        {"128-d latent", "model", "latent_dim", int64_t(128)},
        {"conv 64", "model", "channels", int64_t(64)},
        {"fc 512", "model", "hidden", int64_t(512)}}}};
  return claims;
}

}  // namespace

TEST(ShippedExperiments, EveryExperimentSuiteProfileAndSweepValueResolves) {
  int resolved = 0;
  for (const fs::path& file : tomls_in(kSource / "experiments")) {
    if (genfw::is_suite_file(file.string())) {
      for (const auto& profile : profiles_of(file.string())) {
        const genfw::SuiteConfig suite = genfw::load_suite(file.string(), profile);
        for (const auto& member : suite.experiments) {
          EXPECT_EQ(resolution_error(member, suite.overrides), "") << file << " --profile " << profile;
          ++resolved;
        }
      }
    } else {
      EXPECT_EQ(resolution_error(file.string(), {}), "") << file;
      ++resolved;
    }
  }
  EXPECT_GE(resolved, 36);  // 26 experiments and the benchmark's 2 profiles of 5 members (December 2026)
}

// The examples use plugins built outside the tree (tests/sdk_install_test.sh builds
// them and runs each example): here everything else in them must resolve.
TEST(ShippedExperiments, ExamplesResolveButForTheirOwnOutOfTreePlugin) {
  int examples = 0;
  for (const auto& entry : fs::directory_iterator(kSource / "examples")) {
    if (!entry.is_directory()) continue;
    const std::string own_plugin = entry.path().filename().string();
    for (const fs::path& file : tomls_in(entry.path())) {
      ++examples;
      const std::string error = resolution_error(file.string(), {});
      if (error.empty()) continue;
      EXPECT_CONTAINS(error, "unknown sampler '" + own_plugin + "'");
      EXPECT_EQ(error.find("unknown option"), std::string::npos) << error;
    }
  }
  EXPECT_GE(examples, 1);
}

TEST(ShippedExperiments, SwitchingTheSamplerOfAnExperimentDropsTheOldOnesOptions) {
  const std::string score_toy = (kSource / "experiments/score_toy2d.toml").string();
  EXPECT_EQ(resolution_error(score_toy, {"sampler.plugin=ode"}), "");
  const auto config = genfw::load_experiment(score_toy, {"sampler.plugin=ode"}, builtins());
  EXPECT_FALSE(config.sampler->options.has("init"));
  EXPECT_EQ(config.sampling.integer("num_samples"), 2000);  // the framework's [sampler] keys stay
  ASSERT_EQ(config.notes.size(), 1u);
  EXPECT_CONTAINS(config.notes[0], "init (" + score_toy + ":");
}

// The main job's GPU profile, as the README advertises it: before, refused at
// once (full/ddpm.toml inherited ddim's eta into the ddpm sampler).
TEST(ShippedExperiments, TheBenchmarksFullProfileResolvesOnTheCommandLine) {
  TempDir dir;
  const std::string log = dir / "print.txt";
  const pid_t runner = start_runner(
      {(kSource / "experiments/benchmark_fashion.toml").string(), "--profile", "full", "--print-config"}, {}, log);
  ASSERT_EQ(wait_for(runner), 0) << text_of(log);
  EXPECT_CONTAINS(text_of(log), "name = \"bench_full_ddpm\"");
  EXPECT_CONTAINS(text_of(log), "[sampler] plugin 'ddim' is replaced by 'ddpm', so the options set for 'ddim' are "
                                "dropped: clip_sample (");
}

TEST(ShippedExperiments, TheDataRangeIsTheOneTheHeaderStates) {
  int checked = 0;
  for (const fs::path& file : tomls_in(kSource / "experiments")) {
    if (genfw::is_suite_file(file.string())) continue;
    const genfw::ExperimentConfig config = genfw::load_experiment(file.string(), {}, builtins());
    if (!config.data.options.has("range")) continue;
    const std::string header = header_of(file), range = config.data.options.string("range");
    if (header.find("data in [0, 1]") != std::string::npos) {
      EXPECT_EQ(range, "zero_one") << file;
    }
    if (header.find("data in [-1, 1]") != std::string::npos) {
      EXPECT_EQ(range, "minus_one_one") << file;
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(ShippedExperiments, EachCifarExperimentDoesWhatItsHeaderSays) {
  int files = 0;
  for (const fs::path& file : tomls_in(kSource / "experiments")) {
    const std::string name = file.filename().string();
    if (name.size() < 11 || name.compare(name.size() - 11, 11, "_cifar.toml") != 0) continue;
    ++files;
    auto claims = cifar_claims().find(name);
    ASSERT_NE(claims, cifar_claims().end()) << name << ": add what its header states to cifar_claims()";
    const std::string header = header_of(file);
    const genfw::ExperimentConfig config = genfw::load_experiment(file.string(), {}, builtins());
    for (const Claim& claim : claims->second) {
      EXPECT_CONTAINS(header, claim.phrase);
      const genfw::Options& options = table_of(config, claim.table, claim.key);
      ASSERT_TRUE(options.has(claim.key)) << name << ": [" << claim.table << "] " << claim.key;
      EXPECT_EQ(genfw::format_value(options.values().at(claim.key)), genfw::format_value(claim.value))
          << name << ": the header says \"" << claim.phrase << "\"; [" << claim.table << "] " << claim.key;
    }
  }
  EXPECT_EQ(files, 7);
}
