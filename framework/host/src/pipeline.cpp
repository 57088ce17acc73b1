// The pipeline's single-process stages: resolve → build → train → sample →
// evaluate, each returning its values. What ranks agree on is the
// RankCoordinator's, what goes into the run file the RunRecorder's, and run()
// (pipeline_run.cpp) strings the stages into a run folder.
#include "genfw/pipeline.hpp"
#include "genfw/evenly_strided.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>

#include "genfw/cache.hpp"
#include "genfw/distributed.hpp"
#include "genfw/precision.hpp"
#include "genfw/progress.hpp"
#include "genfw/rank_coordinator.hpp"
#include "genfw/registry.hpp"
#include "genfw/run.hpp"
#include "genfw/run_file_guard.hpp"
#include "genfw/run_log.hpp"
#include "genfw/run_recorder.hpp"
#include "toml_text.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

using StageClock = std::chrono::steady_clock;

double seconds_since(StageClock::time_point start) {
  return std::chrono::duration<double>(StageClock::now() - start).count();
}

template <typename T>
Built<T> build(const Registry& registry, const ComponentConfig& component, const BuildContext& context) {
  Built<T> built;
  built.info = &registry.find(component.plugin, component.kind);
  built.object = call_plugin(*built.info, "its constructor", [&] {
    return registry.create<T>(component.plugin, component.kind, component.options, context);
  });
  return built;
}

// [sampler] x_init: FILE.h5:/dataset or FILE.pt, at least `total` points of the data's shape.
torch::Tensor load_x_init(const std::string& spec, int64_t total, const DataInfo& data) {
  const std::string owner = "[sampler] x_init = \"" + spec + "\"";
  const auto h5 = spec.find(".h5:");
  const std::string path = h5 == std::string::npos ? spec : spec.substr(0, h5 + 3);
  GENFW_CHECK(fs::exists(path), owner, ": file ", path, " does not exist");
  torch::Tensor x;
  try {
    if (h5 != std::string::npos) {
      check_run_file_readable(path);
      x = RunLog::open(path, false).read_tensor(spec.substr(h5 + 4));
    } else {
      torch::load(x, path);
    }
  } catch (const std::exception& e) {
    throw Error(owner + ": cannot read a tensor from it (expected FILE.h5:/dataset or a FILE.pt written by "
                "torch::save): " + e.what());
  }
  GENFW_CHECK(x.dim() == 1 + int64_t(data.shape.size()) && x.size(0) >= total &&
                  std::equal(data.shape.begin(), data.shape.end(), x.sizes().begin() + 1),
              owner, ": expected at least ", total, " points of shape ", c10::IntArrayRef(data.shape),
              " (num_samples = ", total, "), got a tensor of shape ", x.sizes());
  return x.slice(0, 0, total).to(torch::kFloat32);
}

// The classes samples are drawn for: 0, 1, ..., C−1, 0, ... over the whole
// sample set (not per batch), for a class-conditional model or a guided one.
torch::Tensor requested_labels(const Components& c, int64_t total) {
  int64_t classes = 0;
  if (auto* conditional = as<NoisePredictor>(*c.model)) classes = conditional->num_classes();
  if (classes == 0 && c.classifier) classes = as<NoisyClassifier>(*c.classifier)->num_classes();
  if (classes == 0) return {};
  return torch::arange(total, torch::kLong).remainder(classes);
}

// The keys of a stored config: those of its [sampler] table, and every key at any depth
// (the names its runs' names may state, genfw/run.hpp sampled_run_name).
std::pair<std::vector<std::string>, std::vector<std::string>> keys_of(const std::string& config_text,
                                                                      const std::string& origin) {
  const toml::table config = parse_toml_text(config_text, origin + ":/config");
  std::vector<std::string> sampler_keys, all_keys;
  if (const auto* sampler = config["sampler"].as_table()) {
    for (const auto& [key, _] : *sampler) sampler_keys.emplace_back(key.str());
  }
  std::function<void(const toml::node&)> collect = [&](const toml::node& node) {
    if (const auto* table = node.as_table()) {
      for (const auto& [key, value] : *table) all_keys.emplace_back(key.str()), collect(value);
    } else if (const auto* array = node.as_array()) {
      for (const auto& element : *array) collect(element);
    }
  };
  collect(config);
  return {sampler_keys, all_keys};
}

}  // namespace

