#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "../../../data/fixtures/dataset_fixtures.hpp"
#include "genfw/testing.hpp"

namespace {

using genfw::Dataset;
using genfw::Kind;
using genfw::OptionValue;
using ::testing::HasSubstr;
namespace fx = genfw::fixtures;

std::unique_ptr<Dataset> make(const std::map<std::string, OptionValue>& overrides,
                              const std::string& split = "train") {
  genfw::BuildContext context;
  context.split = split;  // the framework chooses the split, not an option
  return genfw::testing::make<Dataset>(Kind::dataset, "fashion_mnist", overrides, context);
}

/// The message of the genfw::Error that building the dataset throws ("" if none).
std::string error_of(const std::map<std::string, OptionValue>& overrides, const std::string& split = "train") {
  try {
    make(overrides, split);
  } catch (const genfw::Error& e) {
    return e.what();
  }
  return "";
}

struct Fixture {
  torch::Tensor train_images, train_labels, test_images, test_labels;
};

// Small train (12) and test (5) splits with every byte value 0..255 present.
Fixture write_good(const std::string& dir) {
  Fixture f;
  f.train_images = torch::randint(0, 256, {12, 28, 28}, torch::kUInt8);
  f.train_images[0].fill_(0);
  f.train_images[1].fill_(255);
  f.train_labels = torch::arange(12, torch::kInt64).remainder(10).to(torch::kUInt8);
  f.test_images = torch::randint(0, 256, {5, 28, 28}, torch::kUInt8);
  f.test_labels = torch::tensor({9, 8, 7, 6, 5}, torch::kUInt8);
  fx::write_fashion_mnist(dir, "train", f.train_images, f.train_labels);
  fx::write_fashion_mnist(dir, "test", f.test_images, f.test_labels);
  return f;
}

class FashionMnistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(0);
    dir = fx::fresh_dir("genfw-fashion-mnist-test");
    data = write_good(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string dir;
  Fixture data;
};

TEST_F(FashionMnistTest, ReadsExactPixelsAndLabelsInMinusOneOne) {
  auto ds = make({{"path", dir}});
  auto info = ds->info();
  EXPECT_EQ(info.shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(info.low, -1.0);
  EXPECT_EQ(info.high, 1.0);
  EXPECT_EQ(info.num_classes, 10);
  EXPECT_TRUE(info.discrete_levels);
  EXPECT_EQ(info.levels, 256);
  ASSERT_EQ(ds->size(), 12);

  auto idx = torch::arange(12, torch::kInt64);
  auto batch = ds->get(idx);
  ASSERT_EQ(batch.x.sizes(), (std::vector<int64_t>{12, 1, 28, 28}));
  EXPECT_EQ(batch.x.scalar_type(), torch::kFloat32);
  // Independent reference: b ↦ 2b/255 − 1 in double; float32 rounding only (≤ 1.2e-7).
  auto expected = (data.train_images.to(torch::kFloat64) * 2.0 / 255.0 - 1.0).unsqueeze(1);
  EXPECT_LT((batch.x.to(torch::kFloat64) - expected).abs().max().item<double>(), 2e-7);
  // Range ends are exact: byte 0 → low, 255 → high.
  EXPECT_TRUE(batch.x[0].eq(-1.0f).all().item<bool>());
  EXPECT_TRUE(batch.x[1].eq(1.0f).all().item<bool>());
  EXPECT_TRUE(torch::equal(batch.y, data.train_labels.to(torch::kInt64)));
  EXPECT_EQ(batch.y.scalar_type(), torch::kInt64);

  // Arbitrary order and repeats.
  auto picked = ds->get(torch::tensor({7, 3, 7}, torch::kInt64));
  EXPECT_TRUE(torch::equal(picked.x[0], batch.x[7]));
  EXPECT_TRUE(torch::equal(picked.x[1], batch.x[3]));
  EXPECT_TRUE(torch::equal(picked.y, torch::tensor({7, 3, 7}, torch::kInt64)));
}

TEST_F(FashionMnistTest, ZeroOneRangeAndPadTo32) {
  auto ds = make({{"path", dir}, {"range", std::string("zero_one")}, {"pad_to_32", true}});
  auto info = ds->info();
  EXPECT_EQ(info.shape, (std::vector<int64_t>{1, 32, 32}));
  EXPECT_EQ(info.low, 0.0);
  EXPECT_EQ(info.high, 1.0);
  auto batch = ds->get(torch::arange(12, torch::kInt64));
  ASSERT_EQ(batch.x.sizes(), (std::vector<int64_t>{12, 1, 32, 32}));
  auto inner = batch.x.slice(2, 2, 30).slice(3, 2, 30);
  auto expected = (data.train_images.to(torch::kFloat64) / 255.0).unsqueeze(1);
  EXPECT_LT((inner.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-7);
  // Every pixel of the 2-pixel frame is exactly `low` (= 0 here).
  auto frame = torch::ones({32, 32}, torch::kBool);
  frame.slice(0, 2, 30).slice(1, 2, 30).fill_(false);
  auto border = batch.x.masked_select(frame.expand({12, 1, 32, 32}));
  EXPECT_EQ(border.numel(), 12 * (32 * 32 - 28 * 28));
  EXPECT_TRUE(border.eq(0.0f).all().item<bool>());
  EXPECT_TRUE(batch.x[1].slice(1, 2, 30).slice(2, 2, 30).eq(1.0f).all().item<bool>());

  // Padding with low = −1 in the default range.
  auto minus = make({{"path", dir}, {"pad_to_32", true}});
  auto mx = minus->get(torch::tensor({1}, torch::kInt64)).x;
  EXPECT_TRUE(mx.slice(2, 0, 2).eq(-1.0f).all().item<bool>());
  EXPECT_TRUE(mx.slice(2, 2, 30).slice(3, 2, 30).eq(1.0f).all().item<bool>());
}

TEST_F(FashionMnistTest, SubsetAndSplit) {
  auto sub = make({{"path", dir}, {"subset", int64_t(4)}});
  ASSERT_EQ(sub->size(), 4);
  auto b = sub->get(torch::arange(4, torch::kInt64));
  EXPECT_TRUE(torch::equal(b.y, torch::tensor({0, 1, 2, 3}, torch::kInt64)));
  // A subset larger than the split means all of it.
  EXPECT_EQ(make({{"path", dir}, {"subset", int64_t(1000)}})->size(), 12);

  auto test = make({{"path", dir}}, "test");
  ASSERT_EQ(test->size(), 5);
  auto t = test->get(torch::arange(5, torch::kInt64));
  EXPECT_TRUE(torch::equal(t.y, torch::tensor({9, 8, 7, 6, 5}, torch::kInt64)));
  auto expected = (data.test_images.to(torch::kFloat64) * 2.0 / 255.0 - 1.0).unsqueeze(1);
  EXPECT_LT((t.x.to(torch::kFloat64) - expected).abs().max().item<double>(), 2e-7);

  try {
    sub->get(torch::tensor({4}, torch::kInt64));
    ADD_FAILURE() << "index 4 of a 4-image subset must throw";
  } catch (const genfw::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("out of range"));
  }
}

TEST_F(FashionMnistTest, ReadsUncompressedFilesToo) {
  auto plain = fx::fresh_dir("genfw-fashion-mnist-plain");
  fx::Faults no_gzip;
  no_gzip.gzip = false;
  fx::write_idx_gz(plain + "/train-images-idx3-ubyte", data.train_images, no_gzip);
  fx::write_idx_gz(plain + "/train-labels-idx1-ubyte", data.train_labels, no_gzip);
  auto ds = make({{"path", plain}});
  EXPECT_TRUE(torch::equal(ds->get(torch::arange(12, torch::kInt64)).y, data.train_labels.to(torch::kInt64)));
  std::filesystem::remove_all(plain);
}

TEST_F(FashionMnistTest, TruncatedPayloadNamesFileAndCounts) {
  fx::Faults cut;
  cut.drop_bytes = 12 * 28 * 28 - 1000;  // leaves 1000 pixel bytes
  fx::write_fashion_mnist(dir, "train", data.train_images, data.train_labels, cut);
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-images-idx3-ubyte.gz: truncated"));
  EXPECT_THAT(message, HasSubstr("header says 12 images of 28×28 (9408 bytes), file holds 1000"));
}

TEST_F(FashionMnistTest, CutGzipStreamIsReportedAsTruncated) {
  auto path = dir + "/train-images-idx3-ubyte.gz";
  fx::truncate_file(path, std::filesystem::file_size(path) / 2);
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-images-idx3-ubyte.gz"));
  EXPECT_THAT(message, HasSubstr("truncated"));
}

// zlib checks the 8-byte gzip trailer (CRC-32, length) only when asked for bytes
// past the payload: a reader that stops at the payload accepts a cut trailer.
TEST_F(FashionMnistTest, GzipWithoutItsTrailerIsTruncated) {
  auto path = dir + "/train-labels-idx1-ubyte.gz";
  for (uintmax_t cut : {8, 3}) {
    fx::write_fashion_mnist(dir, "train", data.train_images, data.train_labels);
    fx::truncate_file(path, std::filesystem::file_size(path) - cut);
    auto message = error_of({{"path", dir}});
    EXPECT_THAT(message, HasSubstr("train-labels-idx1-ubyte.gz: truncated: the gzip stream ends before its trailer"))
        << "cut " << cut;
  }
}

TEST_F(FashionMnistTest, GzipWithAWrongCrcIsCorrupt) {
  auto path = dir + "/train-images-idx3-ubyte.gz";
  auto size = std::filesystem::file_size(path);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(std::streamoff(size - 8));  // the trailer's CRC-32
  char crc = char(file.get());
  file.seekp(std::streamoff(size - 8));
  file.put(char(crc ^ 0x5a));
  file.close();
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-images-idx3-ubyte.gz: corrupt gzip stream (zlib: incorrect data check)"));
}

TEST_F(FashionMnistTest, AHeaderPromisingMoreThanTheFileCanHoldIsRefusedBeforeAllocating) {
  std::filesystem::remove(dir + "/train-images-idx3-ubyte.gz");
  std::vector<uint8_t> bytes;
  for (uint32_t field : {2051u, 4000000000u, 28u, 28u}) fx::detail::put_be32(bytes, field);  // 3 TB of pixels
  bytes.resize(bytes.size() + 100);
  fx::detail::write_plain(dir + "/train-images-idx3-ubyte", bytes);
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-images-idx3-ubyte: corrupt header: it says 4000000000 images of 28×28"));
}

TEST_F(FashionMnistTest, AFifoInPlaceOfAFileIsRefusedWithoutWaiting) {
  auto path = dir + "/train-images-idx3-ubyte.gz";
  std::filesystem::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-images-idx3-ubyte.gz: not a regular file"));
}

TEST_F(FashionMnistTest, ExtraBytesAreRejected) {
  fx::Faults extra;
  extra.extra_bytes = 3;
  fx::write_fashion_mnist(dir, "train", data.train_images, data.train_labels, {}, extra);
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-labels-idx1-ubyte.gz"));
  EXPECT_THAT(message, HasSubstr("more bytes follow"));
}

TEST_F(FashionMnistTest, WrongMagicIsRejected) {
  fx::Faults magic;
  magic.magic = 2049;  // a label magic on the image file
  fx::write_fashion_mnist(dir, "test", data.test_images, data.test_labels, magic);
  auto message = error_of({{"path", dir}}, "test");
  EXPECT_THAT(message, HasSubstr("t10k-images-idx3-ubyte.gz: wrong magic number 2049, expected 2051"));

  fx::Faults label_magic;
  label_magic.magic = 1234;
  fx::write_fashion_mnist(dir, "train", data.train_images, data.train_labels, {}, label_magic);
  EXPECT_THAT(error_of({{"path", dir}}),
              HasSubstr("train-labels-idx1-ubyte.gz: wrong magic number 1234, expected 2049"));
}

TEST_F(FashionMnistTest, WrongImageSizeIsRejected) {
  fx::write_idx_gz(dir + "/train-images-idx3-ubyte.gz", torch::zeros({12, 32, 32}, torch::kUInt8));
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-images-idx3-ubyte.gz: images are 32×32, expected 28×28"));
}

TEST_F(FashionMnistTest, CorruptLabelIsRejected) {
  auto labels = data.train_labels.clone();
  labels[5] = 17;
  fx::write_fashion_mnist(dir, "train", data.train_images, labels);
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("train-labels-idx1-ubyte.gz: corrupt label 17 at index 5"));
}

TEST_F(FashionMnistTest, CountMismatchIsRejected) {
  fx::write_idx_gz(dir + "/train-labels-idx1-ubyte.gz", data.train_labels.narrow(0, 0, 10));
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("holds 12 images but"));
  EXPECT_THAT(message, HasSubstr("train-labels-idx1-ubyte.gz holds 10 labels"));
}

