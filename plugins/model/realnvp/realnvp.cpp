// RealNVP (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real
// NVP"): affine coupling layers with checkerboard and channel-wise masks,
// squeeze, multi-scale factoring-out, residual s/t networks with tanh-bounded
// scales; additive coupling = NICE (Dinh et al. 2015). Vectors use MLP
// couplings with alternating half masks.
//
// Density convention (see genfw/likelihood.hpp): log_prob(x)
// is the log-density in nats of the data-space value x, all Jacobians included:
//   images: x ∈ [low, high] → u = (x − low)/(high − low) ∈ [0, 1]   (−D·log(high − low))
//           → y = logit(α + (1 − 2α)u)                               (exact log-det)
//           → z = flow(y)                                             (couplings, norms)
//   discrete data: u is first dequantised, u' = (k + U(0, 1))/L with k the pixel's level,
//   so log_prob returns the density at the dequantised point; E[log_prob] − D·log(L/(high−low))
//   is a lower bound on the discrete log-likelihood, giving the published bits/dim.
//   vectors: z = flow(x) directly.
#include <cmath>

#include "genfw/nn.hpp"
#include "genfw/sdk.hpp"

namespace genfw_realnvp {

using torch::Tensor;

using genfw::ActNorm;
using genfw::FlowLayer;
using genfw::per_sample_sum;
using genfw::Squeeze;

/// Batch normalisation as a flow layer (RealNVP §3.7): batch statistics in
/// training, running averages in eval (where the map is a fixed affine bijection).
struct BatchNormFlow : FlowLayer {
  BatchNormFlow(int64_t channels, bool image, double momentum = 0.05) : image_(image), momentum_(momentum) {
    std::vector<int64_t> shape = image ? std::vector<int64_t>{1, channels, 1, 1} : std::vector<int64_t>{1, channels};
    log_gamma_ = register_parameter("log_gamma", torch::zeros(shape));
    beta_ = register_parameter("beta", torch::zeros(shape));
    running_mean_ = register_buffer("running_mean", torch::zeros(shape));
    running_var_ = register_buffer("running_var", torch::ones(shape));
  }
  Tensor forward(const Tensor& x, Tensor& logdet) override {
    Tensor mean = running_mean_, var = running_var_;
    if (is_training()) {
      std::vector<int64_t> dims = image_ ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
      mean = x.mean(dims, true);
      var = x.var(dims, false, true);
      torch::NoGradGuard guard;
      running_mean_.mul_(1.0 - momentum_).add_(momentum_ * mean.detach());
      running_var_.mul_(1.0 - momentum_).add_(momentum_ * var.detach());
    }
    const double spatial = image_ ? static_cast<double>(x.size(2) * x.size(3)) : 1.0;
    logdet = logdet + (log_gamma_ - 0.5 * torch::log(var + eps_)).sum() * spatial;
    return (x - mean) * torch::rsqrt(var + eps_) * torch::exp(log_gamma_) + beta_;
  }
  Tensor inverse(const Tensor& y) override {
    return (y - beta_) * torch::exp(-log_gamma_) * torch::sqrt(running_var_ + eps_) + running_mean_;
  }
  bool image_;
  double momentum_, eps_ = 1e-5;
  Tensor log_gamma_, beta_, running_mean_, running_var_;
};

std::shared_ptr<FlowLayer> make_norm(const std::string& norm, int64_t channels, bool image) {
  if (norm == "actnorm") return std::make_shared<ActNorm>(channels, image);
  if (norm == "batch") return std::make_shared<BatchNormFlow>(channels, image);
  return nullptr;
}

/// Pre-activation residual block of the s/t network.
struct ResidualBlock : torch::nn::Module {
  explicit ResidualBlock(int64_t width) {
    conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, width, 3).padding(1)));
    conv2_ = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, width, 3).padding(1)));
  }
  Tensor forward(const Tensor& x) { return x + conv2_(torch::relu(conv1_(torch::relu(x)))); }
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
};