Pipeline::Pipeline(const RunRequest& request, const Registry& registry)
    : request_(request), registry_(registry), ranks_(coordinator_of_process()) {
  if (!request.parent_run.empty()) {
    // The parent's training is done: sample its weights, don't retrain.
    check_run_file_readable(request.parent_run);  // a corrupt file is an error here, not a crash or a hang
    parent_checkpoint_ = RecordedCheckpoint::of_run(request.parent_run, request.parent_step);
    std::string parent_config = RunLog::open(request.parent_run, false).read_string("/config");
    const auto [sampler_keys, all_keys] = keys_of(parent_config, request.parent_run);
    if (!request.sampler.empty()) parent_config = with_sampler(parent_config, request.parent_run, request.sampler);
    config_ = load_experiment_text(parent_config, request.parent_run, request.overrides, registry);
    config_.train.reset();
    config_.objective.reset();
    std::map<std::string, std::string> used;  // this run's sampler options, as TOML values
    for (const auto& [key, value] : config_.sampling.values()) used[key] = format_value(value);
    if (config_.sampler) {
      for (const auto& [key, value] : config_.sampler->options.values()) used[key] = format_value(value);
    }
    // The sample count, batch size and precision are no sampler options: the table shows N; the rest
    // does not change what is drawn.
    std::vector<std::string> option_overrides;
    for (const auto& assignment : request.overrides) {
      const std::string key = assignment.substr(0, assignment.find('='));
      if (key.rfind("sampler.", 0) == 0 && sampling_schema().find(key.substr(8)) != nullptr) continue;
      option_overrides.push_back(assignment);
    }
    config_.name = sampled_run_name(config_.name, sampler_keys, all_keys, used, request.sampler, option_overrides);
    if (request.parent_step >= 0) config_.name += "_step" + std::to_string(request.parent_step);
  } else {
    config_ = load_experiment(request.experiment, request.overrides, registry);
  }
  file_has_sweep_ = !config_.sweep.empty();
  if (!request.device.empty()) config_.device = request.device;
  check_composition(config_, registry);
  if (ranks_->is_rank0()) {
    for (const auto& note : config_.notes) std::cerr << "note: " << note << "\n";
  }
  device_ = device_of_rank(resolve_device(config_.device));
}

Pipeline::~Pipeline() = default;

void Pipeline::set_output(const std::string& out_dir, bool resume) {
  request_.out_dir = out_dir;
  request_.resume = resume;
}

Components::Components() = default;
Components::~Components() = default;

const DataInfo& Components::model_data() const { return latent ? latent->info() : context.data; }

Dataset& Components::model_train_data() const { return latent_train_data ? *latent_train_data : *train_data; }

Components& Pipeline::components() {
  Components& c = components_without_runs();
  if (!c.built_from_runs) {
    resolve_component_runs("");  // those named by their run files; experiments must have been trained
    build_from_component_runs(c);
    c.built_from_runs = true;
  }
  return c;
}

Components& Pipeline::components_without_runs() {
  if (components_) return *components_;
  auto c = std::make_unique<Components>();
  c->context.device = device_;
  c->context.experiment_dir = fs::path(config_.path).parent_path().string();
  c->context.cache_dir = resolve_cache_dir(request_.cache_dir);
  c->context.split = "train";
  c->train_data = build<Dataset>(registry_, config_.data, c->context);
  c->context.data = call_plugin(*c->train_data.info, "info()", [&] { return c->train_data->info(); });
  c->context.data.name = config_.data.plugin;
  check_memory_fits(config_, c->context.data.shape);  // now with the real sample shape
  if (!config_.metrics.empty()) {
    // Opened now, so that a missing or damaged test file fails before training, not after it.
    BuildContext test_context = c->context;
    test_context.split = "test";
    c->test_data = build<Dataset>(registry_, config_.data, test_context);
  }
  // A model of latents is built once the autoencoder's latent space is known.
  if (!config_.component_run("latent")) build_modelled(*c);
  for (const auto& metric : config_.metrics) {
    c->metrics.push_back(build<Metric>(registry_, metric, c->context));
    GENFW_CHECK(config_.sampler || !c->metrics.back()->needs_samples(), config_.path, ": metric '", metric.plugin,
                "' scores samples, but the experiment has no [sampler] to draw them");
  }
  components_ = std::move(c);
  return *components_;
}

