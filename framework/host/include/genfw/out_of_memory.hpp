#pragma once
/// A plugin call that failed to allocate (LibTorch's CPU or CUDA allocator,
/// std::bad_alloc, a tensor size that overflows) gets a remedy: which tables'
/// sizes to lower, with what was asked for and what the machine has.
#include <string>

#include "genfw/component.hpp"
#include "genfw/export.hpp"

namespace genfw {

/// "" when `message` is not an allocation failure; else a sentence to append to it.
GENFW_API std::string out_of_memory_remedy(const std::string& message, Kind kind);

}  // namespace genfw
