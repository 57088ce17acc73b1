// `runner import diffusers` (genfw/import_diffusers.hpp, docs/import.md): a diffusers
// UNet2DModel folder mapped onto ddpm_unet — configs (diffusers' UNet2DModel and
// DDPMScheduler, src/diffusers/models/unets/unet_2d.py, schedulers/scheduling_ddpm.py),
// tensor names and shapes — and written as a completed run.
#include "genfw/import_diffusers.hpp"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "genfw/error.hpp"
#include "genfw/json.hpp"
#include "genfw/registry.hpp"
#include "genfw/pytorch_checkpoint.hpp"
#include "genfw/safetensors.hpp"
#include "genfw/sha256.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

// One JSON config file, read field by field with diffusers' defaults for absent
// fields. Every field read is marked, so that a field genfw does not know (a newer
// diffusers' architecture switch) is refused rather than silently ignored.
class ConfigReader {
 public:
  ConfigReader(const std::string& path, const std::string& what) : path_(path) {
    GENFW_CHECK(fs::is_regular_file(path), what, " ", path, " does not exist");
    json_ = parse_json(read_whole_file(path), path);
    GENFW_CHECK(json_.type == Json::Type::object, path, ": expected a JSON object, got ", json_.brief());
  }
  const std::string& path() const { return path_; }

