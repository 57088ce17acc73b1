#include "genfw/config.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

const char* kGood = R"(name = "fixture_run"
seed = 3

[data]
plugin = "fixture_gaussian"
size = 64

[model]
plugin = "fixture_mean"

[objective]
plugin = "fixture_nll"

[train]
steps = 20
batch_size = 16
lr = 0.05

[sampler]
plugin = "fixture_prior"
num_samples = 32

[[metrics]]
plugin = "fixture_mean_error"
)";

// kGood with [sampler] steps = 3, an option of fixture_prior alone.
std::string with_sampler_steps() {
  std::string text = kGood;
  const std::string num_samples = "num_samples = 32\n";
  return text.insert(text.find(num_samples) + num_samples.size(), "steps = 3\n");
}

genfw::ExperimentConfig load(const std::string& path, const std::vector<std::string>& sets = {}) {
  return genfw::load_experiment(path, sets, fixtures());
}

}  // namespace

TEST(Config, LoadsAndFillsDefaults) {
  TempDir dir;
  auto config = load(dir.file("good.toml", kGood));
  EXPECT_EQ(config.name, "fixture_run");
  EXPECT_EQ(config.seed, 3u);
  EXPECT_EQ(config.data.options.integer("size"), 64);
  EXPECT_EQ(config.data.options.integer("dim"), 2);  // default
  EXPECT_EQ(config.train->integer("log_every"), 50);
  EXPECT_EQ(config.sampling.integer("num_samples"), 32);
  EXPECT_FALSE(config.sampler->options.has("num_samples"));  // framework keys are not the plugin's
  ASSERT_EQ(config.metrics.size(), 1u);
}

TEST(Config, MalformedTomlNamesFileLineColumn) {
  TempDir dir;
  std::string path = dir.file("bad.toml", "[data]\nplugin = \"fixture_gaussian\nsize = 3\n");
  std::string message = error_of([&] { load(path); });
  EXPECT_CONTAINS(message, path + ":2:");
  EXPECT_CONTAINS(message, "malformed TOML");
}

TEST(Config, UnknownOptionSuggestsAndNamesLine) {
  TempDir dir;
  std::string text = kGood;
  text.replace(text.find("size = 64"), 9, "sise = 64");
  std::string path = dir.file("typo.toml", text);
  std::string message = error_of([&] { load(path); });
  EXPECT_CONTAINS(message, path + ":6:1");
  EXPECT_CONTAINS(message, "dataset 'fixture_gaussian': unknown option 'sise'");
  EXPECT_CONTAINS(message, "did you mean 'size'?");
}

TEST(Config, WrongTypeNamesExpectedType) {
  TempDir dir;
  std::string text = kGood;
  text.replace(text.find("size = 64"), 9, "size = \"many\"");
  std::string path = dir.file("type.toml", text);
  std::string message = error_of([&] { load(path); });
  EXPECT_CONTAINS(message, path + ":6:8");
  EXPECT_CONTAINS(message, "option 'size' = \"many\" has the wrong type; expected integer >= 1");
}

TEST(Config, OutOfRangeNamesRange) {
  TempDir dir;
  std::string path = dir.file("range.toml", kGood);
  std::string message = error_of([&] { load(path, {"train.batch_size=0"}); });
  EXPECT_CONTAINS(message, "[train]: option 'batch_size' = 0 is out of range; expected integer >= 1");
}

TEST(Config, UnknownPluginListsCandidates) {
  TempDir dir;
  std::string text = kGood;
  text.replace(text.find("\"fixture_prior\""), 15, "\"fixture_prio\"");
  std::string path = dir.file("plugin.toml", text);
  std::string message = error_of([&] { load(path); });
  EXPECT_CONTAINS(message, path + ":20:");
  EXPECT_CONTAINS(message, "unknown sampler 'fixture_prio'; did you mean 'fixture_prior'?");
}

