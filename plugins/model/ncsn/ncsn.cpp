// ncsn: the noise-conditional score network of Song & Ermon 2019 (NCSN v1,
// reference `CondRefineNetDilated`, appendix A): a RefineNet (Lin et al. 2017)
// whose encoder is a ResNet of conditional residual blocks (one down-sampling,
// then dilated convolutions, dilation 2 and 4, at half resolution instead of
// further down-sampling), four cascaded RefineNet blocks decoding, ELU
// activations, and conditional instance normalisation++ everywhere,
// conditioned on the index i of the noise level σ_i.
//
// Same layout and initialisation as the reference, module for module; the only
// differences: the input is mapped from [data.low, data.high] to [−1, 1] (the
// reference does 2x − 1 for [0, 1] data), the mean-pooling of ConvMeanPool is
// avg_pool2d(2) (identical for even sizes, which is checked), and the 1×1
// shortcut of a non-resampling block that changes width (never instantiated).
#include <genfw/sdk.hpp>

#include "ncsn_layers.hpp"

namespace genfw_score {
namespace {

namespace F = torch::nn::functional;

torch::nn::Conv2d conv3x3(int64_t in, int64_t out, bool bias, int64_t dilation = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, 3).padding(dilation).dilation(dilation).bias(bias));
}

using Norm = std::shared_ptr<CondInstanceNormPlus>;

// ELU applied to a norm's fresh output: in place saves a full-size buffer, and
// autograd allows it (ELU's backward needs only its result; the norm's
// backward does not need its output).
torch::Tensor elu_in_place(torch::Tensor x) { return torch::elu_(x); }