  // The field, or nullptr when absent or null (diffusers' default applies).
  const Json* get(const std::string& key) {
    read_.insert(key);
    const Json* value = json_.find(key);
    return value == nullptr || value->is_null() ? nullptr : value;
  }
  bool is_null(const std::string& key) { return get(key) == nullptr; }
  [[noreturn]] void refuse(const std::string& key, const std::string& why) {
    const Json* value = json_.find(key);
    throw Error(detail::concat(path_, ": field '", key, "' = ", value ? value->brief() : std::string("(absent)"), ": ",
                               why));
  }
  int64_t integer(const std::string& key, int64_t fallback) {
    const Json* value = get(key);
    if (!value) return fallback;
    if (value->type != Json::Type::number || !value->integral) refuse(key, "expected an integer");
    return value->integer;
  }
  double real(const std::string& key, double fallback) {
    const Json* value = get(key);
    if (!value) return fallback;
    if (value->type != Json::Type::number) refuse(key, "expected a number");
    return value->number;
  }
  bool flag(const std::string& key, bool fallback) {
    const Json* value = get(key);
    if (!value) return fallback;
    if (value->type != Json::Type::boolean) refuse(key, "expected true or false");
    return value->boolean;
  }
  std::string text(const std::string& key, const std::string& fallback) {
    const Json* value = get(key);
    if (!value) return fallback;
    if (value->type != Json::Type::string) refuse(key, "expected a string");
    return value->string;
  }
  std::vector<int64_t> integers(const std::string& key, const std::vector<int64_t>& fallback) {
    const Json* value = get(key);
    if (!value) return fallback;
    std::vector<int64_t> out;
    if (value->type != Json::Type::array) refuse(key, "expected an array of integers");
    for (const auto& item : value->array) {
      if (item.type != Json::Type::number || !item.integral) refuse(key, "expected an array of integers");
      out.push_back(item.integer);
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& fallback) {
    const Json* value = get(key);
    if (!value) return fallback;
    std::vector<std::string> out;
    if (value->type != Json::Type::array) refuse(key, "expected an array of strings");
    for (const auto& item : value->array) {
      if (item.type != Json::Type::string) refuse(key, "expected an array of strings");
      out.push_back(item.string);
    }
    return out;
  }
  /// A field genfw represents only with a value in `accepted` (diffusers' default `fallback` when absent).
  void require_text(const std::string& key, const std::string& fallback, const std::set<std::string>& accepted,
                    const std::string& why) {
    if (!accepted.count(text(key, fallback))) refuse(key, why);
  }
  void require_flag(const std::string& key, bool fallback, bool accepted, const std::string& why) {
    if (flag(key, fallback) != accepted) refuse(key, why);
  }
  void require_null(const std::string& key, const std::string& why) {
    if (!is_null(key)) refuse(key, why);
  }
  /// Fields that change nothing genfw computes, read so that they are not refused as unknown.
  void ignore(std::initializer_list<const char*> keys) {
    for (const char* key : keys) read_.insert(key);
  }
  /// Refuses the first field neither read nor ignored ("_name" fields are diffusers' bookkeeping).
  void refuse_unknown_fields(const std::string& known) {
    for (const auto& [key, value] : json_.object) {
      if (key.rfind('_', 0) == 0 || read_.count(key)) continue;
      refuse(key, "a field genfw does not know (it knows " + known + "); it may change the network, so nothing was imported");
    }
  }

 private:
  std::string path_;
  Json json_;
  std::set<std::string> read_;
};

// The resolution of each level as ddpm_unet computes it (a stride-2 conv halves, rounding up).
std::vector<int64_t> level_resolutions(int64_t size, size_t levels) {
  std::vector<int64_t> res;
  for (size_t level = 0; level < levels; ++level) {
    res.push_back(size);
    size = (size + 1) / 2;
  }
  return res;
}

void map_channels(ConfigReader& c, DiffusersPlan& plan) {
  const auto channels = c.integers("block_out_channels", {64});
  if (channels.empty() || channels[0] < 1) c.refuse("block_out_channels", "expected positive widths");
  std::vector<int64_t> mult;
  for (int64_t width : channels) {
    if (width < 1 || width % channels[0] != 0) {
      c.refuse("block_out_channels", "ddpm_unet's widths are ch × ch_mult: each must be a multiple of the first");
    }
    mult.push_back(width / channels[0]);
  }
  plan.model["ch"] = channels[0];
  plan.model["ch_mult"] = mult;
  const int64_t blocks = c.integer("layers_per_block", 2);
  if (blocks < 1) c.refuse("layers_per_block", "expected >= 1");
  plan.model["num_res_blocks"] = blocks;
  // diffusers: time_embed_dim = time_embedding_dim or 4 × block_out_channels[0]; ddpm_unet's is 4 × ch.
  const int64_t temb = c.integer("time_embedding_dim", 4 * channels[0]);
  if (temb != 4 * channels[0]) c.refuse("time_embedding_dim", "ddpm_unet's time embedding has 4 × ch features");
}

// Attention where the down path has an AttnDownBlock2D; the up path must mirror it,
// because ddpm_unet decides attention by resolution, for both paths at once.
void map_blocks(ConfigReader& c, DiffusersPlan& plan, int64_t size) {
  const size_t levels = std::get<std::vector<int64_t>>(plan.model["ch_mult"]).size();
  const auto down = c.strings("down_block_types", {"DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"});
  const auto up = c.strings("up_block_types", {"AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"});
  if (down.size() != levels) c.refuse("down_block_types", detail::concat("expected one per block_out_channels (", levels, ")"));
  if (up.size() != levels) c.refuse("up_block_types", detail::concat("expected one per block_out_channels (", levels, ")"));
  const auto res = level_resolutions(size, levels);
  std::vector<int64_t> attention;
  for (size_t level = 0; level < levels; ++level) {
    const std::string& d = down[level];
    const std::string& u = up[levels - 1 - level];
    if (d != "DownBlock2D" && d != "AttnDownBlock2D") {
      c.refuse("down_block_types", "block " + std::to_string(level) + " is " + d +
                                       "; ddpm_unet has DownBlock2D and AttnDownBlock2D only");
    }
    if (u != "UpBlock2D" && u != "AttnUpBlock2D") {
      c.refuse("up_block_types", "block " + std::to_string(levels - 1 - level) + " is " + u +
                                     "; ddpm_unet has UpBlock2D and AttnUpBlock2D only");
    }
    if ((d == "AttnDownBlock2D") != (u == "AttnUpBlock2D")) {
      c.refuse("up_block_types", "block " + std::to_string(levels - 1 - level) + " (" + u +
                                     ") does not mirror down block " + std::to_string(level) + " (" + d +
                                     "): ddpm_unet attends at a resolution on both paths or on neither");
    }
    if (d == "AttnDownBlock2D") attention.push_back(res[level]);
  }
  plan.model["attn_resolutions"] = attention;
}

// Single-head attention only: diffusers' heads = width / attention_head_dim (one head when null).
void check_attention(ConfigReader& c, const DiffusersPlan& plan) {
  if (c.is_null("attention_head_dim")) return;
  const int64_t head_dim = c.integer("attention_head_dim", 0);
  const int64_t ch = std::get<int64_t>(plan.model.at("ch"));
  const auto& mult = std::get<std::vector<int64_t>>(plan.model.at("ch_mult"));
  const auto& attn = std::get<std::vector<int64_t>>(plan.model.at("attn_resolutions"));
  std::vector<int64_t> widths{ch * mult.back()};  // the mid block always attends
  const auto res = level_resolutions(plan.sample_shape[1], mult.size());
  for (size_t level = 0; level < mult.size(); ++level) {
    if (std::count(attn.begin(), attn.end(), res[level])) widths.push_back(ch * mult[level]);
  }
  for (int64_t width : widths) {
    if (head_dim != width) {
      c.refuse("attention_head_dim", detail::concat("gives ", width / std::max<int64_t>(head_dim, 1), " heads at width ",
                                                    width, "; ddpm_unet's attention has one head (null, or the width)"));
    }
  }
}

void map_unet_config(ConfigReader& c, DiffusersPlan& plan) {
  c.require_text("_class_name", "UNet2DModel", {"UNet2DModel"}, "only UNet2DModel maps onto ddpm_unet");
  const int64_t in = c.integer("in_channels", 3), out = c.integer("out_channels", 3);
  if (in < 1) c.refuse("in_channels", "expected >= 1");
  if (out != in) c.refuse("out_channels", "ddpm_unet predicts as many channels as it reads (in_channels)");
  int64_t size = 0;
  if (const Json* s = c.get("sample_size"); s && s->type == Json::Type::array) {
    const auto hw = c.integers("sample_size", {});
    if (hw.size() != 2 || hw[0] != hw[1] || hw[0] < 1) c.refuse("sample_size", "expected square images");
    size = hw[0];
  } else {
    size = c.integer("sample_size", 0);
    if (size < 1) c.refuse("sample_size", "expected the image size the network was trained on");
  }
  plan.sample_shape = {in, size, size};
  map_channels(c, plan);
  map_blocks(c, plan, size);
  check_attention(c, plan);
  const double dropout = c.real("dropout", 0.0);
  if (dropout < 0 || dropout > 1) c.refuse("dropout", "expected a probability");
  plan.model["dropout"] = dropout;
  const int64_t groups = c.integer("norm_num_groups", 32);
  if (groups < 1) c.refuse("norm_num_groups", "ddpm_unet normalises with GroupNorm: expected >= 1 groups");
  plan.model["norm_groups"] = groups;
  if (!c.is_null("attn_norm_num_groups") && c.integer("attn_norm_num_groups", groups) != groups) {
    c.refuse("attn_norm_num_groups", "ddpm_unet's attention normalises with norm_num_groups groups");
  }
  plan.model["norm_eps"] = c.real("norm_eps", 1e-5);
  const int64_t padding = c.integer("downsample_padding", 1);
  if (padding != 0 && padding != 1) c.refuse("downsample_padding", "ddpm_unet pads 1 (symmetric) or 0 (right and bottom)");
  plan.model["downsample_padding"] = std::string(padding == 0 ? "right_bottom" : "symmetric");
  const int64_t shift = c.integer("freq_shift", 0);
  if (shift < 0 || shift >= std::get<int64_t>(plan.model["ch"]) / 2) c.refuse("freq_shift", "expected 0 <= freq_shift < ch/2");
  plan.model["time_freq_shift"] = shift;
  plan.model["time_flip_sin_to_cos"] = c.flag("flip_sin_to_cos", true);
  c.require_text("time_embedding_type", "positional", {"positional"}, "ddpm_unet's time embedding is sinusoidal (positional)");
  c.require_text("act_fn", "silu", {"silu", "swish"}, "ddpm_unet's activation is SiLU");
  c.require_text("resnet_time_scale_shift", "default", {"default"},
                 "ddpm_unet adds the time projection (default); it has no scale-shift norm");
  c.require_text("downsample_type", "conv", {"conv"}, "ddpm_unet downsamples with a strided conv");
  c.require_text("upsample_type", "conv", {"conv"}, "ddpm_unet upsamples by nearest neighbour and a conv");
  c.require_text("mid_block_type", "UNetMidBlock2D", {"UNetMidBlock2D"}, "ddpm_unet has a UNetMidBlock2D");
  c.require_flag("add_attention", true, true, "ddpm_unet's mid block attends");
  c.require_flag("center_input_sample", false, false, "ddpm_unet reads its input as it is");
  if (c.real("mid_block_scale_factor", 1.0) != 1.0) c.refuse("mid_block_scale_factor", "ddpm_unet does not rescale its mid block");
  c.require_null("class_embed_type", "ddpm_unet's class conditioning is not diffusers' (import unconditional networks)");
  c.require_null("num_class_embeds", "ddpm_unet's class conditioning is not diffusers' (import unconditional networks)");
  c.ignore({"num_train_timesteps"});  // the unet's, used only by time_embedding_type "learned"
  c.refuse_unknown_fields("diffusers 0.42's UNet2DModel fields");
}

void map_scheduler_config(ConfigReader& c, DiffusersPlan& plan) {
  c.require_text("_class_name", "DDPMScheduler", {"DDPMScheduler", "DDIMScheduler"},
                 "genfw maps DDPMScheduler and DDIMScheduler configs");
  plan.model["num_train_timesteps"] = c.integer("num_train_timesteps", 1000);
  c.require_text("beta_schedule", "linear", {"linear", "scaled_linear", "squaredcos_cap_v2"},
                 "genfw's β schedules are linear, scaled_linear and squaredcos_cap_v2");
  plan.model["beta_schedule"] = c.text("beta_schedule", "linear");
  plan.model["beta_start"] = c.real("beta_start", 1e-4);
  plan.model["beta_end"] = c.real("beta_end", 0.02);
  c.require_null("trained_betas", "genfw builds β from beta_schedule; explicit betas are not imported");
  c.require_text("prediction_type", "epsilon", {"epsilon", "sample", "v_prediction"},
                 "ddpm_unet predicts epsilon, sample or v_prediction");
  plan.model["prediction_type"] = c.text("prediction_type", "epsilon");
  c.require_text("variance_type", "fixed_small", {"fixed_small", "fixed_large"},
                 "genfw's ddpm sampler has σ² = β̃ (fixed_small) or β (fixed_large)");
  plan.sampler["variance"] = c.text("variance_type", "fixed_small");
  const bool clip = c.flag("clip_sample", true);
  plan.sampler["clip_sample"] = clip;
  if (clip && c.real("clip_sample_range", 1.0) != 1.0) {
    c.refuse("clip_sample_range", "genfw clips x0 to the data's range, [-1, 1] for the image datasets");
  }
  c.require_flag("thresholding", false, false, "genfw's samplers have no dynamic thresholding");
  c.require_flag("rescale_betas_zero_snr", false, false, "genfw's β schedules are not rescaled to zero terminal SNR");
  // Only sampling with fewer steps, thresholding or DDIM reads these; genfw's samplers have their own options.
  c.ignore({"clip_sample_range", "dynamic_thresholding_ratio", "sample_max_value", "timestep_spacing", "steps_offset",
            "set_alpha_to_one", "tensor_format"});
  c.refuse_unknown_fields("diffusers 0.42's DDPMScheduler and DDIMScheduler fields");
}

// The weights file of a UNet2DModel folder: safetensors only (diffusers' default since 0.14).
std::string weights_file(const fs::path& unet_dir) {
  for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                           "diffusion_pytorch_model.bin"}) {
    if (fs::is_regular_file(unet_dir / name)) return (unet_dir / name).string();
  }
  throw Error(detail::concat(unet_dir.string(), " holds no diffusion_pytorch_model.safetensors (or .bin)"));
}

