// Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational
// Bayes"): diagonal-Gaussian encoder q(z|x), decoder p(x|z) with a choice of
// likelihoods, prior N(0, I). Convolutional for images, MLP for vectors.
#include <cmath>

#include "genfw/conv.hpp"
#include "genfw/nn.hpp"
#include "genfw/sdk.hpp"

namespace genfw_vae {

using genfw::BuildContext;
using genfw::Options;
using genfw::Schema;

enum class Likelihood { bernoulli, gaussian, gaussian_learned, discretized_logistic };

Likelihood parse_likelihood(const std::string& name) {
  if (name == "bernoulli") return Likelihood::bernoulli;
  if (name == "gaussian") return Likelihood::gaussian;
  if (name == "gaussian_learned") return Likelihood::gaussian_learned;
  if (name == "discretized_logistic") return Likelihood::discretized_logistic;
  throw genfw::Error("model 'vae': option 'likelihood' must be bernoulli, gaussian, gaussian_learned or "
                     "discretized_logistic, got '" + name + "'");
}

class Vae : public genfw::Model, public genfw::LatentVariableModel {
 public:
  struct Settings {
    int64_t latent_dim = 16;
    int64_t hidden = 256;
    int64_t channels = 32;
    int64_t layers = 2;
    std::string likelihood = "gaussian_learned";
    double fixed_std = 0.1;
    double min_log_std = -7.0;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("latent_dim", &Settings::latent_dim, "dimension of z", genfw::at_least(1))
            .integer("hidden", &Settings::hidden,
                     "width of the MLP layers (vectors) / of the fully connected layer (images)", genfw::at_least(1))
            .integer("channels", &Settings::channels,
                     "images: channels of the first conv layer (the second has twice as many)", genfw::at_least(1))
            .integer("layers", &Settings::layers, "vectors: hidden layers of the encoder and decoder MLPs",
                     genfw::at_least(1))
            .choice("likelihood", &Settings::likelihood,
                    {"bernoulli", "gaussian", "gaussian_learned", "discretized_logistic"},
                    "p(x|z): bernoulli (targets (x-low)/(high-low) in [0,1]), gaussian (fixed_std), "
                    "gaussian_learned (per-dimension std from the decoder), discretized_logistic "
                    "(PixelCNN++-style, one component, DataInfo::levels bins)")
            .real("fixed_std", &Settings::fixed_std, "std of the gaussian likelihood in data units",
                  genfw::Range{1e-6, {}})
            .real("min_log_std", &Settings::min_log_std,
                  "lower clamp of learned log-stds / log-scales (numerical floor)");
    return binding;
  }
  static Schema schema() { return bound_options().schema(); }

