// GAN generator and discriminator (Goodfellow et al. 2014). Images: DCGAN
// (Radford, Metz & Chintala 2016) — transposed convolutions with batch norm and
// ReLU in G, strided convolutions with LeakyReLU(0.2) in D; 32×32 via
// 4→8→16→32, 28×28 via a linear layer to 7×7 then 7→14→28. Vectors: MLPs.
#include "genfw/conv.hpp"
#include "genfw/nn.hpp"
#include "genfw/sdk.hpp"

namespace genfw_gan {

namespace nn = torch::nn;
using torch::Tensor;

/// DCGAN initialisation: conv weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0.
void dcgan_init(nn::Module& module) {
  torch::NoGradGuard guard;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<nn::Conv2d>()) {
      conv->weight.normal_(0.0, 0.02);
    } else if (auto* convt = m->as<nn::ConvTranspose2d>()) {
      convt->weight.normal_(0.0, 0.02);
    } else if (auto* bn = m->as<nn::BatchNorm2d>()) {
      bn->weight.normal_(1.0, 0.02);
      bn->bias.zero_();
    }
  }
}

class Gan : public genfw::Model, public genfw::GeneratorModel, public genfw::DiscriminatorModel {
 public:
  struct Settings {
    int64_t latent_dim = 0;
    int64_t ngf = 64;
    int64_t ndf = 64;
    int64_t hidden = 128;
    int64_t layers = 3;
    std::string discriminator_norm = "batch";
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("latent_dim", &Settings::latent_dim, "dimension of z (0 = 64 for images, 2 for vectors)",
                     genfw::at_least(0))
            .integer("ngf", &Settings::ngf, "images: generator channels of the last hidden layer", genfw::at_least(1))
            .integer("ndf", &Settings::ndf, "images: discriminator channels of the first layer", genfw::at_least(1))
            .integer("hidden", &Settings::hidden, "vectors: width of the generator and discriminator MLPs",
                     genfw::at_least(1))
            .integer("layers", &Settings::layers, "vectors: hidden layers of each MLP", genfw::at_least(1))
            .choice("discriminator_norm", &Settings::discriminator_norm, {"batch", "none"},
                    "images: batch norm in the discriminator (DCGAN) or none (use with wgan_gp)");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  Gan(const genfw::Options& options, const genfw::BuildContext& context) : data_(context.data) {
    GENFW_CHECK(!data_.shape.empty(), "model 'gan': data shape is empty");
    const Settings settings = bound_options().read(options);
    latent_dim_ = settings.latent_dim;
    if (latent_dim_ == 0) latent_dim_ = data_.is_image() ? 64 : 2;
    if (data_.is_image()) {
      const int64_t c = data_.shape[0], h = data_.shape[1], w = data_.shape[2];
      const int64_t ngf = settings.ngf, ndf = settings.ndf;
      const bool d_bn = settings.discriminator_norm == "batch";
      GENFW_CHECK(h == w && (h == 28 || h == 32), "model 'gan': images must be 28x28 or 32x32, got ", h, "x", w);
      auto d_norm = [&](int64_t ch) {
        return d_bn ? nn::AnyModule(nn::BatchNorm2d(ch)) : nn::AnyModule(nn::Identity());
      };
      auto lrelu = [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); };
      if (h == 32) {
        generator_ = nn::Sequential(
            genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(latent_dim_, ngf * 4, 4).bias(false)),
            nn::BatchNorm2d(ngf * 4), nn::ReLU(),
            genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(ngf * 4, ngf * 2, 4).stride(2).padding(1).bias(false)),
            nn::BatchNorm2d(ngf * 2), nn::ReLU(),
            genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(ngf * 2, ngf, 4).stride(2).padding(1).bias(false)),
            nn::BatchNorm2d(ngf), nn::ReLU(),
            genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(ngf, c, 4).stride(2).padding(1)), nn::Tanh());
        discriminator_ = nn::Sequential(
            nn::Conv2d(nn::Conv2dOptions(c, ndf, 4).stride(2).padding(1)), lrelu(),
            nn::Conv2d(nn::Conv2dOptions(ndf, ndf * 2, 4).stride(2).padding(1).bias(!d_bn)));
        discriminator_->push_back(d_norm(ndf * 2));
        discriminator_->push_back(lrelu());
        discriminator_->push_back(nn::Conv2d(nn::Conv2dOptions(ndf * 2, ndf * 4, 4).stride(2).padding(1).bias(!d_bn)));
        discriminator_->push_back(d_norm(ndf * 4));
        discriminator_->push_back(lrelu());
        discriminator_->push_back(nn::Conv2d(nn::Conv2dOptions(ndf * 4, 1, 4)));  // 4×4 → 1×1
      } else {
        generator_ = nn::Sequential(
            nn::Linear(nn::LinearOptions(latent_dim_, ngf * 2 * 7 * 7).bias(false)),
            nn::Unflatten(nn::UnflattenOptions(1, {ngf * 2, 7, 7})), nn::BatchNorm2d(ngf * 2), nn::ReLU(),
            genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(ngf * 2, ngf, 4).stride(2).padding(1).bias(false)),
            nn::BatchNorm2d(ngf), nn::ReLU(),
            genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(ngf, c, 4).stride(2).padding(1)), nn::Tanh());
        discriminator_ = nn::Sequential(
            nn::Conv2d(nn::Conv2dOptions(c, ndf, 4).stride(2).padding(1)), lrelu(),  // 14×14
            nn::Conv2d(nn::Conv2dOptions(ndf, ndf * 2, 4).stride(2).padding(1).bias(!d_bn)));  // 7×7
        discriminator_->push_back(d_norm(ndf * 2));
        discriminator_->push_back(lrelu());
        discriminator_->push_back(nn::Flatten());
        discriminator_->push_back(nn::Linear(ndf * 2 * 7 * 7, 1));
      }
      image_z_ = h == 32;
    } else {
      const int64_t d = data_.dim(), hidden = settings.hidden, layers = settings.layers;
      generator_ = genfw::make_mlp(latent_dim_, hidden, d, layers, "relu");
      discriminator_ = genfw::make_mlp(d, hidden, 1, layers, "leaky_relu");
    }
    register_module("generator", generator_);
    register_module("discriminator", discriminator_);
    if (data_.is_image()) {
      dcgan_init(*generator_);
      dcgan_init(*discriminator_);
    }
    to(context.device);
  }

  std::vector<genfw::ParameterGroup> parameter_groups() override {
    return {{"generator", generator_->parameters()}, {"discriminator", discriminator_->parameters()}};
  }

  Tensor generate(const Tensor& z) override {
    if (!data_.is_image()) return generator_->forward(z);
    auto t = generator_->forward(image_z_ ? z.view({z.size(0), latent_dim_, 1, 1}) : z);
    // tanh ∈ [−1, 1] → the data range.
    return data_.low + 0.5 * (t + 1.0) * (data_.high - data_.low);
  }

  Tensor discriminate(const Tensor& x) override {
    if (!data_.is_image()) return discriminator_->forward(x.flatten(1)).view({x.size(0)});
    // The data range → [−1, 1], the range the DCGAN discriminator expects.
    auto scaled = 2.0 * (x - data_.low) / (data_.high - data_.low) - 1.0;
    return discriminator_->forward(scaled).view({x.size(0)});
  }

  int64_t latent_dim() const override { return latent_dim_; }

 private:
  genfw::DataInfo data_;
  int64_t latent_dim_ = 0;
  bool image_z_ = false;
  nn::Sequential generator_{nullptr}, discriminator_{nullptr};
};

}  // namespace genfw_gan

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_gan::Gan>("gan", genfw::Kind::model,
                           "GAN generator + discriminator (Goodfellow et al. 2014; DCGAN, Radford et al. 2016)");
}
