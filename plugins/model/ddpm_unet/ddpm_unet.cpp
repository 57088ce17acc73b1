// The DDPM U-Net (Ho et al. 2020, App. B; the TF original's models/unet.py):
// sinusoidal time embedding → 2-layer MLP (4·ch), wide residual blocks with
// GroupNorm + SiLU + dropout and a per-block time projection, self-attention at
// chosen resolutions, strided-conv downsampling, nearest + conv upsampling, skip
// connections by concatenation. The CIFAR-10 size (ch 128, ch_mult [1,2,2,2],
// 2 res blocks, attn at 16) has 35,746,307 parameters as in the paper.
// The options norm_groups, norm_eps, downsample_padding, time_freq_shift and
// time_flip_sin_to_cos exist so that a network diffusers trained or converted
// (UNet2DModel; `runner import diffusers`, docs/import.md) is this network exactly.
// With low_resolution > 0 it is a cascade's super-resolution stage (Ho et al.
// 2021, "Cascaded Diffusion Models"; SR3): the low-resolution image, upsampled
// bilinearly, is concatenated to x_t, and it is corrupted in training by Gaussian
// conditioning augmentation whose level the network is told.
#include <genfw/nn.hpp>
#include <genfw/sdk.hpp>

#include <numeric>

namespace {

namespace F = torch::nn::functional;
using genfw::DiffusionSettings;

// How the network normalises and downsamples (the options that make an imported
// diffusers network this one).
struct Layout {
  int64_t groups = 0;  // 0: norm_groups() per width
  double eps = 1e-6;
  bool pad_right_bottom = false;
};

// GroupNorm groups: 32 as in the paper when there are enough channels; for small
// widths gcd(32, C/4, C) keeps >= 4 channels per group (C = 128 or 256 → 32,
// 64 → 16, 32 → 8) and always divides C.
int64_t norm_groups(int64_t channels) {
  int64_t g = std::gcd<int64_t>(32, std::max<int64_t>(1, channels / 4));
  return std::gcd<int64_t>(g, channels);
}

torch::nn::GroupNorm make_norm(int64_t channels, const Layout& layout) {
  const int64_t groups = layout.groups > 0 ? layout.groups : norm_groups(channels);
  GENFW_CHECK(channels % groups == 0, "model 'ddpm_unet': option 'norm_groups' (", groups,
              ") must divide every width; ", channels, " channels do not divide");
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(layout.eps));
}

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

// The original initialises the last layer of each residual branch to ~0 (init_scale 0).
template <typename Layer>
void zero_init(Layer& layer) {
  torch::NoGradGuard no_grad;
  layer->weight.zero_();
  if (layer->bias.defined()) layer->bias.zero_();
}

struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int64_t in, int64_t out, int64_t temb_dim, double dropout_p, const Layout& layout) {
    norm1 = register_module("norm1", make_norm(in, layout));
    conv1 = register_module("conv1", conv3x3(in, out));
    temb_proj = register_module("temb_proj", torch::nn::Linear(temb_dim, out));
    norm2 = register_module("norm2", make_norm(out, layout));
    dropout = register_module("dropout", torch::nn::Dropout(dropout_p));
    conv2 = register_module("conv2", conv3x3(out, out));
    zero_init(conv2);
    if (in != out) {
      // "nin_shortcut": a 1×1 projection of the skip path.
      shortcut = register_module("nin_shortcut",
                                 torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb) {
    auto h = conv1(torch::silu(norm1(x)));
    h = h + temb_proj(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
    h = conv2(dropout(torch::silu(norm2(h))));
    return (shortcut ? shortcut(x) : x) + h;
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, shortcut{nullptr};
  torch::nn::Linear temb_proj{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ResBlock);

// Single-head self-attention over the H·W positions (Ho et al.'s attn_block).
struct AttnBlockImpl : torch::nn::Module {
  AttnBlockImpl(int64_t channels, const Layout& layout) {
    norm = register_module("norm", make_norm(channels, layout));
    auto nin = [&](const char* name) {
      return register_module(name, torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 1)));
    };
    q = nin("q");
    k = nin("k");
    v = nin("v");
    proj_out = nin("proj_out");
    zero_init(proj_out);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
    auto h = norm(x);
    auto qs = q(h).reshape({b, c, hw}), ks = k(h).reshape({b, c, hw}), vs = v(h).reshape({b, c, hw});
    auto w = torch::softmax(torch::bmm(qs.transpose(1, 2), ks) / std::sqrt(double(c)), 2);  // [b, hw_q, hw_k]
    auto out = torch::bmm(vs, w.transpose(1, 2)).reshape(x.sizes());
    return x + proj_out(out);
  }
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d q{nullptr}, k{nullptr}, v{nullptr}, proj_out{nullptr};
};
TORCH_MODULE(AttnBlock);

// Conditioning augmentation (Ho et al. 2021 §4.2, Gaussian): z = √ᾱ·c + √(1−ᾱ)·ε with
// ᾱ = cos²(πu/2), so u = 0 leaves the image clean and u = 1 is pure noise.
torch::Tensor augmented(const torch::Tensor& condition, const torch::Tensor& level) {
  auto alpha_bar = torch::cos(level * (M_PI / 2)).pow(2).view({-1, 1, 1, 1});
  return alpha_bar.sqrt() * condition + (1 - alpha_bar).sqrt() * torch::randn_like(condition);
}

// A super-resolution stage's conditioning (0 = an unconditional network).
struct Conditioning {
  int64_t low_resolution = 0;
  double noise_max = 0, noise = 0;
};

class DdpmUnet : public genfw::Model, public genfw::NoisePredictor {
 public:
  static genfw::Schema schema() {
    return genfw::Schema()
        .integer("ch", 128, "base channel count", genfw::at_least(1))
        .integers("ch_mult", {1, 2, 2, 2}, "channel multiplier per resolution level",
                  genfw::at_least(1))
        .integer("num_res_blocks", 2, "residual blocks per level (down path)", genfw::at_least(1))
        .integers("attn_resolutions", {16}, "spatial sizes at which self-attention is applied",
                  genfw::at_least(1))
        .real("dropout", 0.1, "dropout in residual blocks", genfw::between(0.0, 1.0))
        .integer("norm_groups", 0,
                 "GroupNorm groups at every width (0 = 32, fewer for widths below 128 so that a group "
                 "keeps >= 4 channels)",
                 genfw::at_least(0))
        .real("norm_eps", 1e-6, "GroupNorm epsilon", genfw::between(0.0, 1.0))
        .choice("downsample_padding", "symmetric", {"symmetric", "right_bottom"},
                "stride-2 conv padding: 1 on every side, or 1 on the right and bottom only (TF 'SAME', "
                "the DDPM original's and diffusers' downsample_padding = 0)")
        .integer("time_freq_shift", 0,
                 "time embedding frequencies exp(-ln(10000) i / (ch/2 - shift)); 1 = the DDPM original's "
                 "(diffusers' freq_shift)",
                 genfw::at_least(0))
        .boolean("time_flip_sin_to_cos", false,
                 "time embedding [cos, sin] instead of [sin, cos] (diffusers' flip_sin_to_cos)")
        .integer("num_classes", 0,
                 "0 = unconditional; else a class embedding with extra null class index "
                 "num_classes (classifier-free guidance)",
                 genfw::at_least(0))
        .merge(genfw::diffusion_schema());
  }

  DdpmUnet(const genfw::Options& options, const genfw::BuildContext& context)
      : DdpmUnet(options, context, Conditioning{}) {}

 protected:
  DdpmUnet(const genfw::Options& options, const genfw::BuildContext& context, const Conditioning& conditioning)
      : settings_(DiffusionSettings::from_options(options)),
        ch_(options.integer("ch")),
        num_classes_(options.integer("num_classes")),
        freq_shift_(options.integer("time_freq_shift")),
        cos_first_(options.flag("time_flip_sin_to_cos")),
        condition_noise_max_(conditioning.noise_max),
        condition_noise_(conditioning.noise) {
    low_ = conditioning.low_resolution;
    GENFW_CHECK(context.data.shape.size() == 3, options.owner(),
                ": needs image data {C, H, W}, got a sample shape of ", context.data.shape.size(),
                " dimensions");
    const auto mult = options.integers("ch_mult");
    GENFW_CHECK(!mult.empty(), options.owner(), ": option 'ch_mult' must not be empty");
    const auto attn = options.integers("attn_resolutions");
    const int64_t blocks = options.integer("num_res_blocks");
    const double dropout = options.real("dropout");
    const int64_t in_ch = context.data.shape[0];
    const int64_t temb = 4 * ch_;
    image_shape_ = context.data.shape;
    if (low_ > 0) {
      GENFW_CHECK(image_shape_[1] % low_ == 0 && image_shape_[2] % low_ == 0, options.owner(),
                  ": option 'low_resolution' (", low_, ") must divide the image's height and width (",
                  image_shape_[1], "×", image_shape_[2], ")");
    }
    GENFW_CHECK(freq_shift_ < ch_ / 2, options.owner(), ": option 'time_freq_shift' (", freq_shift_,
                ") must be below ch/2 = ", ch_ / 2);
    const Layout layout{options.integer("norm_groups"), options.real("norm_eps"),
                        options.string("downsample_padding") == "right_bottom"};
    pad_right_bottom_ = layout.pad_right_bottom;
    auto has_attn = [&](int64_t res) { return std::find(attn.begin(), attn.end(), res) != attn.end(); };

    temb_dense0_ = register_module("temb_dense0", torch::nn::Linear(ch_, temb));
    temb_dense1_ = register_module("temb_dense1", torch::nn::Linear(temb, temb));
    if (num_classes_ > 0) {
      class_embedding_ =
          register_module("class_embedding", torch::nn::Embedding(num_classes_ + 1, temb));
    }
    if (low_ > 0) augmentation_embedding_ = register_module("augmentation_embedding", torch::nn::Linear(ch_, temb));
    // A super-resolution stage sees x_t and the upsampled condition, channel-stacked.
    conv_in_ = register_module("conv_in", conv3x3(low_ > 0 ? 2 * in_ch : in_ch, ch_));

    // Down path; `skip_channels` mirrors the stack of hidden states kept for the up path.
    std::vector<int64_t> skip_channels{ch_};
    int64_t channels = ch_;
    int64_t res = context.data.shape[1];
    std::vector<int64_t> level_res;
    for (size_t level = 0; level < mult.size(); ++level) {
      level_res.push_back(res);
      const int64_t out = ch_ * mult[level];
      for (int64_t b = 0; b < blocks; ++b) {
        const std::string name = "down" + std::to_string(level) + "_block" + std::to_string(b);
        down_.push_back({register_module(name, ResBlock(channels, out, temb, dropout, layout)), nullptr});
        if (has_attn(res)) down_.back().attn = register_module(name + "_attn", AttnBlock(out, layout));
        channels = out;
        skip_channels.push_back(channels);
      }
      if (level + 1 < mult.size()) {
        downsample_.push_back(register_module("down" + std::to_string(level) + "_downsample",
                                              downsample_conv(channels, layout)));
        skip_channels.push_back(channels);
        res = (res + 1) / 2;
      }
    }
    mid_block1_ = register_module("mid_block1", ResBlock(channels, channels, temb, dropout, layout));
    mid_attn_ = register_module("mid_attn", AttnBlock(channels, layout));
    mid_block2_ = register_module("mid_block2", ResBlock(channels, channels, temb, dropout, layout));

    for (int64_t level = int64_t(mult.size()) - 1; level >= 0; --level) {
      const int64_t out = ch_ * mult[level];
      res = level_res[level];
      for (int64_t b = 0; b <= blocks; ++b) {
        const std::string name = "up" + std::to_string(level) + "_block" + std::to_string(b);
        const int64_t skip = skip_channels.back();
        skip_channels.pop_back();
        up_.push_back({register_module(name, ResBlock(channels + skip, out, temb, dropout, layout)), nullptr});
        if (has_attn(res)) up_.back().attn = register_module(name + "_attn", AttnBlock(out, layout));
        channels = out;
      }
      if (level > 0) {
        upsample_.push_back(register_module("up" + std::to_string(level) + "_upsample",
                                            conv3x3(channels, channels)));
      }
    }
    norm_out_ = register_module("norm_out", make_norm(channels, layout));
    conv_out_ = register_module("conv_out", conv3x3(channels, in_ch));
    zero_init(conv_out_);
    blocks_ = blocks;
    levels_ = int64_t(mult.size());
    to(context.device);
  }


 public:
  torch::Tensor predict(const torch::Tensor& x_t, const torch::Tensor& t,
                        const torch::Tensor& y) override {
    auto temb = genfw::sinusoidal_embedding(t, ch_, 10000.0, freq_shift_, cos_first_).to(x_t.dtype());
    temb = temb_dense1_(torch::silu(temb_dense0_(temb)));
    if (num_classes_ > 0) {
      auto labels = y.defined() ? y.to(x_t.device(), torch::kLong)
                                : torch::full({x_t.size(0)}, num_classes_,
                                              torch::TensorOptions().dtype(torch::kLong).device(x_t.device()));
      temb = temb + class_embedding_(labels);
    }
    torch::Tensor input = x_t;
    if (low_ > 0) {
      auto [condition, level] = condition_of(x_t);
      temb = temb + augmentation_embedding_(
                        genfw::sinusoidal_embedding(level * 1000.0, ch_, 10000.0, freq_shift_, cos_first_).to(x_t.dtype()));
      input = torch::cat({x_t, condition}, 1);
    }
    std::vector<torch::Tensor> hs{conv_in_(input)};
    size_t block = 0;
    for (int64_t level = 0; level < levels_; ++level) {
      for (int64_t b = 0; b < blocks_; ++b, ++block) {
        auto h = down_[block].res->forward(hs.back(), temb);
        if (down_[block].attn) h = down_[block].attn->forward(h);
        hs.push_back(h);
      }
      if (level + 1 < levels_) hs.push_back(downsample(level, hs.back()));
    }
    auto h = mid_block2_->forward(mid_attn_->forward(mid_block1_->forward(hs.back(), temb)), temb);
    block = 0;
    size_t up = 0;
    for (int64_t level = levels_ - 1; level >= 0; --level) {
      for (int64_t b = 0; b <= blocks_; ++b, ++block) {
        h = up_[block].res->forward(torch::cat({h, hs.back()}, 1), temb);
        hs.pop_back();
        if (up_[block].attn) h = up_[block].attn->forward(h);
      }
      if (level > 0) {
        // Nearest-neighbour ×2 to the size of the matching skip (also handles odd sizes, 7 → 14).
        auto size = std::vector<int64_t>{hs.back().size(2), hs.back().size(3)};
        h = upsample_[up++](F::interpolate(h, F::InterpolateFuncOptions().size(size).mode(torch::kNearest)));
      }
    }
    return conv_out_(torch::silu(norm_out_(h)));
  }
  // TF 'SAME' for a stride-2 3×3 conv on an even size pads 0 before and 1 after.
  // The condition of x_t's rows, upsampled to x_t's size and augmented, and its level u.
  std::pair<torch::Tensor, torch::Tensor> condition_of(const torch::Tensor& x_t) {
    GENFW_CHECK(condition_.defined(), "model 'sr_unet': a super-resolution stage is evaluated only after "
                                      "condition_on() gave it its low-resolution images");
    const int64_t n = x_t.size(0), m = condition_.size(0);
    GENFW_CHECK(m > 0 && n % m == 0, "model 'sr_unet': ", n, " inputs for ", m, " low-resolution images");
    auto condition = condition_.to(x_t.device(), x_t.dtype());
    if (n != m) condition = condition.repeat({n / m, 1, 1, 1});
    condition = F::interpolate(condition, F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{x_t.size(2), x_t.size(3)})
                                              .mode(torch::kBilinear)
                                              .align_corners(false));
    auto options = x_t.options().dtype(torch::kFloat32);
    auto level = is_training() ? condition_noise_max_ * torch::rand({n}, options)
                               : torch::full({n}, condition_noise_, options);
    if (is_training() ? condition_noise_max_ > 0 : condition_noise_ > 0) {
      condition = augmented(condition, level.to(x_t.dtype()));
    }
    return {condition, level};
  }
  torch::Tensor downsample(int64_t level, const torch::Tensor& h) {
    if (!pad_right_bottom_) return downsample_[size_t(level)](h);
    return downsample_[size_t(level)](F::pad(h, F::PadFuncOptions({0, 1, 0, 1})));
  }
  static torch::nn::Conv2d downsample_conv(int64_t channels, const Layout& layout) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3)
                                 .stride(2)
                                 .padding(layout.pad_right_bottom ? 0 : 1));
  }
  const genfw::DiffusionSchedule& schedule() const override { return settings_.schedule; }
  genfw::PredictionType prediction_type() const override { return settings_.prediction_type; }
  int64_t num_classes() const override { return num_classes_; }

 protected:
  int64_t low_ = 0;
  std::vector<int64_t> image_shape_;
  torch::Tensor condition_;  // the low-resolution images of the current batch

 private:
  struct Stage {
    ResBlock res{nullptr};
    AttnBlock attn{nullptr};
  };
  DiffusionSettings settings_;
  int64_t ch_, num_classes_, freq_shift_, blocks_ = 0, levels_ = 0;
  bool cos_first_, pad_right_bottom_ = false;
  double condition_noise_max_, condition_noise_;
  torch::nn::Linear augmentation_embedding_{nullptr};
  torch::nn::Linear temb_dense0_{nullptr}, temb_dense1_{nullptr};
  torch::nn::Embedding class_embedding_{nullptr};
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  std::vector<Stage> down_, up_;
  std::vector<torch::nn::Conv2d> downsample_, upsample_;
  ResBlock mid_block1_{nullptr}, mid_block2_{nullptr};
  AttnBlock mid_attn_{nullptr};
  torch::nn::GroupNorm norm_out_{nullptr};
};

