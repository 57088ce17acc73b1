#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  return genfw::testing::make<Dataset>(Kind::dataset, "cifar10", overrides, context);
}

std::string error_of(const std::map<std::string, OptionValue>& overrides, const std::string& split = "train") {
  try {
    make(overrides, split);
  } catch (const genfw::Error& e) {
    return e.what();
  }
  return "";
}

class Cifar10Test : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(0);
    dir = fx::fresh_dir("genfw-cifar10-test");
    train_images = torch::randint(0, 256, {11, 3, 32, 32}, torch::kUInt8);
    train_images[0].fill_(0);
    train_images[1].fill_(255);
    // A planar pattern to pin the channel order: R = 10, G = 20, B = 30.
    train_images[2][0].fill_(10);
    train_images[2][1].fill_(20);
    train_images[2][2].fill_(30);
    train_labels = torch::arange(11, torch::kInt64).remainder(10).to(torch::kUInt8);
    test_images = torch::randint(0, 256, {4, 3, 32, 32}, torch::kUInt8);
    test_labels = torch::tensor({3, 1, 4, 1}, torch::kUInt8);
    // 11 train images over 5 files: sizes 3, 2, 2, 2, 2 (any whole number of records is fine).
    fx::write_cifar10(dir, train_images, train_labels, test_images, test_labels);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string dir;
  torch::Tensor train_images, train_labels, test_images, test_labels;
};

