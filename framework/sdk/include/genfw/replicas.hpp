#pragma once
#include <functional>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// The element-wise mean of `values` over the data-parallel replicas (ranks), each
/// holding a tensor of the same shape; `values` itself in one process. For
/// initialisation from data (ActNorm): every replica initialises from the
/// statistics of the global batch, as one process does, instead of its own slice.
/// A collective: while data-parallel, every rank must call it at the same point.
GENFW_API torch::Tensor mean_over_replicas(const torch::Tensor& values);
/// Whether a data-parallel job with more than one replica is running.
GENFW_API bool replicated();

/// The host's side: the reduction mean_over_replicas uses while a data-parallel
/// group exists (an empty function: one process).
GENFW_API void set_replica_mean(std::function<torch::Tensor(const torch::Tensor&)> mean);

}  // namespace genfw
