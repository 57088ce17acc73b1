// `runner import diffusers` (genfw/import_diffusers.hpp) against diffusers itself:
// plugins/model/ddpm_unet/diffusers_reference.py saved small UNet2DModels with
// random weights and recorded diffusers' outputs; here genfw imports the saved
// folders and must compute the same. Refusals name what they refuse.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "../data/fixtures/dataset_fixtures.hpp"
#include "genfw/import_diffusers.hpp"
#include "genfw/json.hpp"
#include "genfw/run_log.hpp"
#include "genfw/safetensors.hpp"
#include "genfw/sha256.hpp"
#include "genfw/testing.hpp"
#include "support.hpp"

namespace {

using test_support::error_of;
using test_support::relative_difference;
using test_support::TempDir;
namespace fs = std::filesystem;

// A committed fixture by name, or a folder given by path.
std::string fixture(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  return std::string(GENFW_TEST_SOURCE_DIR) + "/plugins/model/ddpm_unet/diffusers_fixtures/" + name;
}

// The fixtures, and a folder with its reference.safetensors (diffusers_reference.py --full
// or --record: a full-size network) when GENFW_DIFFUSERS_FOLDER names one.
std::vector<std::string> cases() {
  std::vector<std::string> names{"cifar_like", "gray_variant"};
  if (const char* folder = std::getenv("GENFW_DIFFUSERS_FOLDER")) names.push_back(folder);
  return names;
}

std::map<std::string, torch::Tensor> reference(const std::string& name) {
  return genfw::read_safetensors(fixture(name) + "/reference.safetensors").tensors;
}

std::unique_ptr<genfw::Model> imported(const genfw::DiffusersPlan& plan) {
  auto model = genfw::testing::make<genfw::Model>(genfw::Kind::model, "ddpm_unet", plan.model,
                                                  genfw::testing::context_for(plan.sample_shape));
  genfw::load_diffusers_weights(*model, plan);
  model->eval();  // diffusers' references are in eval mode: no dropout
  return model;
}

class DiffusersCase : public ::testing::TestWithParam<std::string> {};

TEST_P(DiffusersCase, NetworkOutputEqualsDiffusersAtEveryTimestep) {
  const auto plan = genfw::plan_diffusers_import(fixture(GetParam()));
  auto model = imported(plan);
  auto ref = reference(GetParam());
  auto* eps_model = dynamic_cast<genfw::NoisePredictor*>(model.get());
  ASSERT_NE(eps_model, nullptr);
  torch::NoGradGuard no_grad;
  const auto eps = eps_model->predict(ref.at("x"), ref.at("t"), {});
  for (int64_t i = 0; i < ref.at("t").size(0); ++i) {  // t = 0, 10, 500, 999
    const double d = relative_difference(eps[i], ref.at("eps")[i]);
    std::cout << GetParam() << ": t = " << ref.at("t")[i].item<int64_t>() << ": worst relative difference " << d << "\n";
    EXPECT_LE(d, 1e-5) << "t = " << ref.at("t")[i].item<int64_t>();
  }
}

TEST_P(DiffusersCase, DdimFromTheSameNoiseEqualsDdimPipeline) {
  const auto plan = genfw::plan_diffusers_import(fixture(GetParam()));
  auto model = imported(plan);
  auto ref = reference(GetParam());
  // DDIMScheduler.from_config(the DDPMScheduler's): leading spacing, ᾱ_final = 1, clip_sample
  // as the scheduler's; DDIMPipeline steps with the network's ε (use_clipped_model_output None).
  auto sampler = genfw::testing::make<genfw::Sampler>(
      genfw::Kind::sampler, "ddim",
      {{"num_inference_steps", int64_t(10)}, {"eta", 0.0}, {"clip_sample", plan.sampler.at("clip_sample")},
       {"clipped_model_output", false}});
  const auto& x_T = ref.at("ddim_x_T");
  const auto x0 = genfw::testing::run_sampler(*sampler, *model, x_T.size(0), plan.sample_shape, x_T);
  const double d = relative_difference(x0, ref.at("ddim_x0"));
  const auto image = (x0 / 2 + 0.5).clamp(0, 1).permute({0, 2, 3, 1});
  const double image_d = (image - ref.at("ddim_image")).abs().max().item<double>();
  // Float tolerance: diffusers' own float32 loop against its float64 loop. With clip_sample
  // a random network's DDIM amplifies rounding (clamped x0 switches), to ~3e-4 here; stepping
  // with the clipped x0's ε instead (genfw's default) differs by ~2 (relative).
  const double spread = relative_difference(ref.at("ddim_x0"), ref.at("ddim_x0_float64"));
  const double tolerance = std::max(1e-4, 4 * spread);
  std::cout << GetParam() << ": DDIM-10 x0 worst relative difference " << d << ", image (0..1) worst " << image_d
            << "; diffusers float32 against float64: " << spread << "; genfw against diffusers' float64: "
            << relative_difference(x0, ref.at("ddim_x0_float64")) << "\n";
  EXPECT_LE(d, tolerance);
  EXPECT_LE(image_d, tolerance);
}

TEST_P(DiffusersCase, ScheduleAndDdpmVarianceEqualDdpmSchedulers) {
  const auto plan = genfw::plan_diffusers_import(fixture(GetParam()));
  auto model = imported(plan);
  auto ref = reference(GetParam());
  const auto& s = dynamic_cast<genfw::NoisePredictor&>(*model).schedule();
  const auto variance = std::get<std::string>(plan.sampler.at("variance")) == "fixed_large" ? s.betas : s.posterior_variance;
  using torch::indexing::Slice;
  const double abar = relative_difference(s.alphas_cumprod, ref.at("alphas_cumprod"));
  // t = 0 adds no noise in either (diffusers clamps its 0 to 1e-20).
  const double var = relative_difference(variance.index({Slice(1)}), ref.at("ddpm_variance").index({Slice(1)}));
  const double var_each = ((variance.index({Slice(1)}) - ref.at("ddpm_variance").index({Slice(1)})).abs() /
                           ref.at("ddpm_variance").index({Slice(1)})).max().item<double>();
  std::cout << GetParam() << ": ᾱ worst relative difference " << abar << ", DDPM variance " << var
            << " (per step " << var_each << "): float32 (diffusers) against float64 (genfw)\n";
  EXPECT_LE(abar, 1e-5);
  EXPECT_LE(var_each, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DiffusersCase, ::testing::ValuesIn(cases()));

TEST(ImportDiffusers, MapsTheConfigAsDiffusersReadsIt) {
  const auto cifar = genfw::plan_diffusers_import(fixture("cifar_like"));
  EXPECT_EQ(cifar.sample_shape, (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(std::get<int64_t>(cifar.model.at("ch")), 8);
  EXPECT_EQ(std::get<std::vector<int64_t>>(cifar.model.at("ch_mult")), (std::vector<int64_t>{1, 2, 2, 2}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(cifar.model.at("attn_resolutions")), (std::vector<int64_t>{16}));
  EXPECT_EQ(std::get<std::string>(cifar.model.at("downsample_padding")), "right_bottom");
  EXPECT_EQ(std::get<int64_t>(cifar.model.at("time_freq_shift")), 1);
  EXPECT_EQ(std::get<std::string>(cifar.sampler.at("variance")), "fixed_large");
  EXPECT_EQ(cifar.weights_sha256, genfw::sha256_of_file(cifar.weights));
  const auto gray = genfw::plan_diffusers_import(fixture("gray_variant") + "/unet");  // a unet/ folder alone
  EXPECT_EQ(std::get<std::vector<int64_t>>(gray.model.at("attn_resolutions")), (std::vector<int64_t>{28, 14}));
  EXPECT_TRUE(std::get<bool>(gray.model.at("time_flip_sin_to_cos")));
  ASSERT_EQ(gray.notes.size(), 1u);  // no scheduler config beside it: DDPMScheduler's defaults, said so
}

// A copy of a fixture folder whose weights or config the test then damages.
struct DamagedCopy {
  TempDir dir;
  std::string folder = dir / "model";
  explicit DamagedCopy(const std::string& name) {
    fs::copy(fixture(name), folder, fs::copy_options::recursive);
  }
  std::string weights() const { return folder + "/unet/diffusion_pytorch_model.safetensors"; }
  void rewrite_weights(const std::function<void(std::map<std::string, torch::Tensor>&)>& change) const {
    auto tensors = genfw::read_safetensors(weights()).tensors;
    change(tensors);
    std::ofstream(weights(), std::ios::binary) << genfw::safetensors_bytes(tensors);
  }
  void set_config(const std::string& file, const std::string& key, const std::string& json_value) const {
    std::ifstream in(folder + "/" + file);
    std::stringstream text;
    text << in.rdbuf();
    const std::regex field("\"" + key + (json_value[0] == '[' ? "\": \\[[^\\]]*\\]" : "\": [^,\\n]*"));
    std::string changed = std::regex_replace(text.str(), field, "\"" + key + "\": " + json_value);
    if (changed == text.str()) changed.insert(2, "  \"" + key + "\": " + json_value + ",\n");
    std::ofstream(folder + "/" + file) << changed;
  }
  std::string import_error() const {
    return error_of([&] { imported(genfw::plan_diffusers_import(folder)); });
  }
};

TEST(ImportDiffusers, ReadsTheOlderAttentionNamesAndLinearsAsConvs) {
  DamagedCopy copy("cifar_like");
  copy.rewrite_weights([](auto& tensors) {  // diffusers < 0.15: query/key/value/proj_attn
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"to_q", "query"}, {"to_k", "key"}, {"to_v", "value"}, {"to_out.0", "proj_attn"}}) {
      for (const char* part : {".weight", ".bias"}) {
        const std::string name = "mid_block.attentions.0." + from + part;
        tensors["mid_block.attentions.0." + to + part] = tensors.at(name);
        tensors.erase(name);
      }
    }
  });
  auto model = imported(genfw::plan_diffusers_import(copy.folder));
  auto ref = reference("cifar_like");
  torch::NoGradGuard no_grad;
  const auto eps = dynamic_cast<genfw::NoisePredictor&>(*model).predict(ref.at("x"), ref.at("t"), {});
  EXPECT_LE(relative_difference(eps, ref.at("eps")), 1e-5);
}

TEST(ImportDiffusers, RefusesAWrongShapeAMissingAndAnUnexpectedTensorNamingThem) {
  DamagedCopy shape("cifar_like");
  shape.rewrite_weights([](auto& t) { t["down_blocks.1.resnets.0.conv1.weight"] = torch::zeros({16, 8, 1, 1}); });
  EXPECT_NE(shape.import_error().find("down_blocks.1.resnets.0.conv1.weight is [16, 8, 1, 1], expected [16, 8, 3, 3]"),
            std::string::npos);
  DamagedCopy missing("cifar_like");
  missing.rewrite_weights([](auto& t) { t.erase("up_blocks.2.attentions.1.to_k.bias"); });
  const std::string missing_error = missing.import_error();
  EXPECT_NE(missing_error.find("missing tensors"), std::string::npos);
  EXPECT_NE(missing_error.find("up_blocks.2.attentions.1.to_k.bias"), std::string::npos);
  EXPECT_NE(missing_error.find(missing.weights()), std::string::npos);
  DamagedCopy unexpected("cifar_like");
  unexpected.rewrite_weights([](auto& t) { t["class_embedding.weight"] = torch::zeros({10, 32}); });
  EXPECT_NE(unexpected.import_error().find("unexpected tensors, not part of the network its config describes: class_embedding.weight"),
            std::string::npos);
}

TEST(ImportDiffusers, RefusesConfigsDdpmUnetCannotRepresentNamingTheField) {
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> cases{
      {"unet/config.json", "attention_head_dim", "8", "field 'attention_head_dim' = 8: gives 2 heads at width 16"},
      {"unet/config.json", "resnet_time_scale_shift", "\"scale_shift\"", "field 'resnet_time_scale_shift' = \"scale_shift\""},
      {"unet/config.json", "act_fn", "\"gelu\"", "field 'act_fn' = \"gelu\": ddpm_unet's activation is SiLU"},
      {"unet/config.json", "downsample_padding", "2", "field 'downsample_padding' = 2"},
      {"unet/config.json", "block_out_channels", "[8, 12, 16, 16]", "each must be a multiple of the first"},
      {"unet/config.json", "up_block_types", "[\"UpBlock2D\", \"AttnUpBlock2D\", \"UpBlock2D\", \"UpBlock2D\"]", "does not mirror"},
      {"unet/config.json", "num_class_embeds", "10", "field 'num_class_embeds' = 10"},
      {"unet/config.json", "some_future_switch", "true", "field 'some_future_switch' = true: a field genfw does not know"},
      {"scheduler/scheduler_config.json", "beta_schedule", "\"sigmoid\"", "field 'beta_schedule' = \"sigmoid\""},
      {"scheduler/scheduler_config.json", "variance_type", "\"learned_range\"", "field 'variance_type' = \"learned_range\""},
      {"scheduler/scheduler_config.json", "thresholding", "true", "field 'thresholding' = true"},
      {"scheduler/scheduler_config.json", "clip_sample_range", "2.0", "field 'clip_sample_range' = 2"},
  };
  for (const auto& [file, key, value, expected] : cases) {
    DamagedCopy copy("cifar_like");
    copy.set_config(file, key, value);
    const std::string error = copy.import_error();
    EXPECT_NE(error.find(copy.folder + "/" + file), std::string::npos) << error;
    EXPECT_NE(error.find(expected), std::string::npos) << key << ": " << error;
  }
}

// save_pretrained(safe_serialization=False) writes torch.save(state_dict) as .bin: read as data.
// The fixture gray_variant.bin is that of gray_variant's weights, written by PyTorch 2.x:
// torch.save(OrderedDict(sorted(load_file(SAFETENSORS).items())), "gray_variant.bin").
TEST(ImportDiffusers, ReadsPytorchBinWeightsAsData) {
  DamagedCopy copy("gray_variant");
  fs::remove(copy.weights());
  fs::copy_file(fixture("gray_variant.bin"), copy.folder + "/unet/diffusion_pytorch_model.bin");
  auto model = imported(genfw::plan_diffusers_import(copy.folder));
  auto ref = reference("gray_variant");
  torch::NoGradGuard no_grad;
  const auto eps = dynamic_cast<genfw::NoisePredictor&>(*model).predict(ref.at("x"), ref.at("t"), {});
  EXPECT_LE(relative_difference(eps, ref.at("eps")), 1e-5);
}

TEST(ImportDiffusers, RefusesMissingFilesAndDamagedWeights) {
  EXPECT_NE(error_of([] { genfw::plan_diffusers_import("/nonexistent/ddpm"); }).find("diffusers folder /nonexistent/ddpm does not exist"),
            std::string::npos);
  DamagedCopy renamed("gray_variant");  // a safetensors file named .bin
  fs::rename(renamed.weights(), renamed.folder + "/unet/diffusion_pytorch_model.bin");
  EXPECT_NE(renamed.import_error().find("diffusion_pytorch_model.bin: not a readable torch.save() zip file"),
            std::string::npos);
  DamagedCopy none("gray_variant");
  fs::remove(none.weights());
  EXPECT_NE(none.import_error().find("holds no diffusion_pytorch_model.safetensors (or .bin)"), std::string::npos);
  DamagedCopy truncated("gray_variant");
  fs::resize_file(truncated.weights(), 1000);
  EXPECT_NE(truncated.import_error().find(truncated.weights()), std::string::npos);
}

// The imported run is a run: sampled by `runner sample` (DDIM-10 here) and listed by compare.
TEST(ImportDiffusers, WritesARunThatSamplesAndComparesLikeATrainedOne) {
  TempDir dir;
  torch::manual_seed(3);
  genfw::fixtures::write_cifar10(dir / "cifar", torch::randint(0, 256, {20, 3, 32, 32}), torch::randint(0, 10, {20}),
                                 torch::randint(0, 256, {10, 3, 32, 32}), torch::randint(0, 10, {10}));
  genfw::ImportRequest request{fixture("cifar_like"), dir / "imported", "", {"data.path=\"" + dir / "cifar" + "\""}};
  const std::string run_file = genfw::import_diffusers(request, test_support::builtins());
  EXPECT_EQ(run_file, dir / "imported/imported.h5");
  {
    auto log = genfw::RunLog::open(run_file, false);
    EXPECT_EQ(log.attribute("/", "status"), "completed");
    EXPECT_EQ(log.attribute("/", "model"), "ddpm_unet");
    EXPECT_EQ(log.attribute("/", "dataset"), "cifar10");
    EXPECT_EQ(log.attribute("/", "imported_weights_sha256"),
              genfw::sha256_of_file(fixture("cifar_like") + "/unet/diffusion_pytorch_model.safetensors"));
    EXPECT_EQ(log.attribute("/", "checkpoint_sha256"), genfw::sha256_of_file(dir / "imported/checkpoint.pt"));
    EXPECT_NE(log.read_string("/config").find("time_freq_shift = 1"), std::string::npos);
  }
  EXPECT_NE(error_of([&] { genfw::import_diffusers(request, test_support::builtins()); }).find("already exists"),
            std::string::npos);

  genfw::RunRequest sample;
  sample.parent_run = run_file;
  sample.sampler = "ddim";
  sample.overrides = {"sampler.num_inference_steps=10", "sampler.num_samples=4", "sampler.batch_size=4"};
  sample.out_dir = dir / "ddim10";
  const std::string sampled = genfw::run_experiment(sample, test_support::builtins());
  auto log = genfw::RunLog::open(sampled, false);
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  EXPECT_EQ(log.read_tensor("/samples").size(0), 4);
  std::ostringstream table, notes;
  genfw::write_comparison({run_file, sampled}, {}, table, notes);
  EXPECT_NE(table.str().find("imported"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("imported-ddim-num_inference_steps10"), std::string::npos) << table.str();
}

// --experiment: the file's data, sampler, features and metrics; its [model] the mapping.
TEST(ImportDiffusers, TakesAnExperimentFilesTablesAroundTheMappedModel) {
  TempDir dir;
  genfw::ImportRequest request{fixture("cifar_like"), dir / "pretrained",
                                        std::string(GENFW_TEST_SOURCE_DIR) + "/experiments/ddpm_cifar_pretrained.toml",
                                        {"sampler.num_samples=1000"}};
  const std::string run_file = genfw::import_diffusers(request, test_support::builtins());
  const std::string config = genfw::RunLog::open(run_file, false).read_string("/config");
  EXPECT_NE(config.find("ch = 8\n"), std::string::npos) << config;  // the fixture's, not the file's 128
  EXPECT_NE(config.find("norm_groups = 4\n"), std::string::npos);
  EXPECT_NE(config.find("extractor = \"torchscript\""), std::string::npos);
  EXPECT_NE(config.find("plugin = \"fid\""), std::string::npos);
  EXPECT_NE(config.find("num_samples = 1000\n"), std::string::npos);  // the user's --set wins
  EXPECT_NE(config.find("variance = \"fixed_large\""), std::string::npos);
}

}  // namespace
