// The large-block cache keeps freed CPU blocks of 32 MiB and more for the next
// request of a similar size, and never keeps more than its limit.
#include <gtest/gtest.h>

#include <genfw/large_block_cache.hpp>
#include <torch/torch.h>

namespace {

constexpr int64_t kMiB = 1 << 20;

torch::Tensor bytes_of(int64_t mib) { return torch::empty({mib * kMiB / 4}, torch::kFloat32); }

}  // namespace

TEST(LargeBlockCache, ReusesAFreedBlockOfASimilarSize) {
  genfw::install_large_block_cache();
  genfw::limit_large_block_cache(0);
  genfw::limit_large_block_cache(size_t(512) * kMiB);
  const auto before = genfw::large_block_cache_stats();
  void* first = nullptr;
  {
    auto t = bytes_of(40);
    first = t.data_ptr();
    t.fill_(2.0f);
  }
  EXPECT_EQ(genfw::large_block_cache_stats().cached_bytes, size_t(40) * kMiB);
  {
    auto t = bytes_of(36);  // 40 MiB is within 5/4 of 36 MiB: the same block
    EXPECT_EQ(t.data_ptr(), first);
    t.fill_(3.0f);
    EXPECT_EQ(t.sum().item<double>(), 3.0 * double(t.numel()));  // usable like any tensor
    auto larger = bytes_of(100);  // nothing idle fits: a new block
    EXPECT_NE(larger.data_ptr(), first);
    auto small = bytes_of(8);  // below 32 MiB: LibTorch's allocator
  }
  const auto after = genfw::large_block_cache_stats();
  EXPECT_EQ(after.reused - before.reused, 1u);
  EXPECT_EQ(after.allocated - before.allocated, 2u);
  EXPECT_EQ(after.cached_bytes, size_t(140) * kMiB);
  {
    auto t = bytes_of(76);  // 100 MiB is more than 5/4 of 76 MiB, 40 MiB too small: a new block
    EXPECT_EQ(genfw::large_block_cache_stats().allocated - after.allocated, 1u);
  }
  genfw::limit_large_block_cache(0);
}

TEST(LargeBlockCache, KeepsNoMoreThanItsLimit) {
  genfw::install_large_block_cache();
  genfw::limit_large_block_cache(0);
  genfw::limit_large_block_cache(size_t(100) * kMiB);
  {
    auto a = bytes_of(40), b = bytes_of(48), c = bytes_of(56);
  }  // freed c, b, a in turn: 56 kept, 48 would pass the limit (freed), 40 kept
  EXPECT_EQ(genfw::large_block_cache_stats().cached_bytes, size_t(96) * kMiB);
  genfw::limit_large_block_cache(size_t(45) * kMiB);  // trims, largest first
  EXPECT_EQ(genfw::large_block_cache_stats().cached_bytes, size_t(40) * kMiB);
  genfw::limit_large_block_cache(0);
  EXPECT_EQ(genfw::large_block_cache_stats().cached_bytes, 0u);
  EXPECT_TRUE(genfw::large_block_cache_installed());
}
