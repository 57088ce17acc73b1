#include "genfw/run.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "genfw/images.hpp"
#include "genfw/metric.hpp"
#include "genfw/run_log.hpp"
#include "genfw/sampler.hpp"
#include "genfw/trainer.hpp"

namespace genfw {

namespace fs = std::filesystem;

int configure_threads(int requested) {
  int threads = requested > 0 ? requested : int(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);  // LibTorch's default here is 1
  return threads;
}

torch::Device resolve_device(const std::string& setting) {
  if (setting == "cpu") return torch::kCPU;
  if (setting == "cuda") {
    GENFW_CHECK(torch::cuda::is_available(), "device = \"cuda\" but no CUDA device is available to this LibTorch");
    return torch::kCUDA;
  }
  GENFW_CHECK(setting == "auto", "unknown device '", setting, "'; expected cpu, cuda or auto");
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

namespace {

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
  log.write_string("/env/device", device.str());
  log.write_string("/env/git_commit", git.empty() ? "unknown" : git);
  log.write_string("/env/host", host);
  log.write_string("/env/seed", std::to_string(seed));
  log.write_string("/env/started", now_iso());
}

}  // namespace

std::string default_run_folder(const std::string& name, bool resume) {
  fs::path base = fs::path("runs") / name;
  if (resume) {  // the newest of runs/<name>, runs/<name>-2, ...
    fs::path newest;
    for (int k = 1; fs::exists(k == 1 ? base : fs::path(base.string() + "-" + std::to_string(k))); ++k) {
      newest = k == 1 ? base : fs::path(base.string() + "-" + std::to_string(k));
    }
    GENFW_CHECK(!newest.empty(), "--resume: no earlier run of '", name, "' under runs/ (pass --out DIR)");
    return newest.string();
  }
  fs::path candidate = base;
  for (int k = 2; fs::exists(candidate); ++k) candidate = base.string() + "-" + std::to_string(k);
  return candidate.string();
}

namespace {

// Options of the dataset with its split set to "test" (when it has a split).
Options test_split_options(const ComponentConfig& data, const Registry& registry) {
  Options options = data.options;
  if (registry.find(data.plugin, Kind::dataset).schema.find("split")) options.set("split", std::string("test"));
  return options;
}

struct Components {
  std::unique_ptr<Dataset> data;
  std::unique_ptr<Model> model;
  std::unique_ptr<Objective> objective;
  std::unique_ptr<Sampler> sampler;
  std::vector<std::unique_ptr<Metric>> metrics;
  BuildContext context;
};

Components build_components(const ExperimentConfig& config, const Registry& registry, torch::Device device) {
  Components c;
  c.context.device = device;
  c.context.experiment_dir = fs::path(config.path).parent_path().string();
  c.context.cache_dir = (fs::path("runs") / ".cache").string();
  c.data = registry.create<Dataset>(config.data.plugin, Kind::dataset, config.data.options, c.context);
  const ComponentInfo& data_info = registry.find(config.data.plugin, Kind::dataset);
  c.context.data = call_plugin(data_info, "info()", [&] { return c.data->info(); });
  c.context.data.name = config.data.plugin;
  c.model = registry.create<Model>(config.model.plugin, Kind::model, config.model.options, c.context);
  c.model->to(device);
  if (config.objective) {
    c.objective = registry.create<Objective>(config.objective->plugin, Kind::objective, config.objective->options,
                                             c.context);
  }
  c.sampler = registry.create<Sampler>(config.sampler.plugin, Kind::sampler, config.sampler.options, c.context);
  for (const auto& metric : config.metrics) {
    c.metrics.push_back(registry.create<Metric>(metric.plugin, Kind::metric, metric.options, c.context));
  }
  return c;
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

// Draws the samples in batches; logs the first batch's reported steps as a trajectory.
torch::Tensor draw_samples(const ExperimentConfig& config, const Registry& registry, Components& c, RunLog& log,
                           torch::Device device) {
  const ComponentInfo& info = registry.find(config.sampler.plugin, Kind::sampler);
  int64_t total = config.sampling.integer("num_samples"), batch = config.sampling.integer("batch_size");
  std::vector<torch::Tensor> parts, trajectory_x, trajectory_x0;
  std::vector<double> trajectory_levels;
  int64_t nfe_total = 0, calls = 0;
  const std::string x_init_spec = config.sampling.string("x_init");
  const torch::Tensor x_init = x_init_spec.empty() ? torch::Tensor() : load_x_init(x_init_spec, total, c.context.data);
  c.model->eval();
  auto start = std::chrono::steady_clock::now();
  for (int64_t done = 0; done < total; done += batch) {
    SampleContext context;
    context.model = c.model.get();
    context.num_samples = std::min(batch, total - done);
    context.data = c.context.data;
    context.device = device;
    if (x_init.defined()) context.x_init = x_init.slice(0, done, done + context.num_samples).to(device);
    if (done == 0) {
      context.on_step = [&](const StepRecord& record) {
        int64_t keep = std::min<int64_t>(16, record.x.size(0));
        trajectory_x.push_back(record.x.slice(0, 0, keep).detach().to(torch::kCPU, torch::kFloat32));
        if (record.x0_pred.defined()) {
          trajectory_x0.push_back(record.x0_pred.slice(0, 0, keep).detach().to(torch::kCPU, torch::kFloat32));
        }
        trajectory_levels.push_back(record.noise_level);
      };
    }
    torch::Tensor x = call_plugin(info, "sample()", [&] {
      if (c.sampler->needs_gradients()) return c.sampler->sample(context);
      torch::NoGradGuard no_grad;
      return c.sampler->sample(context);
    });
    auto expected = context.batch_shape(context.num_samples);
    GENFW_CHECK(x.sizes().vec() == expected, "sampler '", config.sampler.plugin, "' returned samples of shape ",
                x.sizes(), ", expected ", c10::IntArrayRef(expected));
    parts.push_back(x.detach().to(torch::kCPU, torch::kFloat32));
    nfe_total += context.nfe;
    ++calls;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  torch::Tensor samples = torch::cat(parts);
  log.write_tensor("/samples", samples);
  log.set_attribute("/samples", "low", std::to_string(c.context.data.low));
  log.set_attribute("/samples", "high", std::to_string(c.context.data.high));
  if (!trajectory_x.empty()) {
    log.write_tensor("/trajectory/x", torch::stack(trajectory_x));
    if (trajectory_x0.size() == trajectory_x.size()) log.write_tensor("/trajectory/x0_pred", torch::stack(trajectory_x0));
    log.write_tensor("/trajectory/noise_level", torch::tensor(trajectory_levels, torch::kFloat32));
  }
  log.write_scalar("/timing/sample_seconds", seconds);
  log.write_scalar("/timing/num_samples", double(total));
  log.write_scalar("/timing/nfe", calls ? double(nfe_total) / double(calls) : 0.0);  // per sample
  log.write_scalar("/timing/samples_per_second", seconds > 0 ? double(total) / seconds : 0.0);
  log.flush();
  std::cerr << "sampled " << total << " in " << seconds << " s (NFE " << (calls ? nfe_total / calls : 0) << ")\n";
  return samples;
}

void write_pictures(const torch::Tensor& samples, const DataInfo& data, const std::string& png, int64_t count) {
  if (count <= 0) return;
  if (data.is_image()) write_image_grid(png, samples, data.low, data.high, count);
  else if (data.shape.size() == 1 && data.shape[0] == 2) {
    double extent = std::max(std::abs(data.low), std::abs(data.high));
    write_histogram_2d(png, samples, -extent, extent);
  }
}

void compute_metrics(const ExperimentConfig& config, const Registry& registry, Components& c, RunLog& log,
                     const torch::Tensor& samples, torch::Device device, int64_t step) {
  if (config.metrics.empty()) return;
  std::unique_ptr<Dataset> test_data =
      registry.create<Dataset>(config.data.plugin, Kind::dataset, test_split_options(config.data, registry), c.context);
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < c.metrics.size(); ++i) {
    const ComponentInfo& info = registry.find(config.metrics[i].plugin, Kind::metric);
    MetricContext context;
    context.model = c.model.get();
    context.samples = samples;
    context.train_data = c.data.get();
    context.test_data = test_data.get();
    context.data = c.context.data;
    context.device = device;
    context.cache_dir = c.context.cache_dir;
    context.seed = config.seed;
    fs::create_directories(context.cache_dir);
    // No grad guard here: a metric may train its feature extractor on first use.
    MetricResult result = call_plugin(info, "compute()", [&] { return c.metrics[i]->compute(context); });
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& [name, value] : result.values) {
      log.append_metric(name, {value, step, wall}, info.name, result.provenance);
      std::cerr << "metric " << name << " = " << value << "\n";
    }
    log.flush();
  }
}

}  // namespace

std::string run_experiment(const RunRequest& request, const Registry& registry) {
  std::vector<std::string> overrides = request.overrides;
  ExperimentConfig config;
  std::string parent_checkpoint;
  if (!request.parent_run.empty()) {
    RunLog parent = RunLog::open(request.parent_run, false);
    std::string checkpoint = parent.attribute("/", "checkpoint");
    GENFW_CHECK(!checkpoint.empty(), request.parent_run, " has no checkpoint (was it trained with [log] checkpoint = true?)");
    parent_checkpoint = (fs::path(request.parent_run).parent_path() / checkpoint).string();
    // The parent's training is done: sample its weights, don't retrain.
    std::string parent_config = parent.read_string("/config");
    if (!request.sampler.empty()) parent_config = with_sampler(parent_config, request.parent_run, request.sampler);
    config = load_experiment_text(parent_config, request.parent_run, overrides, registry);
    config.train.reset();
    config.objective.reset();
    if (!request.sampler.empty()) config.name += "-" + config.sampler.plugin;
  } else {
    config = load_experiment(request.experiment, overrides, registry);
  }
  if (!request.device.empty()) config.device = request.device;
  if (request.print_config) {
    std::cout << config.resolved_toml();
    return "";
  }
  check_composition(config, registry);
  torch::Device device = resolve_device(config.device);
  torch::manual_seed(config.seed);

  std::string out_dir = request.out_dir.empty() ? default_run_folder(config.name, request.resume) : request.out_dir;
  fs::create_directories(out_dir);
  std::string run_file = (fs::path(out_dir) / (config.name + ".h5")).string();
  std::string checkpoint = (fs::path(out_dir) / "checkpoint.pt").string();
  GENFW_CHECK(request.resume || !fs::exists(run_file), run_file,
              " already exists; pass --resume to continue it or another --out");

  Components c = build_components(config, registry, device);
  if (!parent_checkpoint.empty()) load_weights_for_sampling(*c.model, parent_checkpoint);

  RunLog log = request.resume ? RunLog::open(run_file, true) : RunLog::create(run_file);
  log.write_string("/config", config.resolved_toml());
  write_environment(log, device, config.seed);
  log.set_attribute("/", "experiment", config.name);
  log.set_attribute("/", "dataset", config.data.plugin);
  log.set_attribute("/", "model", config.model.plugin);
  log.set_attribute("/", "objective", config.objective ? config.objective->plugin : "");
  log.set_attribute("/", "sampler", config.sampler.plugin);
  log.set_attribute("/", "num_parameters", std::to_string(count_parameters(*c.model)));
  log.set_attribute("/", "status", "running");
  if (!request.parent_run.empty()) log.set_attribute("/", "parent", fs::absolute(request.parent_run).string());
  log.flush();

  int64_t step = 0;
  if (config.train && config.train->integer("steps") > 0) {
    const ComponentInfo& objective_info = registry.find(config.objective->plugin, Kind::objective);
    Trainer trainer(*c.model, *c.objective, objective_info, *c.data, config, device, log, checkpoint);
    TrainOutcome outcome = trainer.run(request.resume);
    trainer.use_ema_weights();
    step = outcome.steps;
  } else if (!parent_checkpoint.empty()) {
    log.set_attribute("/", "checkpoint", fs::relative(parent_checkpoint, out_dir).string());
  }
  torch::Tensor samples = draw_samples(config, registry, c, log, device);
  write_pictures(samples, c.context.data, (fs::path(out_dir) / (config.name + ".png")).string(),
                 config.log.integer("grid_samples"));
  compute_metrics(config, registry, c, log, samples, device, step);
  log.set_attribute("/", "status", "completed");
  log.flush();
  return run_file;
}

std::vector<std::string> run_with_sweep(const RunRequest& request, const Registry& registry,
                                        const std::vector<std::string>& sweep_arguments) {
  ExperimentConfig config = request.parent_run.empty()
                                ? load_experiment(request.experiment, request.overrides, registry)
                                : ExperimentConfig{};
  std::map<std::string, std::vector<std::string>> sweep = config.sweep;
  for (const auto& argument : sweep_arguments) {
    auto eq = argument.find('=');
    GENFW_CHECK(eq != std::string::npos, "--sweep ", argument, ": expected table.key=v1,v2,...");
    std::vector<std::string> values;
    std::string list = argument.substr(eq + 1);
    for (size_t start = 0; start <= list.size();) {
      size_t comma = std::min(list.find(',', start), list.size());
      values.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    sweep[argument.substr(0, eq)] = values;
  }
  if (sweep.empty()) return {run_experiment(request, registry)};
  std::vector<std::vector<std::string>> combinations{{}};
  for (const auto& [key, values] : sweep) {
    std::vector<std::vector<std::string>> next;
    for (const auto& partial : combinations) {
      for (const auto& value : values) {
        auto extended = partial;
        extended.push_back(key + "=" + value);
        next.push_back(extended);
      }
    }
    combinations = next;
  }
  // A sweep of sampler keys only (DDIM steps, η, ...) trains once: every other
  // variant samples the first one's weights, as `runner sample` does, so the
  // table compares samplers on the same model.
  const bool samples_one_training =
      request.parent_run.empty() && config.train && config.train->integer("steps") > 0 &&
      config.log.flag("checkpoint") &&
      std::all_of(sweep.begin(), sweep.end(), [](const auto& entry) { return entry.first.rfind("sampler.", 0) == 0; });
  std::vector<std::string> files;
  for (const auto& assignments : combinations) {
    RunRequest variant = request;
    if (samples_one_training && !files.empty()) variant.parent_run = files.front();
    std::string suffix;
    for (const auto& a : assignments) {
      variant.overrides.push_back(a);
      std::string value = a.substr(a.find('=') + 1);
      value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
      suffix += "-" + a.substr(a.rfind('.', a.find('=')) + 1, a.find('=') - a.rfind('.', a.find('=')) - 1) + value;
    }
    std::string name = (request.parent_run.empty() ? config.name : fs::path(request.parent_run).stem().string()) + suffix;
    variant.overrides.push_back("name=\"" + name + "\"");
    if (!request.out_dir.empty()) variant.out_dir = (fs::path(request.out_dir) / name).string();
    std::cerr << "sweep: " << name << (variant.parent_run.empty() ? "" : " (the weights of " + files.front() + ")")
              << "\n";
    files.push_back(run_experiment(variant, registry));
  }
  return files;
}

}  // namespace genfw