// A .bin is torch.save() of the state dict: read as data, nothing in it runs (pytorch_checkpoint.hpp).
void read_weights(DiffusersPlan& plan, const fs::path& unet_dir) {
  plan.weights = weights_file(unet_dir);
  plan.weights_sha256 = sha256_of_file(plan.weights);
  if (fs::path(plan.weights).extension() == ".bin") {
    plan.tensors = state_dict_tensors(*read_pytorch_checkpoint(plan.weights), plan.weights, "the pickled object");
  } else {
    plan.tensors = read_safetensors(plan.weights).tensors;
  }
}

// diffusers' older attention names (diffusers < 0.15, the converted google/ddpm-* files).
std::string current_attention_name(const std::string& name) {
  static const std::vector<std::pair<std::regex, std::string>> renames{
      {std::regex(R"(^(.*attentions\.\d+)\.query\.)"), "$1.to_q."},
      {std::regex(R"(^(.*attentions\.\d+)\.key\.)"), "$1.to_k."},
      {std::regex(R"(^(.*attentions\.\d+)\.value\.)"), "$1.to_v."},
      {std::regex(R"(^(.*attentions\.\d+)\.proj_attn\.)"), "$1.to_out.0."}};
  for (const auto& [pattern, replacement] : renames) {
    if (std::regex_search(name, pattern)) return std::regex_replace(name, pattern, replacement);
  }
  return name;
}

}  // namespace

