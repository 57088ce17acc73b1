#include "genfw/latent_space.hpp"

#include <cmath>

#include "genfw/error.hpp"
#include "genfw/evenly_strided.hpp"

namespace genfw {

namespace {

constexpr int64_t kScaleImages = 4096;  // images the scale and range are measured on
constexpr int64_t kEncodeBatch = 256;

}  // namespace

LatentSpace::LatentSpace(std::unique_ptr<Model> autoencoder, Dataset& images, double scale, bool sample_posterior,
                         uint64_t seed, torch::Device device)
    : autoencoder_(std::move(autoencoder)),
      model_(as<LatentVariableModel>(*autoencoder_)),
      sample_posterior_(sample_posterior),
      device_(device) {
  GENFW_CHECK(model_ != nullptr, "[latent]: the autoencoder offers no 'latent-variable'");
  autoencoder_->eval();
  for (auto& parameter : autoencoder_->parameters()) parameter.set_requires_grad(false);
  // LDM's scale_factor = 1/std of the latents, over every coordinate; measured on a fixed
  // subset with seeded posterior draws, so every rank and every resume gets the same value.
  const torch::Tensor indices = evenly_strided_indices(std::min(kScaleImages, images.size()), images.size());
  auto generator = at::detail::createCPUGenerator(seed);
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < indices.size(0); first += kEncodeBatch) {
    parts.push_back(latents_of(images.get(indices.slice(0, first, first + kEncodeBatch)).x, &generator).cpu());
  }
  const torch::Tensor z = torch::cat(parts);
  if (scale > 0) {
    scale_ = scale;
  } else {
    const double std = z.to(torch::kFloat64).std().item<double>();
    GENFW_CHECK(std::isfinite(std) && std > 0, "[latent]: the encoder's latents have standard deviation ", std,
                " on ", z.size(0), " training images: no scale makes them unit-variance");
    scale_ = 1.0 / std;
  }
  info_.name = images.info().name + " latents";
  info_.shape = {model_->latent_dim()};
  info_.low = (z * scale_).min().item<double>();
  info_.high = (z * scale_).max().item<double>();
}

torch::Tensor LatentSpace::latents_of(const torch::Tensor& images, at::Generator* generator) {
  torch::NoGradGuard no_grad;
  const Posterior posterior = model_->encode(images.to(device_, torch::kFloat32));
  if (!sample_posterior_) return posterior.mean;
  // The noise on the CPU from the given generator (or torch's), so a seed means the same draw on every device.
  const auto shape = posterior.mean.sizes();
  torch::Tensor noise = generator != nullptr ? torch::randn(shape, *generator, torch::kFloat32)
                                             : torch::randn(shape, torch::kFloat32);
  return posterior.mean + torch::exp(0.5 * posterior.log_var) * noise.to(posterior.mean.device());
}

torch::Tensor LatentSpace::encode(const torch::Tensor& images) { return latents_of(images, nullptr) * scale_; }

torch::Tensor LatentSpace::decode(const torch::Tensor& latents) {
  torch::NoGradGuard no_grad;
  return model_->decode(latents.to(device_, torch::kFloat32) / scale_, true);
}

Batch LatentDataset::get(const torch::Tensor& indices) {
  Batch batch = images_.get(indices);
  batch.x = space_.encode(batch.x);
  return batch;
}

}  // namespace genfw