// ConditionalResidualBlock: norm → ELU → conv → norm → ELU → conv, + shortcut.
// "down" without dilation halves the resolution (ConvMeanPool); with dilation
// the reference keeps the resolution and uses dilated 3×3 convolutions.
struct CondResBlock : torch::nn::Module {
  CondResBlock(int64_t in, int64_t out, int64_t classes, bool down, int64_t dilation)
      : in(in), out(out), down(down), pool(down && dilation == 1) {
    int64_t mid = down ? in : out;
    norm1 = register_module("norm1", std::make_shared<CondInstanceNormPlus>(in, classes));
    conv1 = register_module("conv1", conv3x3(in, mid, true, dilation));
    norm2 = register_module("norm2", std::make_shared<CondInstanceNormPlus>(mid, classes));
    conv2 = register_module("conv2", conv3x3(mid, out, true, dilation));
    if (in != out || down) {
      shortcut = register_module(
          "shortcut", dilation > 1 ? conv3x3(in, out, true, dilation)
                                   : torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y) {
    auto h = conv1->forward(elu_in_place(norm1->forward(x, y)));
    h = conv2->forward(elu_in_place(norm2->forward(h, y)));
    auto skip = shortcut ? shortcut->forward(x) : x;
    if (pool) {
      h = torch::avg_pool2d(h, 2);
      skip = torch::avg_pool2d(skip, 2);
    }
    return skip + h;
  }
  int64_t in, out;
  bool down, pool;
  Norm norm1, norm2;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, shortcut{nullptr};
};

// Residual conv units: blocks × (stages × (norm → ELU → conv3x3 no bias)) + residual.
struct CondRcuBlock : torch::nn::Module {
  CondRcuBlock(int64_t features, int64_t blocks, int64_t stages, int64_t classes) {
    for (int64_t i = 0; i < blocks; ++i) {
      std::vector<std::pair<Norm, torch::nn::Conv2d>> block;
      for (int64_t j = 0; j < stages; ++j) {
        auto tag = std::to_string(i + 1) + "_" + std::to_string(j + 1);
        block.emplace_back(register_module(tag + "_norm", std::make_shared<CondInstanceNormPlus>(features, classes)),
                           register_module(tag + "_conv", conv3x3(features, features, false)));
      }
      units.push_back(std::move(block));
    }
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& y) {
    for (auto& block : units) {
      auto residual = x;
      for (auto& [norm, conv] : block) x = conv->forward(elu_in_place(norm->forward(x, y)));
      x = x + residual;
    }
    return x;
  }
  std::vector<std::vector<std::pair<Norm, torch::nn::Conv2d>>> units;
};

// Multi-resolution fusion: norm → conv3x3 (bias) → bilinear upsampling, summed.
struct CondMsfBlock : torch::nn::Module {
  CondMsfBlock(const std::vector<int64_t>& in_planes, int64_t features, int64_t classes) {
    for (size_t i = 0; i < in_planes.size(); ++i) {
      norms.push_back(register_module("norm" + std::to_string(i),
                                      std::make_shared<CondInstanceNormPlus>(in_planes[i], classes)));
      convs.push_back(register_module("conv" + std::to_string(i), conv3x3(in_planes[i], features, true)));
    }
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& xs, const torch::Tensor& y,
                        const std::vector<int64_t>& size) {
    torch::Tensor sum;
    for (size_t i = 0; i < xs.size(); ++i) {
      auto h = convs[i]->forward(norms[i]->forward(xs[i], y));
      h = F::interpolate(h, F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(true));
      sum = sum.defined() ? sum + h : h;
    }
    return sum;
  }
  std::vector<Norm> norms;
  std::vector<torch::nn::Conv2d> convs;
};

// Chained residual pooling: ELU, then stages × (norm → 5×5 avg-pool → conv), accumulated.
struct CondCrpBlock : torch::nn::Module {
  CondCrpBlock(int64_t features, int64_t stages, int64_t classes) {
    for (int64_t i = 0; i < stages; ++i) {
      norms.push_back(register_module("norm" + std::to_string(i),
                                      std::make_shared<CondInstanceNormPlus>(features, classes)));
      convs.push_back(register_module("conv" + std::to_string(i), conv3x3(features, features, false)));
    }
  }
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& y) {
    x = torch::elu(x);
    auto path = x;
    for (size_t i = 0; i < convs.size(); ++i) {
      path = convs[i]->forward(box_average_5x5(norms[i]->forward(path, y)));
      x = path + x;
    }
    return x;
  }
  std::vector<Norm> norms;
  std::vector<torch::nn::Conv2d> convs;
};

struct CondRefineBlock : torch::nn::Module {
  CondRefineBlock(const std::vector<int64_t>& in_planes, int64_t features, int64_t classes, bool end) {
    for (size_t i = 0; i < in_planes.size(); ++i) {
      adapt.push_back(register_module("adapt" + std::to_string(i),
                                      std::make_shared<CondRcuBlock>(in_planes[i], 2, 2, classes)));
    }
    if (in_planes.size() > 1) msf = register_module("msf", std::make_shared<CondMsfBlock>(in_planes, features, classes));
    crp = register_module("crp", std::make_shared<CondCrpBlock>(features, 2, classes));
    output = register_module("output", std::make_shared<CondRcuBlock>(features, end ? 3 : 1, 2, classes));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& xs, const torch::Tensor& y,
                        const std::vector<int64_t>& size) {
    std::vector<torch::Tensor> hs;
    for (size_t i = 0; i < xs.size(); ++i) hs.push_back(adapt[i]->forward(xs[i], y));
    auto h = msf ? msf->forward(hs, y, size) : hs[0];
    return output->forward(crp->forward(h, y), y);
  }
  std::vector<std::shared_ptr<CondRcuBlock>> adapt;
  std::shared_ptr<CondMsfBlock> msf;
  std::shared_ptr<CondCrpBlock> crp;
  std::shared_ptr<CondRcuBlock> output;
};

class Ncsn : public genfw::Model, public genfw::ScoreModel {
 public:
  struct Settings {
    int64_t ngf = 128;
    int64_t num_levels = 10;
    double sigma_begin = 1.0;
    double sigma_end = 0.01;
    bool scale_by_sigma = false;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("ngf", &Settings::ngf, "base width (channels of the full-resolution blocks; 2·ngf below)",
                     genfw::at_least(2))
            .integer("num_levels", &Settings::num_levels, "number L of noise levels (classes of the conditional norms)",
                     genfw::at_least(1))
            .real("sigma_begin", &Settings::sigma_begin, "largest noise level σ_1", genfw::at_least(0.0))
            .real("sigma_end", &Settings::sigma_end, "smallest noise level σ_L", genfw::at_least(0.0))
            .boolean("scale_by_sigma", &Settings::scale_by_sigma,
                     "divide the network output by σ (NCSNv2); false = NCSN v1, the output is the score");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  Ncsn(const genfw::Options& options, const genfw::BuildContext& context)
      : low_(context.data.low), high_(context.data.high), settings_(bound_options().read(options)) {
    const auto& owner = options.owner();
    GENFW_CHECK(context.data.is_image(), owner, ": needs image data [C, H, W], got a sample shape of ",
                context.data.shape.size(), " dimensions");
    const int64_t channels = context.data.shape[0];
    GENFW_CHECK(context.data.shape[1] % 2 == 0 && context.data.shape[2] % 2 == 0, owner,
                ": image height and width must be even (one 2× down-sampling), got ", context.data.shape[1],
                "×", context.data.shape[2]);
    const double sigma_begin = settings_.sigma_begin, sigma_end = settings_.sigma_end;
    GENFW_CHECK(sigma_begin > 0 && sigma_end > 0, owner, ": options 'sigma_begin' and 'sigma_end' must be > 0, got ",
                sigma_begin, " and ", sigma_end);
    GENFW_CHECK(high_ > low_, owner, ": data range must satisfy low < high, got [", low_, ", ", high_, "]");
    levels_ = genfw::geometric_sigmas(sigma_begin, sigma_end, settings_.num_levels);
    const int64_t ngf = settings_.ngf, classes = levels_.size(0);
    auto block = [&](const std::string& name, int64_t in, int64_t out, bool down, int64_t dilation) {
      return register_module(name, std::make_shared<CondResBlock>(in, out, classes, down, dilation));
    };
    begin_conv_ = register_module("begin_conv", conv3x3(channels, ngf, true));
    res_ = {block("res1_0", ngf, ngf, false, 1),         block("res1_1", ngf, ngf, false, 1),
            block("res2_0", ngf, 2 * ngf, true, 1),      block("res2_1", 2 * ngf, 2 * ngf, false, 1),
            block("res3_0", 2 * ngf, 2 * ngf, true, 2),  block("res3_1", 2 * ngf, 2 * ngf, false, 2),
            block("res4_0", 2 * ngf, 2 * ngf, true, 4),  block("res4_1", 2 * ngf, 2 * ngf, false, 4)};
    auto refine = [&](const std::string& name, std::vector<int64_t> in, int64_t features, bool end) {
      return register_module(name, std::make_shared<CondRefineBlock>(in, features, classes, end));
    };
    refine_ = {refine("refine1", {2 * ngf}, 2 * ngf, false), refine("refine2", {2 * ngf, 2 * ngf}, 2 * ngf, false),
               refine("refine3", {2 * ngf, 2 * ngf}, ngf, false), refine("refine4", {ngf, ngf}, ngf, true)};
    normalizer_ = register_module("normalizer", std::make_shared<CondInstanceNormPlus>(ngf, classes));
    end_conv_ = register_module("end_conv", conv3x3(ngf, channels, true));
    to(context.device);
  }

