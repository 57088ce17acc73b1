// CIFAR-10 (Krizhevsky 2009): 32×32 colour images of 10 classes, 50000 train /
// 10000 test, read from the "CIFAR-10 binary version" batches: each record is
// 1 label byte then 3072 pixel bytes (the R, G and B planes of 32×32, row-major).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "genfw/sdk.hpp"

namespace genfw_cifar10 {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kPixels = 3 * 32 * 32;
constexpr int64_t kRecord = 1 + kPixels;
constexpr int64_t kRecordsPerFile = 10000;
constexpr const char* kHowToGet =
    "download the \"CIFAR-10 binary version\" (cifar-10-binary.tar.gz) from "
    "https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and put its files there or set option "
    "'path' to the extracted cifar-10-batches-bin folder";

std::vector<std::string> file_names(bool train) {
  if (!train) return {"test_batch.bin"};
  std::vector<std::string> names;
  for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

/// Reads one batch file into records uint8 [N, 3073].
torch::Tensor read_batch(const std::string& path) {
  GENFW_CHECK(fs::is_regular_file(path), path, ": not a regular file (a folder, FIFO or device)");
  std::error_code error;
  auto bytes = fs::file_size(path, error);
  GENFW_CHECK(!error, path, ": cannot read its size: ", error.message());
  GENFW_CHECK(bytes > 0, path, ": the file is empty, expected records of ", kRecord,
              " bytes (1 label + 3072 pixels)");
  GENFW_CHECK(bytes % kRecord == 0, path, ": size ", bytes, " bytes is not a whole number of ", kRecord,
              "-byte records (1 label + 3072 pixels; ", bytes / kRecord, " records and ", bytes % kRecord,
              " bytes left over): truncated or not a CIFAR-10 binary batch");
  int64_t n = int64_t(bytes / kRecord);
  // Every file of the binary version holds 10000 records; more is another file
  // (or a corrupt one) and would be allocated whole before any check.
  GENFW_CHECK(n <= kRecordsPerFile, path, ": ", n, " records (", bytes, " bytes), more than the ", kRecordsPerFile,
              " of a CIFAR-10 binary batch file: not a CIFAR-10 batch");
  auto records = torch::empty({n, kRecord}, torch::kUInt8);
  std::ifstream in(path, std::ios::binary);
  GENFW_CHECK(in, path, ": cannot open for reading");
  in.read(reinterpret_cast<char*>(records.data_ptr<uint8_t>()), std::streamsize(bytes));
  GENFW_CHECK(in.gcount() == std::streamsize(bytes), path, ": read ", in.gcount(), " of ", bytes, " bytes");
  auto labels = records.select(1, 0);
  if (labels.max().item<int64_t>() > 9) {
    int64_t at = (labels > 9).nonzero()[0][0].item<int64_t>();
    GENFW_CHECK(false, path, ": corrupt label ", int64_t(labels[at].item<uint8_t>()), " in record ", at,
                " (CIFAR-10 labels are 0..9)");
  }
  return records;
}

class Cifar10 : public genfw::Dataset {
 public:
  struct Settings {
    std::string path = "data/cifar-10-batches-bin";
    std::string range = "minus_one_one";
    int64_t subset = 0;
    bool hflip = false;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .string("path", &Settings::path,
                    "folder holding data_batch_1..5.bin and test_batch.bin (CIFAR-10 binary version); "
                    "a relative path is relative to the current working directory")
            .choice("range", &Settings::range, {"minus_one_one", "zero_one"},
                    "pixel range: byte 0 → low, 255 → high; [-1, 1] or [0, 1]")
            .integer("subset", &Settings::subset,
                     "use only the first N images of the split (0 = all; more than the split "
                     "holds = all)",
                     genfw::at_least(0))
            .boolean("hflip", &Settings::hflip,
                     "random horizontal flip of training batches, each image with probability 1/2 (applied by the "
                     "trainer: metrics and their references see the images as they are)");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  Cifar10(const genfw::Options& options, const genfw::BuildContext& context) {
    const std::string& owner = options.owner();
    const Settings settings = bound_options().read(options);
    // Relative paths are taken relative to the current working directory (the
    // runner is started from the repository root, where data/ lives), not to
    // the experiment file: one rule, the one a shell user expects.
    const std::string& folder = settings.path;
    const bool train = context.split == "train";
    const auto names = file_names(train);
    GENFW_CHECK(fs::is_directory(folder), owner, ": option 'path': folder '", folder, "' (absolute: ",
                fs::absolute(folder).string(), ") does not exist; expected ", joined(names),
                " there. CIFAR-10 is not shipped with genfw: ", kHowToGet);
    std::vector<std::string> missing;
    for (const auto& name : names) {
      if (!fs::exists(fs::path(folder) / name)) missing.push_back(name);
    }
    GENFW_CHECK(missing.empty(), owner, ": missing ", joined(missing), " in '", folder, "' (the ",
                train ? "train" : "test", " split needs ", joined(names), "); ", kHowToGet);

    std::vector<torch::Tensor> parts;
    for (const auto& name : names) parts.push_back(read_batch((fs::path(folder) / name).string()));
    auto records = parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
    const int64_t subset = settings.subset;
    if (subset > 0 && subset < records.size(0)) records = records.narrow(0, 0, subset);
    labels_ = records.select(1, 0).to(torch::kInt64);
    images_ = records.narrow(1, 1, kPixels).reshape({-1, 3, 32, 32}).contiguous();

    info_.name = "cifar10";
    info_.shape = {3, 32, 32};
    info_.low = settings.range == "zero_one" ? 0.0 : -1.0;
    info_.high = 1.0;
    info_.num_classes = 10;
    info_.discrete_levels = true;
    info_.levels = 256;
    info_.horizontal_flip = settings.hflip;
  }

  genfw::DataInfo info() const override { return info_; }
  int64_t size() const override { return images_.size(0); }

  genfw::Batch get(const torch::Tensor& indices) override {
    GENFW_CHECK(indices.dim() == 1, "dataset 'cifar10': indices must be 1-D, got ", indices.dim(), "-D");
    auto index = indices.to(torch::kCPU, torch::kInt64);
    if (index.numel() > 0) {
      int64_t lo = index.min().item<int64_t>(), hi = index.max().item<int64_t>();
      GENFW_CHECK(lo >= 0 && hi < size(), "dataset 'cifar10': index out of range [0, ", size(), "): got ",
                  lo < 0 ? lo : hi);
    }
    // byte b → low + b/255 · (high − low): 0 → low, 255 → high exactly.
    auto x = images_.index_select(0, index).to(torch::kFloat32);
    x = x.div(255.0f).mul(float(info_.high - info_.low)).add(float(info_.low));
    return {x.contiguous(), labels_.index_select(0, index)};
  }

 private:
  torch::Tensor images_;  // uint8 [N, 3, 32, 32]; converted per batch (1 byte/pixel in memory)
  torch::Tensor labels_;  // int64 [N]
  genfw::DataInfo info_;
};

}  // namespace
}  // namespace genfw_cifar10

GENFW_PLUGIN(manifest) {
  manifest.add<genfw_cifar10::Cifar10>("cifar10", genfw::Kind::dataset,
                                       "CIFAR-10 32×32 colour images, binary batches (Krizhevsky 2009)");
}
