#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include <genfw/testing.hpp>

#include "../../../data/fixtures/metric_datasets.hpp"

namespace mt = genfw::metric::testing;
using genfw::Kind;

// A TorchScript "classifier" whose logits are the first 3 pixels: a sample whose
// brightest of those is pixel k is classified k. Half the samples are built to
// hit their label, half to miss it: accuracy exactly 0.5.
TEST(ClassAccuracy, FractionOfSamplesClassifiedAsRequested) {
  auto dir = std::filesystem::temp_directory_path() / ("genfw-class-accuracy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "first3.pt").string();
  {
    torch::jit::Module m("m");
    m.define(R"(
def forward(self, x):
    f = x.flatten(1)
    return (f, f[:, 0:3] * 10.0)
)");
    m.save(path);
  }
  auto info = mt::image_info("blobs", 8, 3);
  mt::TensorDataset data(info, torch::zeros({10, 1, 8, 8}));
  genfw::MetricContext context;
  context.data = info;
  context.train_data = &data;
  context.test_data = &data;
  auto labels = torch::arange(12, torch::kLong) % 3;
  auto x = torch::full({12, 1, 8, 8}, -1.0);
  for (int64_t i = 0; i < 12; ++i) {
    int64_t hit = i < 6 ? labels[i].item<int64_t>() : (labels[i].item<int64_t>() + 1) % 3;
    x[i][0][0][hit] = 1.0;
  }
  context.samples = x;
  auto metric = genfw::testing::make<genfw::Metric>(Kind::metric, "class_accuracy");
  auto features = genfw::testing::attach_features(
      context, {{"extractor", std::string("torchscript")}, {"torchscript_path", path}});
  EXPECT_THROW(metric->compute(context), genfw::Error) << "no labels: not defined";
  context.sample_labels = labels;
  auto r = metric->compute(context);
  EXPECT_DOUBLE_EQ(r.values.at("class_accuracy"), 0.5);
  EXPECT_EQ(r.provenance.at("samples"), "12");
  std::filesystem::remove_all(dir);
}