TEST(Config, UnknownTopLevelKeyAndMissingTable) {
  TempDir dir;
  std::string text = "sed = 1\n";  // appended, not `string + const char*`: GCC 12 -Warray-bounds false positive
  text += kGood;
  std::string message = error_of([&] { load(dir.file("top.toml", text)); });
  EXPECT_CONTAINS(message, ":1:1: unknown top-level key 'sed'; did you mean 'seed'?");
  std::string no_model = kGood;
  const std::string model_table = "[model]\nplugin = \"fixture_mean\"\n";
  no_model.replace(no_model.find(model_table), model_table.size(), "");
  message = error_of([&] { load(dir.file("nomodel.toml", no_model)); });
  EXPECT_CONTAINS(message, "missing table [model]");
}

TEST(Config, ExtendsAndSetOverride) {
  TempDir dir;
  dir.file("base.toml", kGood);
  std::string path = dir.file("child.toml", "extends = \"base.toml\"\nname = \"child\"\n[train]\nsteps = 5\n");
  auto config = load(path, {"sampler.num_samples=7", "data.mean=1.5"});
  EXPECT_EQ(config.name, "child");
  EXPECT_EQ(config.train->integer("steps"), 5);
  EXPECT_EQ(config.train->integer("batch_size"), 16);  // from the base
  EXPECT_EQ(config.sampling.integer("num_samples"), 7);
  EXPECT_DOUBLE_EQ(config.data.options.real("mean"), 1.5);
}

TEST(Config, ExtendsListMixesInMetricsAndSetAddressesOneByPlugin) {
  TempDir dir;
  std::string base = kGood;
  base.erase(base.find("[[metrics]]"));
  dir.file("base.toml", base);
  dir.file("metrics.toml", "[[metrics]]\nplugin = \"fixture_mean_error\"\n");
  std::string path = dir.file("child.toml",
                              "extends = [\"base.toml\", \"metrics.toml\"]\n[[metrics]]\nplugin = \"fixture_mean_error\"\n"
                              "provenance_tag = \"own\"\n");
  auto config = load(path);
  ASSERT_EQ(config.metrics.size(), 2u);  // the mixed-in entry, then the file's own
  EXPECT_EQ(config.metrics[1].options.string("provenance_tag"), "own");

  std::string single = dir.file("single.toml", "extends = [\"base.toml\", \"metrics.toml\"]\n");
  auto set = load(single, {"metrics.fixture_mean_error.provenance_tag=\"x\""});
  EXPECT_EQ(set.metrics[0].options.string("provenance_tag"), "x");
  std::string message = error_of([&] { load(single, {"metrics.fid.batch_size=3"}); });
  EXPECT_CONTAINS(message, "no entry with plugin 'fid'");
  message = error_of([&] { load(path, {"metrics.fixture_mean_error.provenance_tag=\"x\""}); });
  EXPECT_CONTAINS(message, "several entries use plugin 'fixture_mean_error'");
}

TEST(Config, SuiteProfilesAndErrors) {
  TempDir dir;
  dir.file("a.toml", kGood);
  std::string suite = dir.file("suite.toml",
                               "[suite]\nname = \"s\"\nexperiments = [\"a.toml\"]\nset = [\"train.steps=2\"]\n"
                               "[suite.profiles.full]\nexperiments = [\"a.toml\", \"a.toml\"]\n");
  EXPECT_TRUE(genfw::is_suite_file(suite));
  EXPECT_FALSE(genfw::is_suite_file(dir / "a.toml"));
  auto cpu = genfw::load_suite(suite, "");
  EXPECT_EQ(cpu.profile, "cpu");
  ASSERT_EQ(cpu.experiments.size(), 1u);
  EXPECT_EQ(cpu.overrides, std::vector<std::string>{"train.steps=2"});
  auto full = genfw::load_suite(suite, "full");
  EXPECT_EQ(full.experiments.size(), 2u);
  EXPECT_EQ(full.overrides, cpu.overrides);  // inherited where the profile is silent
  EXPECT_CONTAINS(error_of([&] { genfw::load_suite(suite, "ful"); }), "unknown profile 'ful'; did you mean 'full'?");
  std::string missing = dir.file("missing.toml", "[suite]\nexperiments = [\"nope.toml\"]\n");
  EXPECT_CONTAINS(error_of([&] { genfw::load_suite(missing, ""); }), "nope.toml does not exist");
  std::string typo = dir.file("typo.toml", "[suite]\nexperiment = [\"a.toml\"]\n");
  EXPECT_CONTAINS(error_of([&] { genfw::load_suite(typo, ""); }),
                  "typo.toml:2:14: unknown suite key 'experiment'; did you mean 'experiments'?");
}