TEST_F(FashionMnistTest, MissingFolderOrFileSaysHowToGetTheData) {
  auto message = error_of({{"path", dir + "/nowhere"}});
  EXPECT_THAT(message, HasSubstr(dir + "/nowhere' does not exist"));
  EXPECT_THAT(message, HasSubstr("apt-get install dataset-fashion-mnist"));
  EXPECT_THAT(message, HasSubstr("option 'path'"));

  std::filesystem::remove(dir + "/t10k-labels-idx1-ubyte.gz");
  message = error_of({{"path", dir}}, "test");
  EXPECT_THAT(message, HasSubstr("t10k-labels-idx1-ubyte.gz is missing"));
  EXPECT_THAT(message, HasSubstr("apt-get install dataset-fashion-mnist"));
}

// The real files cut inside their 8-byte trailer: zlib's gzread saw a clean end there (its
// input ran out right after the last data byte, unlike the small fixtures above), so the
// reader checks the trailer against the CRC-32 and length of what it read.
TEST(FashionMnistReal, RealFilesCutInTheirGzipTrailerAreTruncated) {
  const std::string real = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::is_directory(real)) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string cut_dir = (std::filesystem::temp_directory_path() / "genfw_fashion_cut").string();
  std::vector<std::pair<std::string, uintmax_t>> cases{{"train-labels-idx1-ubyte.gz", 1},
                                                       {"train-labels-idx1-ubyte.gz", 4},
                                                       {"train-labels-idx1-ubyte.gz", 7},
                                                       {"train-images-idx3-ubyte.gz", 4}};
  for (const auto& [name, cut] : cases) {
    std::filesystem::remove_all(cut_dir);
    std::filesystem::create_directories(cut_dir);
    for (const char* file : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}) {
      std::filesystem::copy_file(real + "/" + file, cut_dir + "/" + file);
    }
    const std::string path = cut_dir + "/" + name;
    fx::truncate_file(path, std::filesystem::file_size(path) - cut);
    EXPECT_THAT(error_of({{"path", cut_dir}}), HasSubstr(name + ": truncated")) << "cut " << cut;
  }
  std::filesystem::remove_all(cut_dir);
}

// The real files of Debian's dataset-fashion-mnist, when installed.
TEST(FashionMnistReal, DebianFilesHaveTheOfficialSizesAndBalancedClasses) {
  torch::manual_seed(0);
  if (!std::filesystem::is_directory("/usr/share/datasets/fashion-mnist")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  for (auto [split, n] : {std::pair<std::string, int64_t>{"train", 60000}, {"test", 10000}}) {
    auto ds = make({{"pad_to_32", true}}, split);
    ASSERT_EQ(ds->size(), n) << split;
    auto batch = ds->get(torch::arange(n, torch::kInt64));
    EXPECT_EQ(batch.x.sizes(), (std::vector<int64_t>{n, 1, 32, 32}));
    // Every class appears exactly n/10 times in both official splits.
    auto histogram = torch::bincount(batch.y, {}, 10);
    EXPECT_TRUE(torch::equal(histogram, torch::full({10}, n / 10, torch::kInt64))) << split << histogram;
    EXPECT_EQ(batch.x.min().item<float>(), -1.0f);
    EXPECT_EQ(batch.x.max().item<float>(), 1.0f);
  }
}

}  // namespace