std::string diffusers_name_of(const std::string& name, int64_t levels) {
  static const std::map<std::string, std::string> resnet{{"norm1", "norm1"},         {"conv1", "conv1"},
                                                         {"temb_proj", "time_emb_proj"}, {"norm2", "norm2"},
                                                         {"conv2", "conv2"},         {"nin_shortcut", "conv_shortcut"}};
  static const std::map<std::string, std::string> attention{
      {"norm", "group_norm"}, {"q", "to_q"}, {"k", "to_k"}, {"v", "to_v"}, {"proj_out", "to_out.0"}};
  static const std::map<std::string, std::string> fixed{{"temb_dense0", "time_embedding.linear_1"},
                                                        {"temb_dense1", "time_embedding.linear_2"},
                                                        {"conv_in", "conv_in"},
                                                        {"norm_out", "conv_norm_out"},
                                                        {"conv_out", "conv_out"}};
  static const std::regex block(R"(^(down|up)(\d+)_block(\d+)(_attn)?\.(\w+)\.(weight|bias)$)");
  static const std::regex sampler(R"(^(down|up)(\d+)_(downsample|upsample)\.(weight|bias)$)");
  static const std::regex mid(R"(^mid_(block1|block2|attn)\.(\w+)\.(weight|bias)$)");
  static const std::regex plain(R"(^(\w+)\.(weight|bias)$)");
  // diffusers numbers the up blocks from the lowest resolution: up level l is up_blocks.(L-1-l).
  auto block_path = [&](const std::string& path, int64_t level) {
    return path == "down" ? "down_blocks." + std::to_string(level)
                          : "up_blocks." + std::to_string(levels - 1 - level);
  };
  auto layer = [](const std::map<std::string, std::string>& table, const std::string& key) {
    auto found = table.find(key);
    return found == table.end() ? std::string() : found->second;
  };
  std::smatch m;
  std::string mapped;
  if (std::regex_match(name, m, block)) {
    const std::string kind = m[4].matched ? "attentions." : "resnets.";
    const std::string l = layer(m[4].matched ? attention : resnet, m[5]);
    if (!l.empty()) mapped = block_path(m[1], std::stoll(m[2])) + "." + kind + std::string(m[3]) + "." + l + "." + std::string(m[6]);
  } else if (std::regex_match(name, m, sampler)) {
    mapped = block_path(m[1], std::stoll(m[2])) + (m[3] == "downsample" ? ".downsamplers.0.conv." : ".upsamplers.0.conv.") + std::string(m[4]);
  } else if (std::regex_match(name, m, mid)) {
    const bool attn = m[1] == "attn";
    const std::string l = layer(attn ? attention : resnet, m[2]);
    const std::string where = attn ? "mid_block.attentions.0." : m[1] == "block1" ? "mid_block.resnets.0." : "mid_block.resnets.1.";
    if (!l.empty()) mapped = where + l + "." + std::string(m[3]);
  } else if (std::regex_match(name, m, plain)) {
    const std::string l = layer(fixed, m[1]);
    if (!l.empty()) mapped = l + "." + std::string(m[2]);
  }
  GENFW_CHECK(!mapped.empty(), "ddpm_unet's parameter '", name, "' has no diffusers counterpart");
  return mapped;
}

