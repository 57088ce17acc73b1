// PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017): an autoregressive image model
// p(x) = Π_{pixels in raster order} p(x_ij | x_<ij), each pixel a discretized logistic
// mixture (genfw/logistic_mixture.hpp, §2.1–2.2) whose parameters a two-stream
// network computes: a vertical stream u of down-shifted convolutions (everything
// above) and a horizontal stream ul of down-right-shifted ones (above and to the
// left), gated ResNet blocks with concat-ELU, three resolutions joined by short-cut
// connections (§2.3–2.4; openai/pixel-cnn's model.py, written anew here). Weight
// normalisation and its data-dependent init are left out (Adam on plain weights).
//
// Density convention (genfw/likelihood.hpp): the model gives the probability mass m of
// the discrete image, and log_prob returns log m − D·log w (w the bin width in data
// space), so bits/dim = −log2(m)/D exactly. Sampling: one network pass per pixel
// (NFE = H·W), each pixel's noise a draw of the sample's own stream.
#include <cmath>

#include "genfw/sdk.hpp"

namespace genfw_pixelcnn {

using genfw::Shift;
using genfw::ShiftedConv2d;
using torch::Tensor;

/// concat_elu(x) = elu([x, −x]) along channels (PixelCNN++ §2.4, doubling the channels).
Tensor concat_elu(const Tensor& x) { return torch::elu(torch::cat({x, -x}, 1)); }

/// 1×1 convolution ("network in network").
torch::nn::Conv2d nin(int64_t in, int64_t out) { return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)); }

/// Gated ResNet block (§2.4): c = conv(concat_elu(x)) [+ nin(concat_elu(a))],
/// (h, g) = conv(dropout(concat_elu(c))), x + h·σ(g). `a` is the other stream / short-cut input.
struct GatedResnet : torch::nn::Module {
  GatedResnet(int64_t filters, Shift shift, int64_t skip_channels, double dropout) : dropout_(dropout) {
    const int64_t kernel_w = shift == Shift::down ? 3 : 2;  // openai's [2, 3] and [2, 2]
    conv_in_ = register_module("conv_in", ShiftedConv2d(2 * filters, filters, shift, 2, kernel_w));
    if (skip_channels > 0) skip_ = register_module("skip", nin(2 * skip_channels, filters));
    conv_out_ = register_module("conv_out", ShiftedConv2d(2 * filters, 2 * filters, shift, 2, kernel_w));
  }
  Tensor forward(const Tensor& x, const Tensor& a = {}) {
    auto c = conv_in_->forward(concat_elu(x));
    if (a.defined()) c = c + skip_(concat_elu(a));
    c = torch::dropout(concat_elu(c), dropout_, is_training());
    auto parts = conv_out_->forward(c).chunk(2, 1);
    return x + parts[0] * torch::sigmoid(parts[1]);
  }
  double dropout_;
  ShiftedConv2d conv_in_{nullptr}, conv_out_{nullptr};
  torch::nn::Conv2d skip_{nullptr};
};

/// The two streams at one resolution of the up (encoding) or down (decoding) pass.
struct StreamBlocks : torch::nn::Module {
  StreamBlocks(int64_t blocks, int64_t filters, double dropout, bool decoding) {
    for (int64_t i = 0; i < blocks; ++i) {
      // Up pass: u alone, ul sees u. Down pass: u sees the saved u, ul sees [u, saved ul].
      auto u = std::make_shared<GatedResnet>(filters, Shift::down, decoding ? filters : 0, dropout);
      auto ul = std::make_shared<GatedResnet>(filters, Shift::down_right, decoding ? 2 * filters : filters, dropout);
      u_.push_back(register_module("u" + std::to_string(i), u));
      ul_.push_back(register_module("ul" + std::to_string(i), ul));
    }
  }
  std::vector<std::shared_ptr<GatedResnet>> u_, ul_;
};

