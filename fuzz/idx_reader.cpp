// Fuzz target: the Fashion-MNIST IDX reader (gzip or plain) through the
// dataset plugin. The first byte picks which file the rest replaces, the
// image file or the label file; the other one stays a valid 2-image file.
#include "fuzz_support.hpp"
#include "genfw/dataset.hpp"

namespace {
std::string valid_idx(bool images) {
  std::string bytes = images ? std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x1c\0\0\0\x1c", 16) + std::string(2 * 784, '\x80')
                             : std::string("\0\0\x08\x01\0\0\0\x02\x03\x07", 10);
  return bytes;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  genfw_fuzz::plugins("fashion_mnist.so");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const genfw::Registry& plugins = genfw_fuzz::plugins("fashion_mnist.so");
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
    const genfw::BuildContext context;  // a named object: GCC 12 misreads a braced temporary as uninitialised
    auto dataset = plugins.create<genfw::Dataset>("fashion_mnist", genfw::Kind::dataset, options, context);
    dataset->get(torch::arange(dataset->size(), torch::kInt64));
  });
  return 0;
}
