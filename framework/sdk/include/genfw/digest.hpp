#pragma once
/// Content digests of bytes, strings, tensors, files and modules: what cached
/// artefacts are keyed by and what provenance records. SHA-256 as 64 hex
/// digits, so a digest can be compared with a published one.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "genfw/export.hpp"
#include "genfw/sha256.hpp"

namespace genfw::metric {

/// A running SHA-256 over a sequence of typed items.
class GENFW_API ContentDigest {
 public:
  ContentDigest& bytes(const void* data, size_t size);
  ContentDigest& text(const std::string& s);  ///< length-prefixed, so "ab","c" ≠ "a","bc"
  /// dtype, shape and values (copied to a contiguous CPU tensor).
  ContentDigest& tensor(const torch::Tensor& t);
  /// 64 lowercase hex digits; the object is spent afterwards.
  std::string hex() { return sha_.hex(); }

 private:
  Sha256 sha_;
};

/// SHA-256 of the file's bytes (sha256sum's value).
GENFW_API std::string file_digest(const std::string& path);
/// Digest of a module's parameters and buffers (names and values, in the
/// module's registration order): independent of the file format torch::save writes.
GENFW_API std::string module_digest(const torch::nn::Module& module);

}  // namespace genfw::metric
