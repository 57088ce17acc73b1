#include <sys/stat.h>

#include "genfw/sdk.hpp"
#include "support.hpp"

using namespace test_support;

TEST(Registry, LoadsEveryComponentOfALibrary) {
  const auto& registry = fixtures();
  for (auto [name, kind] : {std::pair{"fixture_gaussian", genfw::Kind::dataset}, {"fixture_mean", genfw::Kind::model},
                            {"fixture_nll", genfw::Kind::objective}, {"fixture_prior", genfw::Kind::sampler},
                            {"fixture_mean_error", genfw::Kind::metric}}) {
    const genfw::ComponentInfo* info = registry.try_find(name, kind);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_CONTAINS(info->library, "fixture_components.so");
  }
  EXPECT_EQ(registry.find("fixture_mean", genfw::Kind::model).offers,
            std::vector<genfw::Capability>{genfw::Capability::density});
}

TEST(Registry, RefusesAnotherAbiNamingBothVersionsBeforeCallingTheManifest) {
  genfw::Registry registry;
  // The manifest of this library aborts: reaching it would kill the test.
  std::string message = error_of([&] { registry.load_directory(fixture_dir("wrong_abi")); });
  EXPECT_CONTAINS(message, "wrong_abi/fixture_wrong_abi.so");
  EXPECT_CONTAINS(message, "ABI " + std::to_string(GENFW_ABI_VERSION + 41));
  EXPECT_CONTAINS(message, "this runner has ABI " + std::to_string(GENFW_ABI_VERSION));
}

TEST(Registry, RefusesAnotherLibTorchNamingBothVersions) {
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(fixture_dir("wrong_torch")); });
  EXPECT_CONTAINS(message, "fixture_wrong_torch.so");
  EXPECT_CONTAINS(message, "LibTorch 0.4.1");
  EXPECT_CONTAINS(message, std::string("LibTorch ") + GENFW_TORCH_VERSION_STRING);
}

TEST(Registry, RefusesALibraryWithoutManifest) {
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(fixture_dir("missing_manifest")); });
  EXPECT_CONTAINS(message, "fixture_missing_manifest.so");
  EXPECT_CONTAINS(message, "genfw_plugin_manifest");
}

TEST(Registry, NamesALibraryThatCannotBeLoaded) {
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(fixture_dir("unresolved_symbol")); });
  EXPECT_CONTAINS(message, "cannot load plugin library");
  EXPECT_CONTAINS(message, "unresolved_symbol/fixture_unresolved_symbol.so");
  EXPECT_CONTAINS(message, "genfw_function_of_another_sdk");
}

TEST(Registry, RefusesALibraryWithoutAnyEntryPoint) {
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(fixture_dir("not_a_plugin")); });
  EXPECT_CONTAINS(message, "fixture_not_a_plugin.so");
  EXPECT_CONTAINS(message, "no entry point 'genfw_plugin_abi_version'");
  EXPECT_CONTAINS(message, "not a genfw plugin");
}

TEST(Registry, RefusesAManifestEntryWithoutFactory) {
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(fixture_dir("no_factory")); });
  EXPECT_CONTAINS(message, "fixture_no_factory.so");
  EXPECT_CONTAINS(message, "malformed manifest");
  EXPECT_CONTAINS(message, "sampler 'fixture_no_factory' has no factory");
  EXPECT_EQ(registry.try_find("fixture_no_factory", genfw::Kind::sampler), nullptr);
}

TEST(Registry, RefusesAnEmptyManifest) {
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(fixture_dir("empty_manifest")); });
  EXPECT_CONTAINS(message, "fixture_empty_manifest.so");
  EXPECT_CONTAINS(message, "empty manifest");
}

TEST(Registry, NamesTheLibraryWhoseManifestThrows) {
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(fixture_dir("throwing_manifest")); });
  EXPECT_CONTAINS(message, "fixture_throwing_manifest.so");
  EXPECT_CONTAINS(message, "manifest exploded");
}

