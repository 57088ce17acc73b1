#pragma once
/// Latent diffusion (Rombach et al. 2022; docs/design.md, "Runs as components"):
/// the latent space of a trained autoencoder ([latent]) as the data a model is
/// trained and sampled in. A latent is z·scale, z the encoder's posterior draw
/// (or its mean), scale LDM's scale_factor: 1/std of the training latents unless given.
#include <memory>

#include "genfw/dataset.hpp"
#include "genfw/model.hpp"

namespace genfw {

class GENFW_API LatentSpace {
 public:
  /// `autoencoder` offers latent-variable, its weights loaded; it is frozen here.
  /// `scale` 0 measures it on up to 4096 images evenly spread over `images`, their
  /// posterior draws seeded by `seed` (the same value on every call and rank).
  LatentSpace(std::unique_ptr<Model> autoencoder, Dataset& images, double scale, bool sample_posterior,
              uint64_t seed, torch::Device device);

  double scale() const { return scale_; }
  /// What the model sees: vectors {latent_dim} in the range of the measured latents.
  const DataInfo& info() const { return info_; }
  /// Images [N, ...] → latents [N, latent_dim] on the device (a posterior draw
  /// from torch's generator, or the mean), scaled.
  torch::Tensor encode(const torch::Tensor& images);
  /// Latents → images in data space: the decoder's mean at latents/scale.
  torch::Tensor decode(const torch::Tensor& latents);

 private:
  torch::Tensor latents_of(const torch::Tensor& images, at::Generator* generator);

  std::unique_ptr<Model> autoencoder_;
  LatentVariableModel* model_;
  bool sample_posterior_;
  torch::Device device_;
  double scale_ = 1.0;
  DataInfo info_;
};

/// A dataset's images as latents (labels kept): what the trainer draws batches from.
class GENFW_API LatentDataset final : public Dataset {
 public:
  LatentDataset(Dataset& images, LatentSpace& space) : images_(images), space_(space) {}
  DataInfo info() const override { return space_.info(); }
  int64_t size() const override { return images_.size(); }
  Batch get(const torch::Tensor& indices) override;

 private:
  Dataset& images_;
  LatentSpace& space_;
};

}  // namespace genfw