TEST(Config, ResolvedConfigLoadsBackIdentically) {
  TempDir dir;
  auto config = load(dir.file("good.toml", kGood), {"train.groups.model.lr=0.01"});
  std::string resolved = config.resolved_toml();
  EXPECT_CONTAINS(resolved, "dim = 2");
  EXPECT_CONTAINS(resolved, "[train.groups.model]");
  auto again = genfw::load_experiment_text(resolved, "resolved", {}, fixtures());
  EXPECT_EQ(again.resolved_toml(), resolved);
  EXPECT_DOUBLE_EQ(again.optimizer_for("model").lr, 0.01);
  EXPECT_DOUBLE_EQ(again.optimizer_for("other").lr, 0.05);
}

TEST(Config, GroupKeysNotSetInheritTrainValues) {
  TempDir dir;
  auto config = load(dir.file("good.toml", kGood), {"train.groups.model.betas=[0.5, 0.9]"});
  EXPECT_DOUBLE_EQ(config.optimizer_for("model").lr, 0.05);
  EXPECT_DOUBLE_EQ(config.optimizer_for("model").betas[0], 0.5);
}

TEST(Config, ImpossibleCompositionIsOneSentence) {
  TempDir dir;
  std::string text = kGood;
  text.replace(text.find("\"fixture_prior\""), 15, "\"fixture_needs_score\"");
  auto config = load(dir.file("compose.toml", text));
  std::string message = error_of([&] { genfw::check_composition(config, fixtures()); });
  EXPECT_CONTAINS(message, "sampler 'fixture_needs_score' needs capability 'score'; model 'fixture_mean' offers: density");
}

TEST(Config, SetWithBareWordIsAString) {
  TempDir dir;
  std::string message = error_of([&] { load(dir.file("good.toml", kGood), {"data.split=validation"}); });
  EXPECT_CONTAINS(message, "option 'split' = \"validation\" is not allowed; expected string, one of \"train\" \"test\"");
}

// A line break in --set would end the value and parse the rest as other keys, which were dropped.
TEST(Config, SetWithALineBreakOrTwoValuesIsRefused) {
  TempDir dir;
  const std::string file = dir.file("good.toml", kGood);
  EXPECT_CONTAINS(error_of([&] { load(file, {"train.steps=5\ntrain.lr=1"}); }),
                  "--set \"train.steps=5\\ntrain.lr=1\": the assignment holds a line break");
  EXPECT_CONTAINS(error_of([&] { load(file, {"train.steps=5 \r"}); }), "holds a line break");
}

TEST(Options, WithDefaultsChecksOverrides) {
  genfw::Schema schema = genfw::Schema().integer("steps", 10, "", genfw::at_least(1)).reals("sigmas", {1.0}, "");
  auto options = genfw::Options::with_defaults(schema, "sampler 'x'", {{"sigmas", std::vector<int64_t>{3, 2}}});
  EXPECT_EQ(options.reals("sigmas"), (std::vector<double>{3.0, 2.0}));
  EXPECT_EQ(options.integer("steps"), 10);
  EXPECT_CONTAINS(error_of([&] { genfw::Options::with_defaults(schema, "sampler 'x'", {{"step", int64_t(1)}}); }),
                  "unknown option 'step'; did you mean 'steps'?");
  EXPECT_CONTAINS(error_of([&] { options.real("nope"); }), "option 'nope' is not in its schema");
}

