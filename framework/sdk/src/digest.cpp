#include "genfw/digest.hpp"

#include <fstream>
#include <iomanip>
#include <sstream>

namespace genfw::metric {

Fnv1a& Fnv1a::bytes(const void* data, size_t size) {
  auto p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    state_ ^= p[i];
    state_ *= 0x100000001b3ULL;
  }
  return *this;
}

Fnv1a& Fnv1a::text(const std::string& s) {
  uint64_t n = s.size();
  bytes(&n, sizeof n);
  return bytes(s.data(), s.size());
}

Fnv1a& Fnv1a::tensor(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  text(std::string(c.dtype().name()));
  for (int64_t s : c.sizes()) bytes(&s, sizeof s);
  return bytes(c.data_ptr(), c.numel() * c.element_size());
}

std::string Fnv1a::hex() const {
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << state_;
  return out.str();
}

std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Fnv1a h;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof buffer);
    h.bytes(buffer, size_t(in.gcount()));
  }
  return h.hex();
}

std::string module_digest(const torch::nn::Module& module) {
  Fnv1a h;
  for (const auto& item : module.named_parameters(true)) h.text(item.key()).tensor(item.value());
  for (const auto& item : module.named_buffers(true)) h.text(item.key()).tensor(item.value());
  return h.hex();
}

}  // namespace genfw::metric
