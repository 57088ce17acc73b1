#include "genfw/digest.hpp"

namespace genfw::metric {

ContentDigest& ContentDigest::bytes(const void* data, size_t size) {
  sha_.update(data, size);
  return *this;
}

ContentDigest& ContentDigest::text(const std::string& s) {
  uint64_t n = s.size();
  bytes(&n, sizeof n);
  return bytes(s.data(), s.size());
}

ContentDigest& ContentDigest::tensor(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  text(std::string(c.dtype().name()));
  for (int64_t s : c.sizes()) bytes(&s, sizeof s);
  return bytes(c.data_ptr(), c.numel() * c.element_size());
}

std::string file_digest(const std::string& path) { return sha256_of_file(path); }

std::string module_digest(const torch::nn::Module& module) {
  ContentDigest h;
  for (const auto& item : module.named_parameters(true)) h.text(item.key()).tensor(item.value());
  for (const auto& item : module.named_buffers(true)) h.text(item.key()).tensor(item.value());
  return h.hex();
}

}  // namespace genfw::metric
