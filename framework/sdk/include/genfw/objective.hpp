#pragma once
#include <string>

#include "genfw/model.hpp"

namespace genfw {

/// What the trainer offers an objective during one training step. Keeping
/// "compute gradients → step" inside update() is what lets a data-parallel
/// all-reduce go between the two in one place.
class GENFW_API TrainContext {
 public:
  virtual ~TrainContext();
  /// Backpropagates `loss` (a scalar) into parameter group `group`, clips,
  /// steps that group's optimizer, and records the loss under the group's
  /// name. Zeroes the group's gradients first.
  virtual void update(const std::string& group, const torch::Tensor& loss) = 0;
  /// Logs an extra scalar for this step (e.g. "kl"), without a host sync.
  virtual void record(const std::string& name, const torch::Tensor& value) = 0;
  virtual int64_t step() const = 0;         ///< 0-based step being taken
  virtual int64_t total_steps() const = 0;
  virtual torch::Device device() const = 0;
};

/// Turns a model and a batch into losses and parameter updates.
class GENFW_API Objective : public Component {
 public:
  ~Objective() override;
  virtual void train_step(Model& model, const Batch& batch, TrainContext& context) = 0;
};

/// The common case: one scalar loss for the parameter group "model".
class GENFW_API LossObjective : public Objective {
 public:
  ~LossObjective() override;
  /// Mean loss over the batch; must be differentiable w.r.t. the model.
  virtual torch::Tensor loss(Model& model, const Batch& batch) = 0;
  void train_step(Model& model, const Batch& batch, TrainContext& context) override;
};

}  // namespace genfw
