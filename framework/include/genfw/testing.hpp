#pragma once
/// Helpers for plugin tests: components are made through the real plugin
/// boundary (the registry loading the built .so files), never by linking the
/// plugin's sources into the test.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "genfw/registry.hpp"
#include "genfw/sdk.hpp"

namespace genfw::testing {

/// The built-in plugins (Registry::builtin_plugin_dir()) plus the plugins in
/// `own_dir` when it is another folder; loaded once per process.
GENFW_API const Registry& plugins_with(const std::string& own_dir);

/// The registry a plugin's test uses: the built-ins plus the folder that
/// genfw_add_plugin builds this test's plugin into (GENFW_TEST_PLUGIN_DIR), so
/// the same test runs in the framework's tree and against an installed SDK.
inline const Registry& plugins() {
#ifdef GENFW_TEST_PLUGIN_DIR
  return plugins_with(GENFW_TEST_PLUGIN_DIR);
#else
  return plugins_with("");
#endif
}

/// Makes component `name` of `kind` with its defaults and `overrides`.
template <typename T>
std::unique_ptr<T> make(Kind kind, const std::string& name,
                        const std::map<std::string, OptionValue>& overrides = {},
                        const BuildContext& context = {}) {
  const ComponentInfo& info = plugins().find(name, kind);
  Options options = Options::with_defaults(info.schema, std::string(kind_name(kind)) + " '" + name + "'",
                                           overrides);
  return plugins().create<T>(name, kind, options, context);
}

/// A BuildContext for data of the given sample shape and range.
GENFW_API BuildContext context_for(std::vector<int64_t> shape, double low = -1.0, double high = 1.0,
                                   int64_t num_classes = 0);

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
