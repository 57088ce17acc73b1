// The one pipeline: resolve → build → train → sample → evaluate → log.
#include "genfw/precision.hpp"
#include "genfw/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>

#include "genfw/cache.hpp"
#include "genfw/durable.hpp"
#include "genfw/distributed.hpp"
#include "genfw/images.hpp"
#include "genfw/process.hpp"
#include "genfw/progress.hpp"
#include "genfw/registry.hpp"
#include "genfw/run.hpp"
#include "genfw/run_file_guard.hpp"
#include "genfw/run_log.hpp"
#include "resume_plan.hpp"
#include "toml_text.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

template <typename T>
Built<T> build(const Registry& registry, const ComponentConfig& component, const BuildContext& context,
               const Options* options = nullptr) {
  Built<T> built;
  built.info = &registry.find(component.plugin, component.kind);
  built.object = call_plugin(*built.info, "its constructor", [&] {
    return registry.create<T>(component.plugin, component.kind, options ? *options : component.options, context);
  });
  return built;
}

int64_t count_parameters(Model& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
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

void write_pictures(const torch::Tensor& samples, const DataInfo& data, const std::string& png, int64_t count) {
  if (count <= 0) return;
  if (data.is_image()) {
    write_image_grid(png, samples, data.low, data.high, count);
  } else if (data.shape.size() == 1 && data.shape[0] == 2) {
    double extent = std::max(std::abs(data.low), std::abs(data.high));
    write_histogram_2d(png, samples, -extent, extent);
  }
}

std::string shell_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    ::pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string now_iso() {
  std::time_t t = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return text;
}

void write_environment(RunLog& log, torch::Device device, uint64_t seed) {
  char host[256] = "unknown";
  ::gethostname(host, sizeof host);
  std::string git = shell_output("git -C '" GENFW_SOURCE_DIR "' rev-parse HEAD 2>/dev/null");
  if (!git.empty() && !shell_output("git -C '" GENFW_SOURCE_DIR "' status --porcelain -uno 2>/dev/null").empty()) {
    git += "-dirty";
  }
  log.write_string("/env/framework", GENFW_VERSION_STRING);
  log.write_string("/env/abi", std::to_string(GENFW_ABI_VERSION));
  log.write_string("/env/torch", GENFW_TORCH_VERSION_STRING);
  log.write_string("/env/compiler", GENFW_COMPILER);
  log.write_string("/env/threads", std::to_string(torch::get_num_threads()));
  log.write_string("/env/flush_denormals", process_settings().flush_denormals ? "true" : "false");
  log.write_string("/env/keep_freed_memory", process_settings().keep_freed_memory ? "true" : "false");
  log.write_string("/env/device", device.str());
  log.write_string("/env/git_commit", git.empty() ? "unknown" : git);
  log.write_string("/env/host", host);
  log.write_string("/env/seed", std::to_string(seed));
  log.write_string("/env/started", now_iso());
}

// Copies every /env/<key> of the run file to `segment`/<key>.
void copy_environment(RunLog& log, const std::string& segment) {
  for (const auto& key : log.children("/env")) {
    if (key != "segments") log.write_string(segment + "/" + key, log.read_string("/env/" + key));
  }
}

/// /env/<key> holds the environment of the run's latest segment (its start, then
/// each resume); /env/segments/<k>/<key> keeps every segment's, with the step it
/// started from, so that a resume with another world size, launcher or machine
/// does not erase how the earlier steps were trained.
void write_environment_segment(RunLog& log, torch::Device device, uint64_t seed, int64_t from_step) {
  if (log.exists("/env") && !log.exists("/env/segments")) copy_environment(log, "/env/segments/0");  // an older file
  write_environment(log, device, seed);
  write_distributed_environment(log, device);
  log.write_string("/env/from_step", std::to_string(from_step));
  const size_t earlier = log.exists("/env/segments") ? log.children("/env/segments").size() : 0;
  copy_environment(log, "/env/segments/" + std::to_string(earlier));
}

/// Above this many planned batch-forward passes, sampling warns before it goes on:
/// at a few ms per pass for the smallest image networks on a CPU (and ~1 s for a
/// CIFAR U-Net batch), 20 000 passes are many minutes to hours; toys stay below it.
constexpr int64_t kManyNetworkEvaluations = 20000;

/// What sampling tells while it runs: this rank's progress with an ETA on
/// stderr (throttled, as [log] progress says; rank 0's alone is shown), and,
/// as soon as the NFE per batch is known (the first reported step of the first
/// batch, or its end), a warning when the planned network evaluations of all
/// ranks together are very many.
class SamplingProgress {
 public:
  /// `total` samples in batches of `batch_size` over all ranks, of which this
  /// rank draws `share` in `share_batches` batches.
  SamplingProgress(const ExperimentConfig& config, int64_t total, int64_t batch_size, int64_t share,
                   int64_t share_batches)
      : config_(config),
        total_(total),
        batch_size_(batch_size),
        batches_((total + batch_size - 1) / batch_size),
        share_(share),
        share_batches_(share_batches),
        display_(config.log.string("progress"), std::chrono::seconds(2), std::chrono::milliseconds(250)) {}

  /// The sampler reported `record` in this rank's batch number `batch` (from 0)
  /// of `batch_samples`, after `drawn` earlier samples of this rank and `nfe`
  /// network evaluations of this batch.
  void step(const StepRecord& record, int64_t drawn, int64_t batch, int64_t batch_samples, int64_t nfe) {
    if (!planned_ && nfe > 0 && record.total > 0) plan(nfe * record.total / (record.index + 1), "about ");
    if (!display_.due(false)) return;
    const double fraction_of_batch = record.total > 0 ? double(record.index + 1) / double(record.total) : 0.0;
    show(double(drawn) + fraction_of_batch * double(batch_samples),
         detail::concat(", step ", record.index + 1, "/", record.total, " of batch ", batch + 1, "/", share_batches_),
         false);
  }
  /// The sampler's denoiser is about to make the batch's evaluation number `nfe`: progress by
  /// NFE, for samplers that report no steps (its fraction of the batch once the first batch
  /// has told the NFE per batch).
  void evaluated(int64_t drawn, int64_t batch, int64_t batch_samples, int64_t nfe) {
    if (!display_.due(false)) return;
    const double fraction_of_batch = nfe_per_batch_ > 0 ? std::min(1.0, double(nfe) / double(nfe_per_batch_)) : 0.0;
    show(double(drawn) + fraction_of_batch * double(batch_samples),
         detail::concat(", NFE ", nfe, nfe_per_batch_ > 0 ? detail::concat("/", nfe_per_batch_) : "", " of batch ",
                        batch + 1, "/", share_batches_),
         false);
  }
  /// This rank's batch of `batch_samples` after `drawn` earlier samples is drawn, with `nfe` evaluations.
  void batch_done(int64_t drawn, int64_t batch_samples, int64_t nfe) {
    if (!planned_) plan(nfe, "");
    const bool final = drawn + batch_samples >= share_;
    if (display_.due(final)) show(double(drawn + batch_samples), "", final);
  }

 private:
  void plan(int64_t nfe_per_batch, const char* about) {
    planned_ = true;
    nfe_per_batch_ = nfe_per_batch;
    const int64_t evaluations = nfe_per_batch * batches_;
    if (evaluations <= kManyNetworkEvaluations || !is_rank0()) return;
    std::string budgets;  // the sampler's own step counts, the usual budget options
    for (const auto& [key, value] : config_.sampler->options.values()) {
      if (std::holds_alternative<int64_t>(value) && key.find("step") != std::string::npos) {
        budgets += "[sampler] " + key + " = " + format_value(value) + ", ";
      }
    }
    std::cerr << "warning: sampler '" << config_.sampler->plugin << "' plans " << about << evaluations
              << " network evaluations (batch forward passes): NFE " << about << nfe_per_batch << " per sample, "
              << total_ << " samples in " << batches_ << " batches of " << batch_size_
              << "; this may take very long. Fewer: " << budgets
              << "[sampler] num_samples, or a larger [sampler] batch_size\n";
  }
  void show(double samples_done, const std::string& where, bool final) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const double fraction = samples_done / double(share_);
    const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : NAN;
    const std::string of_all = share_ < total_ ? detail::concat(" (this rank's share of ", total_, ")") : "";
    display_.show(fraction,
                  detail::concat("sampling: ", int64_t(samples_done), "/", share_, " samples", of_all, where, ", ",
                                 format_duration(elapsed), " elapsed, ETA ", format_duration(eta)),
                  final);
  }

  const ExperimentConfig& config_;
  const int64_t total_, batch_size_, batches_, share_, share_batches_;
  ProgressDisplay display_;
  const Clock::time_point start_ = Clock::now();
  bool planned_ = false;
  int64_t nfe_per_batch_ = 0;  // known once planned
};

