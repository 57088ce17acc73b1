#pragma once
/// FNV-1a (64-bit) digests of bytes, strings, tensors and files, as hex: the
/// provenance of extractors and reference statistics. Not cryptographic; it
/// identifies content, it does not authenticate it.
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>

namespace genfw::metric {

class Fnv1a {
 public:
  Fnv1a& bytes(const void* data, size_t size) {
    auto p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
      state_ ^= p[i];
      state_ *= 0x100000001b3ULL;
    }
    return *this;
  }
  Fnv1a& text(const std::string& s) {
    uint64_t n = s.size();
    bytes(&n, sizeof n);
    return bytes(s.data(), s.size());
  }
  /// dtype, shape and values (copied to a contiguous CPU tensor).
  Fnv1a& tensor(const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    text(std::string(c.dtype().name()));
    for (int64_t s : c.sizes()) bytes(&s, sizeof s);
    return bytes(c.data_ptr(), c.numel() * c.element_size());
  }
  uint64_t value() const { return state_; }
  std::string hex() const {
    std::ostringstream out;
    out << std::hex << std::setw(16) << std::setfill('0') << state_;
    return out.str();
  }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

inline std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Fnv1a h;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof buffer);
    h.bytes(buffer, size_t(in.gcount()));
  }
  return h.hex();
}

/// Digest of a module's parameters and buffers (names and values, in the
/// module's registration order): independent of the file format torch::save writes.
inline std::string module_digest(const torch::nn::Module& module) {
  Fnv1a h;
  for (const auto& item : module.named_parameters(true)) h.text(item.key()).tensor(item.value());
  for (const auto& item : module.named_buffers(true)) h.text(item.key()).tensor(item.value());
  return h.hex();
}

}  // namespace genfw::metric
