#include "genfw/large_block_cache.hpp"

#include <unistd.h>

#include <iterator>
#include <map>
#include <mutex>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include "torch_compat.hpp"

namespace genfw {
namespace {

constexpr size_t kLargeBlock = size_t(32) << 20;  // glibc's largest mmap threshold on 64-bit
constexpr size_t kGranule = size_t(2) << 20;

class LargeBlockCache final : public torch_compat::AllocatorBase {
 public:
  LargeBlockCache(c10::Allocator* small, size_t limit)
      : small_(small), small_deleter_(small->raw_deleter() ? small->raw_deleter() : &c10::free_cpu), limit_(limit) {}

  // Context = data, as raw_allocate() requires (oneDNN allocates through it).
  c10::DataPtr allocate_block(size_t n) const override {
    if (n < kLargeBlock) return small_->allocate(n);
    const size_t bytes = (n + kGranule - 1) / kGranule * kGranule;
    void* data = take(bytes);
    if (data == nullptr) {
      data = c10::alloc_cpu(bytes);
      std::lock_guard<std::mutex> lock(mutex_);
      live_[data] = bytes;
    }
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  LargeBlockCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  // Frees idle blocks, largest first, until they fit under the new limit.
  void set_limit(size_t limit) const {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = limit;
    while (stats_.cached_bytes > limit_) {
      auto largest = std::prev(idle_.end());
      stats_.cached_bytes -= largest->first;
      c10::free_cpu(largest->second);
      idle_.erase(largest);
    }
  }

  // A freed block: kept when it fits under the limit; small ones go back to LibTorch.
  void keep_or_free(void* data) const {
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = live_.find(data);
    if (it == live_.end()) {
      lock.unlock();
      small_deleter_(data);
      return;
    }
    const size_t bytes = it->second;
    live_.erase(it);
    if (stats_.cached_bytes + bytes > limit_) {
      c10::free_cpu(data);
      return;
    }
    idle_.emplace(bytes, data);
    stats_.cached_bytes += bytes;
  }

 private:
  static void release(void* data);

  // The smallest idle block that fits, unless it is more than 5/4 of the request.
  void* take(size_t bytes) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = idle_.lower_bound(bytes);
    if (it == idle_.end() || it->first > bytes + bytes / 4) {
      ++stats_.allocated;
      return nullptr;
    }
    void* data = it->second;
    live_[data] = it->first;
    stats_.cached_bytes -= it->first;
    idle_.erase(it);
    ++stats_.reused;
    return data;
  }

  c10::Allocator* small_;
  c10::DeleterFnPtr small_deleter_;
  mutable size_t limit_;
  mutable std::mutex mutex_;
  mutable std::multimap<size_t, void*> idle_;      // freed blocks by size
  mutable std::unordered_map<void*, size_t> live_;  // blocks in use, with their sizes
  mutable LargeBlockCacheStats stats_;
};

LargeBlockCache*& instance() {
  static LargeBlockCache* cache = nullptr;  // never destroyed: tensors may outlive static destructors
  return cache;
}

void LargeBlockCache::release(void* data) { instance()->keep_or_free(data); }

size_t quarter_of_physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? size_t(pages) * size_t(page) / 4 : size_t(1) << 30;
}

}  // namespace

void install_large_block_cache(size_t limit_bytes) {
  static std::once_flag once;
  std::call_once(once, [&] {
    instance() = new LargeBlockCache(c10::GetCPUAllocator(),
                                     limit_bytes > 0 ? limit_bytes : quarter_of_physical_memory());
    c10::SetCPUAllocator(instance(), /*priority=*/1);
  });
}

bool large_block_cache_installed() { return instance() != nullptr; }

LargeBlockCacheStats large_block_cache_stats() {
  return instance() ? instance()->stats() : LargeBlockCacheStats{};
}

void limit_large_block_cache(size_t limit_bytes) {
  if (instance()) instance()->set_limit(limit_bytes);
}

}  // namespace genfw
