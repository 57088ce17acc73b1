// genfw_bench: the C++ half of the benchmark harness (bench/run.py, bench/README.md).
// One measurement per process, one JSON object on stdout:
//
//   genfw_bench train  EXPERIMENT.toml [--set table.key=value]... [--block K] [--reps R] [--path runner]
//       the runner's training step (genfw::Trainer + objective plugin + dataset plugin)
//       against a bare LibTorch loop written here by hand on the same model instance
//       and one fixed batch; blocks of K steps of each, alternating (--path runner: the
//       trainer alone, for the peak memory of a runner process).
//   genfw_bench sample EXPERIMENT.toml [--set ...]... [--reps R]
//       one sampler call through the runner's Pipeline::sample() (grad off, step callback).
//   genfw_bench gemm [--n N] [--reps R]
//       a float32 N×N torch::mm, for the machine's GEMM throughput.
//
// Common: --threads N (0 = cores), --flush-denormals 0|1, --keep-freed-memory 0|1 (the
// runner's process settings, default 1), --device,
// --resolved FILE (write the resolved experiment TOML for the Python twin).
// On CUDA the JSON carries peak_device_mib (torch.cuda.max_memory_allocated's measure).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "genfw/config.hpp"
#include "genfw/device_memory.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/process.hpp"
#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "genfw/sampler.hpp"
#include "genfw/trainer.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string mode, experiment, device = "cpu", resolved, path = "both";
  std::vector<std::string> overrides;
  genfw::ProcessSettings process;  // the runner's defaults; --flush-denormals 0 / --keep-freed-memory 0 turn them off
  int64_t block = 10, reps = 5, n = 2048;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  GENFW_CHECK(!v.empty(), "median of no values");
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::string json_list(const std::vector<double>& v) {
  std::ostringstream out;
  out.precision(9);
  out << "[";
  for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
  return out.str() + "]";
}

double peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

