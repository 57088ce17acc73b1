// `runner import ncsn` (genfw/import_ncsn.hpp) against the original NCSN network:
// plugins/model/ncsn/ncsn_reference.py rebuilt CondRefineNetDilated under the
// reference's parameter names, saved checkpoints as its anneal runner does and
// recorded the network's outputs; here genfw imports those checkpoints into its
// ncsn model and must compute the same. Refusals name what they refuse.
#include <gtest/gtest.h>

#include <fstream>

#include "../data/fixtures/dataset_fixtures.hpp"
#include "genfw/import_ncsn.hpp"
#include "genfw/run.hpp"
#include "genfw/pytorch_checkpoint.hpp"
#include "genfw/run_log.hpp"
#include "genfw/safetensors.hpp"
#include "genfw/sha256.hpp"
#include "genfw/testing.hpp"
#include "support.hpp"
#include "torch_save_writer.hpp"

namespace {

using test_support::error_of;
using test_support::relative_difference;
using test_support::TempDir;
namespace fs = std::filesystem;

// A committed fixture by name, or a folder given by path (ncsn_reference.py --full DIR).
std::string fixture(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  return std::string(GENFW_TEST_SOURCE_DIR) + "/plugins/model/ncsn/ncsn_fixtures/" + name;
}

// The fixtures, and the folder GENFW_NCSN_FOLDER names (a full-size network with its reference).
std::vector<std::string> cases() {
  std::vector<std::string> names{"cifar_like", "mnist_like"};
  if (const char* folder = std::getenv("GENFW_NCSN_FOLDER")) names.push_back(folder);
  return names;
}

std::unique_ptr<genfw::Model> imported(const genfw::ImportedNetwork& plan) {
  auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, "ncsn", plan.model,
                                                  genfw::testing::context_for(plan.sample_shape, 0.0, 1.0));
  genfw::load_ncsn_weights(*model, plan);
  model->eval();
  return model;
}

class NcsnCase : public ::testing::TestWithParam<std::string> {};