/// ResNet computing (raw scale, translation) for `out` channels from `in` channels.
/// The last convolution starts at zero, so every coupling starts as the identity.
struct ResidualNet : torch::nn::Module {
  ResidualNet(int64_t in, int64_t out, int64_t width, int64_t blocks) {
    input_ = register_module("input", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, width, 3).padding(1)));
    for (int64_t i = 0; i < blocks; ++i) {
      blocks_.push_back(register_module("block" + std::to_string(i), std::make_shared<ResidualBlock>(width)));
    }
    output_ = register_module("output", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, 2 * out, 3).padding(1)));
    torch::NoGradGuard guard;
    output_->weight.zero_();
    output_->bias.zero_();
  }
  Tensor forward(const Tensor& x) {
    auto h = input_(x);
    for (auto& block : blocks_) h = block->forward(h);
    return output_(torch::relu(h));
  }
  torch::nn::Conv2d input_{nullptr}, output_{nullptr};
  std::vector<std::shared_ptr<ResidualBlock>> blocks_;
};

/// Checkerboard mask b [1, 1, H, W]: 1 where (i + j + parity) is even.
Tensor checkerboard(int64_t h, int64_t w, int64_t parity, const torch::TensorOptions& options) {
  auto i = torch::arange(h, options).view({h, 1}), j = torch::arange(w, options).view({1, w});
  return ((i + j + static_cast<double>(parity)).remainder(2.0) == 0).to(options).view({1, 1, h, w});
}

/// Image coupling, y = b⊙x + (1−b)⊙(x⊙exp(s(b⊙x)) + t(b⊙x)) (checkerboard) or the
/// channel-wise version on the two halves of the channels; s = scale·tanh(raw).
struct ImageCoupling : FlowLayer {
  ImageCoupling(int64_t channels, bool checker, int64_t parity, bool affine, int64_t width, int64_t blocks)
      : checker_(checker), parity_(parity), affine_(affine) {
    const int64_t in = checker ? channels + 1 : channels / 2, out = checker ? channels : channels / 2;
    net_ = register_module("net", std::make_shared<ResidualNet>(in, out, width, blocks));
    scale_ = register_parameter("scale", torch::ones({1, out, 1, 1}));
  }
  std::pair<Tensor, Tensor> scale_shift(const Tensor& conditioner) {
    auto parts = net_->forward(conditioner).chunk(2, 1);
    auto s = affine_ ? scale_ * torch::tanh(parts[0]) : torch::zeros_like(parts[0]);
    return {s, parts[1]};
  }
  Tensor forward(const Tensor& x, Tensor& logdet) override {
    if (checker_) {
      auto b = checkerboard(x.size(2), x.size(3), parity_, x.options());
      auto [s, t] = scale_shift(torch::cat({x * b, b.expand({x.size(0), 1, x.size(2), x.size(3)})}, 1));
      s = s * (1 - b);
      t = t * (1 - b);
      logdet = logdet + per_sample_sum(s);
      return x * torch::exp(s) + t;
    }
    auto halves = x.chunk(2, 1);
    auto x_cond = halves[parity_], x_change = halves[1 - parity_];
    auto [s, t] = scale_shift(x_cond);
    logdet = logdet + per_sample_sum(s);
    auto y_change = x_change * torch::exp(s) + t;
    return parity_ == 0 ? torch::cat({x_cond, y_change}, 1) : torch::cat({y_change, x_cond}, 1);
  }
  Tensor inverse(const Tensor& y) override {
    if (checker_) {
      auto b = checkerboard(y.size(2), y.size(3), parity_, y.options());
      auto [s, t] = scale_shift(torch::cat({y * b, b.expand({y.size(0), 1, y.size(2), y.size(3)})}, 1));
      s = s * (1 - b);
      t = t * (1 - b);
      return (y - t) * torch::exp(-s);
    }
    auto halves = y.chunk(2, 1);
    auto y_cond = halves[parity_], y_change = halves[1 - parity_];
    auto [s, t] = scale_shift(y_cond);
    auto x_change = (y_change - t) * torch::exp(-s);
    return parity_ == 0 ? torch::cat({y_cond, x_change}, 1) : torch::cat({x_change, y_cond}, 1);
  }
  bool checker_;
  int64_t parity_;
  bool affine_;
  std::shared_ptr<ResidualNet> net_;
  Tensor scale_;
};