TEST(Options, FormatsTomlLiterals) {
  EXPECT_EQ(genfw::format_value(genfw::OptionValue(2.0)), "2.0");
  EXPECT_EQ(genfw::format_value(genfw::OptionValue(genfw::Matrix{{-5, -5}, {5, 5}})), "[[-5.0, -5.0], [5.0, 5.0]]");
  EXPECT_EQ(genfw::format_value(genfw::OptionValue(std::vector<std::string>{"a"})), "[\"a\"]");
}

TEST(Config, AnExtendingFileThatSwitchesThePluginDropsTheOldPluginsOptionsWithANote) {
  TempDir dir;
  const std::string base = dir.file("base.toml", with_sampler_steps());
  const std::string child = dir.file("child.toml", "extends = \"base.toml\"\n[sampler]\nplugin = \"fixture_needs_score\"\n");
  auto config = load(child);
  EXPECT_EQ(config.sampler->plugin, "fixture_needs_score");
  EXPECT_FALSE(config.sampler->options.has("steps"));
  EXPECT_EQ(config.sampling.integer("num_samples"), 32);  // the framework's [sampler] keys stay
  ASSERT_EQ(config.notes.size(), 1u);
  EXPECT_CONTAINS(config.notes[0], child + ":3:");
  EXPECT_CONTAINS(config.notes[0], "'fixture_prior' is replaced by 'fixture_needs_score'");
  EXPECT_CONTAINS(config.notes[0], "steps (" + base + ":");
}

TEST(Config, SetThatSwitchesThePluginDropsTheOldPluginsOptionsAndSameOneKeepsThem) {
  TempDir dir;
  const std::string path = dir.file("good.toml", with_sampler_steps());
  auto switched = load(path, {"sampler.plugin=fixture_needs_score"});
  EXPECT_FALSE(switched.sampler->options.has("steps"));
  ASSERT_EQ(switched.notes.size(), 1u);
  EXPECT_CONTAINS(switched.notes[0], "--set sampler.plugin=fixture_needs_score");
  auto kept = load(path, {"sampler.plugin=fixture_prior"});
  EXPECT_EQ(kept.sampler->options.integer("steps"), 3);
  EXPECT_TRUE(kept.notes.empty());
  // An option for the new plugin given with the switch is its own, whatever the order.
  auto with_option = load(path, {"sampler.plugin=fixture_prior", "sampler.steps=5"});
  EXPECT_EQ(with_option.sampler->options.integer("steps"), 5);
}

TEST(Config, ConfigChangesNameEachKeyThatDiffers) {
  TempDir dir;
  const std::string path = dir.file("good.toml", kGood);
  auto changes = genfw::config_changes(load(path), load(path, {"train.steps=40", "seed=4"}));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].key, "[train] steps");
  EXPECT_EQ(changes[0].before, "20");
  EXPECT_EQ(changes[0].after, "40");
  EXPECT_EQ(changes[1].key, "seed");
}

// All of a file's errors at once, each with its line and column, not the first only.
TEST(Config, EveryErrorOfAFileIsReportedAtOnce) {
  TempDir dir;
  const std::string path = dir.file("many.toml", R"(name = "many"
[data]
plugin = "fixture_gaussian"
size = -3
[model]
plugin = "fixture_mean"
colour = 1
[objective]
plugin = "fixture_nll"
[train]
steps = "ten"
batch_size = 0
)");
  const std::string message = error_of([&] { load(path); });
  EXPECT_CONTAINS(message, "many.toml: 4 errors:");
  EXPECT_CONTAINS(message, "many.toml:4:8: ");         // size = -3
  EXPECT_CONTAINS(message, "many.toml:7:1: ");         // colour: unknown option
  EXPECT_CONTAINS(message, "unknown option 'colour'");
  EXPECT_CONTAINS(message, "many.toml:11:9: ");        // steps = "ten"
  EXPECT_CONTAINS(message, "many.toml:12:14: ");       // batch_size = 0
}
