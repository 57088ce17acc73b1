#pragma once
// The host's LibTorch API differences between Debian's 1.13 and the 2.x in
// PyPI's torch wheel (docs/libtorch.md), each behind one named helper. Every
// `#if TORCH_VERSION_*` of the host lives in torch_compat.cpp, and the SDK's in
// genfw/torch_compat.hpp; no other file tests the version.
#include <c10/core/Allocator.h>
#include <torch/torch.h>

#include "genfw/torch_compat.hpp"

namespace c10d {
class Backend;
class ProcessGroup;
}  // namespace c10d

namespace genfw::torch_compat {

/// What ProcessGroupGloo and ProcessGroupNCCL are: c10d::ProcessGroup in
/// LibTorch 1.x; since 2.0 a c10d::Backend (a ProcessGroup dispatches to one per
/// device type). Both offer the collectives genfw calls, with the same signatures.
#if GENFW_TORCH_AT_LEAST(2, 0)
using CollectiveBackend = c10d::Backend;
#else
using CollectiveBackend = c10d::ProcessGroup;
#endif

/// A c10::Allocator written once: LibTorch 2.3 made allocate() non-const and
/// added the pure virtual copy_data(); derived classes define allocate_block().
class AllocatorBase : public c10::Allocator {
 public:
  virtual c10::DataPtr allocate_block(size_t n) const = 0;
#if GENFW_TORCH_AT_LEAST(2, 3)
  c10::DataPtr allocate(size_t n) override { return allocate_block(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#else
  c10::DataPtr allocate(size_t n) const override { return allocate_block(n); }
#endif
};

/// Whether autocast is on for this thread on `device` (kCPU or kCUDA).
void set_autocast_enabled(c10::DeviceType device, bool enabled);
/// The reduced dtype autocast casts to on `device`.
at::ScalarType autocast_dtype(c10::DeviceType device);
void set_autocast_dtype(c10::DeviceType device, at::ScalarType dtype);

}  // namespace genfw::torch_compat