/// Vector coupling with a binary mask b [D] (alternating halves).
struct VectorCoupling : FlowLayer {
  VectorCoupling(int64_t dim, int64_t parity, bool affine, int64_t width, int64_t layers) : affine_(affine) {
    auto mask = (torch::arange(dim) < (dim + 1) / 2).to(torch::kFloat32);
    if (parity == 1) mask = 1 - mask;
    mask_ = register_buffer("mask", mask.view({1, dim}));
    net_ = register_module("net", genfw::make_mlp(dim, width, 2 * dim, layers, "relu"));
    auto last = net_->ptr(net_->size() - 1)->as<torch::nn::Linear>();
    torch::NoGradGuard guard;
    last->weight.zero_();
    last->bias.zero_();
    scale_ = register_parameter("scale", torch::ones({1, dim}));
  }
  std::pair<Tensor, Tensor> scale_shift(const Tensor& x) {
    auto parts = net_->forward(x * mask_).chunk(2, 1);
    auto s = affine_ ? scale_ * torch::tanh(parts[0]) * (1 - mask_) : torch::zeros_like(parts[0]);
    return {s, parts[1] * (1 - mask_)};
  }
  Tensor forward(const Tensor& x, Tensor& logdet) override {
    auto [s, t] = scale_shift(x);
    logdet = logdet + s.sum(1);
    return x * torch::exp(s) + t;
  }
  Tensor inverse(const Tensor& y) override {
    auto [s, t] = scale_shift(y);
    return (y - t) * torch::exp(-s);
  }
  bool affine_;
  Tensor mask_, scale_;
  torch::nn::Sequential net_{nullptr};
};

class RealNvp : public genfw::Model, public genfw::DensityModel, public genfw::InvertibleFlow {
 public:
  struct Settings {
    std::string coupling = "affine";
    std::string norm = "actnorm";
    int64_t num_scales = 2;
    int64_t num_blocks = 4;
    int64_t hidden = 64;
    int64_t num_couplings = 8;
    int64_t mlp_layers = 2;
    double logit_alpha = 0.05;
    bool dequantize = true;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .choice("coupling", &Settings::coupling, {"affine", "additive"},
                    "affine (RealNVP) or additive (NICE) couplings")
            .choice("norm", &Settings::norm, {"actnorm", "batch", "none"},
                    "normalisation flow layer after every coupling: actnorm (data-dependent init), batch "
                    "(batch statistics in training, running averages in eval), none")
            .integer("num_scales", &Settings::num_scales,
                     "images: scales of the multi-scale architecture (H, W divisible by "
                     "2^(num_scales-1))",
                     genfw::at_least(1))
            .integer("num_blocks", &Settings::num_blocks, "images: residual blocks in each s/t network",
                     genfw::at_least(0))
            .integer("hidden", &Settings::hidden, "channels (images) or width (vectors) of the s/t networks",
                     genfw::at_least(1))
            .integer("num_couplings", &Settings::num_couplings, "vectors: coupling layers (alternating half masks)",
                     genfw::at_least(1))
            .integer("mlp_layers", &Settings::mlp_layers, "vectors: hidden layers of each s/t MLP", genfw::at_least(1))
            .real("logit_alpha", &Settings::logit_alpha, "images: y = logit(alpha + (1 - 2 alpha) u)",
                  genfw::Range{0.0, 0.49})
            .boolean("dequantize", &Settings::dequantize, "uniform dequantisation of discrete data in log_prob");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  RealNvp(const genfw::Options& options, const genfw::BuildContext& context)
      : data_(context.data), settings_(bound_options().read(options)) {
    GENFW_CHECK(!data_.shape.empty(), "model 'realnvp': data shape is empty");
    const bool affine = settings_.coupling == "affine";
    const std::string& norm = settings_.norm;
    const int64_t hidden = settings_.hidden;
    GENFW_CHECK(!(data_.is_image() && settings_.logit_alpha <= 0.0), "model 'realnvp': option 'logit_alpha' must be "
                "> 0 for images, got ", settings_.logit_alpha);
    auto add = [&](std::vector<std::shared_ptr<FlowLayer>>& scale, std::shared_ptr<FlowLayer> layer) {
      if (!layer) return;
      scale.push_back(register_module("layer" + std::to_string(layer_count_++), layer));
    };
    if (data_.is_image()) {
      const int64_t num_scales = settings_.num_scales, blocks = settings_.num_blocks;
      int64_t c = data_.shape[0], h = data_.shape[1], w = data_.shape[2];
      const int64_t factor = int64_t(1) << (num_scales - 1);
      GENFW_CHECK(h % factor == 0 && w % factor == 0, "model 'realnvp': option 'num_scales' = ", num_scales,
                  " needs image height and width divisible by ", factor, ", got ", h, "x", w);
      for (int64_t s = 0; s < num_scales; ++s) {
        std::vector<std::shared_ptr<FlowLayer>> scale;
        const bool last = s == num_scales - 1;
        for (int64_t i = 0; i < (last ? 4 : 3); ++i) {
          add(scale, std::make_shared<ImageCoupling>(c, true, i % 2, affine, hidden, blocks));
          add(scale, make_norm(norm, c, true));
        }
        if (!last) {
          add(scale, std::make_shared<Squeeze>());
          c *= 4;
          h /= 2;
          w /= 2;
          for (int64_t i = 0; i < 3; ++i) {
            add(scale, std::make_shared<ImageCoupling>(c, false, i % 2, affine, hidden, blocks));
            add(scale, make_norm(norm, c, true));
          }
          c /= 2;  // half of the channels is factored out
          factored_shapes_.push_back({c, h, w});
        } else {
          factored_shapes_.push_back({c, h, w});  // the final latent
        }
        scales_.push_back(std::move(scale));
      }
    } else {
      const int64_t d = data_.dim();
      GENFW_CHECK(d >= 2, "model 'realnvp': vector data needs at least 2 dimensions, got ", d);
      std::vector<std::shared_ptr<FlowLayer>> scale;
      for (int64_t i = 0; i < settings_.num_couplings; ++i) {
        add(scale, std::make_shared<VectorCoupling>(d, i % 2, affine, hidden, settings_.mlp_layers));
        add(scale, make_norm(norm, d, false));
      }
      scales_.push_back(std::move(scale));
      factored_shapes_.push_back({d});
    }
    to(context.device);
  }