void Pipeline::build_modelled(Components& c) {
  BuildContext context = c.context;
  context.data = c.model_data();
  c.model = build<Model>(registry_, config_.model, context);
  c.model->to(device_);
  if (parent_checkpoint_) load_weights_for_sampling(*c.model, *parent_checkpoint_);
  if (config_.objective) c.objective = build<Objective>(registry_, *config_.objective, context);
  if (config_.sampler) c.sampler = build<Sampler>(registry_, *config_.sampler, context);
}

TrainOutcome Pipeline::train(RunLog& log, const std::string& checkpoint, bool resume) {
  Components& c = components();
  GENFW_CHECK(config_.train && c.objective, config_.path, ": nothing to train (no [train] and [objective])");
  Trainer trainer({*c.model, *c.model.info, *c.objective, *c.objective.info, c.model_train_data(), *c.train_data.info},
                  TrainSettings::from(config_), device_, log, checkpoint);
  trainer.set_evaluation(evaluation_plan(fs::path(checkpoint).parent_path().string()));
  TrainOutcome outcome = trainer.run(resume);
  trainer.use_ema_weights();
  return outcome;
}

SampleOutcome Pipeline::sample(int64_t count) {
  Components& c = components();
  GENFW_CHECK(c.sampler, config_.path, ": no [sampler] table: this experiment draws no samples");
  const int64_t total = count > 0 ? count : config_.sampling.integer("num_samples");
  const int64_t batch = config_.sampling.integer("batch_size");
  const std::string x_init_spec = config_.sampling.string("x_init");
  const torch::Tensor x_init = x_init_spec.empty() ? torch::Tensor() : load_x_init(x_init_spec, total, c.model_data());
  const torch::Tensor low_resolution = low_resolution_images(c, total);
  // A latent model's samples, and the trajectory kept of them, are decoded to data space.
  auto in_data_space = [&](const torch::Tensor& x) { return c.latent ? c.latent->decode(x) : x; };
  // Data-parallel, each rank draws whole single-process batches; rank 0 gathers them all.
  const std::vector<int64_t> firsts = ranks_->sampling_batches(total, batch);
  int64_t share = 0;
  for (int64_t first : firsts) share += std::min(batch, total - first);
  SampleOutcome out;
  out.labels = requested_labels(c, total);
  std::vector<torch::Tensor> parts, trajectory_x, trajectory_x0;
  std::vector<double> trajectory_levels;
  std::vector<int64_t> nfe_of_batches;
  c.model->eval();
  SamplingProgress progress(config_, total, batch, share, int64_t(firsts.size()));
  const auto start = StageClock::now();
  int64_t drawn = 0;  // by this rank, before the current batch
  for (size_t b = 0; b < firsts.size(); ++b) {
    const int64_t first = firsts[b];
    SampleContext context = SampleContext::for_model(*c.model, std::min(batch, total - first), c.model_data(), device_);
    // Sample i's noise is keyed by (run seed, i) alone: the same whatever the batch size or rank.
    context.noise = SampleNoise(config_.seed, first, context.num_samples);
    context.classifier = c.classifier.object.get();
    if (out.labels.defined()) context.labels = out.labels.slice(0, first, first + context.num_samples).to(device_);
    if (x_init.defined()) context.x_init = x_init.slice(0, first, first + context.num_samples).to(device_);
    if (low_resolution.defined()) {
      context.low_resolution = low_resolution.slice(0, first, first + context.num_samples).to(device_);
    }
    // Every network evaluation (the sampler's denoiser calls this) is where a stop request,
    // a dead rank and progress are noticed: within one evaluation, reporting sampler or not.
    context.on_evaluation = [&](int64_t nfe) {
      stop_here_if_requested("while sampling");
      ranks_->check_others_alive();
      progress.evaluated(drawn, int64_t(b), context.num_samples, nfe);
    };
    context.on_step = [&, first_batch = first == 0](const StepRecord& record) {
      stop_here_if_requested("while sampling");
      ranks_->check_others_alive();
      progress.step(record, drawn, int64_t(b), context.num_samples, context.nfe);
      if (first_batch) {
        int64_t keep = std::min<int64_t>(16, record.x.size(0));
        trajectory_x.push_back(in_data_space(record.x.slice(0, 0, keep).detach()).to(torch::kCPU, torch::kFloat32));
        if (record.x0_pred.defined()) {
          trajectory_x0.push_back(
              in_data_space(record.x0_pred.slice(0, 0, keep).detach()).to(torch::kCPU, torch::kFloat32));
        }
        trajectory_levels.push_back(record.noise_level);
      }
    };
    torch::Tensor x = call_plugin(*c.sampler.info, "sample()", [&] {
      AutocastScope autocast(config_.sampling.string("precision"), device_);
      return draw(*c.sampler, context);
    });
    parts.push_back(in_data_space(x.detach()).to(torch::kCPU, torch::kFloat32));
    nfe_of_batches.push_back(context.nfe);
    progress.batch_done(drawn, context.num_samples, context.nfe);
    drawn += context.num_samples;
  }
  std::vector<int64_t> empty_shape{0};  // a rank with no batch still takes part in the gather
  empty_shape.insert(empty_shape.end(), c.context.data.shape.begin(), c.context.data.shape.end());
  DrawnRows own{parts.empty() ? torch::empty(empty_shape, torch::kFloat32) : torch::cat(parts),
                torch::tensor(nfe_of_batches, torch::kLong)};
  const DrawnRows all = ranks_->gather_drawn(own, batch);
  out.samples = all.samples;
  if (!ranks_->is_rank0()) return out;  // rank 0 alone keeps, reports and writes them
  out.seconds = seconds_since(start);
  out.nfe = all.nfe_of_batches.numel() > 0 ? all.nfe_of_batches.to(torch::kFloat64).mean().item<double>() : 0.0;
  if (!trajectory_x.empty()) {
    out.trajectory_x = torch::stack(trajectory_x);
    if (trajectory_x0.size() == trajectory_x.size()) out.trajectory_x0 = torch::stack(trajectory_x0);
    out.trajectory_levels = torch::tensor(trajectory_levels, torch::kFloat32);
  }
  std::cerr << "sampled " << total << " in " << out.seconds << " s (NFE " << int64_t(out.nfe) << ")\n";
  return out;
}

