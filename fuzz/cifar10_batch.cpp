// Fuzz target: the CIFAR-10 binary batch reader through the dataset plugin
// (the input is test_batch.bin).
#include "fuzz_support.hpp"
#include "genfw/dataset.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  genfw_fuzz::plugins("cifar10.so");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const genfw::Registry& plugins = genfw_fuzz::plugins("cifar10.so");
  const auto folder = genfw_fuzz::scratch_dir() / "cifar";
  std::filesystem::create_directories(folder);
  genfw_fuzz::write_bytes(folder / "test_batch.bin", data, size);
  genfw_fuzz::expect_clean([&] {
    const auto& info = plugins.find("cifar10", genfw::Kind::dataset);
    auto options = genfw::Options::with_defaults(info.schema, "dataset 'cifar10'", {{"path", folder.string()}});
    genfw::BuildContext test_split;
    test_split.split = "test";
    auto dataset = plugins.create<genfw::Dataset>("cifar10", genfw::Kind::dataset, options, test_split);
    dataset->get(torch::arange(dataset->size(), torch::kInt64));
  });
  return 0;
}
