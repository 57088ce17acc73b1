// Glow (Kingma & Dhariwal 2018, "Glow: Generative flow with invertible 1×1
// convolutions"): L levels of [squeeze → K × (actnorm → invertible 1×1 conv →
// affine coupling) → split], the split half modelled by a Gaussian whose mean and
// scale a zero-initialised convolution computes from the kept half (Glow §3,
// Fig. 2; openai/glow's split2d).
//
// Density convention (genfw/likelihood.hpp): log_prob(x) is the log-density in nats
// of the data-space value x, all Jacobians included. Pixels are mapped linearly to
// [−½, ½] as in Glow (−D·log(high − low)), or optionally to RealNVP's logit space
// (logit_alpha > 0: a near-constant background, such as Fashion-MNIST's black, is a
// near-point mass that couplings whose scales sigmoid(·) ≤ 1 can only shrink, so
// only actnorm can widen it; the logit spreads it); discrete data is uniformly dequantised
// first, so bits/dim is the published number (Glow eq. 2). The split priors are
// folded into the bijection (ε = (z₂ − μ(z₁))·exp(−log σ(z₁))), so the latent is
// N(0, I) and sampling at temperature T draws every ε with standard deviation T
// (Glow §5, as openai/glow scales each level's prior).
#include <cmath>

#include "genfw/sdk.hpp"

namespace genfw_glow {

using genfw::FlowLayer;
using torch::Tensor;

/// 3×3 convolution starting at zero whose output is scaled by exp(3·log_scale)
/// (openai/glow's conv2d_zeros): every coupling and split prior starts as the identity / N(0, I).
struct ZeroConv : torch::nn::Module {
  ZeroConv(int64_t in, int64_t out) {
    conv_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
    log_scale_ = register_parameter("log_scale", torch::zeros({1, out, 1, 1}));
    torch::NoGradGuard guard;
    conv_->weight.zero_();
    conv_->bias.zero_();
  }
  Tensor forward(const Tensor& x) { return conv_(x) * torch::exp(3.0 * log_scale_); }
  torch::nn::Conv2d conv_{nullptr};
  Tensor log_scale_;
};

/// Glow's coupling network NN(): 3×3 conv → ReLU → 1×1 conv → ReLU → zero 3×3 conv.
struct CouplingNet : torch::nn::Module {
  CouplingNet(int64_t in, int64_t out, int64_t width) {
    first_ = register_module("first", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, width, 3).padding(1)));
    middle_ = register_module("middle", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, width, 1)));
    last_ = register_module("last", std::make_shared<ZeroConv>(width, out));
  }
  Tensor forward(const Tensor& x) { return last_->forward(torch::relu(middle_(torch::relu(first_(x))))); }
  torch::nn::Conv2d first_{nullptr}, middle_{nullptr};
  std::shared_ptr<ZeroConv> last_;
};

/// Affine coupling (Glow Table 1): x = (x_a, x_b) by channel halves, (t, raw) = NN(x_a),
/// s = sigmoid(raw + 2), y_b = (x_b + t)·s, log|det| = Σ log s; additive: y_b = x_b + t.
struct Coupling : FlowLayer {
  Coupling(int64_t channels, int64_t width, bool affine) : affine_(affine), half_(channels / 2) {
    net_ = register_module("net", std::make_shared<CouplingNet>(half_, 2 * (channels - half_), width));
  }
  std::pair<Tensor, Tensor> shift_and_log_scale(const Tensor& x_a) {
    auto parts = net_->forward(x_a).chunk(2, 1);
    auto log_s = affine_ ? torch::nn::functional::logsigmoid(parts[1] + 2.0) : torch::zeros_like(parts[1]);
    return {parts[0], log_s};
  }
  Tensor forward(const Tensor& x, Tensor& logdet) override {
    auto x_a = x.narrow(1, 0, half_), x_b = x.narrow(1, half_, x.size(1) - half_);
    auto [t, log_s] = shift_and_log_scale(x_a);
    logdet = logdet + genfw::per_sample_sum(log_s);
    return torch::cat({x_a, (x_b + t) * torch::exp(log_s)}, 1);
  }
  Tensor inverse(const Tensor& y) override {
    auto y_a = y.narrow(1, 0, half_), y_b = y.narrow(1, half_, y.size(1) - half_);
    auto [t, log_s] = shift_and_log_scale(y_a);
    return torch::cat({y_a, y_b * torch::exp(-log_s) - t}, 1);
  }
  bool affine_;
  int64_t half_;
  std::shared_ptr<CouplingNet> net_;
};

