// Fuzz target: the CIFAR-10 binary batch reader through the dataset plugin
// (the input is test_batch.bin).
#include "fuzz_support.hpp"
#include "genfw/dataset.hpp"
#include "genfw/registry.hpp"

namespace {
const genfw::Registry& registry() {
  static const genfw::Registry loaded = [] {
    genfw::Registry r;
    r.load_library(std::string(GENFW_FUZZ_PLUGIN_DIR) + "/cifar10.so");
    return r;
  }();
  return loaded;
}
}  // namespace

// Plugins load before fuzzing starts, so libFuzzer counts their coverage from the first input.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  registry();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const genfw::Registry& plugins = registry();
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