class SuperResolutionUnet final : public DdpmUnet, public genfw::LowResolutionConditioned {
 public:
  // DdpmUnet::schema() stays a plain Schema: its integer lists (ch_mult, attn_resolutions) have no binding.
  struct Settings {
    int64_t low_resolution = 14;
    double condition_noise_max = 0.2;
    double condition_noise = 0.0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("low_resolution", &Settings::low_resolution,
                     "the side of the low-resolution image: the image averaged down to "
                     "low_resolution × low_resolution pixels (H and W must be multiples of it)",
                     genfw::at_least(1))
            .real("condition_noise_max", &Settings::condition_noise_max,
                  "super-resolution: training corrupts the low-resolution image with Gaussian conditioning "
                  "augmentation at a level u ~ U[0, condition_noise_max] (√ᾱ·c + √(1−ᾱ)·ε, ᾱ = cos²(πu/2)), told "
                  "to the network",
                  genfw::between(0.0, 1.0))
            .real("condition_noise", &Settings::condition_noise,
                  "super-resolution: the augmentation level u the low-resolution image gets when sampling (0 = "
                  "clean)",
                  genfw::between(0.0, 1.0));
    return binding;
  }
  static genfw::Schema schema() { return DdpmUnet::schema().merge(bound_options().schema()); }
  SuperResolutionUnet(const genfw::Options& options, const genfw::BuildContext& context)
      : DdpmUnet(options, context, conditioning(bound_options().read(options))) {}

