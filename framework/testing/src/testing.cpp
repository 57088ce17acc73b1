#include "genfw/testing.hpp"

#include <filesystem>
#include <iostream>

#include "genfw/registry.hpp"

namespace genfw::testing {

namespace {
const Registry& plugins_with(const std::string& own_dir) {
  static const Registry registry = [&] {
    Registry r;
    std::string builtin = Registry::builtin_plugin_dir();
    r.load_directory(builtin);
    if (!own_dir.empty() && !std::filesystem::equivalent(own_dir, builtin)) r.load_directory(own_dir);
    return r;
  }();
  return registry;
}
}  // namespace

void load_plugins(const std::string& own_dir) { plugins_with(own_dir); }

const ComponentInfo& find(const std::string& name, Kind kind, const std::string& own_dir) {
  return plugins_with(own_dir).find(name, kind);
}

std::unique_ptr<Component> make_component(Kind kind, const std::string& name,
                                          const std::map<std::string, OptionValue>& overrides,
                                          const BuildContext& context, const std::string& own_dir) {
  const ComponentInfo& info = plugins_with(own_dir).find(name, kind);
  Options options = Options::with_defaults(info.schema, std::string(kind_name(kind)) + " '" + name + "'", overrides);
  return plugins_with(own_dir).create<Component>(name, kind, options, context);
}

BuildContext context_for(std::vector<int64_t> shape, double low, double high, int64_t num_classes) {
  BuildContext context;
  context.data.name = "test";
  context.data.shape = std::move(shape);
  context.data.low = low;
  context.data.high = high;
  context.data.num_classes = num_classes;
  return context;
}

torch::Tensor run_sampler(Sampler& sampler, Model& model, int64_t n, std::vector<int64_t> shape,
                          torch::Tensor x_init, torch::Tensor labels, std::vector<StepRecord>* records, double low,
                          double high, Model* classifier) {
  DataInfo data;
  data.shape = std::move(shape);
  data.low = low;
  data.high = high;
  SampleContext context = SampleContext::for_model(model, n, data);
  context.x_init = x_init;
  context.labels = labels;
  context.classifier = classifier;
  if (records != nullptr) context.on_step = [records](const StepRecord& r) { records->push_back(r); };
  return draw(sampler, context);
}

torch::Tensor sample_in_batches(Sampler& sampler, Model& model, int64_t n, int64_t batch_size,
                                const DataInfo& data, uint64_t seed) {
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < n; first += batch_size) {
    SampleContext context = SampleContext::for_model(model, std::min(batch_size, n - first), data);
    context.noise = SampleNoise(seed, first, context.num_samples);
    parts.push_back(draw(sampler, context));
  }
  return torch::cat(parts);
}

double batch_size_spread(Sampler& sampler, Model& model, int64_t n, const DataInfo& data, uint64_t seed,
                         const std::string& label) {
  const torch::Tensor whole = sample_in_batches(sampler, model, n, n, data, seed);
  double spread = 0.0;
  for (int64_t batch_size : {int64_t(1), int64_t(7)}) {
    const torch::Tensor batched = sample_in_batches(sampler, model, n, batch_size, data, seed);
    spread = std::max(spread, (batched - whole).abs().max().item<double>());
  }
  std::cout << label << ": largest difference between batch sizes 1, 7 and " << n << ": " << spread << "\n";
  return spread;
}

std::unique_ptr<FeatureService> attach_features(MetricContext& context,
                                                const std::map<std::string, OptionValue>& overrides) {
  const Options options =
      Options::with_defaults(metric::FeatureSettings::schema(), "[features]", overrides);
  auto service = std::make_unique<FeatureService>(metric::FeatureSettings::from_options(options), context);
  context.features = service.get();
  return service;
}

ModeStats mode_stats(const GaussianMixture& mixture, const torch::Tensor& x) {
  auto xd = x.to(torch::kFloat64).cpu();
  auto k = mixture.nearest_component(xd);
  ModeStats s;
  for (int64_t c = 0; c < mixture.means.size(0); ++c) {
    auto mask = k == c;
    auto xs = xd.index({mask});
    s.weight.push_back(mask.to(torch::kFloat64).mean().item<double>());
    s.mean.push_back(xs.mean(0));
    s.std.push_back(xs.std(0));
  }
  return s;
}

}  // namespace genfw::testing

