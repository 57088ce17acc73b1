#include <gtest/gtest.h>
#include <torch/script.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <sys/stat.h>

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

// The least-squares line of FID∞ recovers an exactly linear FID_N = 3 + 100/N.
TEST(FidInfinity, FitLineRecoversAnExactLine) {
  std::vector<double> x, y;
  for (int n : {500, 1000, 2000, 4000}) x.push_back(1.0 / n), y.push_back(3.0 + 100.0 / n);
  auto [intercept, slope] = genfw::metric::fit_line(x, y);
  EXPECT_NEAR(intercept, 3.0, 1e-9);
  EXPECT_NEAR(slope, 100.0, 1e-6);
}

// Samples and reference both N(0, I) in 32 dimensions: the true FID is 0, but
// FID at N = 2000 is biased upwards (≈ 0.15: the covariance estimate's spread
// lowers Tr √Σ̂). FID∞ removes the 1/N term: measured 0.007–0.047 over three
// seeds in an independent Python computation of the same procedure; the slope
// k ≈ N·FID_N (bias ∝ 1/N).
TEST(FidInfinity, RemovesTheOneOverNBias) {
  torch::manual_seed(0);
  const int64_t n = 2000, d = 32;
  auto samples = torch::randn({n, d}, torch::kFloat64);
  genfw::metric::GaussianStatistics reference{torch::zeros({d}, torch::kFloat64), torch::eye(d, torch::kFloat64), 1 << 30};
  const double fid_n = frechet_distance(gaussian_statistics(samples), reference).distance;
  auto fit = genfw::metric::fid_infinity(samples, reference, 15, 0.1, 0);
  EXPECT_GT(fid_n, 0.1);
  EXPECT_LT(std::abs(fit.value), fid_n / 3);
  EXPECT_GT(fit.slope, 0.5 * fid_n * n);
  EXPECT_LT(fit.slope, 1.5 * fid_n * n);
  ASSERT_EQ(fit.sizes.size(), 15u);
  EXPECT_EQ(fit.sizes.front(), 200);
  EXPECT_EQ(fit.sizes.back(), n);
  // The same seed gives the same subsets: FID∞ is reproducible.
  EXPECT_DOUBLE_EQ(genfw::metric::fid_infinity(samples, reference, 15, 0.1, 0).value, fit.value);
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
  EXPECT_EQ(r.provenance.at("reference_digest").rfind("sha256:", 0), 0u);
  // Same value and digest from the cached reference statistics.
  auto entries = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(cache + "/metric_reference")) n += e.path().extension() == ".pt";
    return n;
  };
  ASSERT_EQ(entries(), 1);
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
  EXPECT_EQ(b.provenance.at("extractor_digest").size(), std::string("sha256:").size() + 64);
  EXPECT_NE(a.provenance.at("reference_digest"), b.provenance.at("reference_digest"));
  // A missing module file is a clear error naming the option.
  EXPECT_THROW(genfw::testing::attach_features(context, {{"extractor", std::string("torchscript")}}), genfw::Error);
  std::filesystem::remove_all(cache);
}

namespace {
// A module with one parameter and one buffer and, when `digest` is not empty,
// the attributes tools/export_pytorch_fid.py records.
std::string save_module_with_digests(const std::string& path, const std::string& digest, const std::string& source) {
  torch::jit::Module m("m");
  m.register_parameter("w", torch::tensor({1.0f, 2.0f}), false);
  m.register_buffer("b", torch::tensor({int64_t(3)}));
  if (!digest.empty()) {
    m.register_attribute("genfw_parameters_sha256", c10::StringType::get(), c10::IValue(digest));
    m.register_attribute("genfw_source_weights_sha256", c10::StringType::get(), c10::IValue(source));
  }
  m.define("def forward(self, x):\n    return x.flatten(1) * self.w[0]\n");
  m.save(path);
  return path;
}
}  // namespace

