// upsample: a super-resolution stage's condition interpolated to the data's size,
// no network call; averaging it down again (what the stage is conditioned on)
// gives the condition back.
#include <gtest/gtest.h>

#include "genfw/testing.hpp"

namespace {

using genfw::OptionValue;

struct Stage {
  genfw::BuildContext build = genfw::testing::context_for({1, 8, 8});
  std::unique_ptr<genfw::Model> model = genfw::testing::make<genfw::Model>(
      genfw::Kind::model, "sr_unet",
      {{"ch", int64_t(8)}, {"ch_mult", std::vector<int64_t>{1}}, {"num_res_blocks", int64_t(1)},
       {"attn_resolutions", std::vector<int64_t>{}}, {"low_resolution", int64_t(4)}, {"num_train_timesteps", int64_t(10)}},
      build);
};

torch::Tensor upsample(Stage& stage, const std::string& mode, const torch::Tensor& low, int64_t* nfe = nullptr) {
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "upsample", {{"mode", mode}});
  auto context = genfw::SampleContext::for_model(*stage.model, low.size(0), stage.build.data);
  context.low_resolution = low;
  auto x = genfw::draw(*sampler, context);
  if (nfe) *nfe = context.nfe;
  return x;
}

TEST(Upsample, NearestRepeatsEachPixelAndAveragingGivesItBack) {
  Stage stage;
  torch::manual_seed(0);
  auto low = torch::rand({3, 1, 4, 4}) * 2 - 1;
  int64_t nfe = -1;
  auto x = upsample(stage, "nearest", low, &nfe);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  EXPECT_EQ(nfe, 0);
  EXPECT_TRUE(torch::equal(x.index({torch::indexing::Slice(), 0, 5, 2}), low.index({torch::indexing::Slice(), 0, 2, 1})));
  auto* conditioned = genfw::as<genfw::LowResolutionConditioned>(*stage.model);
  ASSERT_NE(conditioned, nullptr);
  EXPECT_TRUE(torch::allclose(conditioned->low_resolution_of(x), low, 0, 1e-6));
}

TEST(Upsample, BilinearKeepsAConstantImageAndTheMeanOfEachBlockOfALinearRamp) {
  Stage stage;
  auto constant = torch::full({2, 1, 4, 4}, 0.25);
  EXPECT_TRUE(torch::allclose(upsample(stage, "bilinear", constant), torch::full({2, 1, 8, 8}, 0.25), 0, 1e-6));
  // Away from the border bilinear interpolation of a linear ramp is the ramp itself.
  auto ramp = torch::arange(4, torch::kFloat32).view({1, 1, 1, 4}).expand({1, 1, 4, 4}).contiguous();
  auto x = upsample(stage, "bilinear", ramp);
  EXPECT_NEAR(x[0][0][3][3].item<double>(), 1.25, 1e-6);  // x = (3 + 0.5)/2 − 0.5 = 1.25 in low-resolution pixels
}

TEST(Upsample, RefusesWithoutLowResolutionImages) {
  Stage stage;
  auto sampler = genfw::testing::make<genfw::Sampler>(genfw::Kind::sampler, "upsample");
  auto context = genfw::SampleContext::for_model(*stage.model, 2, stage.build.data);
  try {
    genfw::draw(*sampler, context);
    FAIL() << "sampled without a condition";
  } catch (const genfw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("low-resolution image per sample"), std::string::npos) << e.what();
  }
}

}  // namespace
