// Process settings (genfw/process.hpp): flush-to-zero on every intra-op
// thread, unchanged results in normal ranges, threads from the affinity mask.
#include <cstdlib>
#include <limits>

#include "genfw/process.hpp"
#include "support.hpp"

namespace {

/// Subnormal float32 values, enough of them that an element-wise op is split
/// over every intra-op thread (ATen's grain is 32768 elements).
torch::Tensor subnormals() { return torch::full({1 << 18}, std::numeric_limits<float>::denorm_min() * 1000); }

/// A small network's worth of normal-range arithmetic: GEMM, convolution,
/// softplus, normalisation, reductions.
torch::Tensor normal_range_work() {
  torch::manual_seed(3);
  auto x = torch::randn({8, 3, 16, 16});
  auto w = torch::randn({6, 3, 3, 3}) * 0.2;
  auto h = torch::softplus(torch::conv2d(x, w, {}, 1, 1));
  h = torch::group_norm(h, 2);
  auto m = torch::randn({h.numel() / 8, 10}) * 0.05;
  return torch::log_softmax(h.reshape({8, -1}).mm(m), 1);
}

}  // namespace

class ProcessSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = torch::get_num_threads();
    torch::set_num_threads(2);
  }
  void TearDown() override {
    genfw::set_flush_denormals(false);
    torch::set_num_threads(threads_);
  }
  int threads_ = 1;
};

TEST_F(ProcessSettingsTest, FlushDenormalsReachesEveryIntraOpThread) {
  ASSERT_GT(subnormals()[0].item<float>(), 0.0f);
  genfw::set_flush_denormals(true);
  // Every chunk of the parallel op, whichever thread ran it, reads its inputs as 0.
  auto flushed = subnormals() * 1.5f;
  EXPECT_EQ(flushed.count_nonzero().item<int64_t>(), 0);
  genfw::set_flush_denormals(false);
  auto kept = subnormals() * 1.5f;
  EXPECT_EQ(kept.count_nonzero().item<int64_t>(), kept.numel());
}

TEST_F(ProcessSettingsTest, NormalRangeResultsAreBitIdentical) {
  genfw::set_flush_denormals(false);
  auto reference = normal_range_work();
  genfw::set_flush_denormals(true);
  EXPECT_TRUE(torch::equal(normal_range_work(), reference));
}

TEST_F(ProcessSettingsTest, ThreadsAreTheShareOfTheUsableCores) {
  const int cores = genfw::usable_cores();
  ASSERT_GE(cores, 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  genfw::ProcessSettings requested;
  requested.keep_freed_memory = false;
  auto applied = genfw::apply_process_settings(requested);
  ::unsetenv("LOCAL_WORLD_SIZE");
  EXPECT_EQ(applied.threads, std::max(1, cores / 2));
  EXPECT_EQ(torch::get_num_threads(), applied.threads);
  EXPECT_TRUE(genfw::process_settings().flush_denormals);
  requested.threads = 1;
  EXPECT_EQ(genfw::apply_process_settings(requested).threads, 1);
}
