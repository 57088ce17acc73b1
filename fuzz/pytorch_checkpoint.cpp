// Fuzz target: the torch.save() reader (genfw/pytorch_checkpoint.hpp) on any bytes,
// and the state dict read from what it returns. A damaged file must be a
// genfw::Error, never a crash or a read outside the input (the replay build runs
// it plainly, the libFuzzer build under ASan).
#include "fuzz_support.hpp"
#include "genfw/pytorch_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  genfw_fuzz::expect_clean([&] {
    const auto root = genfw::parse_pytorch_checkpoint(bytes, "fuzz.pth");
    const auto& first = root->type == genfw::PickleValue::Type::list && !root->items.empty() ? *root->items[0] : *root;
    genfw::state_dict_tensors(first, "fuzz.pth", "the first element");
  });
  return 0;
}
