#pragma once
#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// `count` of the indices [0, size) at even strides, round(linspace(0, size − 1, count)):
/// a subset that covers a class-ordered file, the same on every call. The one rule of
/// the reference set ([features] max_reference), the real-data floor and the k-NN
/// metrics' equal-size sets (tools/fid_reference.py --reference-subset reproduces it).
GENFW_API torch::Tensor evenly_strided_indices(int64_t count, int64_t size);

}  // namespace genfw