  /// Score at σ: the network is conditioned on the index of the nearest (in log σ) of its levels.
  torch::Tensor score(const torch::Tensor& x, const torch::Tensor& sigma) override {
    auto n = x.size(0);
    auto s = sigma.reshape({-1}).expand({n});
    // On σ's device: no device→host copy (a sync on a GPU) per evaluation.
    auto index = (log_levels_on(s.device()).unsqueeze(0) - s.detach().to(torch::kFloat64).log().unsqueeze(1))
                     .abs()
                     .argmin(1)
                     .to(x.device());
    auto out = network(x, index);
    if (settings_.scale_by_sigma) out = out / genfw::per_sample(s, out);
    return out;
  }
  torch::Tensor noise_levels() const override { return levels_; }

 private:
  // log σ_i on `device`, kept between calls. Rebuilt when the device changes, and when the
  // copy was made under inference mode and is now needed outside it (inference tensors
  // cannot take part in autograd).
  const torch::Tensor& log_levels_on(const torch::Device& device) {
    if (!log_levels_.defined() || log_levels_.device() != device ||
        (log_levels_.is_inference() && !c10::InferenceMode::is_enabled())) {
      log_levels_ = levels_.log().to(device);
    }
    return log_levels_;
  }

  torch::Tensor network(const torch::Tensor& x_data, const torch::Tensor& y) {
    auto x = 2.0 * (x_data - low_) / (high_ - low_) - 1.0;
    auto h = begin_conv_->forward(x);
    std::vector<torch::Tensor> layers;
    for (size_t i = 0; i < res_.size(); ++i) {
      h = res_[i]->forward(h, y);
      if (i % 2 == 1) layers.push_back(h);  // layer1..layer4
    }
    auto size = [](const torch::Tensor& t) { return std::vector<int64_t>{t.size(2), t.size(3)}; };
    auto ref = refine_[0]->forward({layers[3]}, y, size(layers[3]));
    ref = refine_[1]->forward({layers[2], ref}, y, size(layers[2]));
    ref = refine_[2]->forward({layers[1], ref}, y, size(layers[1]));
    ref = refine_[3]->forward({layers[0], ref}, y, size(layers[0]));
    return end_conv_->forward(elu_in_place(normalizer_->forward(ref, y)));
  }

  double low_, high_;
  Settings settings_;
  torch::Tensor levels_, log_levels_;
  torch::nn::Conv2d begin_conv_{nullptr}, end_conv_{nullptr};
  std::vector<std::shared_ptr<CondResBlock>> res_;
  std::vector<std::shared_ptr<CondRefineBlock>> refine_;
  std::shared_ptr<CondInstanceNormPlus> normalizer_;
};

}  // namespace
}  // namespace genfw_score

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_score::Ncsn>("ncsn", genfw::Kind::model,
                              "NCSN: RefineNet with dilated conditional residual blocks and "
                              "CondInstanceNorm++ (Song & Ermon 2019, appendix A)");
}