void sync(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

int64_t count_parameters(torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

// The runner's own pipeline: the config resolved once, the components built once.
std::unique_ptr<genfw::Pipeline> build(const Args& args, const genfw::Registry& registry) {
  genfw::RunRequest request;
  request.experiment = args.experiment;
  request.overrides = args.overrides;
  request.device = args.device;
  auto pipeline = std::make_unique<genfw::Pipeline>(request, registry);
  if (!args.resolved.empty()) std::ofstream(args.resolved) << pipeline->config().resolved_toml();
  torch::manual_seed(pipeline->config().seed);
  return pipeline;
}

// The training step written by hand in plain LibTorch: a minibatch drawn from the
// training set held as one tensor (a fresh permutation every epoch), the objective's
// loss, backward, optional clipping, warm-up, optimizer step, optional EMA — the same
// algorithm the experiment asks of the trainer, without the framework.
class BareLoop {
 public:
  BareLoop(genfw::Model& model, const genfw::ExperimentConfig& config, genfw::Batch all, int64_t batch_size)
      : all_(std::move(all)), batch_size_(batch_size), params_(model.parameters()) {
    const genfw::Options& train = *config.train;
    const genfw::OptimizerConfig o = config.optimizer_for("model");
    GENFW_CHECK(o.optimizer == "adam", "genfw_bench: the bare loop implements adam, not ", o.optimizer);
    optimizer_ = std::make_unique<torch::optim::Adam>(
        params_, torch::optim::AdamOptions(o.lr).betas({o.betas[0], o.betas[1]}).weight_decay(o.weight_decay));
    lr_ = o.lr;
    grad_clip_ = train.real("grad_clip");
    warmup_ = train.integer("warmup_steps");
    ema_decay_ = train.real("ema_decay");
    torch::NoGradGuard no_grad;
    if (ema_decay_ > 0) {
      for (const auto& p : params_) shadow_.push_back(p.detach().clone());
    }
    const auto device = all_.x.device();
    const std::string& objective = config.objective->plugin;
    if (objective == "dsm") {
      score_ = genfw::as<genfw::ScoreModel>(model);
      GENFW_CHECK(score_ != nullptr, "genfw_bench: bare dsm loop needs a model with a direct score");
      auto sigmas = config.objective->options.reals("sigmas");
      auto levels = sigmas.empty() ? score_->noise_levels() : torch::tensor(sigmas, torch::kFloat64);
      levels_ = levels.to(device, torch::kFloat32);
      anneal_power_ = config.objective->options.real("anneal_power");
    } else if (objective == "ddpm") {
      eps_ = genfw::as<genfw::NoisePredictor>(model);
      GENFW_CHECK(eps_ != nullptr && eps_->num_classes() == 0 &&
                      eps_->prediction_type() == genfw::PredictionType::epsilon,
                  "genfw_bench: bare ddpm loop needs an unconditional ε-prediction model");
      alphas_cumprod_ = eps_->schedule().alphas_cumprod.to(device, torch::kFloat32);
    } else {
      throw genfw::Error("genfw_bench: no bare loop for objective '" + objective + "' (dsm, ddpm)");
    }
  }

  void step() {
    draw_batch();
    optimizer_->zero_grad();
    torch::Tensor loss = score_ ? dsm_loss() : ddpm_loss();
    loss.backward();
    if (grad_clip_ > 0) torch::nn::utils::clip_grad_norm_(params_, grad_clip_);
    if (warmup_ > 0) {
      double scale = std::min(1.0, double(step_ + 1) / double(warmup_));
      for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr_ * scale);
    }
    optimizer_->step();
    if (ema_decay_ > 0) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < params_.size(); ++i) shadow_[i].mul_(ema_decay_).add_(params_[i].detach(), 1 - ema_decay_);
    }
    ++step_;
  }

 private:
  void draw_batch() {
    const int64_t size = all_.x.size(0);
    if (!permutation_.defined() || position_ + batch_size_ > size) {
      permutation_ = torch::randperm(size, torch::TensorOptions().dtype(torch::kLong).device(all_.x.device()));
      position_ = 0;
    }
    auto indices = permutation_.slice(0, position_, position_ + batch_size_);
    position_ += batch_size_;
    batch_.x = all_.x.index_select(0, indices);
    if (all_.y.defined()) batch_.y = all_.y.index_select(0, indices);
  }
  torch::Tensor dsm_loss() {  // Song & Ermon 2019, eq. 5-6
    const auto& x = batch_.x;
    const int64_t n = x.size(0);
    auto index = torch::randint(levels_.size(0), {n}, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
    auto sigma = levels_.index_select(0, index);
    auto sigma_b = sigma.reshape(broadcast_shape(x));
    auto z = torch::randn_like(x);
    auto s = score_->score(x + sigma_b * z, sigma);
    return (0.5 * (s + z / sigma_b).pow(2).reshape({n, -1}).sum(1) * sigma.pow(anneal_power_)).mean();
  }
  torch::Tensor ddpm_loss() {  // Ho et al. 2020, Alg. 1
    const auto& x0 = batch_.x;
    const int64_t n = x0.size(0);
    auto t = torch::randint(alphas_cumprod_.size(0), {n}, torch::TensorOptions().dtype(torch::kLong).device(x0.device()));
    auto a = alphas_cumprod_.index_select(0, t).reshape(broadcast_shape(x0));
    auto eps = torch::randn_like(x0);
    return torch::mse_loss(eps_->predict(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, torch::Tensor()), eps);
  }
  static std::vector<int64_t> broadcast_shape(const torch::Tensor& x) {
    std::vector<int64_t> shape(x.dim(), 1);
    shape[0] = x.size(0);
    return shape;
  }

  genfw::Batch all_, batch_;
  int64_t batch_size_, position_ = 0;
  torch::Tensor permutation_;
  std::vector<torch::Tensor> params_, shadow_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  double lr_ = 0, grad_clip_ = 0, ema_decay_ = 0, anneal_power_ = 2;
  int64_t warmup_ = 0, step_ = 0;
  genfw::ScoreModel* score_ = nullptr;
  genfw::NoisePredictor* eps_ = nullptr;
  torch::Tensor levels_, alphas_cumprod_;
};

// Forwards to the experiment's dataset plugin. The trainer asks it for one batch per step;
// before every `block`-th request it runs one block of the bare loop (timed apart), so the
// two paths alternate block by block (A B A B ...) and a shared machine's changing load
// hits both alike. Trainer block k spans requests k·block .. (k+1)·block, which covers
// every per-step cost of Trainer::run, its loss check every log_every (= block) steps and run-file writes included.
class AlternatingDataset : public genfw::Dataset {
 public:
  AlternatingDataset(genfw::Dataset& inner, int64_t block, std::function<double()> bare_block)
      : inner_(inner), block_(block), bare_block_(std::move(bare_block)) {}
  genfw::DataInfo info() const override { return inner_.info(); }
  int64_t size() const override { return inner_.size(); }
  genfw::Batch get(const torch::Tensor& indices) override {
    if (requests_ % block_ == 0) {
      if (requests_ > 0) end_trainer_block();
      bare_blocks.push_back(bare_block_());
      resumed_ = Clock::now();
    }
    ++requests_;
    return inner_.get(indices);
  }
  void end_trainer_block() { trainer_blocks.push_back(seconds_since(resumed_) / double(block_)); }

