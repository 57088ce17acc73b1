#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>

#include "genfw/testing.hpp"

#include "frechet.hpp"
#include "../../../data/fixtures/metric_datasets.hpp"

using namespace genfw;
using genfw::metric::frechet_distance;
using genfw::metric::gaussian_statistics;
namespace mt = genfw::metric::testing;

namespace {
torch::Tensor t2(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }
torch::Tensor m2(double a, double b, double c, double d) {
  return torch::tensor({a, b, c, d}, torch::kFloat64).view({2, 2});
}
std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("genfw_fid_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}
}  // namespace

// N(0, I₂) vs N((1,1), 4I₂): 2 + 2 + 8 − 2·Tr(2I) = 4 exactly.
TEST(Frechet, ClosedFormIsotropic) {
  torch::manual_seed(0);
  auto r = frechet_distance(t2({0, 0}), torch::eye(2, torch::kFloat64), t2({1, 1}),
                            4 * torch::eye(2, torch::kFloat64));
  EXPECT_NEAR(r.distance, 4.0, 1e-10);
  EXPECT_FALSE(r.used_offset);
}

TEST(Frechet, ClosedFormCorrelated) {
  torch::manual_seed(0);
  auto r = frechet_distance(t2({0, 0}), m2(1, .5, .5, 2), t2({1, -1}), m2(2, 0, 0, 1));
  EXPECT_NEAR(r.distance, 2.4352331992170795, 1e-10);
}

// Independent reference for 2×2 SPD matrices: Tr((AB)^½) = √(Tr(AB) + 2√det(AB))
// (the two eigenvalues of AB are positive, sum Tr, product det).
TEST(Frechet, MatchesTwoByTwoTraceIdentity) {
  torch::manual_seed(0);
  for (int i = 0; i < 20; ++i) {
    auto a = torch::randn({2, 2}, torch::kFloat64), b = torch::randn({2, 2}, torch::kFloat64);
    auto s1 = a.mm(a.t()) + 0.1 * torch::eye(2, torch::kFloat64);
    auto s2 = b.mm(b.t()) + 0.1 * torch::eye(2, torch::kFloat64);
    auto mu1 = torch::randn({2}, torch::kFloat64), mu2 = torch::randn({2}, torch::kFloat64);
    auto p = s1.mm(s2);
    double tr_sqrt = std::sqrt(p.trace().item<double>() + 2 * std::sqrt(p.det().item<double>()));
    double expected = (mu1 - mu2).square().sum().item<double>() + s1.trace().item<double>() +
                      s2.trace().item<double>() - 2 * tr_sqrt;
    EXPECT_NEAR(frechet_distance(mu1, s1, mu2, s2).distance, expected, 1e-9 * (1 + std::abs(expected)));
  }
}

// From 200k samples each the estimate of 4 has a sampling std of ~0.015
// (dominated by 2(μ₁−μ₂)·δμ with Var δμ = 5/n per coordinate): tolerance 0.06.
TEST(Frechet, LargeSamplesApproachClosedForm) {
  torch::manual_seed(0);
  const int64_t n = 200000;
  auto x = torch::randn({n, 2}, torch::kFloat64);
  auto y = 1.0 + 2.0 * torch::randn({n, 2}, torch::kFloat64);
  auto r = frechet_distance(gaussian_statistics(x), gaussian_statistics(y));
  EXPECT_NEAR(r.distance, 4.0, 0.06);
}

TEST(Frechet, SameFeaturesGiveZero) {
  torch::manual_seed(0);
  auto f = torch::randn({500, 16}) * torch::linspace(0.1, 3.0, 16);
  auto s = gaussian_statistics(f);
  EXPECT_NEAR(frechet_distance(s, s).distance, 0.0, 1e-6);
}

TEST(Frechet, CovarianceUsesNMinusOne) {
  auto s = gaussian_statistics(torch::tensor({0.0, 2.0}, torch::kFloat64).view({2, 1}));
  EXPECT_DOUBLE_EQ(s.covariance.item<double>(), 2.0);  // ((−1)² + 1²)/(2−1)
}

// 10 feature vectors in 64 dimensions: both covariances have rank ≤ 9. The
// symmetric eigh route needs no offset for PSD singular matrices; the answer is
// finite and close to the distance with εI added explicitly (pytorch-fid's
// fallback), which differs by O(√ε) per null direction: 64·2·√1e-6 ≈ 0.13 at
// most; we observed 2e-4 and assert 1e-2 on a value of ~120.
TEST(Frechet, RankDeficientCovariancesStayFinite) {
  torch::manual_seed(0);
  auto a = gaussian_statistics(torch::randn({10, 64}));
  auto b = gaussian_statistics(torch::randn({10, 64}) + 0.5);
  auto r = frechet_distance(a, b);
  ASSERT_TRUE(std::isfinite(r.distance));
  EXPECT_GT(r.distance, 0.0);
  auto eps = 1e-6 * torch::eye(64, torch::kFloat64);
  auto with_offset = frechet_distance(a.mean, a.covariance + eps, b.mean, b.covariance + eps);
  EXPECT_FALSE(r.used_offset);
  EXPECT_NEAR(r.distance, with_offset.distance, 1e-2);
}

// A covariance with a small negative eigenvalue (−1e−7, like float32 rounding)
// triggers the εI = 1e−6 fallback, which gives a finite value close to the
// clamped one; a clearly indefinite "covariance" is an error.
TEST(Frechet, OffsetFallbackAndInvalidInput) {
  torch::manual_seed(0);
  auto nearly = m2(1.0, 0.0, 0.0, -1e-7);
  auto r = frechet_distance(t2({0, 0}), nearly, t2({0, 0}), torch::eye(2, torch::kFloat64));
  EXPECT_TRUE(r.used_offset);
  // Clamped reference: Σ₁ = diag(1, 0) vs I: 1 + 2 − 2·(1 + 0) = 1.
  EXPECT_NEAR(r.distance, 1.0, 1e-2);
  EXPECT_THROW(frechet_distance(t2({0, 0}), m2(1, 0, 0, -1), t2({0, 0}), torch::eye(2, torch::kFloat64)),
               genfw::Error);
  EXPECT_THROW(frechet_distance(t2({0, 0}), m2(1, 0, 0, NAN), t2({0, 0}), torch::eye(2, torch::kFloat64)),
               genfw::Error);
}

namespace {
MetricContext vector_context(mt::TensorDataset& train, mt::TensorDataset& test, const std::string& cache) {
  MetricContext c;
  c.data = test.info();
  c.train_data = &train;
  c.test_data = &test;
  c.cache_dir = cache;
  return c;
}
}  // namespace

// The plugin end to end on 2-D data (identity extractor): test split N(0, I),
// samples N((1,1), 4I), 10 000 each: the closed form 4 within sampling error
// (std ≈ 0.07 at n = 10⁴): tolerance 0.3. Reference statistics are cached.
TEST(FidPlugin, VectorDataMatchesClosedForm) {
  torch::manual_seed(0);
  auto info = mt::vector_info("gauss2", 2);
  mt::TensorDataset train(info, torch::randn({100, 2})), test(info, torch::randn({10000, 2}));
  auto cache = temp_dir("vector");
  auto context = vector_context(train, test, cache);
  context.samples = 1.0 + 2.0 * torch::randn({10000, 2});
  auto fid = genfw::testing::make<Metric>(Kind::metric, "fid", {}, genfw::testing::context_for({2}));
  auto features = genfw::testing::attach_features(context);
  auto r = fid->compute(context);
  EXPECT_NEAR(r.values.at("fid"), 4.0, 0.3);
  EXPECT_EQ(r.provenance.at("extractor"), "identity");
  EXPECT_EQ(r.provenance.at("reference_split"), "test");
  EXPECT_EQ(r.provenance.at("reference_count"), "10000 of 10000");
  EXPECT_EQ(r.provenance.at("samples"), "10000");
  EXPECT_EQ(r.provenance.at("reference_digest").rfind("fnv1a64:", 0), 0u);
  // Same value and digest from the cached reference statistics.
  ASSERT_EQ(std::distance(std::filesystem::directory_iterator(cache + "/metric_reference"),
                          std::filesystem::directory_iterator{}), 1);
  features = genfw::testing::attach_features(context);  // a new run's service: reference from the cache
  auto again = fid->compute(context);
  EXPECT_DOUBLE_EQ(again.values.at("fid"), r.values.at("fid"));
  EXPECT_EQ(again.provenance.at("reference_digest"), r.provenance.at("reference_digest"));
  // Samples equal to the reference: 0.
  context.samples = test.get(torch::arange(10000)).x;
  EXPECT_NEAR(fid->compute(context).values.at("fid"), 0.0, 1e-6);
  std::filesystem::remove_all(cache);
}

// TorchScript extractor with a module the test makes: features = 2·x, so the
// FID is exactly 4× the identity FID of the same sets (Fréchet distance is
// quadratic in a common scaling).
TEST(FidPlugin, TorchScriptExtractor) {
  torch::manual_seed(0);
  auto cache = temp_dir("torchscript");
  const std::string path = cache + "/double.pt";
  {
    torch::jit::Module m("m");
    m.define(R"(
def forward(self, x):
    return x.flatten(1) * 2.0
)");
    m.save(path);
  }
  auto info = mt::vector_info("gauss3", 3);
  mt::TensorDataset train(info, torch::randn({100, 3})), test(info, torch::randn({2000, 3}));
  auto context = vector_context(train, test, cache);
  context.samples = 0.5 + torch::randn({2000, 3}) * 1.5;
  auto fid = genfw::testing::make<Metric>(Kind::metric, "fid");
  auto identity = genfw::testing::attach_features(context, {{"extractor", std::string("identity")}});
  auto a = fid->compute(context);
  auto scripted = genfw::testing::attach_features(
      context, {{"extractor", std::string("torchscript")}, {"torchscript_path", path},
                {"input_range", std::vector<double>{-1e3, 1e3}}});  // = the data range: no rescaling
  auto b = fid->compute(context);
  EXPECT_NEAR(b.values.at("fid"), 4.0 * a.values.at("fid"), 1e-6 * (1 + a.values.at("fid")));
  EXPECT_EQ(b.provenance.at("extractor"), "torchscript(double.pt)");
  EXPECT_EQ(b.provenance.at("extractor_digest").size(), std::string("fnv1a64:").size() + 16);
  EXPECT_NE(a.provenance.at("reference_digest"), b.provenance.at("reference_digest"));
  // A missing module file is a clear error naming the option.
  EXPECT_THROW(genfw::testing::attach_features(context, {{"extractor", std::string("torchscript")}}), genfw::Error);
  std::filesystem::remove_all(cache);
}

// The reference cache is keyed by the data read, not by the dataset's name: two
// test splits named alike but drawn from N(0, I) and N((3, 3), I), scored one
// after the other with one cache folder. Samples from the second: FID ≈ 0 against
// its own reference (it was ≈ 18 when the first one's cached reference was reused).
TEST(FidPlugin, ReferenceCacheIsKeyedByTheDataNotItsName) {
  torch::manual_seed(0);
  auto info = mt::vector_info("gauss2", 2);
  auto cache = temp_dir("keyed");
  mt::TensorDataset train(info, torch::randn({100, 2}));
  mt::TensorDataset first(info, torch::randn({3000, 2})), second(info, torch::randn({3000, 2}) + 3.0);
  auto fid = genfw::testing::make<Metric>(Kind::metric, "fid");
  auto context = vector_context(train, first, cache);
  context.samples = torch::randn({3000, 2}) + 3.0;
  auto features = genfw::testing::attach_features(context);
  EXPECT_GT(fid->compute(context).values.at("fid"), 15.0);
  auto other = vector_context(train, second, cache);
  other.samples = context.samples;
  auto other_features = genfw::testing::attach_features(other);
  EXPECT_LT(fid->compute(other).values.at("fid"), 0.1);
  std::filesystem::remove_all(cache);
}