  std::vector<int64_t> low_resolution_shape() const override { return {image_shape_[0], low_, low_}; }
  torch::Tensor low_resolution_of(const torch::Tensor& x) const override {
    GENFW_CHECK(x.dim() == 4 && x.size(2) % low_ == 0 && x.size(3) % low_ == 0, "model 'sr_unet': cannot average ",
                x.sizes(), " down to ", low_, "×", low_);
    return F::avg_pool2d(x, F::AvgPool2dFuncOptions({x.size(2) / low_, x.size(3) / low_}));
  }
  void condition_on(const torch::Tensor& low_resolution) override {
    const auto expected = low_resolution_shape();
    GENFW_CHECK(low_resolution.dim() == 4 && low_resolution.sizes().slice(1).vec() == expected,
                "model 'sr_unet': the low-resolution images must be [N, ", expected[0], ", ", low_, ", ", low_,
                "], got ", low_resolution.sizes());
    condition_ = low_resolution;
  }

 private:
  static Conditioning conditioning(const Settings& settings) {
    return {settings.low_resolution, settings.condition_noise_max, settings.condition_noise};
  }
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<DdpmUnet>("ddpm_unet", genfw::Kind::model,
                     "DDPM U-Net noise predictor: ResNet blocks, GroupNorm, self-attention, "
                     "sinusoidal time embedding (Ho et al. 2020)");
  manifest.add<SuperResolutionUnet>("sr_unet", genfw::Kind::model,
                                "super-resolution stage of a cascade (Ho et al. 2021): the DDPM U-Net conditioned "
                                "on a low-resolution image, with Gaussian conditioning augmentation");
}