TEST_F(Cifar10Test, ReadsExactPixelsAndLabelsAcrossFiveBatches) {
  auto ds = make({{"path", dir}});
  auto info = ds->info();
  EXPECT_EQ(info.shape, (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(info.low, -1.0);
  EXPECT_EQ(info.high, 1.0);
  EXPECT_EQ(info.num_classes, 10);
  EXPECT_TRUE(info.discrete_levels);
  ASSERT_EQ(ds->size(), 11);
  auto batch = ds->get(torch::arange(11, torch::kInt64));
  ASSERT_EQ(batch.x.sizes(), (std::vector<int64_t>{11, 3, 32, 32}));
  // Independent reference 2b/255 − 1 in double; float32 rounding only.
  auto expected = train_images.to(torch::kFloat64) * 2.0 / 255.0 - 1.0;
  EXPECT_LT((batch.x.to(torch::kFloat64) - expected).abs().max().item<double>(), 2e-7);
  EXPECT_TRUE(batch.x[0].eq(-1.0f).all().item<bool>());
  EXPECT_TRUE(batch.x[1].eq(1.0f).all().item<bool>());
  EXPECT_TRUE(torch::equal(batch.y, train_labels.to(torch::kInt64)));
  // Channel planes stay in R, G, B order.
  EXPECT_NEAR(batch.x[2][0].mean().item<double>(), 2.0 * 10 / 255 - 1, 1e-6);
  EXPECT_NEAR(batch.x[2][1].mean().item<double>(), 2.0 * 20 / 255 - 1, 1e-6);
  EXPECT_NEAR(batch.x[2][2].mean().item<double>(), 2.0 * 30 / 255 - 1, 1e-6);
}

TEST_F(Cifar10Test, ZeroOneRangeSubsetAndTestSplit) {
  auto ds = make({{"path", dir}, {"range", std::string("zero_one")}, {"subset", int64_t(4)}});
  EXPECT_EQ(ds->info().low, 0.0);
  ASSERT_EQ(ds->size(), 4);
  auto batch = ds->get(torch::tensor({3, 0}, torch::kInt64));
  auto expected = train_images.index_select(0, torch::tensor({3, 0})).to(torch::kFloat64) / 255.0;
  EXPECT_LT((batch.x.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-7);
  EXPECT_TRUE(torch::equal(batch.y, torch::tensor({3, 0}, torch::kInt64)));
  EXPECT_EQ(make({{"path", dir}, {"subset", int64_t(500)}})->size(), 11);

  auto test = make({{"path", dir}}, "test");
  ASSERT_EQ(test->size(), 4);
  auto t = test->get(torch::arange(4, torch::kInt64));
  EXPECT_TRUE(torch::equal(t.y, torch::tensor({3, 1, 4, 1}, torch::kInt64)));
  auto texpected = test_images.to(torch::kFloat64) * 2.0 / 255.0 - 1.0;
  EXPECT_LT((t.x.to(torch::kFloat64) - texpected).abs().max().item<double>(), 2e-7);
}

TEST_F(Cifar10Test, TruncatedFileNamesFileAndSize) {
  fx::Faults cut;
  cut.drop_bytes = 100;
  fx::write_cifar_batch(dir + "/data_batch_3.bin", train_images.narrow(0, 0, 2), train_labels.narrow(0, 0, 2),
                        cut);
  auto message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("data_batch_3.bin: size 6046 bytes is not a whole number of 3073-byte records"));
  // The test split does not read the train files.
  EXPECT_EQ(make({{"path", dir}}, "test")->size(), 4);
}

TEST_F(Cifar10Test, CorruptLabelIsRejected) {
  auto labels = test_labels.clone();
  labels[2] = 200;
  fx::write_cifar_batch(dir + "/test_batch.bin", test_images, labels);
  auto message = error_of({{"path", dir}}, "test");
  EXPECT_THAT(message, HasSubstr("test_batch.bin: corrupt label 200 in record 2"));
}

TEST_F(Cifar10Test, AFileOfMoreRecordsThanABatchHoldsIsRefused) {
  const int64_t records = 10001;  // every batch file of the binary version holds 10000
  std::ofstream(dir + "/test_batch.bin", std::ios::binary | std::ios::trunc)
      << std::string(size_t(records * 3073), '\0');
  auto message = error_of({{"path", dir}}, "test");
  EXPECT_THAT(message, HasSubstr("test_batch.bin: 10001 records (30733073 bytes), more than the 10000 of a CIFAR-10"));
}

TEST_F(Cifar10Test, AFolderInPlaceOfABatchFileIsRefused) {
  std::filesystem::remove(dir + "/test_batch.bin");
  std::filesystem::create_directory(dir + "/test_batch.bin");
  auto message = error_of({{"path", dir}}, "test");
  EXPECT_THAT(message, HasSubstr("test_batch.bin: not a regular file"));
}

TEST_F(Cifar10Test, EmptyFileIsRejected) {
  fx::truncate_file(dir + "/data_batch_5.bin", 0);
  EXPECT_THAT(error_of({{"path", dir}}), HasSubstr("data_batch_5.bin: the file is empty"));
}

TEST_F(Cifar10Test, MissingFolderOrFilesSayWhatAndWhere) {
  auto message = error_of({{"path", dir + "/nowhere"}});
  EXPECT_THAT(message, HasSubstr(dir + "/nowhere' "));
  EXPECT_THAT(message, HasSubstr("does not exist"));
  EXPECT_THAT(message, HasSubstr("data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, "
                                 "data_batch_5.bin"));
  EXPECT_THAT(message, HasSubstr("CIFAR-10 binary version"));

  std::filesystem::remove(dir + "/data_batch_2.bin");
  std::filesystem::remove(dir + "/data_batch_4.bin");
  message = error_of({{"path", dir}});
  EXPECT_THAT(message, HasSubstr("missing data_batch_2.bin, data_batch_4.bin in '" + dir + "'"));
  EXPECT_THAT(message, HasSubstr("CIFAR-10 binary version"));

  std::filesystem::remove(dir + "/test_batch.bin");
  message = error_of({{"path", dir}}, "test");
  EXPECT_THAT(message, HasSubstr("missing test_batch.bin"));
}

TEST_F(Cifar10Test, OutOfRangeIndexThrows) {
  auto ds = make({{"path", dir}}, "test");
  EXPECT_THROW(ds->get(torch::tensor({4}, torch::kInt64)), genfw::Error);
  EXPECT_THROW(ds->get(torch::tensor({-1}, torch::kInt64)), genfw::Error);
}

}  // namespace
