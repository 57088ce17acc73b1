// The baseline of a cascade's super-resolution stage: its low-resolution
// condition (a base run's samples, or real images averaged down) upsampled to
// the data's size by interpolation alone, without a network call. With it, a
// table shows what the base stage gives before super-resolution adds detail.
#include "genfw/sdk.hpp"

namespace genfw_upsample {

namespace F = torch::nn::functional;

class Upsample : public genfw::Sampler {
 public:
  struct Settings {
    std::string mode = "bilinear";
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding = genfw::OptionBinding<Settings>().choice(
        "mode", &Settings::mode, {"bilinear", "nearest"},
        "interpolation: bilinear (what the super-resolution stage is given, too) or "
        "nearest (each low-resolution pixel as a block)");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }
  Upsample(const genfw::Options& options, const genfw::BuildContext&) : settings_(bound_options().read(options)) {}

  torch::Tensor sample(genfw::SampleContext& context) override {
    const auto& low = context.low_resolution;
    GENFW_CHECK(low.defined() && low.dim() == 4 && low.size(0) == context.num_samples && context.data.is_image(),
                "sampler 'upsample' needs one low-resolution image per sample (SampleContext::low_resolution: the "
                "runner's [cascade] or [sampler] condition) and image data");
    const std::vector<int64_t> size{context.data.shape[1], context.data.shape[2]};
    auto options = F::InterpolateFuncOptions().size(size);
    if (settings_.mode == "bilinear") {
      options.mode(torch::kBilinear).align_corners(false);
    } else {
      options.mode(torch::kNearest);
    }
    auto x = F::interpolate(low.to(context.device, torch::kFloat32), options);
    context.report(genfw::StepRecord{0, 1, 0.0, x, {}});
    return x;
  }

 private:
  Settings settings_;
};

}  // namespace genfw_upsample

GENFW_PLUGIN(manifest) {
  manifest
      .add<genfw_upsample::Upsample>("upsample", genfw::Kind::sampler,
                                     "a super-resolution stage's low-resolution condition interpolated to the data's "
                                     "size, no network call (the base stage alone, on the cascade's table)")
      .require(genfw::Capability::super_resolution);
}