/// Channel reversal (RealNVP's fixed permutation; Glow's "reverse" baseline, §3.2).
struct ReverseChannels : FlowLayer {
  Tensor forward(const Tensor& x, Tensor&) override { return x.flip({1}); }
  Tensor inverse(const Tensor& y) override { return y.flip({1}); }
};

/// Gaussian prior of the factored-out half given the kept half, as a bijection
/// z₂ → ε = (z₂ − μ(z₁))·exp(−log σ(z₁)), log|det| = −Σ log σ (openai/glow's split2d).
struct SplitPrior : torch::nn::Module {
  SplitPrior(int64_t kept, int64_t factored) {
    net_ = register_module("net", std::make_shared<ZeroConv>(kept, 2 * factored));
  }
  Tensor to_noise(const Tensor& kept, const Tensor& factored, Tensor& logdet) {
    auto parts = net_->forward(kept).chunk(2, 1);
    logdet = logdet - genfw::per_sample_sum(parts[1]);
    return (factored - parts[0]) * torch::exp(-parts[1]);
  }
  Tensor from_noise(const Tensor& kept, const Tensor& noise) {
    auto parts = net_->forward(kept).chunk(2, 1);
    return parts[0] + noise * torch::exp(parts[1]);
  }
  std::shared_ptr<ZeroConv> net_;
};

class Glow : public genfw::Model, public genfw::DensityModel, public genfw::InvertibleFlow {
 public:
  struct Settings {
    int64_t levels = 3;
    int64_t steps_per_level = 32;
    int64_t hidden = 512;
    std::string coupling = "affine";
    std::string permutation = "conv1x1";
    double logit_alpha = 0.0;
    bool dequantize = true;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("levels", &Settings::levels, "L: levels of squeeze → K steps → split (H, W divisible by 2^L)",
                     genfw::at_least(1))
            .integer("steps_per_level", &Settings::steps_per_level,
                     "K: flow steps (actnorm, permutation, coupling) per level", genfw::at_least(1))
            .integer("hidden", &Settings::hidden, "channels of each coupling network", genfw::at_least(1))
            .choice("coupling", &Settings::coupling, {"affine", "additive"},
                    "affine (Glow) or additive (NICE) couplings")
            .choice("permutation", &Settings::permutation, {"conv1x1", "reverse"},
                    "channel mixing before each coupling: LU-decomposed invertible 1x1 convolution (Glow) or reversal")
            .real("logit_alpha", &Settings::logit_alpha,
                  "0: pixels mapped linearly to [-1/2, 1/2] (Glow); > 0: to logit(alpha + (1 - 2 alpha) u) as RealNVP",
                  genfw::Range{0.0, 0.49})
            .boolean("dequantize", &Settings::dequantize, "uniform dequantisation of discrete data in log_prob");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  Glow(const genfw::Options& options, const genfw::BuildContext& context)
      : data_(context.data), settings_(bound_options().read(options)) {
    GENFW_CHECK(data_.is_image(), "model 'glow' needs image data [C, H, W], got ", data_.shape.size(), " dimensions");
    const int64_t levels = settings_.levels, steps = settings_.steps_per_level;
    int64_t c = data_.shape[0], h = data_.shape[1], w = data_.shape[2];
    const int64_t factor = int64_t(1) << levels;
    GENFW_CHECK(h % factor == 0 && w % factor == 0, "model 'glow': option 'levels' = ", levels,
                " needs image height and width divisible by ", factor, ", got ", h, "x", w);
    for (int64_t level = 0; level < levels; ++level) {
      c *= 4;
      h /= 2;
      w /= 2;
      std::vector<std::shared_ptr<FlowLayer>> layers{std::make_shared<genfw::Squeeze>()};
      for (int64_t k = 0; k < steps; ++k) {
        layers.push_back(std::make_shared<genfw::ActNorm>(c, true));
        if (settings_.permutation == "conv1x1") {
          layers.push_back(std::make_shared<genfw::InvertibleConv1x1>(c));
        } else {
          layers.push_back(std::make_shared<ReverseChannels>());
        }
        layers.push_back(std::make_shared<Coupling>(c, settings_.hidden, settings_.coupling == "affine"));
      }
      const std::string prefix = "level" + std::to_string(level) + "_";
      for (size_t i = 0; i < layers.size(); ++i) register_module(prefix + "layer" + std::to_string(i), layers[i]);
      levels_.push_back(std::move(layers));
      if (level + 1 < levels) {
        const int64_t kept = c / 2;
        splits_.push_back(register_module(prefix + "split", std::make_shared<SplitPrior>(kept, c - kept)));
        latent_shapes_.push_back({c - kept, h, w});
        c = kept;
      }
    }
    latent_shapes_.push_back({c, h, w});
    to(context.device);
  }