// The score at σ_i is the network conditioned on level i: genfw's ncsn picks the level of σ.
TEST_P(NcsnCase, ScoreEqualsTheReferenceNetworkAtEveryLevelAsked) {
  const auto plan = genfw::plan_ncsn_import(fixture(GetParam()) + "/checkpoint.pth");
  auto model = imported(plan);
  const auto ref = genfw::read_safetensors(fixture(GetParam()) + "/reference.safetensors").tensors;
  auto& score_model = dynamic_cast<genfw::ScoreModel&>(*model);
  EXPECT_TRUE(torch::allclose(score_model.noise_levels().to(torch::kFloat64), ref.at("sigmas"), 1e-12, 0));
  torch::NoGradGuard no_grad;
  const auto sigma = ref.at("sigmas").index_select(0, ref.at("labels")).to(torch::kFloat);
  const auto score = score_model.score(ref.at("x"), sigma);
  for (int64_t i = 0; i < score.size(0); ++i) {
    const double d = relative_difference(score[i], ref.at("score")[i]);
    std::cout << GetParam() << ": level " << ref.at("labels")[i].item<int64_t>() << ": worst relative difference "
              << d << "\n";
    EXPECT_LE(d, 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, NcsnCase, ::testing::ValuesIn(cases()));

TEST(ImportNcsn, MapsTheCheckpointsShapeAndTheReferenceConfig) {
  const auto plan = genfw::plan_ncsn_import(fixture("mnist_like") + "/checkpoint.pth");
  EXPECT_EQ(std::get<int64_t>(plan.model.at("ngf")), 4);
  EXPECT_EQ(std::get<int64_t>(plan.model.at("num_levels")), 10);
  EXPECT_EQ(plan.sample_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(std::get<std::string>(plan.data.at("range")), "zero_one");
  EXPECT_EQ(plan.sampler_plugin, "annealed_langevin");
  EXPECT_EQ(plan.weights_sha256, genfw::sha256_of_file(fixture("mnist_like") + "/checkpoint.pth"));
  EXPECT_EQ(genfw::ncsn_reference_name_of("res2_0.norm1.embed.weight"), "res2.0.normalize1.embed.weight");
  EXPECT_EQ(genfw::ncsn_reference_name_of("res2_0.shortcut.weight"), "res2.0.shortcut.conv.weight");
  EXPECT_EQ(genfw::ncsn_reference_name_of("res3_0.shortcut.weight"), "res3.0.shortcut.weight");
  EXPECT_EQ(genfw::ncsn_reference_name_of("refine2.msf.norm1.embed.weight"), "refine2.msf.norms.1.embed.weight");
  EXPECT_EQ(genfw::ncsn_reference_name_of("refine4.output.3_2_conv.weight"), "refine4.output_convs.3_2_conv.weight");
  EXPECT_EQ(genfw::ncsn_reference_name_of("refine1.adapt0.1_1_norm.embed.weight"),
            "refine1.adapt_convs.0.1_1_norm.embed.weight");
}

// A copy of a fixture's network tensors (without DataParallel's prefix), changed, saved again.
std::string changed_checkpoint(const TempDir& dir, const std::function<void(std::map<std::string, torch::Tensor>&)>& change,
                               bool as_list = true) {
  const std::string original = fixture("cifar_like") + "/checkpoint.pth";
  const auto root = genfw::read_pytorch_checkpoint(original);
  auto tensors = genfw::state_dict_tensors(*root->items[0], original, "the first element");
  change(tensors);
  const std::string path = dir / "changed.pth";
  std::ofstream(path, std::ios::binary) << test_support::torch_save_state_dict(tensors, as_list);
  return path;
}

std::string import_error(const std::string& path) {
  return error_of([&] { imported(genfw::plan_ncsn_import(path)); });
}

TEST(ImportNcsn, ReadsAStateDictSavedAloneWithoutDataParallel) {
  TempDir dir;
  const auto path = changed_checkpoint(dir, [](auto& t) {
    std::map<std::string, torch::Tensor> bare;
    for (auto& [name, tensor] : t) bare[name.substr(7)] = tensor;
    t = bare;
  }, false);
  auto model = imported(genfw::plan_ncsn_import(path));
  const auto ref = genfw::read_safetensors(fixture("cifar_like") + "/reference.safetensors").tensors;
  torch::NoGradGuard no_grad;
  const auto sigma = ref.at("sigmas").index_select(0, ref.at("labels")).to(torch::kFloat);
  EXPECT_LE(relative_difference(dynamic_cast<genfw::ScoreModel&>(*model).score(ref.at("x"), sigma), ref.at("score")), 1e-5);
}

TEST(ImportNcsn, RefusesMissingUnexpectedAndMisshapenTensorsNamingThem) {
  TempDir dir;
  auto missing = changed_checkpoint(dir, [](auto& t) { t.erase("module.refine3.crp.convs.1.weight"); });
  auto error = import_error(missing);
  EXPECT_NE(error.find(missing + ": missing tensors the network its config describes needs: refine3.crp.convs.1.weight"),
            std::string::npos) << error;
  auto unexpected = changed_checkpoint(dir, [](auto& t) { t["module.res5.0.conv1.weight"] = torch::zeros({1}); });
  error = import_error(unexpected);
  EXPECT_NE(error.find("unexpected tensors, not part of the network its config describes: res5.0.conv1.weight"),
            std::string::npos) << error;
  auto misshapen = changed_checkpoint(dir, [](auto& t) { t["module.end_conv.bias"] = torch::zeros({4}); });
  error = import_error(misshapen);
  EXPECT_NE(error.find("end_conv.bias is [4], expected [3]"), std::string::npos) << error;
}

TEST(ImportNcsn, RefusesOtherCodesCheckpointsSayingWhich) {
  TempDir dir;
  auto v2 = changed_checkpoint(dir, [](auto& t) { t["module.normalizer.alpha"] = torch::zeros({4}); });
  EXPECT_NE(import_error(v2).find("an NCSNv2 checkpoint (ermongroup/ncsnv2"), std::string::npos);
  test_support::PickleWriter score_sde;  // {'model': {}, 'step': 0}
  score_sde.op('}').string("model").op('}').op('s').string("step").integer(0).op('s');
  const std::string path = dir / "score_sde.pth";
  std::ofstream(path, std::ios::binary) << test_support::torch_save_zip(score_sde.finish(), {});
  EXPECT_NE(import_error(path).find("a score_sde checkpoint"), std::string::npos);
  EXPECT_NE(import_error(fixture("cifar_like") + "/reference.safetensors").find("not a readable torch.save() zip file"),
            std::string::npos);
  auto not_ncsn = changed_checkpoint(dir, [](auto& t) { t.erase("module.begin_conv.weight"); });
  EXPECT_NE(import_error(not_ncsn).find("no tensor begin_conv.weight: not a checkpoint of NCSN's CondRefineNetDilated"),
            std::string::npos);
}

// The imported run is a run: `runner sample` draws from it and compare lists it.
TEST(ImportNcsn, WritesARunThatSamplesAndComparesLikeATrainedOne) {
  TempDir dir;
  torch::manual_seed(3);
  genfw::fixtures::write_cifar10(dir / "cifar", torch::randint(0, 256, {20, 3, 32, 32}), torch::randint(0, 10, {20}),
                                 torch::randint(0, 256, {10, 3, 32, 32}), torch::randint(0, 10, {10}));
  genfw::ImportRequest request{fixture("cifar_like") + "/checkpoint.pth", dir / "ncsn_cifar",
                               "", {"data.path=\"" + dir / "cifar" + "\""}};
  const std::string run_file = genfw::import_ncsn(request, test_support::builtins());
  {
    auto log = genfw::RunLog::open(run_file, false);
    EXPECT_EQ(log.attribute("/", "status"), "completed");
    EXPECT_EQ(log.attribute("/", "model"), "ncsn");
    EXPECT_EQ(log.attribute("/", "imported_weights_sha256"), genfw::sha256_of_file(request.source));
    const std::string config = log.read_string("/config");
    EXPECT_NE(config.find("range = \"zero_one\""), std::string::npos) << config;
    EXPECT_NE(config.find("plugin = \"annealed_langevin\""), std::string::npos);
  }
  genfw::RunRequest sample;
  sample.parent_run = run_file;
  sample.overrides = {"sampler.steps_per_level=2", "sampler.num_samples=4", "sampler.batch_size=4"};
  sample.out_dir = dir / "langevin";
  const std::string sampled = genfw::run_experiment(sample, test_support::builtins());
  auto log = genfw::RunLog::open(sampled, false);
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  EXPECT_EQ(log.read_tensor("/samples").sizes(), (std::vector<int64_t>{4, 3, 32, 32}));
  std::ostringstream table, notes;
  genfw::write_comparison({run_file, sampled}, {}, table, notes);
  EXPECT_NE(table.str().find("ncsn_cifar"), std::string::npos) << table.str();
}

// --experiment: the file's data, sampler, features and metrics; its [model] the mapping.
TEST(ImportNcsn, TakesAnExperimentFilesTablesAroundTheMappedModel) {
  TempDir dir;
  genfw::ImportRequest request{fixture("cifar_like") + "/checkpoint.pth", dir / "pretrained",
                               std::string(GENFW_TEST_SOURCE_DIR) + "/experiments/ncsn_cifar_pretrained.toml",
                               {"sampler.num_samples=1000"}};
  const std::string run_file = genfw::import_ncsn(request, test_support::builtins());
  const std::string config = genfw::RunLog::open(run_file, false).read_string("/config");
  EXPECT_NE(config.find("ngf = 4\n"), std::string::npos) << config;  // the checkpoint's, not the file's 128
  EXPECT_NE(config.find("range = \"zero_one\""), std::string::npos);
  EXPECT_NE(config.find("plugin = \"inception_score\""), std::string::npos);
  EXPECT_NE(config.find("num_samples = 1000\n"), std::string::npos);  // the user's --set wins
  EXPECT_NE(config.find("step_size = 2e-5\n"), std::string::npos);
}

}  // namespace