DiffusersPlan plan_diffusers_import(const std::string& folder) {
  DiffusersPlan plan;
  plan.format = "diffusers";
  plan.source = folder;
  plan.model_plugin = "ddpm_unet";
  plan.sampler_plugin = "ddpm";
  const fs::path root(folder);
  GENFW_CHECK(fs::is_directory(root), "diffusers folder ", folder, " does not exist (or is not a folder)");
  const fs::path unet_dir = fs::is_regular_file(root / "unet" / "config.json") ? root / "unet" : root;
  plan.unet_config = (unet_dir / "config.json").string();
  GENFW_CHECK(fs::is_regular_file(plan.unet_config), folder,
              " holds neither unet/config.json nor config.json: expected a folder diffusers' "
              "DDPMPipeline.save_pretrained or UNet2DModel.save_pretrained wrote");
  ConfigReader unet(plan.unet_config, "diffusers config");
  map_unet_config(unet, plan);
  for (const fs::path& candidate : {root / "scheduler" / "scheduler_config.json", root / "scheduler_config.json"}) {
    if (fs::is_regular_file(candidate)) {
      plan.scheduler_config = candidate.string();
      break;
    }
  }
  if (plan.scheduler_config.empty()) {
    plan.notes.push_back(folder + " has no scheduler/scheduler_config.json: DDPMScheduler's defaults were assumed "
                         "(T = 1000, linear β 1e-4 → 0.02, epsilon, fixed_small, clip_sample)");
    plan.model["num_train_timesteps"] = int64_t(1000);
    plan.model["beta_schedule"] = std::string("linear");
    plan.model["beta_start"] = 1e-4;
    plan.model["beta_end"] = 0.02;
    plan.model["prediction_type"] = std::string("epsilon");
    plan.sampler["variance"] = std::string("fixed_small");
    plan.sampler["clip_sample"] = true;
  } else {
    ConfigReader scheduler(plan.scheduler_config, "diffusers scheduler config");
    map_scheduler_config(scheduler, plan);
  }
  read_weights(plan, unet_dir);
  return plan;
}

void load_diffusers_weights(torch::nn::Module& model, const ImportedNetwork& plan) {
  const int64_t levels = int64_t(std::get<std::vector<int64_t>>(plan.model.at("ch_mult")).size());
  std::map<std::string, torch::Tensor> tensors;  // under current diffusers names
  for (const auto& [name, tensor] : plan.tensors) tensors[current_attention_name(name)] = tensor;
  load_named_weights(model, tensors, [&](const std::string& name) { return diffusers_name_of(name, levels); },
                     plan.weights);
}

std::string import_diffusers(const ImportRequest& request, const Registry& registry) {
  return write_imported_run(plan_diffusers_import(request.source), request, registry,
                            [](Model& model, ImportedNetwork& plan) { load_diffusers_weights(model, plan); });
}

}  // namespace genfw
