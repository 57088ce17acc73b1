#pragma once
/// Helpers for plugin tests: components are made through the real plugin
/// boundary (the host's registry loading the built .so files), never by linking
/// the plugin's sources into the test. Links the SDK and the genfw_testing
/// library; names nothing of the host.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "genfw/sdk.hpp"

namespace genfw::testing {

/// Loads the built-in plugins (the host's plugin folder) plus the plugins in
/// `own_dir` when it is another folder; once per process. Plugin tests call
/// it through plugins_folder() below.
GENFW_API void load_plugins(const std::string& own_dir);

/// The folder genfw_add_plugin builds this test's plugin into
/// (GENFW_TEST_PLUGIN_DIR), so the same test runs in the framework's tree and
/// against an installed SDK.
inline std::string plugins_folder() {
#ifdef GENFW_TEST_PLUGIN_DIR
  return GENFW_TEST_PLUGIN_DIR;
#else
  return "";
#endif
}

/// The manifest entry of a loaded component (an unknown name lists those that exist).
GENFW_API const ComponentInfo& find(const std::string& name, Kind kind, const std::string& own_dir);
inline const ComponentInfo& find(const std::string& name, Kind kind) { return find(name, kind, plugins_folder()); }

/// Makes component `name` of `kind` with its defaults and `overrides`.
GENFW_API std::unique_ptr<Component> make_component(Kind kind, const std::string& name,
                                                    const std::map<std::string, OptionValue>& overrides,
                                                    const BuildContext& context, const std::string& own_dir);
template <typename T>
std::unique_ptr<T> make(Kind kind, const std::string& name, const std::map<std::string, OptionValue>& overrides = {},
                        const BuildContext& context = {}) {
  std::unique_ptr<Component> made = make_component(kind, name, overrides, context, plugins_folder());
  T* typed = dynamic_cast<T*>(made.get());
  GENFW_CHECK(typed != nullptr, kind_name(kind), " '", name, "' does not implement the expected interface");
  made.release();
  return std::unique_ptr<T>(typed);
}

/// A BuildContext for data of the given sample shape and range.
GENFW_API BuildContext context_for(std::vector<int64_t> shape, double low = -1.0, double high = 1.0,
                                   int64_t num_classes = 0);

/// Runs `sampler` on `model` for `n` samples of `shape` as the framework does
/// (draw(): grad mode, shape check), from `x_init` when given, for `labels`,
/// recording steps into `records`, with a guidance `classifier`.
GENFW_API torch::Tensor run_sampler(Sampler& sampler, Model& model, int64_t n, std::vector<int64_t> shape,
                                    torch::Tensor x_init = {}, torch::Tensor labels = {},
                                    std::vector<StepRecord>* records = nullptr, double low = -1.0,
                                    double high = 1.0, Model* classifier = nullptr);

/// Runs `sampler` on `model` for samples [0, n) of `data` in batches of `batch_size` as the
/// pipeline does: each batch gets the noise of its own sample indices under `seed`, so the
/// result should not depend on `batch_size` beyond the rounding of batched kernels.
GENFW_API torch::Tensor sample_in_batches(Sampler& sampler, Model& model, int64_t n, int64_t batch_size,
                                          const DataInfo& data, uint64_t seed);

/// The largest |difference| between samples [0, n) drawn by sample_in_batches in batches
/// of 1, 7 and n, printed with `label`: kernel rounding alone for a sampler that treats
/// samples independently and takes all its noise from the context.
GENFW_API double batch_size_spread(Sampler& sampler, Model& model, int64_t n, const DataInfo& data,
                                   uint64_t seed, const std::string& label);
/// What batch_size_spread may be for float32 samplers of data of order 1–10: a few ulp
/// (1.2e-7 relative) from batched kernels (e.g. GEMM) that round differently for
/// different batch sizes. Measured: 0 for the samplers on analytic models, ≤ 9e-8 for
/// the prior sampler through VAE/GAN networks.
inline constexpr double kBatchSizeTolerance = 1e-6;

/// A feature service for a metric test's context ([features] defaults and
/// `overrides`), attached to it; keep it alive while the context is used.
GENFW_API std::unique_ptr<FeatureService> attach_features(MetricContext& context,
                                                          const std::map<std::string, OptionValue>& overrides = {});

/// Makes a flow non-trivial for tests of its bijection: `passes` training-mode log_prob
/// calls on x (data-dependent init such as actnorm's, batch-norm running statistics),
/// then every parameter perturbed by N(0, scale²) (zero-initialised last layers would
/// leave every step the identity); leaves the model in eval mode.
GENFW_API void perturb_density_model(Model& model, const torch::Tensor& x, double scale, int passes = 1);

/// log|det ∂f(x_i)/∂x_i| for each sample x_i of `x` [N, ...], from the full Jacobian of
/// f (one sample [1, ...] → [1, D], D = the sample's size) built row by row with
/// autograd: the independent reference for a flow's accumulated log-determinant.
GENFW_API torch::Tensor autograd_log_det(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                         const torch::Tensor& x);
/// The full Jacobian [D_out, D_in] of f at one sample x [1, ...] by autograd.
GENFW_API torch::Tensor autograd_jacobian(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                          const torch::Tensor& x);

/// Per-mode statistics of 2-D samples assigned to the nearest mean of `mixture`.
struct ModeStats {
  std::vector<double> weight;
  std::vector<torch::Tensor> mean, std;  // [2] each
};
GENFW_API ModeStats mode_stats(const GaussianMixture& mixture, const torch::Tensor& x);

}  // namespace genfw::testing

namespace genfw::testing {
/// Trains `model` with `objective` for `steps` steps of Adam (lr, one optimizer
/// per parameter group), batches from `next_batch`. Returns the mean of each
/// group's loss over the last 10% of steps. For tests; the runner's trainer
/// is the full version (warm-up, clipping, EMA, checkpoints).
GENFW_API std::map<std::string, double> fit(Model& model, Objective& objective,
                                            const std::function<Batch()>& next_batch, int64_t steps,
                                            double lr = 1e-3);

/// fit's optimizer settings beyond the learning rate.
struct FitOptions {
  double lr = 1e-3;
  std::vector<double> betas = {0.9, 0.999};  ///< Adam's (β1, β2)
  double ema_decay = 0.0;  ///< > 0: a weight average updated every step and copied into the model at the end
};
GENFW_API std::map<std::string, double> fit(Model& model, Objective& objective,
                                            const std::function<Batch()>& next_batch, int64_t steps,
                                            const FitOptions& options);
}  // namespace genfw::testing