  Vae(const Options& options, const BuildContext& context)
      : data_(context.data),
        settings_(bound_options().read(options)),
        likelihood_(parse_likelihood(settings_.likelihood)) {
    GENFW_CHECK(!data_.shape.empty(), "model 'vae': data shape is empty");
    GENFW_CHECK(data_.high > data_.low, "model 'vae': data range [", data_.low, ", ", data_.high,
                "] is empty");
    const int64_t hidden = settings_.hidden;
    const bool two_outputs =
        likelihood_ == Likelihood::gaussian_learned || likelihood_ == Likelihood::discretized_logistic;
    out_factor_ = two_outputs ? 2 : 1;
    if (data_.is_image()) {
      const int64_t c = data_.shape[0], h = data_.shape[1], w = data_.shape[2];
      const int64_t ch = settings_.channels;
      GENFW_CHECK(h % 4 == 0 && w % 4 == 0, "model 'vae': image height and width must be multiples of 4, got ",
                  h, "x", w);
      h4_ = h / 4;
      w4_ = w / 4;
      ch2_ = 2 * ch;
      namespace nn = torch::nn;
      encoder_ = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(c, ch, 4).stride(2).padding(1)), nn::ReLU(),
                                nn::Conv2d(nn::Conv2dOptions(ch, ch2_, 4).stride(2).padding(1)), nn::ReLU(),
                                nn::Flatten(), nn::Linear(ch2_ * h4_ * w4_, hidden), nn::ReLU(),
                                nn::Linear(hidden, 2 * settings_.latent_dim));
      decoder_fc_ = nn::Sequential(nn::Linear(settings_.latent_dim, hidden), nn::ReLU(),
                                   nn::Linear(hidden, ch2_ * h4_ * w4_), nn::ReLU());
      decoder_conv_ = nn::Sequential(
          genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(ch2_, ch, 4).stride(2).padding(1)), nn::ReLU(),
          genfw::ConvTranspose2d(nn::ConvTranspose2dOptions(ch, out_factor_ * c, 4).stride(2).padding(1)));
      register_module("decoder_fc", decoder_fc_);
      register_module("decoder_conv", decoder_conv_);
    } else {
      const int64_t d = data_.dim(), layers = settings_.layers;
      encoder_ = genfw::make_mlp(d, hidden, 2 * settings_.latent_dim, layers, "silu");
      decoder_mlp_ = genfw::make_mlp(settings_.latent_dim, hidden, out_factor_ * d, layers, "silu");
      register_module("decoder_mlp", decoder_mlp_);
    }
    register_module("encoder", encoder_);
    to(context.device);
  }

  genfw::Posterior encode(const torch::Tensor& x) override {
    auto h = encoder_->forward(data_.is_image() ? x : x.flatten(1));
    auto parts = h.chunk(2, -1);
    // Clamp log-variance only against overflow; the clamp is far outside the trained range.
    return {parts[0], parts[1].clamp(-30.0, 20.0)};
  }

  torch::Tensor decoder_log_likelihood(const torch::Tensor& x, const torch::Tensor& z) override {
    auto out = decoder_output(z);
    auto xf = x.reshape({x.size(0), -1});
    const double range = data_.high - data_.low;
    const double log_2pi = std::log(2.0 * M_PI);
    switch (likelihood_) {
      case Likelihood::bernoulli: {
        // Targets in [0, 1]; for non-binary targets this is the (unnormalised) cross-entropy.
        auto target = (xf - data_.low) / range;
        return -torch::binary_cross_entropy_with_logits(out[0], target, {}, {}, at::Reduction::None).sum(-1);
      }
      case Likelihood::gaussian: {
        const double s = settings_.fixed_std;
        return (-0.5 * (xf - out[0]).pow(2) / (s * s) - std::log(s) - 0.5 * log_2pi).sum(-1);
      }
      case Likelihood::gaussian_learned: {
        auto log_std = out[1];
        return (-0.5 * (xf - out[0]).pow(2) * torch::exp(-2.0 * log_std) - log_std - 0.5 * log_2pi).sum(-1);
      }
      case Likelihood::discretized_logistic: {
        // Pixels sit at low + k·δ, δ = range/(L−1); bins are [x − δ/2, x + δ/2], the
        // edge bins extend to ±∞ (Salimans et al. 2017, PixelCNN++).
        const double half_bin = 0.5 * range / static_cast<double>(data_.levels - 1);
        auto mean = out[0], inv_scale = torch::exp(-out[1]);
        auto centred = xf - mean;
        auto upper = inv_scale * (centred + half_bin), lower = inv_scale * (centred - half_bin);
        auto log_cdf_upper = upper - torch::softplus(upper);  // log σ(upper)
        auto log_one_minus_cdf_lower = -torch::softplus(lower);
        auto cdf_delta = torch::sigmoid(upper) - torch::sigmoid(lower);
        // Middle bins: log(σ(u) − σ(l)); when the difference underflows, use the density
        // at the centre times the bin width.
        auto mid = inv_scale * centred;
        auto log_pdf_mid = mid - out[1] - 2.0 * torch::softplus(mid);
        auto log_mid = torch::where(cdf_delta > 1e-5, torch::log(cdf_delta.clamp_min(1e-12)),
                                    log_pdf_mid + std::log(2.0 * half_bin));
        auto log_mass = torch::where(xf < data_.low + half_bin, log_cdf_upper,
                                     torch::where(xf > data_.high - half_bin, log_one_minus_cdf_lower, log_mid));
        // Mass → data-space density with the bin width w = range/L (bits_per_dim.hpp).
        const double log_bin = std::log(range / static_cast<double>(data_.levels));
        return log_mass.sum(-1) - static_cast<double>(xf.size(1)) * log_bin;
      }
    }
    return {};
  }

  torch::Tensor decode(const torch::Tensor& z, bool mean) override {
    auto out = decoder_output(z);
    const double range = data_.high - data_.low;
    torch::Tensor x;
    switch (likelihood_) {
      case Likelihood::bernoulli: {
        auto p = torch::sigmoid(out[0]);
        x = data_.low + range * (mean ? p : torch::bernoulli(p));
        break;
      }
      case Likelihood::gaussian:
        x = mean ? out[0] : out[0] + settings_.fixed_std * torch::randn_like(out[0]);
        break;
      case Likelihood::gaussian_learned:
        x = mean ? out[0] : out[0] + torch::exp(out[1]) * torch::randn_like(out[0]);
        break;
      case Likelihood::discretized_logistic: {
        x = out[0];
        if (!mean) {
          auto u = torch::rand_like(x).clamp(1e-5, 1.0 - 1e-5);
          x = x + torch::exp(out[1]) * (torch::log(u) - torch::log1p(-u));
        }
        // Snap to the pixel grid of the data.
        const double step = range / static_cast<double>(data_.levels - 1);
        x = data_.low + torch::round((x.clamp(data_.low, data_.high) - data_.low) / step) * step;
        break;
      }
    }
    std::vector<int64_t> shape{z.size(0)};
    shape.insert(shape.end(), data_.shape.begin(), data_.shape.end());
    return x.reshape(shape);
  }

  int64_t latent_dim() const override { return settings_.latent_dim; }

 private:
  /// Decoder parameters flattened to [N, D]: {mean or logits, log-std / log-scale}.
  std::vector<torch::Tensor> decoder_output(const torch::Tensor& z) {
    torch::Tensor h;
    if (data_.is_image()) {
      h = decoder_conv_->forward(decoder_fc_->forward(z).view({z.size(0), ch2_, h4_, w4_}));
    } else {
      h = decoder_mlp_->forward(z);
    }
    const int64_t n = z.size(0), d = data_.dim();
    if (out_factor_ == 1) return {h.reshape({n, d})};
    // Images: the first C channels are the mean, the next C the log-std; vectors: first D, next D.
    auto parts = data_.is_image() ? h.chunk(2, 1) : h.chunk(2, -1);
    return {parts[0].reshape({n, d}), parts[1].reshape({n, d}).clamp_min(settings_.min_log_std)};
  }

  genfw::DataInfo data_;
  Settings settings_;
  Likelihood likelihood_;  // settings_.likelihood parsed
  int64_t out_factor_ = 1, h4_ = 0, w4_ = 0, ch2_ = 0;
  torch::nn::Sequential encoder_{nullptr}, decoder_fc_{nullptr}, decoder_conv_{nullptr}, decoder_mlp_{nullptr};
};

}  // namespace genfw_vae

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_vae::Vae>("vae", genfw::Kind::model,
                           "variational autoencoder, Kingma & Welling 2014 (conv for images, MLP for vectors)");
}