/// Records how a run ended; a run file that cannot be written any more (a full
/// disk) keeps its last flushed state, and the caller's error says why.
void mark_status(RunLog& log, const std::string& status) {
  try {
    log.set_attribute("/", "status", status);
    log.flush();
  } catch (const std::exception&) {
  }
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

Pipeline::Pipeline(const RunRequest& request, const Registry& registry) : request_(request), registry_(registry) {
  if (!request.parent_run.empty()) {
    // The parent's training is done: sample its weights, don't retrain.
    check_run_file_readable(request.parent_run);  // a corrupt file is an error here, not a crash or a hang
    parent_checkpoint_ = RecordedCheckpoint::of_run(request.parent_run);
    std::string parent_config = RunLog::open(request.parent_run, false).read_string("/config");
    const std::string parent_config_as_stored = parent_config;
    if (!request.sampler.empty()) parent_config = with_sampler(parent_config, request.parent_run, request.sampler);
    config_ = load_experiment_text(parent_config, request.parent_run, request.overrides, registry);
    config_.train.reset();
    config_.objective.reset();
    const auto [sampler_keys, all_keys] = keys_of(parent_config_as_stored, request.parent_run);
    config_.name = sampled_run_name(config_.name, sampler_keys, all_keys, request.sampler, request.overrides);
  } else {
    config_ = load_experiment(request.experiment, request.overrides, registry);
  }
  file_has_sweep_ = !config_.sweep.empty();
  if (!request.device.empty()) config_.device = request.device;
  check_composition(config_, registry);
  if (is_rank0()) {
    for (const auto& note : config_.notes) std::cerr << "note: " << note << "\n";
  }
  device_ = device_of_rank(resolve_device(config_.device));
}

Pipeline::~Pipeline() = default;

void Pipeline::set_output(const std::string& out_dir, bool resume) {
  request_.out_dir = out_dir;
  request_.resume = resume;
}

Components& Pipeline::components() {
  Components& c = components_without_classifier();
  if (config_.guidance && !c.classifier) build_classifier(c);
  return c;
}

Components& Pipeline::components_without_classifier() {
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
  c->model = build<Model>(registry_, config_.model, c->context);
  c->model->to(device_);
  if (parent_checkpoint_) load_weights_for_sampling(*c->model, *parent_checkpoint_);
  if (config_.objective) c->objective = build<Objective>(registry_, *config_.objective, c->context);
  if (config_.sampler) c->sampler = build<Sampler>(registry_, *config_.sampler, c->context);
  for (const auto& metric : config_.metrics) {
    c->metrics.push_back(build<Metric>(registry_, metric, c->context));
    GENFW_CHECK(c->sampler || !c->metrics.back()->needs_samples(), config_.path, ": metric '", metric.plugin,
                "' scores samples, but the experiment has no [sampler] to draw them");
  }
  components_ = std::move(c);
  return *components_;
}

std::string Pipeline::prepare_guidance_run(const std::string& out_dir) {
  if (!config_.guidance || !guidance_run_.empty()) return guidance_run_;
  const fs::path base = fs::path(config_.path).parent_path();
  const std::string run = config_.guidance->string("run");
  if (!run.empty()) {
    guidance_run_ = (base / run).string();
    GENFW_CHECK(fs::exists(guidance_run_), config_.path, ": [guidance] run = \"", run, "\": ", guidance_run_,
                " does not exist");
    return guidance_run_;
  }
  // Trained in this experiment: its own run, in a folder inside this one.
  RunRequest classifier;
  classifier.experiment = (base / config_.guidance->string("experiment")).string();
  classifier.device = request_.device;
  classifier.cache_dir = request_.cache_dir;
  Pipeline trainer(classifier, registry_);
  classifier.out_dir = (fs::path(out_dir) / trainer.config().name).string();
  const fs::path existing = fs::path(classifier.out_dir) / (trainer.config().name + ".h5");
  if (fs::exists(existing) && RunLog::open(existing.string(), false).attribute("/", "status") == "completed") {
    guidance_run_ = existing.string();  // --resume: the classifier is done
    return guidance_run_;
  }
  classifier.resume = fs::exists(existing);
  std::cerr << "guidance: training the classifier of " << classifier.experiment << "\n";
  guidance_run_ = Pipeline(classifier, registry_).run();
  // Data-parallel: the classifier trained on every rank, rank 0 alone wrote its run file.
  if (DataParallel* group = data_parallel()) guidance_run_ = group->share_from_rank0("guidance_run", guidance_run_);
  return guidance_run_;
}

void Pipeline::build_classifier(Components& c) {
  if (!config_.guidance) return;
  const std::string run_file = prepare_guidance_run("runs");  // run() prepared it in its folder already
  check_run_file_readable(run_file);
  ExperimentConfig trained = load_experiment_text(RunLog::open(run_file, false).read_string("/config"), run_file, {},
                                                  registry_);
  c.classifier = build<Model>(registry_, trained.model, c.context);
  GENFW_CHECK(as<NoisyClassifier>(*c.classifier) != nullptr, config_.path, ": [guidance] ", run_file,
              " trained model '", trained.model.plugin, "', which offers no 'classifier'");
  c.classifier->to(device_);
  load_weights_for_sampling(*c.classifier, RecordedCheckpoint::of_run(run_file));
  c.classifier->eval();
}

TrainOutcome Pipeline::train(RunLog& log, const std::string& checkpoint, bool resume) {
  Components& c = components();
  GENFW_CHECK(config_.train && c.objective, config_.path, ": nothing to train (no [train] and [objective])");
  Trainer trainer({*c.model, *c.model.info, *c.objective, *c.objective.info, *c.train_data, *c.train_data.info},
                  TrainSettings::from(config_), device_, log, checkpoint);
  TrainOutcome outcome = trainer.run(resume);
  trainer.use_ema_weights();
  return outcome;
}

namespace {

// Data-parallel: every rank's rows, dealt as sampling_batches_of_rank deals
// batches of `batch_size`, in global order on rank 0; undefined on the others.
torch::Tensor gathered_in_global_order(DataParallel& group, const torch::Tensor& rows, int64_t batch_size,
                                       const std::string& what) {
  const std::vector<torch::Tensor> of_ranks = group.gather_rows_to_rank0(rows, what);
  return of_ranks.empty() ? torch::Tensor() : rows_in_global_order(of_ranks, batch_size);
}

}  // namespace

SampleOutcome Pipeline::sample() {
  Components& c = components();
  GENFW_CHECK(c.sampler, config_.path, ": no [sampler] table: this experiment draws no samples");
  const int64_t total = config_.sampling.integer("num_samples"), batch = config_.sampling.integer("batch_size");
  const std::string x_init_spec = config_.sampling.string("x_init");
  const torch::Tensor x_init = x_init_spec.empty() ? torch::Tensor() : load_x_init(x_init_spec, total, c.context.data);
  // Data-parallel, each rank draws whole single-process batches; rank 0 gathers them all.
  DataParallel* group = data_parallel();
  const std::vector<int64_t> firsts =
      sampling_batches_of_rank(total, batch, group ? group->rank() : 0, group ? group->world_size() : 1);
  int64_t share = 0;
  for (int64_t first : firsts) share += std::min(batch, total - first);
  SampleOutcome out;
  out.labels = requested_labels(c, total);
  std::vector<torch::Tensor> parts, trajectory_x, trajectory_x0;
  std::vector<double> trajectory_levels;
  std::vector<int64_t> nfe_of_batches;
  c.model->eval();
  SamplingProgress progress(config_, total, batch, share, int64_t(firsts.size()));
  const auto start = Clock::now();
  int64_t drawn = 0;  // by this rank, before the current batch
  for (size_t b = 0; b < firsts.size(); ++b) {
    const int64_t first = firsts[b];
    SampleContext context = SampleContext::for_model(*c.model, std::min(batch, total - first), c.context.data, device_);
    // Sample i's noise is keyed by (run seed, i) alone: the same whatever the batch size or rank.
    context.noise = SampleNoise(config_.seed, first, context.num_samples);
    context.classifier = c.classifier.object.get();
    if (out.labels.defined()) context.labels = out.labels.slice(0, first, first + context.num_samples).to(device_);
    if (x_init.defined()) context.x_init = x_init.slice(0, first, first + context.num_samples).to(device_);
    // Every network evaluation (the sampler's denoiser calls this) is where a stop request,
    // a dead rank and progress are noticed: within one evaluation, reporting sampler or not.
    context.on_evaluation = [&](int64_t nfe) {
      stop_here_if_requested("while sampling");
      if (group != nullptr) group->check_others_alive();
      progress.evaluated(drawn, int64_t(b), context.num_samples, nfe);
    };
    context.on_step = [&, first_batch = first == 0](const StepRecord& record) {
      stop_here_if_requested("while sampling");
      if (group != nullptr) group->check_others_alive();
      progress.step(record, drawn, int64_t(b), context.num_samples, context.nfe);
      if (first_batch) {
        int64_t keep = std::min<int64_t>(16, record.x.size(0));
        trajectory_x.push_back(record.x.slice(0, 0, keep).detach().to(torch::kCPU, torch::kFloat32));
        if (record.x0_pred.defined()) {
          trajectory_x0.push_back(record.x0_pred.slice(0, 0, keep).detach().to(torch::kCPU, torch::kFloat32));
        }
        trajectory_levels.push_back(record.noise_level);
      }
    };
    torch::Tensor x = call_plugin(*c.sampler.info, "sample()", [&] {
      AutocastScope autocast(config_.sampling.string("precision"), device_);
      return draw(*c.sampler, context);
    });
    parts.push_back(x.detach().to(torch::kCPU, torch::kFloat32));
    nfe_of_batches.push_back(context.nfe);
    progress.batch_done(drawn, context.num_samples, context.nfe);
    drawn += context.num_samples;
  }
  std::vector<int64_t> empty_shape{0};  // a rank with no batch still takes part in the gather
  empty_shape.insert(empty_shape.end(), c.context.data.shape.begin(), c.context.data.shape.end());
  out.samples = parts.empty() ? torch::empty(empty_shape, torch::kFloat32) : torch::cat(parts);
  torch::Tensor nfe = torch::tensor(nfe_of_batches, torch::kLong);
  if (group != nullptr) {
    rank_samples_ = out.samples;
    // Ranks draw up to one batch more than others: wait for the slowest without a timeout while all are alive.
    group->wait_for_all_while_alive("sampled");
    out.samples = gathered_in_global_order(*group, out.samples, batch, "the samples");
    nfe = gathered_in_global_order(*group, nfe, 1, "the NFE of each batch");
    if (group->rank() != 0) return out;  // rank 0 alone keeps, reports and writes them
  }
  out.seconds = seconds_since(start);
  out.nfe = nfe.numel() > 0 ? nfe.to(torch::kFloat64).mean().item<double>() : 0.0;
  if (!trajectory_x.empty()) {
    out.trajectory_x = torch::stack(trajectory_x);
    if (trajectory_x0.size() == trajectory_x.size()) out.trajectory_x0 = torch::stack(trajectory_x0);
    out.trajectory_levels = torch::tensor(trajectory_levels, torch::kFloat32);
  }
  std::cerr << "sampled " << total << " in " << out.seconds << " s (NFE " << int64_t(out.nfe) << ")\n";
  return out;
}

std::vector<MetricOutcome> Pipeline::evaluate(const SampleOutcome& drawn) {
  Components& c = components();
  std::vector<MetricOutcome> outcomes;
  DataParallel* group = data_parallel();
  if (c.metrics.empty()) return outcomes;
  MetricContext context = metric_context();
  context.samples = drawn.samples;
  context.sample_labels = drawn.labels;
  context.features = &feature_service(context);
  if (group != nullptr && drawn.samples.defined()) extract_samples_on_every_rank(*group, drawn.samples);
  const auto start = Clock::now();
  for (const auto& metric : c.metrics) {
    stop_here_if_requested("before metric '" + metric.info->name + "'");
    // No grad guard here: the feature extractor may train its classifier on first use.
    MetricOutcome outcome;
    outcome.info = metric.info;
    outcome.result = compute_metric(metric, context);
    outcome.wall_seconds = seconds_since(start);
    for (const auto& [name, value] : outcome.result.values) std::cerr << "metric " << name << " = " << value << "\n";
    outcomes.push_back(std::move(outcome));
    if (log_ != nullptr) {  // each metric is in the run file as soon as it is known
      for (const auto& [name, value] : outcomes.back().result.values) {
        log_->append_metric(name, {value, trained_steps_, outcomes.back().wall_seconds}, metric.info->name,
                            outcomes.back().result.provenance);
      }
      log_->flush();
    }
  }
  if (group != nullptr && drawn.samples.defined()) tell_ranks_about_features(*group, "none");  // none asked
  if (drawn.samples.defined() && features_->settings().floor) {
    evaluate_floor(context, drawn.samples.size(0), drawn.labels.defined());
  }
  return outcomes;
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

namespace {

// This rank's share of the drawn samples through the extractor, gathered on
// rank 0 in global order (undefined on the others). Every rank must hold rows.
metric::Extracted extracted_over_ranks(DataParallel& group, metric::FeatureExtractor& extractor,
                                       const torch::Tensor& own_samples, torch::Device device,
                                       int64_t extraction_batch, int64_t sampling_batch) {
  metric::Extracted own = extractor.extract(own_samples, device, extraction_batch);
  metric::Extracted all;
  all.features = gathered_in_global_order(group, own.features, sampling_batch, "the samples' features");
  if (extractor.has_probabilities()) {
    all.probabilities =
        gathered_in_global_order(group, own.probabilities, sampling_batch, "the samples' class probabilities");
  }
  return all;
}

}  // namespace

void Pipeline::extract_samples_on_every_rank(DataParallel& group, const torch::Tensor& drawn) {
  const int64_t batch = config_.sampling.integer("batch_size");
  const int64_t batches = (drawn.size(0) + batch - 1) / batch;
  if (batches < group.world_size()) return;  // some rank drew nothing: rank 0 extracts alone
  auto extracted = std::make_shared<std::optional<metric::Extracted>>();
  features_->extract_shared_with([this, &group, drawn, batch, extracted](const torch::Tensor& samples) {
    if (!samples.is_same(drawn)) return std::optional<metric::Extracted>();  // the floor's real data: here
    if (!*extracted) {
      // The extractor first: a classifier trained now is cached before the other ranks load it.
      metric::FeatureExtractor& extractor = features_->extractor();
      tell_ranks_about_features(group, "extract");
      *extracted = extracted_over_ranks(group, extractor, rank_samples_, device_,
                                        features_->settings().extractor.batch_size, batch);
    }
    return *extracted;
  });
}

void Pipeline::tell_ranks_about_features(DataParallel& group, const std::string& request) {
  if (ranks_told_about_features_) return;
  ranks_told_about_features_ = true;
  group.share_from_rank0_when_ready("features", request);
}

void Pipeline::serve_feature_extraction(DataParallel& group) {
  // Rank 0 answers once its metrics first ask for the samples' features, or when none did.
  if (group.share_from_rank0_when_ready("features", "") != "extract") return;
  MetricContext context = metric_context();
  FeatureService& service = feature_service(context);
  extracted_over_ranks(group, service.extractor(), rank_samples_, device_, service.settings().extractor.batch_size,
                       config_.sampling.integer("batch_size"));
}

MetricResult Pipeline::compute_metric(const Built<Metric>& metric, MetricContext& context) const {
  // A metric's own randomness (KID's subsets, ...) is keyed by the run seed alone:
  // not by what sampling left in torch's generator (that depends on the batch
  // size and the number of ranks), nor by the metrics computed before it.
  torch::manual_seed(config_.seed);
  return call_plugin(*metric.info, "compute()", [&] { return metric->compute(context); });
}

void Pipeline::evaluate_floor(MetricContext context, int64_t count, bool with_labels) {
  Components& c = components();
  // Held out from the reference: the split its statistics are not drawn from.
  const bool reference_is_test = features_->settings().reference_split == "test";
  const Built<Dataset>& held_out = reference_is_test ? c.train_data : c.test_data;
  const std::string split = reference_is_test ? "train" : "test";
  const int64_t size = call_plugin(*held_out.info, "size()", [&] { return held_out->size(); });
  const int64_t n = std::min(count, size);
  if (n < count) std::cerr << "floor: the " << split << " split has " << size << " examples, fewer than " << count << "\n";
  // Evenly strided, so class-ordered files are covered, as for the reference.
  auto indices = torch::linspace(0, double(size - 1), n, torch::kFloat64).round().to(torch::kLong);
  Batch real = call_plugin(*held_out.info, "get()", [&] { return held_out->get(indices); });
  context.samples = real.x.to(torch::kCPU, torch::kFloat32);
  context.sample_labels = with_labels && real.y.defined() ? real.y.to(torch::kLong) : torch::Tensor();
  const auto start = Clock::now();
  for (const auto& metric : c.metrics) {
    if (!metric->needs_samples()) continue;
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
      std::cerr << "floor " << name << " = " << value << " (" << n << " real " << split << " examples)\n";
      if (log_ == nullptr) continue;
      const std::string path = "/floor/" + name;
      log_->append_series(path, {{trained_steps_, value, seconds_since(start)}});
      log_->set_attribute(path, "metric", metric.info->name);
      log_->set_attribute(path, "split", split);
      log_->set_attribute(path, "count", n);
    }
    if (log_ != nullptr) log_->flush();
  }
}

std::string Pipeline::run() {
  if (request_.print_config) {
    std::cout << config_.resolved_toml();
    return "";
  }
  torch::manual_seed(config_.seed);
  auto run_file_in = [&](const std::string& folder) { return (fs::path(folder) / (config_.name + ".h5")).string(); };
  std::string out_dir = request_.out_dir;
  if (request_.resume) {
    if (out_dir.empty() && is_rank0()) out_dir = default_run_folder(config_.name, true);
    // It continues its stored plan; a command line asking for another is refused before anything is built.
    if (adopt_stored_plan(run_file_in(out_dir))) {  // and a finished plan is left as it is, not reopened
      if (is_rank0()) std::cerr << run_file_in(out_dir) << " has completed its plan; nothing to resume\n";
      return is_rank0() ? run_file_in(out_dir) : std::string();
    }
  } else {
    GENFW_CHECK(out_dir.empty() || !is_rank0() || !fs::exists(run_file_in(out_dir)), run_file_in(out_dir),
                " already exists; pass --resume to continue it or another --out");
  }
  // Built before the run folder exists: a run whose components or data cannot be
  // built leaves no folder behind (nor pushes the next good run to NAME-2).
  components_without_classifier();
  // Rank 0 alone reserves a run folder (default_run_folder creates it); the others get its name.
  if (out_dir.empty() && is_rank0()) out_dir = default_run_folder(config_.name, false);
  if (DataParallel* group = data_parallel()) out_dir = group->share_from_rank0("run_folder", out_dir);
  if (is_rank0()) fs::create_directories(out_dir);  // the other ranks write nothing there
  const std::string run_file = run_file_in(out_dir);
  const std::string checkpoint = (fs::path(out_dir) / "checkpoint.pt").string();
  if (config_.guidance) {
    // The stored config names the trained classifier itself, so `runner sample`
    // and sampler sweeps reuse it instead of training it again.
    config_.guidance->set("run", fs::absolute(prepare_guidance_run(out_dir)).string());
    config_.guidance->set("experiment", std::string());
  }
  components();  // the guidance classifier too, before the run file exists
  // A kill during a checkpoint write leaves its temporary file; it is genfw's own, and stale.
  if (is_rank0()) fs::remove(temporary_of(checkpoint));
  RunLog log = open_run_log_of_rank(run_file, request_.resume);
  try {
    return run_stages(log, out_dir);
  } catch (const Interrupted& e) {
    mark_status(log, std::string("interrupted: ") + e.what());
    throw Interrupted(std::string(e.what()) + "; " + run_file + " is marked interrupted" +
                          (request_.experiment.empty() ? std::string()
                                                       : "; continue with: " + continuation_command(out_dir)),
                      e.signal_number());
  } catch (const std::exception& e) {
    mark_status(log, std::string("failed: ") + e.what());
    throw;
  }
}

namespace {

// The stored config and status of a run to resume, read without opening it for writing.
std::pair<std::string, std::string> stored_plan_of(const std::string& run_file) {
  GENFW_CHECK(fs::exists(run_file), "cannot resume: ", run_file,
              " does not exist; nothing to continue (start the run without --resume)");
  check_run_file_readable(run_file);  // a corrupt file is an error here, not a crash or a hang
  const RunLog log = RunLog::open(run_file, false);
  GENFW_CHECK(log.exists("/config"), "cannot resume: ", run_file, " holds no stored config (the run stopped before "
              "it began); start it again without --resume, after removing its folder");
  return {log.read_string("/config"), log.attribute("/", "status")};
}

}  // namespace

bool Pipeline::adopt_stored_plan(const std::string& run_file) {
  check_resume_changes(request_.resume_changes);
  auto [stored_text, status] = is_rank0() ? stored_plan_of(run_file) : std::pair<std::string, std::string>();
  if (DataParallel* group = data_parallel()) {
    stored_text = group->share_from_rank0("stored_config", stored_text);
    status = group->share_from_rank0("stored_status", status);
  }
  check_same_plan(load_experiment_text(stored_text, run_file, {}, registry_), config_, request_.resume_changes,
                  run_file);
  ExperimentConfig plan = load_experiment_text(stored_text, run_file, request_.resume_changes, registry_);
  plan.path = config_.path;  // relative paths in it are the experiment file's
  plan.device = config_.device;
  config_ = std::move(plan);
  return status == "completed" && request_.resume_changes.empty();
}

std::string Pipeline::continuation_command(const std::string& out_dir) const {
  std::string command = "runner " + shell_word(request_.experiment);
  for (const auto& assignment : request_.overrides) command += " --set " + shell_word(assignment);
  // A variant of a [sweep] names its values in its --set; the file's [sweep] must not expand again.
  if (file_has_sweep_) command += " --set " + shell_word("sweep={}");
  for (const auto& assignment : request_.resume_changes) command += " --resume-set " + shell_word(assignment);
  if (!request_.device.empty()) command += " --device " + shell_word(request_.device);
  if (!request_.cache_dir.empty()) command += " --cache-dir " + shell_word(request_.cache_dir);
  return command + " --resume --out " + shell_word(out_dir);
}

std::string Pipeline::run_stages(RunLog& log, const std::string& out_dir) {
  Components& c = components();
  log.write_string("/config", config_.resolved_toml());
  const std::string checkpoint_step = request_.resume ? log.attribute("/", "checkpoint_step") : "";
  write_environment_segment(log, device_, config_.seed, checkpoint_step.empty() ? 0 : std::stoll(checkpoint_step));
  log.set_attribute("/", "experiment", config_.name);
  log.set_attribute("/", "dataset", config_.data.plugin);
  log.set_attribute("/", "model", config_.model.plugin);
  log.set_attribute("/", "objective", config_.objective ? config_.objective->plugin : "");
  log.set_attribute("/", "sampler", config_.sampler ? config_.sampler->plugin : "");
  log.set_attribute("/", "num_parameters", count_parameters(*c.model));
  log.set_attribute("/", "status", "running");
  if (!request_.parent_run.empty()) log.set_attribute("/", "parent", fs::absolute(request_.parent_run).string());
  if (!guidance_run_.empty()) log.set_attribute("/", "guidance_classifier", fs::absolute(guidance_run_).string());
  log.flush();

  trained_steps_ = 0;
  const std::string checkpoint = (fs::path(out_dir) / "checkpoint.pt").string();
  if (config_.train && config_.train->integer("steps") > 0) {
    const TrainOutcome trained = train(log, checkpoint, request_.resume);
    trained_steps_ = trained.steps;
    // Only a run that reached its plan (its steps, or its max_minutes budget) is a result.
    GENFW_CHECK(trained.budget_reached || trained_steps_ == config_.train->integer("steps"), "training ended at step ",
                trained_steps_, " of the planned ", config_.train->integer("steps"));
  } else if (parent_checkpoint_) {
    log.set_attribute("/", "checkpoint", fs::relative(parent_checkpoint_->path, out_dir).string());
    log.set_attribute("/", "checkpoint_sha256", parent_checkpoint_->sha256);
    log.set_attribute("/", "checkpoint_sha256_next", parent_checkpoint_->sha256_next);
  }
  log.truncate_metrics(trained_steps_);  // an earlier attempt of this run may have written them
  // Metrics go to the run file as soon as each is known (evaluate() writes through log_).
  struct LogWhileEvaluating {
    RunLog*& slot;
    ~LogWhileEvaluating() { slot = nullptr; }
  } scope{log_ = &log};
  if (!c.sampler) {  // a run that only trains: no samples, only the metrics of the model
    if (!is_rank0()) return "";  // data-parallel: rank 0 alone evaluates and writes
    evaluate(SampleOutcome{});
    log.set_attribute("/", "status", "completed");
    log.flush();
    return log.path();
  }
  SampleOutcome drawn = sample();  // data-parallel: every rank draws its share, rank 0 gets them all
  if (!is_rank0()) {               // and alone writes and evaluates them; the others extract features
    if (!c.metrics.empty()) serve_feature_extraction(*data_parallel());
    return "";
  }
  log.write_tensor("/samples", drawn.samples);
  log.set_attribute("/samples", "low", c.context.data.low);
  log.set_attribute("/samples", "high", c.context.data.high);
  if (drawn.labels.defined()) log.write_tensor("/sample_labels", drawn.labels.to(torch::kFloat32));
  if (drawn.trajectory_x.defined()) {
    log.write_tensor("/trajectory/x", drawn.trajectory_x);
    if (drawn.trajectory_x0.defined()) log.write_tensor("/trajectory/x0_pred", drawn.trajectory_x0);
    log.write_tensor("/trajectory/noise_level", drawn.trajectory_levels);
  }
  const double total = double(drawn.samples.size(0));
  log.write_scalar("/timing/sample_seconds", drawn.seconds);
  log.write_scalar("/timing/num_samples", total);
  log.write_scalar("/timing/nfe", drawn.nfe);
  log.write_scalar("/timing/samples_per_second", drawn.seconds > 0 ? total / drawn.seconds : 0.0);
  log.flush();
  write_pictures(drawn.samples, c.context.data, (fs::path(out_dir) / (config_.name + ".png")).string(),
                 config_.log.integer("grid_samples"));
  evaluate(drawn);
  log.set_attribute("/", "status", "completed");
  log.flush();
  return log.path();
}

}  // namespace genfw