  std::vector<double> bare_blocks, trainer_blocks;  // seconds per step

 private:
  genfw::Dataset& inner_;
  int64_t block_, requests_ = 0;
  std::function<double()> bare_block_;
  Clock::time_point resumed_;
};

std::string train(Args args, const genfw::Registry& registry, torch::Device device) {
  // One warm-up block then `reps` timed blocks of each path; log_every = block.
  const int64_t total = (args.reps + 1) * args.block;
  for (std::string o : {"train.steps=" + std::to_string(total), "train.log_every=" + std::to_string(args.block),
                        std::string("log.checkpoint=false"), std::string("log.progress=\"off\"")}) {
    args.overrides.push_back(o);
  }
  auto pipeline = build(args, registry);
  genfw::Components& c = pipeline->components();
  const genfw::ExperimentConfig& config = pipeline->config();
  const int64_t batch_size = config.train->integer("batch_size");
  c.model->train();

  // --path runner: the trainer alone (what the runner's process holds, for its peak memory).
  std::unique_ptr<BareLoop> bare;
  if (args.path == "both") {
    genfw::Batch all = c.train_data->get(torch::arange(c.train_data->size(), torch::kLong));
    all.x = all.x.to(device);
    if (all.y.defined()) all.y = all.y.to(device);
    bare = std::make_unique<BareLoop>(*c.model, config, std::move(all), batch_size);
  }
  auto bare_block = [&] {
    if (!bare) return 0.0;
    sync(device);
    auto start = Clock::now();
    for (int64_t i = 0; i < args.block; ++i) bare->step();
    sync(device);
    return seconds_since(start) / double(args.block);
  };
  bare_block();  // warm-up

  // The runner's path: genfw::Trainer with the experiment's dataset and objective plugins.
  AlternatingDataset data(*c.train_data, args.block, bare_block);
  fs::path dir = fs::temp_directory_path() / ("genfw_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    genfw::RunLog log = genfw::RunLog::create((dir / "bench.h5").string());
    genfw::Trainer trainer({*c.model, *c.model.info, *c.objective, *c.objective.info, data, *c.train_data.info},
                           genfw::TrainSettings::from(config), device, log, (dir / "checkpoint.pt").string());
    auto outcome = trainer.run(false);
    sync(device);
    data.end_trainer_block();
    GENFW_CHECK(outcome.steps == total, "genfw_bench: the trainer took ", outcome.steps, " steps, expected ", total);
  }
  fs::remove_all(dir);
  std::vector<double> bare_blocks(data.bare_blocks.begin() + 1, data.bare_blocks.end());  // first: beside the trainer's warm-up
  std::vector<double> runner_blocks(data.trainer_blocks.begin() + 1, data.trainer_blocks.end());  // first: warm-up

  std::ostringstream out;
  out.precision(9);
  out << "{\"mode\": \"train\", \"path\": \"" << args.path << "\", \"parameters\": " << count_parameters(*c.model)
      << ", \"batch_size\": " << batch_size << ", \"block\": " << args.block
      << ", \"bare_step_s\": " << median(bare_blocks) << ", \"runner_step_s\": " << median(runner_blocks)
      << ", \"bare_blocks\": " << json_list(bare_blocks) << ", \"runner_blocks\": " << json_list(runner_blocks);
  return out.str();
}