TEST(Registry, DuplicateNameNamesBothFiles) {
  genfw::Registry registry;
  registry.load_directory(fixture_dir("good"));
  std::string message = error_of([&] { registry.load_directory(fixture_dir("duplicate")); });
  EXPECT_CONTAINS(message, "'fixture_gaussian'");
  EXPECT_CONTAINS(message, "good/fixture_components.so");
  EXPECT_CONTAINS(message, "duplicate/fixture_duplicate.so");
}

TEST(Registry, UnknownNameSuggestsTheClosest) {
  std::string message = error_of([&] { fixtures().find("fixture_prio", genfw::Kind::sampler); });
  EXPECT_CONTAINS(message, "unknown sampler 'fixture_prio'");
  EXPECT_CONTAINS(message, "did you mean 'fixture_prior'");
}

TEST(Registry, RefusesFoldersWritableByOthersUnlessAllowed) {
  TempDir dir;
  fs::copy_file(fixture_dir("good") + "/fixture_components.so", dir / "fixture_components.so");
  fs::permissions(dir.path, fs::perms::others_write, fs::perm_options::add);
  genfw::Registry registry;
  std::string message = error_of([&] { registry.load_directory(dir.path.string()); });
  EXPECT_CONTAINS(message, "writable by other users");
  EXPECT_CONTAINS(message, "--allow-insecure-plugins");
  genfw::Registry permissive;
  permissive.allow_insecure = true;
  permissive.load_directory(dir.path.string());
  EXPECT_NE(permissive.try_find("fixture_mean", genfw::Kind::model), nullptr);
}

TEST(Registry, ExceptionInsidePluginCodeNamesPluginAndCall) {
  const auto& info = fixtures().find("fixture_prior", genfw::Kind::sampler);
  auto options = genfw::Options::with_defaults(info.schema, "sampler 'fixture_prior'", {{"throw_message", std::string("boom")}});
  auto sampler = fixtures().create<genfw::Sampler>("fixture_prior", genfw::Kind::sampler, options, {});
  genfw::SampleContext context;
  std::string message = error_of([&] { genfw::call_plugin(info, "sample()", [&] { return sampler->sample(context); }); });
  EXPECT_CONTAINS(message, "sampler 'fixture_prior'");
  EXPECT_CONTAINS(message, "fixture_components.so");
  EXPECT_CONTAINS(message, "failed in sample(): boom");
}

TEST(Registry, ObjectsCrossTheBoundaryWithTheirTypes) {
  genfw::BuildContext context;
  context.data.shape = {2};
  const auto& info = fixtures().find("fixture_mean", genfw::Kind::model);
  auto model = fixtures().create<genfw::Model>("fixture_mean", genfw::Kind::model,
                                               genfw::Options::with_defaults(info.schema, "m"), context);
  ASSERT_NE(genfw::as<genfw::DensityModel>(*model), nullptr);
  EXPECT_EQ(genfw::as<genfw::ScoreModel>(*model), nullptr);
  // N(0, I) at 0 in 2-D: log p = -log(2π).
  EXPECT_NEAR(genfw::as<genfw::DensityModel>(*model)->log_prob(torch::zeros({1, 2})).item<double>(), -std::log(2 * M_PI),
              1e-6);
}

// A sampler option named like a framework [sampler] key would be shadowed by the
// framework's value: refused when the plugin registers, naming both and the library.
TEST(Registry, RefusesASamplerOptionNamedLikeAFrameworkSamplerKey) {
  genfw::ComponentInfo info;
  info.name = "shadowed";
  info.kind = genfw::Kind::sampler;
  info.library = "/plugins/shadowed.so";
  info.schema = genfw::Schema().integer("steps", 10, "steps").integer("batch_size", 8, "the sampler's own batch");
  try {
    genfw::check_sampler_options(info);
    ADD_FAILURE() << "expected a genfw::Error";
  } catch (const genfw::Error& e) {
    EXPECT_CONTAINS(e.what(), "/plugins/shadowed.so");
    EXPECT_CONTAINS(e.what(), "sampler 'shadowed' declares an option 'batch_size'");
    EXPECT_CONTAINS(e.what(), "framework [sampler] key");
  }
  info.schema = genfw::Schema().integer("steps", 10, "steps");
  EXPECT_NO_THROW(genfw::check_sampler_options(info));
  info.kind = genfw::Kind::model;  // other kinds have no framework table to collide with
  info.schema = genfw::Schema().integer("batch_size", 8, "a model's own key");
  EXPECT_NO_THROW(genfw::check_sampler_options(info));
}