// The parameter digest of an exported module is checked against the one its
// exporter recorded; weights from pytorch-fid's published file are named as
// such, anything else is flagged as not comparable with papers. The expected
// digest is Python hashlib's SHA-256 of "b\0int64\01\0"+int64(3) then
// "w\0float32\02\0"+float32(1, 2), the definition in tools/export_pytorch_fid.py.
TEST(FidPlugin, TorchScriptModuleIsVerifiedByItsParameterDigest) {
  torch::manual_seed(0);
  auto cache = temp_dir("verified");
  const std::string digest = "b49027e63395eab40cafb8c6f3f06e725163fc9493986ac26c8d01ba65d790dc";
  auto info = mt::vector_info("gauss3", 3);
  mt::TensorDataset train(info, torch::randn({100, 3})), test(info, torch::randn({500, 3}));
  auto context = vector_context(train, test, cache);
  context.samples = torch::randn({500, 3});
  auto fid = genfw::testing::make<Metric>(Kind::metric, "fid");
  auto score = [&](const std::string& path) {
    auto features = genfw::testing::attach_features(
        context, {{"extractor", std::string("torchscript")}, {"torchscript_path", path},
                  {"input_range", std::vector<double>{-1e3, 1e3}}});
    return fid->compute(context).provenance;
  };
  auto published = score(save_module_with_digests(cache + "/published.pt", digest, "6726825d" + std::string(56, '0')));
  EXPECT_EQ(published.at("extractor_parameters_sha256"), digest);
  EXPECT_EQ(published.at("extractor_verified").rfind("pytorch-fid FID Inception-v3", 0), 0u);
  auto other = score(save_module_with_digests(cache + "/other.pt", digest, std::string(64, 'a')));
  EXPECT_EQ(other.at("extractor_verified").rfind("no: its weights", 0), 0u);
  auto unlabelled = score(save_module_with_digests(cache + "/plain.pt", "", ""));
  EXPECT_EQ(unlabelled.at("extractor_verified").rfind("no: it carries no genfw export digests", 0), 0u);
  const std::string altered = save_module_with_digests(cache + "/altered.pt", std::string(64, '0'), "6726825d");
  try {
    score(altered);
    ADD_FAILURE() << "a module whose parameters do not match its recorded digest must be refused";
  } catch (const genfw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("altered or damaged"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(cache);
}

// The preprocessing of images for a TorchScript extractor, checked against a
// computation by hand: 8-bit rounding, the data range [0, 1] mapped to
// [-1, 1], grayscale repeated to RGB, bilinear resize 2×2 → 4×4 with
// align_corners = false (pytorch-fid's F.interpolate): each output row is
// [a, ¾a+¼b, ¼a+¾b, b] of an input row [a, b], and the same down the columns.
TEST(FidPlugin, TorchScriptPreprocessingMatchesPytorchFid) {
  auto cache = temp_dir("preprocessing");
  const std::string path = cache + "/identity.pt";
  {
    torch::jit::Module m("m");
    m.define("def forward(self, x):\n    return x.flatten(1)\n");
    m.save(path);
  }
  DataInfo info = mt::image_info("tiny", 2, 2);
  info.low = 0.0;
  info.high = 1.0;
  MetricContext context;
  context.data = info;
  metric::ExtractorConfig config;
  config.kind = "torchscript";
  config.torchscript_path = path;
  config.resize = 4;
  config.grayscale_to_rgb = true;
  config.input_range = {-1.0, 1.0};
  auto extractor = metric::make_extractor(config, context);
  auto image = torch::tensor({0.2f, 0.6f, 1.0f, 0.0f}).reshape({1, 1, 2, 2});
  auto features = extractor->extract_batch(image).features.reshape({1, 3, 4, 4});
  // 8 bits: round(0.2·255) = 51, round(0.6·255) = 153; then [0, 1] → [-1, 1].
  auto unit = [](double v) { return std::round(v * 255.0) / 255.0 * 2.0 - 1.0; };
  const double a = unit(0.2), b = unit(0.6), c = unit(1.0), d = unit(0.0);
  auto row = [](double x, double y) { return std::vector<double>{x, 0.75 * x + 0.25 * y, 0.25 * x + 0.75 * y, y}; };
  auto top = row(a, b), bottom = row(c, d);
  for (int64_t channel = 0; channel < 3; ++channel) {
    for (int64_t j = 0; j < 4; ++j) {
      auto column = row(top[size_t(j)], bottom[size_t(j)]);
      for (int64_t i = 0; i < 4; ++i) {
        EXPECT_NEAR(features[0][channel][i][j].item<double>(), column[size_t(i)], 1e-6) << channel << "," << i << "," << j;
      }
    }
  }
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

namespace {
// The identity features, slowly, counting how many examples it extracted.
class CountingExtractor : public metric::FeatureExtractor {
 public:
  CountingExtractor() {
    name = "counting";
    digest = "0";
    preprocessing = "none";
  }
  metric::Extracted extract_batch(const torch::Tensor& x) override {
    extracted += x.size(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return {x.flatten(1), {}};
  }
  bool has_probabilities() const override { return false; }
  std::atomic<int64_t> extracted{0};
};
}  // namespace

// Two runners needing one reference at once (two threads, each with its own
// descriptor of the lock file, as two processes have): one computes it, the
// other waits on the lock and loads what the first wrote.
TEST(FidPlugin, ConcurrentReferenceIsComputedOnce) {
  torch::manual_seed(0);
  auto info = mt::vector_info("gauss2", 2);
  auto cache = temp_dir("concurrent");
  mt::TensorDataset train(info, torch::randn({10, 2})), test(info, torch::randn({400, 2}));
  auto context = vector_context(train, test, cache);
  CountingExtractor extractor;
  metric::ReferenceFeatures a, b;
  std::thread first([&] { a = metric::reference_features(extractor, context, "test", 400, 50); });
  std::thread second([&] { b = metric::reference_features(extractor, context, "test", 400, 50); });
  first.join();
  second.join();
  EXPECT_EQ(extractor.extracted.load(), 400);
  EXPECT_NE(a.loaded_from_cache, b.loaded_from_cache);
  EXPECT_EQ(a.digest, b.digest);
  std::filesystem::remove_all(cache);
}

// An outside module's output is checked before anything is scored (before: [2N, F] or
// int64 features were scored, kid = -1.1e9, the run "completed"); a FIFO named as the
// module is refused instead of blocking the run.
TEST(FidPlugin, TorchScriptOutputsOfTheWrongShapeOrTypeAreRefused) {
  torch::manual_seed(0);
  auto cache = temp_dir("bad_outputs");
  auto info = mt::vector_info("gauss3", 3);
  mt::TensorDataset train(info, torch::randn({100, 3})), test(info, torch::randn({200, 3}));
  auto context = vector_context(train, test, cache);
  context.samples = torch::randn({200, 3});
  auto fid = genfw::testing::make<Metric>(Kind::metric, "fid");
  auto message_of = [&](const std::string& name, const std::string& body) {
    const std::string path = cache + "/" + name + ".pt";
    torch::jit::Module m("m");
    m.define("def forward(self, x):\n    return " + body + "\n");
    m.save(path);
    try {
      auto features = genfw::testing::attach_features(
          context, {{"extractor", std::string("torchscript")}, {"torchscript_path", path},
                    {"input_range", std::vector<double>{-1e3, 1e3}}});
      fid->compute(context);
    } catch (const genfw::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of("doubled", "torch.cat([x, x], 0)").find("expected"), std::string::npos);
  EXPECT_NE(message_of("doubled", "torch.cat([x, x], 0)").find("rows, one per input"), std::string::npos);
  EXPECT_NE(message_of("integers", "x.long()").find("expected floating-point values"), std::string::npos);
  EXPECT_NE(message_of("nan", "x * float('nan')").find("NaN or infinite"), std::string::npos);
  const std::string fifo = cache + "/fifo.pt";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    auto features =
        genfw::testing::attach_features(context, {{"extractor", std::string("torchscript")}, {"torchscript_path", fifo}});
    fid->compute(context);  // the extractor is built when first asked for
    ADD_FAILURE() << "a FIFO must be refused";
  } catch (const genfw::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not a regular file"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(cache);
}
