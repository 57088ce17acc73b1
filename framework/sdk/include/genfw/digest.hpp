#pragma once
/// Content digests of bytes, strings, tensors, files and modules: what cached
/// artefacts are keyed by and what provenance records. FNV-1a 64-bit, as hex;
/// it identifies content, it does not authenticate it.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "genfw/export.hpp"

namespace genfw::metric {

class GENFW_API Fnv1a {
 public:
  Fnv1a& bytes(const void* data, size_t size);
  Fnv1a& text(const std::string& s);  ///< length-prefixed, so "ab","c" ≠ "a","bc"
  /// dtype, shape and values (copied to a contiguous CPU tensor).
  Fnv1a& tensor(const torch::Tensor& t);
  uint64_t value() const { return state_; }
  std::string hex() const;

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

GENFW_API std::string file_digest(const std::string& path);
/// Digest of a module's parameters and buffers (names and values, in the
/// module's registration order): independent of the file format torch::save writes.
GENFW_API std::string module_digest(const torch::nn::Module& module);

}  // namespace genfw::metric