  std::pair<Tensor, Tensor> to_latent(const Tensor& x) override {
    Tensor h = x, logdet = torch::zeros({x.size(0)}, x.options());
    if (data_.is_image()) h = genfw::to_logit_space(x, data_, settings_.logit_alpha, logdet);
    std::vector<Tensor> pieces;
    for (size_t s = 0; s < scales_.size(); ++s) {
      for (auto& layer : scales_[s]) h = layer->forward(h, logdet);
      if (s + 1 < scales_.size()) {
        auto halves = h.chunk(2, 1);
        pieces.push_back(halves[1]);
        h = halves[0];
      }
    }
    pieces.push_back(h);
    return {genfw::join_latent(pieces), logdet};
  }

  Tensor from_latent(const Tensor& z) override {
    auto pieces = genfw::split_latent(z, factored_shapes_);
    Tensor h = pieces.back();
    for (int64_t s = static_cast<int64_t>(scales_.size()) - 1; s >= 0; --s) {
      if (s + 1 < static_cast<int64_t>(scales_.size())) h = torch::cat({h, pieces[s]}, 1);
      for (auto it = scales_[s].rbegin(); it != scales_[s].rend(); ++it) h = (*it)->inverse(h);
    }
    if (data_.is_image()) h = genfw::from_logit_space(h, data_, settings_.logit_alpha);
    return h;
  }

  Tensor log_prob(const Tensor& x) override {
    // Dequantised point (see the convention at the top), then the change of variables.
    auto [z, logdet] = to_latent(settings_.dequantize ? genfw::uniformly_dequantized(x, data_) : x);
    return genfw::standard_normal_log_density(z) + logdet;
  }

  Tensor sample(int64_t n, double temperature) override {
    auto reference = parameters().front();
    return sample_from_latent(temperature * torch::randn({n, data_.dim()}, reference.options()));
  }

  Tensor sample_from_latent(const Tensor& z) override {
    auto x = from_latent(z);
    if (data_.is_image()) x = genfw::onto_data_levels(x, data_);
    return x;
  }

 private:
  genfw::DataInfo data_;
  Settings settings_;
  int64_t layer_count_ = 0;
  std::vector<std::vector<std::shared_ptr<FlowLayer>>> scales_;
  std::vector<std::vector<int64_t>> factored_shapes_;
};

}  // namespace genfw_realnvp

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_realnvp::RealNvp>("realnvp", genfw::Kind::model,
                                   "RealNVP, Dinh et al. 2017: multi-scale affine/additive coupling flow");
}