namespace genfw::testing {

namespace {
class AdamContext : public TrainContext {
 public:
  AdamContext(Model& model, const FitOptions& options, int64_t total) : total_(total) {
    GENFW_CHECK(options.betas.size() == 2, "testing::fit: betas must have two values, got ", options.betas.size());
    for (auto& group : model.parameter_groups()) {
      optimizers_.emplace(group.name, std::make_unique<torch::optim::Adam>(
                                          group.parameters, torch::optim::AdamOptions(options.lr).betas(
                                                                {options.betas[0], options.betas[1]})));
    }
  }
  void update(const std::string& group, const torch::Tensor& loss) override {
    auto it = optimizers_.find(group);
    GENFW_CHECK(it != optimizers_.end(), "objective updated unknown parameter group '", group, "'");
    it->second->zero_grad();
    loss.backward();
    it->second->step();
    last_[group] = loss.item<double>();
  }
  void record(const std::string& name, const torch::Tensor& value) override {
    last_[name] = value.item<double>();
  }
  int64_t step() const override { return step_; }
  int64_t total_steps() const override { return total_; }
  torch::Device device() const override { return torch::kCPU; }

  int64_t step_ = 0;
  int64_t total_;
  std::map<std::string, double> last_;

 private:
  std::map<std::string, std::unique_ptr<torch::optim::Adam>> optimizers_;
};
}  // namespace

std::map<std::string, double> fit(Model& model, Objective& objective,
                                  const std::function<Batch()>& next_batch, int64_t steps, double lr) {
  FitOptions options;
  options.lr = lr;
  return fit(model, objective, next_batch, steps, options);
}

std::map<std::string, double> fit(Model& model, Objective& objective,
                                  const std::function<Batch()>& next_batch, int64_t steps,
                                  const FitOptions& options) {
  model.train();
  AdamContext context(model, options, steps);
  std::unique_ptr<Ema> ema = options.ema_decay > 0 ? std::make_unique<Ema>(model, options.ema_decay) : nullptr;
  std::map<std::string, double> sums;
  int64_t tail_start = steps - std::max<int64_t>(1, steps / 10), tail = 0;
  for (; context.step_ < steps; ++context.step_) {
    objective.train_step(model, next_batch(), context);
    if (ema) ema->update();
    if (context.step_ >= tail_start) {
      ++tail;
      for (const auto& [name, value] : context.last_) sums[name] += value;
    }
  }
  for (auto& [name, value] : sums) value /= tail;
  model.eval();
  if (ema) ema->copy_to(model);
  return sums;
}

void perturb_density_model(Model& model, const torch::Tensor& x, double scale, int passes) {
  auto* density = as<DensityModel>(model);
  GENFW_CHECK(density != nullptr, "perturb_density_model: the model offers no 'density'");
  model.train();
  for (int i = 0; i < passes; ++i) density->log_prob(x);
  torch::NoGradGuard guard;
  for (auto& p : model.parameters()) p.add_(scale * torch::randn_like(p));
  model.eval();
}

torch::Tensor autograd_jacobian(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x) {
  auto input = x.detach().clone().requires_grad_(true);
  auto output = f(input).reshape({-1});
  std::vector<torch::Tensor> rows;
  for (int64_t r = 0; r < output.size(0); ++r) {
    auto row = torch::autograd::grad({output[r]}, {input}, {}, /*retain_graph=*/true, false, /*allow_unused=*/true)[0];
    rows.push_back(row.defined() ? row.reshape({-1}) : torch::zeros({input.numel()}, input.options()));
  }
  return torch::stack(rows);
}

torch::Tensor autograd_log_det(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x) {
  std::vector<torch::Tensor> result;
  for (int64_t i = 0; i < x.size(0); ++i) {
    result.push_back(std::get<1>(torch::slogdet(autograd_jacobian(f, x.narrow(0, i, 1)))));
  }
  return torch::stack(result);
}

}  // namespace genfw::testing
