#pragma once
/// Number of scalars in one sample. genfw::DataInfo::dim() is declared in the SDK
/// but not exported by the host library (struct DataInfo has no GENFW_API), so a
/// plugin calling it fails to load; this is the same product, header-only.
/// Remove once the SDK exports DataInfo::dim().
#include "genfw/component.hpp"

namespace genfw_latent {

inline int64_t data_dim(const genfw::DataInfo& data) {
  int64_t d = 1;
  for (int64_t s : data.shape) d *= s;
  return d;
}

}  // namespace genfw_latent
