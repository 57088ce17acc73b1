// Time-conditioned classifier p(y | x_t, t) on noised inputs, for classifier
// guidance (Dhariwal & Nichol 2021, §4; Song et al. 2021 "conditional sampling").
// Images: small conv net (stride-2 stages with a per-stage time projection,
// GroupNorm + SiLU, global average pool); vectors: MLP on x ⊕ sinusoidal(t).
// Carries the same β-schedule options as the noise predictors so that its
// objective noises inputs exactly as the sampler will see them.
#include <genfw/nn.hpp>
#include <genfw/sdk.hpp>

#include <numeric>

namespace {

using genfw::DiffusionSettings;

class NoisyClassifierModel : public genfw::Model, public genfw::NoisyClassifier {
 public:
  struct Settings {
    int64_t width = 64;
    int64_t layers = 3;
    int64_t time_embedding_dim = 32;
    int64_t num_classes = 0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("width", &Settings::width, "MLP hidden width, or base channels of the conv net",
                     genfw::at_least(1))
            .integer("layers", &Settings::layers, "MLP hidden layers, or stride-2 conv stages", genfw::at_least(1))
            .integer("time_embedding_dim", &Settings::time_embedding_dim, "size of the sinusoidal time embedding",
                     genfw::at_least(2))
            .integer("num_classes", &Settings::num_classes, "number of classes (0 = take it from the dataset)",
                     genfw::at_least(0));
    return binding;
  }
  static genfw::Schema schema() {
    return genfw::Schema(bound_options().schema()).merge(genfw::diffusion_schema());
  }

  NoisyClassifierModel(const genfw::Options& options, const genfw::BuildContext& context)
      : diffusion_(DiffusionSettings::from_options(options)), settings_(bound_options().read(options)) {
    num_classes_ = settings_.num_classes > 0 ? settings_.num_classes : context.data.num_classes;
    GENFW_CHECK(num_classes_ >= 2, options.owner(),
                ": option 'num_classes' must be >= 2 (or the dataset must be labelled), got ",
                num_classes_);
    GENFW_CHECK(!context.data.shape.empty(), options.owner(), ": needs the data shape");
    const int64_t width = settings_.width, layers = settings_.layers, time_dim = settings_.time_embedding_dim;
    image_ = context.data.is_image();
    if (image_) {
      int64_t channels = width;
      stem_ = register_module("stem", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                          context.data.shape[0], width, 3).padding(1)));
      for (int64_t i = 0; i < layers; ++i) {
        const int64_t out = width * (i + 1);
        const std::string n = std::to_string(i);
        const int64_t groups = std::gcd<int64_t>(8, channels);
        norms_.push_back(register_module("norm" + n, torch::nn::GroupNorm(groups, channels)));
        temb_.push_back(register_module("temb" + n, torch::nn::Linear(time_dim, channels)));
        convs_.push_back(register_module(
            "conv" + n, torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, out, 3).stride(2).padding(1))));
        channels = out;
      }
      head_ = register_module("head", torch::nn::Linear(channels, num_classes_));
    } else {
      dim_ = context.data.dim();
      mlp_ = register_module("mlp", genfw::make_mlp(dim_ + time_dim, width, num_classes_, layers));
    }
    to(context.device);
  }

  torch::Tensor classify(const torch::Tensor& x_t, const torch::Tensor& t) override {
    auto temb = genfw::sinusoidal_embedding(t.to(x_t.device()), settings_.time_embedding_dim).to(x_t.dtype());
    if (!image_) return mlp_->forward(torch::cat({x_t.reshape({x_t.size(0), dim_}), temb}, 1));
    auto h = stem_(x_t);
    for (size_t i = 0; i < convs_.size(); ++i) {
      h = h + temb_[i](temb).unsqueeze(-1).unsqueeze(-1);
      h = convs_[i](torch::silu(norms_[i](h)));
    }
    return head_(torch::silu(h).mean({2, 3}));
  }
  const genfw::DiffusionSchedule& schedule() const override { return diffusion_.schedule; }
  int64_t num_classes() const override { return num_classes_; }

 private:
  DiffusionSettings diffusion_;
  Settings settings_;
  int64_t num_classes_ = 0, dim_ = 0;  // num_classes_: the option, or the dataset's when it is 0
  bool image_ = false;
  torch::nn::Conv2d stem_{nullptr};
  std::vector<torch::nn::GroupNorm> norms_;
  std::vector<torch::nn::Linear> temb_;
  std::vector<torch::nn::Conv2d> convs_;
  torch::nn::Linear head_{nullptr};
  torch::nn::Sequential mlp_{nullptr};
};

}  // namespace

GENFW_PLUGIN(manifest) {
  manifest
      .add<NoisyClassifierModel>("noisy_classifier", genfw::Kind::model,
                                 "time-conditioned classifier p(y | x_t, t) for classifier guidance "
                                 "(Dhariwal & Nichol 2021)");
}
