// Fuzz target: the safetensors reader (genfw/safetensors.hpp) on any bytes. A
// damaged file must be a genfw::Error, never a crash or a read outside the input
// (the replay build runs it plainly, the libFuzzer build under ASan).
#include "fuzz_support.hpp"
#include "genfw/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  genfw_fuzz::expect_clean([&] { genfw::parse_safetensors(bytes, "fuzz.safetensors"); });
  return 0;
}
