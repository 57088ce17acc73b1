// The reference set of sample-quality metrics (genfw/features.hpp): features
// of the real data and their Gaussian statistics, cached.
#include "genfw/artefact_cache.hpp"
#include "genfw/evenly_strided.hpp"
#include "genfw/digest.hpp"
#include "genfw/error.hpp"
#include "genfw/features.hpp"
#include "image_codes.hpp"

namespace genfw::metric {

GaussianStatistics gaussian_statistics(const torch::Tensor& features) {
  GENFW_CHECK(features.dim() == 2, "gaussian_statistics: features must be [N, F], got ", features.sizes());
  GENFW_CHECK(features.size(0) >= 2, "gaussian_statistics: need at least 2 feature vectors, got ",
              features.size(0));
  auto f = features.to(torch::kFloat64);
  auto mean = f.mean(0);
  auto centred = f - mean;
  auto covariance = centred.t().mm(centred) / double(f.size(0) - 1);
  return {mean, covariance, f.size(0)};
}

/// Features of min(max_reference, |split|) examples of the split (evenly
/// strided indices, so class-ordered files are covered), their μ and Σ; cached
/// under cache_dir/metric_reference keyed by dataset, split, extractor digest,
/// pre-processing and count.
ReferenceFeatures reference_features(FeatureExtractor& extractor, const MetricContext& context,
                                            const std::string& split, int64_t max_reference,
                                            int64_t batch_size) {
  Dataset* dataset = split == "train" ? context.train_data : context.test_data;
  GENFW_CHECK(dataset != nullptr, "metric: option 'reference_split' = \"", split,
              "\" but the metric context has no ", split, " split");
  ReferenceFeatures ref;
  ref.split = split;
  ref.split_size = dataset->size();
  ref.count = std::min(max_reference, ref.split_size);
  GENFW_CHECK(ref.count >= 2, "metric: the ", split, " split has fewer than 2 examples");
  // The examples are read first: the cache key is a digest of what was read
  // (and of the extractor), never of names that two different datasets share.
  auto indices = evenly_strided_indices(ref.count, ref.split_size);
  std::vector<torch::Tensor> examples;
  ContentDigest content;
  for (int64_t start = 0; start < ref.count; start += batch_size) {
    examples.push_back(dataset->get(indices.slice(0, start, std::min(ref.count, start + batch_size))).x);
    // Images as their 8-bit codes: the extractor scores them so, whatever their range.
    const DataInfo& info = context.data;
    content.tensor(info.is_image() ? image_codes(examples.back(), info.low, info.high).to(torch::kUInt8)
                                   : examples.back());
  }
  CacheKey key("metric_reference");
  key.add("data", context.data.name)
      .add("split", split)
      .add("count", ref.count)
      .add("examples", content.hex())
      .add("extractor", extractor.name)
      .add("extractor_digest", extractor.digest)
      .add("preprocessing", extractor.preprocessing);
  CachedArtefact entry(context.cache_dir, "reference-" + context.data.name + "-" + split, key);
  if (entry.cached()) {
    torch::serialize::InputArchive archive;
    entry.load(archive);
    archive.read("features", ref.features);
    archive.read("mean", ref.statistics.mean);
    archive.read("covariance", ref.statistics.covariance);
    ref.statistics.count = ref.features.size(0);
    ref.loaded_from_cache = true;
  } else {
    std::vector<torch::Tensor> parts;
    for (const auto& x : examples) parts.push_back(extractor.extract(x, context.device, batch_size).features);
    ref.features = torch::cat(parts);
    ref.statistics = gaussian_statistics(ref.features);
    torch::serialize::OutputArchive archive;
    archive.write("features", ref.features);
    archive.write("mean", ref.statistics.mean);
    archive.write("covariance", ref.statistics.covariance);
    entry.save(archive);
  }
  ref.digest = ContentDigest().tensor(ref.statistics.mean).tensor(ref.statistics.covariance).hex();
  return ref;
}

}  // namespace genfw::metric