// "sampler 'x' (lib) failed in its constructor: sampler 'x': ..." named the component twice.
TEST(Registry, APluginFailureNamesTheComponentOnce) {
  EXPECT_EQ(genfw::without_prefix("sampler 'x': option 'steps' must be >= 1", "sampler 'x'"),
            "option 'steps' must be >= 1");
  EXPECT_EQ(genfw::without_prefix("model 'y': bad", "sampler 'x'"), "model 'y': bad");
  const auto& info = fixtures().find("fixture_mean", genfw::Kind::model);
  const std::string message = error_of([&] {
    genfw::call_plugin(info, "its constructor", [&]() -> int { throw genfw::Error("model 'fixture_mean': too wide"); });
  });
  EXPECT_CONTAINS(message, "model 'fixture_mean' (");
  EXPECT_CONTAINS(message, ") failed in its constructor: too wide");
  // Wrapped twice (a constructor call inside another): named once still.
  const std::string twice = error_of([&] {
    genfw::call_plugin(info, "its constructor", [&]() -> int {
      return genfw::call_plugin(info, "its constructor", [&]() -> int { throw genfw::Error("too wide"); });
    });
  });
  EXPECT_EQ(twice.find("failed in its constructor"), twice.rfind("failed in its constructor")) << twice;
}

// A LibTorch error inside a plugin (a shape mismatch) reaches the user and the run's status
// as its message, without the C++ backtrace c10::Error::what() carries.
TEST(Registry, ALibTorchErrorInAPluginIsReportedWithoutItsBacktrace) {
  const auto& info = fixtures().find("fixture_mean", genfw::Kind::model);
  const std::string message = error_of([&] {
    genfw::call_plugin(info, "log_prob()", [&]() -> torch::Tensor { return torch::ones({2, 3}).matmul(torch::ones({2, 3})); });
  });
  EXPECT_CONTAINS(message, ") failed in log_prob(): ");
  EXPECT_CONTAINS(message, "cannot be multiplied");
  EXPECT_EQ(message.find("frame #"), std::string::npos) << message;
  EXPECT_EQ(message.find("Exception raised from"), std::string::npos) << message;
}

// A development build of a built-in plugin on --plugin-path is taken instead of the
// installed one, with a note; two plugin folders offering one name are still refused.
TEST(Registry, APluginPathReplacesTheBuiltInOfTheSameNameWithANote) {
  TempDir dir;
  const fs::path builtin = fs::path(genfw::Registry::builtin_plugin_dir()) / "prior.so";
  ASSERT_TRUE(fs::exists(builtin)) << builtin;
  fs::create_directories(dir / "dev");
  fs::copy_file(builtin, dir / "dev/prior.so");
  genfw::Registry registry;
  testing::internal::CaptureStderr();
  registry.load_search_path({dir / "dev"});
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(registry.find("prior", genfw::Kind::sampler).library, fs::canonical(dir / "dev/prior.so").string());
  EXPECT_CONTAINS(said, "note: sampler 'prior' from " + fs::canonical(dir / "dev/prior.so").string() +
                            " replaces the built-in one");

  fs::create_directories(dir / "dev2");
  fs::copy_file(builtin, dir / "dev2/prior.so");
  genfw::Registry twice;
  testing::internal::CaptureStderr();
  EXPECT_CONTAINS(error_of([&] { twice.load_search_path({dir / "dev", dir / "dev2"}); }), "is taken twice");
  testing::internal::GetCapturedStderr();
}