class PixelCnnPlusPlus : public genfw::Model, public genfw::DensityModel, public genfw::AutoregressiveModel {
 public:
  struct Settings {
    int64_t num_resnet = 5;
    int64_t filters = 160;
    int64_t mixtures = 10;
    int64_t resolutions = 3;
    double dropout = 0.5;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .integer("num_resnet", &Settings::num_resnet, "gated ResNet blocks per resolution and stream (nr_resnet)",
                     genfw::at_least(1))
            .integer("filters", &Settings::filters, "channels of both streams (nr_filters)", genfw::at_least(1))
            .integer("mixtures", &Settings::mixtures, "logistic mixture components per pixel (nr_logistic_mix)",
                     genfw::at_least(1))
            .integer("resolutions", &Settings::resolutions, "resolutions (H, W divisible by 2^(resolutions-1))",
                     genfw::at_least(1))
            .real("dropout", &Settings::dropout, "dropout in the gated ResNet blocks while training",
                  genfw::Range{0.0, 0.99});
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  PixelCnnPlusPlus(const genfw::Options& options, const genfw::BuildContext& context)
      : data_(context.data), settings_(bound_options().read(options)) {
    GENFW_CHECK(data_.is_image(), "model 'pixelcnn' needs image data [C, H, W], got ", data_.shape.size(),
                " dimensions");
    GENFW_CHECK(data_.discrete_levels, "model 'pixelcnn' models discrete pixels; dataset '", data_.name,
                "' is not quantised");
    const int64_t filters = settings_.filters, blocks = settings_.num_resnet;
    const int64_t resolutions = settings_.resolutions, c = data_.shape[0];
    const int64_t factor = int64_t(1) << (resolutions - 1);
    row_multiple_ = factor;
    GENFW_CHECK(data_.shape[1] % factor == 0 && data_.shape[2] % factor == 0, "model 'pixelcnn': option "
                "'resolutions' = ", resolutions, " needs height and width divisible by ", factor);
    const double dropout = settings_.dropout;
    // Input: the image plus a channel of ones, so the zero padding is told apart from black (openai's x_pad).
    u_input_ = register_module("u_input", ShiftedConv2d(c + 1, filters, Shift::down, 2, 3));
    ul_input_down_ = register_module("ul_input_down", ShiftedConv2d(c + 1, filters, Shift::down, 1, 3));
    ul_input_right_ = register_module("ul_input_right", ShiftedConv2d(c + 1, filters, Shift::down_right, 2, 1));
    for (int64_t r = 0; r < resolutions; ++r) {
      const std::string tag = std::to_string(r);
      up_.push_back(register_module("up" + tag, std::make_shared<StreamBlocks>(blocks, filters, dropout, false)));
      // The down pass has one block more per resolution below the top (openai: nr_resnet + 1).
      down_.push_back(register_module(
          "down" + tag, std::make_shared<StreamBlocks>(r == 0 ? blocks : blocks + 1, filters, dropout, true)));
      if (r + 1 < resolutions) {
        u_downsample_.push_back(register_module("u_downsample" + tag,
                                                ShiftedConv2d(filters, filters, Shift::down, 2, 3, 2)));
        ul_downsample_.push_back(register_module("ul_downsample" + tag,
                                                 ShiftedConv2d(filters, filters, Shift::down_right, 2, 2, 2)));
        u_upsample_.push_back(register_module(
            "u_upsample" + tag, genfw::ShiftedConvTranspose2d(filters, filters, Shift::down, 2, 3)));
        ul_upsample_.push_back(register_module(
            "ul_upsample" + tag, genfw::ShiftedConvTranspose2d(filters, filters, Shift::down_right, 2, 2)));
      }
    }
    output_ = register_module("output", nin(filters, genfw::logistic_mixture_num_params(c, settings_.mixtures)));
    to(context.device);
  }

  Tensor conditional_params(const Tensor& x) override { return mixture_params(to_unit_range(x)); }

  /// Mixture parameters of every pixel given the pixels before it, [N, P, H, W];
  /// x on [−1, 1]. The streams' outputs at (i, j) never see (i, j) or later.
  Tensor mixture_params(const Tensor& x) {
    auto padded = torch::cat({x, torch::ones_like(x.narrow(1, 0, 1))}, 1);
    std::vector<Tensor> u_saved{genfw::down_shift(u_input_->forward(padded))};
    std::vector<Tensor> ul_saved{genfw::down_shift(ul_input_down_->forward(padded)) +
                                 genfw::right_shift(ul_input_right_->forward(padded))};
    const size_t resolutions = up_.size();
    for (size_t r = 0; r < resolutions; ++r) {  // up pass (§2.3): save every block's output
      for (size_t i = 0; i < up_[r]->u_.size(); ++i) {
        u_saved.push_back(up_[r]->u_[i]->forward(u_saved.back()));
        ul_saved.push_back(up_[r]->ul_[i]->forward(ul_saved.back(), u_saved.back()));
      }
      if (r + 1 < resolutions) {
        u_saved.push_back(u_downsample_[r]->forward(u_saved.back()));
        ul_saved.push_back(ul_downsample_[r]->forward(ul_saved.back()));
      }
    }
    Tensor u = u_saved.back(), ul = ul_saved.back();
    u_saved.pop_back();
    ul_saved.pop_back();
    for (int64_t r = int64_t(resolutions) - 1; r >= 0; --r) {  // down pass: short-cuts in reverse order
      auto& stage = down_[size_t(resolutions - 1 - r)];
      for (size_t i = 0; i < stage->u_.size(); ++i) {
        u = stage->u_[i]->forward(u, u_saved.back());
        ul = stage->ul_[i]->forward(ul, torch::cat({u, ul_saved.back()}, 1));
        u_saved.pop_back();
        ul_saved.pop_back();
      }
      if (r > 0) {
        u = u_upsample_[size_t(r - 1)]->forward(u);
        ul = ul_upsample_[size_t(r - 1)]->forward(ul);
      }
    }
    return output_(torch::elu(ul));
  }