  std::pair<Tensor, Tensor> to_latent(const Tensor& x) override {
    Tensor logdet = torch::zeros({x.size(0)}, x.options());
    Tensor h = to_flow_space(x, logdet);
    std::vector<Tensor> pieces;
    for (size_t level = 0; level < levels_.size(); ++level) {
      for (auto& layer : levels_[level]) h = layer->forward(h, logdet);
      if (level < splits_.size()) {
        const int64_t kept = h.size(1) / 2;
        auto z1 = h.narrow(1, 0, kept), z2 = h.narrow(1, kept, h.size(1) - kept);
        pieces.push_back(splits_[level]->to_noise(z1, z2, logdet));
        h = z1;
      }
    }
    pieces.push_back(h);
    return {genfw::join_latent(pieces), logdet};
  }

  Tensor from_latent(const Tensor& z) override {
    auto pieces = genfw::split_latent(z, latent_shapes_);
    Tensor h = pieces.back();
    for (int64_t level = int64_t(levels_.size()) - 1; level >= 0; --level) {
      if (level < int64_t(splits_.size())) h = torch::cat({h, splits_[level]->from_noise(h, pieces[level])}, 1);
      for (auto it = levels_[level].rbegin(); it != levels_[level].rend(); ++it) h = (*it)->inverse(h);
    }
    const double alpha = settings_.logit_alpha;
    return alpha > 0.0 ? genfw::from_logit_space(h, data_, alpha) : data_.low + (data_.high - data_.low) * (h + 0.5);
  }

  Tensor log_prob(const Tensor& x) override {
    auto [z, logdet] = to_latent(settings_.dequantize ? genfw::uniformly_dequantized(x, data_) : x);
    return genfw::standard_normal_log_density(z) + logdet;  // Glow eq. 3–5
  }

  Tensor sample(int64_t n, double temperature) override {
    auto reference = parameters().front();
    return sample_from_latent(temperature * torch::randn({n, data_.dim()}, reference.options()));
  }

  Tensor sample_from_latent(const Tensor& z) override { return genfw::onto_data_levels(from_latent(z), data_); }

 private:
  /// Glow's pixel scale [−½, ½] (a linear Jacobian), or RealNVP's logit space.
  Tensor to_flow_space(const Tensor& x, Tensor& logdet) const {
    if (settings_.logit_alpha > 0.0) return genfw::to_logit_space(x, data_, settings_.logit_alpha, logdet);
    const double range = data_.high - data_.low;
    logdet = logdet - double(data_.dim()) * std::log(range);
    return (x - data_.low) / range - 0.5;
  }

  genfw::DataInfo data_;
  Settings settings_;
  std::vector<std::vector<std::shared_ptr<FlowLayer>>> levels_;
  std::vector<std::shared_ptr<SplitPrior>> splits_;
  std::vector<std::vector<int64_t>> latent_shapes_;  // ε of each split, then the top latent
};

}  // namespace genfw_glow

GENFW_PLUGIN(manifest) {
  manifest.add<genfw_glow::Glow>("glow", genfw::Kind::model,
                                 "Glow, Kingma & Dhariwal 2018: actnorm, invertible 1x1 convolutions, affine "
                                 "couplings, multi-scale with learned split priors");
}