std::vector<MetricOutcome> Pipeline::evaluate(const SampleOutcome& drawn) { return score(drawn, true); }

std::vector<MetricOutcome> Pipeline::score(const SampleOutcome& drawn, bool final) {
  Components& c = components();
  std::vector<MetricOutcome> outcomes;
  if (c.metrics.empty()) return outcomes;
  MetricContext context = metric_context();
  context.samples = drawn.samples;
  context.sample_labels = drawn.labels;
  FeatureService& features = feature_service(context);
  context.features = &features;
  ranks_->offer_sample_extraction(features, drawn.samples);
  const auto start = StageClock::now();
  for (const auto& metric : c.metrics) {
    if (!final && !metric->needs_samples()) continue;
    stop_here_if_requested("before metric '" + metric.info->name + "'");
    // No grad guard here: the feature extractor may train its classifier on first use.
    MetricOutcome outcome;
    outcome.info = metric.info;
    outcome.result = compute_metric(metric, context);
    outcome.wall_seconds = seconds_since(start);
    if (final) {
      for (const auto& [name, value] : outcome.result.values) std::cerr << "metric " << name << " = " << value << "\n";
      if (recorder_ != nullptr) recorder_->record_metric(outcome, trained_steps_);  // each as soon as it is known
    }
    outcomes.push_back(std::move(outcome));
  }
  ranks_->end_sample_extraction(features);
  if (drawn.samples.defined() && features.settings().floor) {
    // An evaluation during training has its own floor, at its own N, once per run.
    if (final) {
      evaluate_floor(context, drawn.samples.size(0), drawn.labels.defined(), "/floor");
    } else if (recorder_ != nullptr && !recorder_->log().exists("/eval_floor")) {
      evaluate_floor(context, drawn.samples.size(0), drawn.labels.defined(), "/eval_floor");
    }
  }
  return outcomes;
}