  Tensor log_prob(const Tensor& x) override {
    auto unit = to_unit_range(x);
    auto log_mass =
        genfw::discretized_logistic_mixture_log_prob(unit, mixture_params(unit), settings_.mixtures, data_.levels);
    // Mass → the data-space convention of likelihood.hpp: log m + D·log(L/(high − low)).
    return genfw::per_sample_sum(log_mass) + genfw::discrete_log_density_offset(data_);
  }

  Tensor sample(int64_t n, double) override {
    auto context = genfw::SampleContext::for_model(*this, n, data_, parameters().front().device());
    return sample_autoregressively(context);
  }

  /// Ancestral sampling in raster order (§2): pass t computes the parameters of every
  /// pixel from the current image and fixes pixel t, whose conditionals read only
  /// pixels < t, which are final. Channels within the pixel are drawn in order.
  Tensor sample_autoregressively(genfw::SampleContext& context) override {
    const int64_t n = context.num_samples, c = data_.shape[0], h = data_.shape[1], w = data_.shape[2];
    const int64_t mixtures = settings_.mixtures;
    auto x = torch::zeros({n, c, h, w}, parameters().front().options().device(context.device));
    torch::NoGradGuard no_grad;
    const bool was_training = is_training();
    eval();
    for (int64_t t = 0; t < h * w; ++t) {
      const int64_t i = t / w, j = t % w;
      // Rows at and above i only: every layer is causal in rows, so the cropped image gives
      // the same parameters there (rounded up to whole rows of the coarsest resolution).
      const int64_t rows = std::min(h, (i / row_multiple_ + 1) * row_multiple_);
      auto params = mixture_params(x.narrow(2, 0, rows)).narrow(2, i, 1).narrow(3, j, 1);
      context.count_evaluations(1);  // one network pass per pixel: NFE, progress and stop requests
      auto noise = context.uniform({mixtures + c}).to(x.options()).view({n, mixtures + c, 1, 1});
      auto pixel = genfw::sample_discretized_logistic_mixture(params, c, mixtures, noise.narrow(1, 0, mixtures),
                                                              noise.narrow(1, mixtures, c), data_.levels);
      x.narrow(2, i, 1).narrow(3, j, 1).copy_(pixel);
      context.report(genfw::StepRecord{t, h * w, double(t), from_unit_range(x), {}});
    }
    train(was_training);
    return from_unit_range(x);
  }

 private:
  Tensor to_unit_range(const Tensor& x) const { return 2.0 * (x - data_.low) / (data_.high - data_.low) - 1.0; }
  Tensor from_unit_range(const Tensor& x) const { return data_.low + (x + 1.0) * (data_.high - data_.low) / 2.0; }

  genfw::DataInfo data_;
  Settings settings_;
  int64_t row_multiple_ = 1;  // image heights the resolutions divide
  ShiftedConv2d u_input_{nullptr}, ul_input_down_{nullptr}, ul_input_right_{nullptr};
  std::vector<std::shared_ptr<StreamBlocks>> up_, down_;
  std::vector<ShiftedConv2d> u_downsample_, ul_downsample_;
  std::vector<genfw::ShiftedConvTranspose2d> u_upsample_, ul_upsample_;
  torch::nn::Conv2d output_{nullptr};
};

}  // namespace genfw_pixelcnn

GENFW_PLUGIN(manifest) {
  manifest.add<genfw_pixelcnn::PixelCnnPlusPlus>(
      "pixelcnn", genfw::Kind::model,
      "PixelCNN++, Salimans et al. 2017: two-stream causal convolutions, discretized logistic mixture likelihood");
}