std::string sample(Args args, const genfw::Registry& registry, torch::Device device) {
  // One sampler call of batch_size samples, exactly as the runner's Pipeline::sample() draws them.
  const int64_t n = build(args, registry)->config().sampling.integer("batch_size");  // resolves, builds nothing
  args.overrides.push_back("sampler.num_samples=" + std::to_string(n));
  auto pipeline = build(args, registry);
  std::vector<double> times;
  double nfe = 0;
  bool finite = true;
  for (int64_t r = 0; r <= args.reps; ++r) {  // r = 0: warm-up
    sync(device);
    auto start = Clock::now();
    genfw::SampleOutcome drawn = pipeline->sample();
    double seconds = seconds_since(start);
    if (r > 0) times.push_back(seconds);
    nfe = drawn.nfe;
    finite = finite && torch::isfinite(drawn.samples).all().item<bool>();
  }
  std::ostringstream out;
  out.precision(9);
  out << "{\"mode\": \"sample\", \"parameters\": " << count_parameters(*pipeline->components().model)
      << ", \"num_samples\": " << n << ", \"nfe\": " << nfe << ", \"sample_s\": " << median(times)
      << ", \"runs\": " << json_list(times) << ", \"finite\": " << (finite ? "true" : "false");
  return out.str();
}

std::string gemm(const Args& args, torch::Device device) {
  auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  auto a = torch::randn({args.n, args.n}, options), b = torch::randn({args.n, args.n}, options);
  std::vector<double> times;
  for (int64_t r = 0; r < args.reps + 2; ++r) {  // two warm-up products
    sync(device);
    auto start = Clock::now();
    auto c = torch::mm(a, b);
    sync(device);
    if (r >= 2) times.push_back(seconds_since(start));
  }
  double t = median(times);
  std::ostringstream out;
  out.precision(9);
  out << "{\"mode\": \"gemm\", \"n\": " << args.n << ", \"gemm_s\": " << t
      << ", \"gflops\": " << 2.0 * double(args.n) * double(args.n) * double(args.n) / t / 1e9
      << ", \"runs\": " << json_list(times);
  return out.str();
}

Args parse(int argc, char** argv) {
  Args a;
  GENFW_CHECK(argc >= 2, "usage: genfw_bench train|sample EXPERIMENT.toml [--set k=v]... | gemm [--n N]");
  a.mode = argv[1];
  int i = 2;
  if (a.mode != "gemm") {
    GENFW_CHECK(argc >= 3, "genfw_bench ", a.mode, ": missing EXPERIMENT.toml");
    a.experiment = argv[i++];
  }
  for (; i < argc; ++i) {
    std::string key = argv[i];
    GENFW_CHECK(i + 1 < argc, "genfw_bench: ", key, " needs a value");
    std::string value = argv[++i];
    if (key == "--set") a.overrides.push_back(value);
    else if (key == "--threads") a.process.threads = std::stoi(value);
    else if (key == "--flush-denormals") a.process.flush_denormals = value == "1";
    else if (key == "--keep-freed-memory") a.process.keep_freed_memory = value == "1";
    else if (key == "--device") a.device = value;
    else if (key == "--resolved") a.resolved = value;
    else if (key == "--path") a.path = value;
    else if (key == "--block") a.block = std::stoll(value);
    else if (key == "--reps") a.reps = std::stoll(value);
    else if (key == "--n") a.n = std::stoll(value);
    else throw genfw::Error("genfw_bench: unknown option " + key);
  }
  GENFW_CHECK(a.block >= 1 && a.reps >= 1, "genfw_bench: --block and --reps must be >= 1");
  GENFW_CHECK(a.path == "both" || a.path == "runner", "genfw_bench: --path is both or runner, got ", a.path);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args args = parse(argc, argv);
    const int threads = genfw::apply_process_settings(args.process).threads;  // the runner's own set-up
    torch::Device device = genfw::resolve_device(args.device);
    std::string result;
    if (args.mode == "gemm") {
      result = gemm(args, device);
    } else {
      genfw::Registry registry;
      registry.load_search_path({});
      if (args.mode == "train") result = train(args, registry, device);
      else if (args.mode == "sample") result = sample(args, registry, device);
      else throw genfw::Error("genfw_bench: unknown mode '" + args.mode + "' (train, sample, gemm)");
    }
    std::cout << result << ", \"threads\": " << threads << ", \"flush_denormals\": " << args.process.flush_denormals
              << ", \"keep_freed_memory\": " << args.process.keep_freed_memory << ", \"device\": \"" << device.str()
              << "\", \"torch\": \"" << TORCH_VERSION << "\", \"peak_rss_mib\": " << peak_rss_mib();
    if (auto peak = genfw::peak_device_memory_bytes(device)) std::cout << ", \"peak_device_mib\": " << double(*peak) / 1048576.0;
    std::cout << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "genfw_bench: " << e.what() << "\n";
    return 1;
  }
}
