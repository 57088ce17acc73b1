#pragma once
/// SHA-256 (FIPS 180-4): what authenticates content that must not have
/// changed (checkpoints, downloaded network weights), where the FNV digests of
/// genfw/digest.hpp only identify it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "genfw/export.hpp"

namespace genfw {

class GENFW_API Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, size_t size);
  Sha256& update(const std::string& bytes) { return update(bytes.data(), bytes.size()); }
  /// The digest as 64 lowercase hex digits; the object is spent afterwards.
  std::string hex();

 private:
  void compress(const uint8_t block[64]);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

GENFW_API std::string sha256_hex(const std::string& bytes);
/// SHA-256 of a file's contents; throws genfw::Error naming the file if unreadable.
GENFW_API std::string sha256_of_file(const std::string& path);

}  // namespace genfw
