// Fuzz target: the Fashion-MNIST IDX reader (gzip or plain) through the
// dataset plugin. The first byte picks which file the rest replaces, the
// image file or the label file; the other one stays a valid 2-image file.
#include "fuzz_support.hpp"
#include "genfw/dataset.hpp"
#include "genfw/registry.hpp"

namespace {
const genfw::Registry& registry() {
  static const genfw::Registry loaded = [] {
    genfw::Registry r;
    r.load_library(std::string(GENFW_FUZZ_PLUGIN_DIR) + "/fashion_mnist.so");
    return r;
  }();
  return loaded;
}

std::string valid_idx(bool images) {
  std::string bytes = images ? std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x1c\0\0\0\x1c", 16) + std::string(2 * 784, '\x80')
                             : std::string("\0\0\x08\x01\0\0\0\x02\x03\x07", 10);
  return bytes;
}
}  // namespace

// Plugins load before fuzzing starts, so libFuzzer counts their coverage from the first input.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  registry();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const genfw::Registry& plugins = registry();
  const auto folder = genfw_fuzz::scratch_dir() / "fashion";
  std::filesystem::create_directories(folder);
  const bool fuzz_images = data[0] % 2 == 0;
  const std::string images = (folder / "train-images-idx3-ubyte").string();
  const std::string labels = (folder / "train-labels-idx1-ubyte").string();
  const std::string other = valid_idx(!fuzz_images);
  genfw_fuzz::write_bytes(fuzz_images ? images : labels, data + 1, size - 1);
  genfw_fuzz::write_bytes(fuzz_images ? labels : images, reinterpret_cast<const uint8_t*>(other.data()), other.size());
  genfw_fuzz::expect_clean([&] {
    const auto& info = plugins.find("fashion_mnist", genfw::Kind::dataset);
    auto options = genfw::Options::with_defaults(info.schema, "dataset 'fashion_mnist'", {{"path", folder.string()}});
    auto dataset = plugins.create<genfw::Dataset>("fashion_mnist", genfw::Kind::dataset, options, {});
    dataset->get(torch::arange(dataset->size(), torch::kInt64));
  });
  return 0;
}
