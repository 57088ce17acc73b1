#pragma once
/// Counter-based noise per sample: the noise sample i sees is a function of
/// (seed, i, draw, element) only, so it is bit-identical whatever the batch
/// size, the split of the indices over processes, or the device.
#include <array>
#include <cstdint>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

/// Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as
/// 1, 2, 3", §4.2): ten rounds of the bijection keyed by `key`, applied to
/// `counter`. Matches Random123's known-answer vectors.
GENFW_API PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

/// The noise streams of the samples [first, first + count) of a run.
///
/// Each call (a "draw") advances a counter shared by the streams, so the k-th
/// draw of sample i is fixed by (seed, i, k). Element e of that draw comes from
/// block b = e / 2 of Philox4x32-10 with
///   key     = (seed mod 2³², seed / 2³²)
///   counter = (b, k, i mod 2³², i / 2³²)
/// whose four words w0..w3 make two 53-bit uniforms in [0, 1)
///   a = ((w0·2³² + w1) >> 11)·2⁻⁵³,  b = ((w2·2³² + w3) >> 11)·2⁻⁵³.
/// uniform(): element 2b = a, 2b + 1 = b.
/// normal(): Box–Muller with r = √(−2 ln(1 − a)) (1 − a ∈ (0, 1]),
///   element 2b = r·cos(2π b), element 2b + 1 = r·sin(2π b).
/// An odd element count drops the last value of the last block.
/// Values are computed in float64 on the CPU, then cast to the dtype asked for
/// and moved to its device, so float32 noise is the float64 noise rounded.
class GENFW_API SampleNoise {
 public:
  /// No samples (a placeholder until a context gets its stream).
  SampleNoise() = default;
  SampleNoise(uint64_t seed, int64_t first, int64_t count);
  /// Samples [0, count) with a seed drawn from torch's global generator, so
  /// code that seeds torch (tests, scripts) gets repeatable streams. The
  /// pipeline keys its streams by the run seed instead.
  static SampleNoise seeded_by_torch(int64_t count);

  /// Standard normal noise [count, sample_shape...] (dtype float32 unless `options` say otherwise).
  torch::Tensor normal(at::IntArrayRef sample_shape, const torch::TensorOptions& options = {});
  /// normal() shaped, typed and placed like `x` [count, ...].
  torch::Tensor normal_like(const torch::Tensor& x);
  /// Uniform noise in [0, 1) [count, sample_shape...].
  torch::Tensor uniform(at::IntArrayRef sample_shape, const torch::TensorOptions& options = {});

  uint64_t seed() const { return seed_; }
  int64_t first() const { return first_; }
  int64_t count() const { return count_; }
  /// Draws made so far (the index the next draw gets).
  uint32_t draws() const { return draws_; }

 private:
  enum class Distribution { normal, uniform };
  torch::Tensor next(at::IntArrayRef sample_shape, const torch::TensorOptions& options, Distribution distribution);

  uint64_t seed_ = 0;
  int64_t first_ = 0;
  int64_t count_ = 0;
  uint32_t draws_ = 0;
};

}  // namespace genfw
