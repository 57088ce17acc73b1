#pragma once
/// Keeps the CPU tensors' large blocks in the process between steps.
///
/// glibc serves blocks above its mmap threshold (32 MiB at most on 64-bit) with
/// fresh mmaps and unmaps them when freed, so a model whose activations exceed it
/// (the paper-size DDPM U-Net on CIFAR-10 at batch 128) faults every page in
/// again each step: 80 s per step here instead of 24 s with every block on the
/// heap. Every block on the heap fragments it instead (the paper-size NCSN grew
/// past 23 GiB). This allocator sits in front of LibTorch's CPU allocator: blocks
/// of 32 MiB and more are rounded up to 2 MiB and, when freed, kept for the next
/// request of a size between theirs and 4/5 of theirs; smaller ones go straight
/// to LibTorch's allocator (glibc's heap, kept by the mallopt settings).
#include <cstddef>

#include "genfw/export.hpp"

namespace genfw {

struct LargeBlockCacheStats {
  size_t cached_bytes = 0;  ///< freed blocks kept for reuse
  size_t reused = 0;        ///< requests served from them
  size_t allocated = 0;     ///< requests that allocated a new large block
};

/// Makes the cache LibTorch's CPU allocator, keeping at most `limit_bytes` of
/// freed blocks (0: a quarter of the physical memory). Idempotent.
GENFW_API void install_large_block_cache(size_t limit_bytes = 0);
/// Whether install_large_block_cache() has run in this process.
GENFW_API bool large_block_cache_installed();
GENFW_API LargeBlockCacheStats large_block_cache_stats();
/// Keeps at most `limit_bytes` of freed blocks from now on (0: gives them all back).
GENFW_API void limit_large_block_cache(size_t limit_bytes);

}  // namespace genfw
