#pragma once
#include <torch/version.h>

/// Bumped whenever a class or function crossing the plugin boundary changes
/// layout or signature. The loader refuses libraries built with another value.
#define GENFW_ABI_VERSION 5
#define GENFW_VERSION_STRING "0.1.0"

#define GENFW_STRINGIFY_IMPL(x) #x
#define GENFW_STRINGIFY(x) GENFW_STRINGIFY_IMPL(x)
/// LibTorch version a translation unit is compiled against, "1.13.0".
#define GENFW_TORCH_VERSION_STRING    \
  GENFW_STRINGIFY(TORCH_VERSION_MAJOR) \
  "." GENFW_STRINGIFY(TORCH_VERSION_MINOR) "." GENFW_STRINGIFY(TORCH_VERSION_PATCH)