void Pipeline::serve_metrics_of_rank0() {
  if (components().metrics.empty()) return;  // rank 0 evaluates nothing either
  ranks_->serve_sample_extraction([this]() -> FeatureService& { return feature_service(metric_context()); });
}

MetricContext Pipeline::metric_context() {
  Components& c = components();
  MetricContext context;
  context.model = c.model.object.get();
  context.train_data = c.train_data.object.get();
  context.test_data = c.test_data.object.get();
  context.data = c.context.data;
  context.device = device_;
  context.cache_dir = c.context.cache_dir;
  context.seed = config_.seed;
  fs::create_directories(context.cache_dir);
  return context;
}

FeatureService& Pipeline::feature_service(const MetricContext& context) {
  if (!features_) {
    features_ = std::make_unique<FeatureService>(metric::FeatureSettings::from_options(config_.features), context);
  }
  return *features_;
}

MetricResult Pipeline::compute_metric(const Built<Metric>& metric, MetricContext& context) const {
  // A metric's own randomness (KID's subsets, ...) is keyed by the run seed alone:
  // not by what sampling left in torch's generator (that depends on the batch
  // size and the number of ranks), nor by the metrics computed before it.
  torch::manual_seed(config_.seed);
  return call_plugin(*metric.info, "compute()", [&] { return metric->compute(context); });
}

void Pipeline::evaluate_floor(MetricContext context, int64_t count, bool with_labels, const std::string& group) {
  Components& c = components();
  // Held out from the reference: the split its statistics are not drawn from.
  const bool reference_is_test = features_->settings().reference_split == "test";
  const Built<Dataset>& held_out = reference_is_test ? c.train_data : c.test_data;
  const std::string split = reference_is_test ? "train" : "test";
  const int64_t size = call_plugin(*held_out.info, "size()", [&] { return held_out->size(); });
  const int64_t n = std::min(count, size);
  if (n < count) std::cerr << "floor: the " << split << " split has " << size << " examples, fewer than " << count << "\n";
  // Evenly strided, so class-ordered files are covered, as for the reference.
  auto indices = evenly_strided_indices(n, size);
  Batch real = call_plugin(*held_out.info, "get()", [&] { return held_out->get(indices); });
  context.samples = real.x.to(torch::kCPU, torch::kFloat32);
  context.sample_labels = with_labels && real.y.defined() ? real.y.to(torch::kLong) : torch::Tensor();
  const auto start = StageClock::now();
  for (const auto& metric : c.metrics) {
    if (!metric->needs_samples() || !metric->has_floor()) continue;
    stop_here_if_requested("before the floor of metric '" + metric.info->name + "'");
    MetricResult result;
    try {
      result = compute_metric(metric, context);
    } catch (const Interrupted&) {
      throw;
    } catch (const std::exception& e) {  // the run's own values are already written
      std::cerr << "floor: metric '" << metric.info->name << "' on real data failed: " << e.what() << "\n";
      continue;
    }
    for (const auto& [name, value] : result.values) {
      std::cerr << (group == "/floor" ? "floor " : "evaluations' floor ") << name << " = " << value << " (" << n
                << " real " << split << " examples)\n";
      if (recorder_ != nullptr) {
        recorder_->record_floor(group, name, value, metric.info->name, split, n, trained_steps_, seconds_since(start));
      }
    }
  }
}

}  // namespace genfw
