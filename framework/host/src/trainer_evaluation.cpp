// The trainer's evaluations during training ([eval]): when one is due, running it
// on the EMA weights without disturbing training (weights, mode, random streams
// and clock restored), and the snapshots it keeps (snapshots.hpp).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "genfw/distributed.hpp"
#include "genfw/durable.hpp"
#include "genfw/sha256.hpp"
#include "genfw/trainer.hpp"
#include "snapshots.hpp"

namespace genfw {

namespace fs = std::filesystem;

std::string snapshot_file(int64_t step, bool best) {
  char name[64];
  std::snprintf(name, sizeof name, "snapshots/%sstep_%08lld.pt", best ? "best_" : "", (long long)step);
  return name;
}

std::vector<KeptSnapshot> last_snapshots(const RunLog& log) {
  std::vector<KeptSnapshot> kept;
  std::istringstream words(log.attribute("/", "snapshots"));
  std::string word;
  while (words >> word) {
    const auto colon = word.find(':');
    if (colon == std::string::npos) continue;
    kept.push_back({std::stoll(word.substr(0, colon)), word.substr(colon + 1)});
  }
  return kept;
}

void set_last_snapshots(RunLog& log, const std::vector<KeptSnapshot>& snapshots) {
  std::string text;
  for (const auto& s : snapshots) text += (text.empty() ? "" : " ") + std::to_string(s.step) + ":" + s.sha256;
  log.set_attribute("/", "snapshots", text);
}

namespace {

// The default generators of the CPU and of the training device, restored on scope exit:
// an evaluation's sampler and metrics draw no number the training would have drawn.
class RandomStreamsKept {
 public:
  explicit RandomStreamsKept(torch::Device device) {
    keep(at::detail::getDefaultCPUGenerator());
    if (!device.is_cpu()) keep(at::globalContext().defaultGenerator(device));
  }
  ~RandomStreamsKept() {
    for (auto& [generator, state] : kept_) {
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(state);
    }
  }
  RandomStreamsKept(const RandomStreamsKept&) = delete;
  RandomStreamsKept& operator=(const RandomStreamsKept&) = delete;

 private:
  void keep(at::Generator generator) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    kept_.emplace_back(generator, generator.get_state());
  }
  std::vector<std::pair<at::Generator, torch::Tensor>> kept_;
};

// The EMA weights in the model (when there is an EMA) and eval mode, for the scope;
// the trained weights and train mode after it.
class EmaWeightsInPlace {
 public:
  EmaWeightsInPlace(torch::nn::Module& model, Ema* ema) : model_(model) {
    if (ema != nullptr) {
      torch::NoGradGuard no_grad;
      for (const auto& p : model.parameters()) trained_.push_back(p.detach().clone());
      ema->copy_to(model);
    }
    model.eval();
  }
  ~EmaWeightsInPlace() {
    torch::NoGradGuard no_grad;
    auto parameters = model_.parameters();
    for (size_t i = 0; i < trained_.size(); ++i) parameters[i].copy_(trained_[i]);
    model_.train();
  }
  EmaWeightsInPlace(const EmaWeightsInPlace&) = delete;
  EmaWeightsInPlace& operator=(const EmaWeightsInPlace&) = delete;

 private:
  torch::nn::Module& model_;
  std::vector<torch::Tensor> trained_;
};

bool evaluated_at(const RunLog& log, int64_t step) {
  if (!log.exists("/eval")) return false;
  for (const auto& name : log.children("/eval")) {
    for (const auto& row : log.read_series("/eval/" + name)) {
      if (row.step == step) return true;
    }
  }
  return false;
}

}  // namespace

bool Trainer::evaluation_due(bool last, bool timed_due) {
  if (!evaluation_.on() || last_evaluated_step_ == step_) return false;
  return last || timed_due || (evaluation_.every > 0 && step_ % evaluation_.every == 0);
}

void Trainer::evaluate_now() {
  flush_pending(true);  // the losses up to this step are in the file before the evaluation's rows
  const auto begin = std::chrono::steady_clock::now();
  const double train_seconds = elapsed();
  auto account = [&] {
    eval_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    last_evaluated_step_ = step_;
  };
  EvaluationVerdict verdict;
  try {
    RandomStreamsKept streams(device_);
    EmaWeightsInPlace weights(model_, ema_.get());
    verdict = evaluation_.evaluate(step_, train_seconds);
  } catch (const Interrupted&) {
    account();  // the trained weights are back: the step is whole, keep it to resume from
    if (checkpoints_ && is_rank0()) save_checkpoint();
    log_.flush();
    throw;
  }
  account();
  if (evaluation_.every_minutes > 0) {
    const double interval = evaluation_.every_minutes * 60.0;
    while (next_eval_seconds_ <= elapsed()) next_eval_seconds_ += interval;
  }
  if (is_rank0()) keep_snapshots(verdict);
  write_run_file();
}

void Trainer::keep_snapshots(const EvaluationVerdict& verdict) {
  if (evaluation_.keep_last == 0 && !verdict.best) return;
  const fs::path folder = fs::path(checkpoint_path_).parent_path();
  fs::create_directories(folder / "snapshots");
  const std::string bytes = checkpoint_bytes();
  const std::string digest = sha256_hex(bytes);
  if (evaluation_.keep_last > 0) {
    write_file_durably((folder / snapshot_file(step_, false)).string(), bytes);
    std::vector<KeptSnapshot> kept = last_snapshots(log_);
    kept.push_back({step_, digest});
    std::vector<KeptSnapshot> dropped;
    while (int64_t(kept.size()) > evaluation_.keep_last) dropped.push_back(kept.front()), kept.erase(kept.begin());
    set_last_snapshots(log_, kept);
    log_.flush();  // named no more before its file goes
    for (const auto& old : dropped) fs::remove(folder / snapshot_file(old.step, false));
  }
  if (verdict.best) {
    const std::string previous = log_.attribute("/", "best_step");
    write_file_durably((folder / snapshot_file(step_, true)).string(), bytes);
    log_.set_attribute("/", "best_step", step_);
    log_.set_attribute("/", "best_sha256", digest);
    log_.set_attribute("/", "best_metric", verdict.metric);
    log_.set_attribute("/", "best_value", verdict.value);
    log_.flush();
    if (!previous.empty() && std::stoll(previous) != step_) fs::remove(folder / snapshot_file(std::stoll(previous), true));
  }
}

void Trainer::forget_evaluations_after_checkpoint() {
  // The resumed steps evaluate again: rows after the checkpoint's step are the earlier attempt's.
  log_.truncate_series("/eval", step_ + 1);
  if (evaluated_at(log_, step_)) last_evaluated_step_ = step_;  // before the stop: not again
  if (!is_rank0()) return;
  const fs::path folder = fs::path(checkpoint_path_).parent_path();
  std::vector<KeptSnapshot> kept = last_snapshots(log_), before;
  for (const auto& s : kept) {
    if (s.step <= step_) before.push_back(s);
  }
  if (before.size() != kept.size()) {
    set_last_snapshots(log_, before);
    log_.flush();
    for (const auto& s : kept) {
      if (s.step > step_) fs::remove(folder / snapshot_file(s.step, false));
    }
  }
  const std::string best = log_.attribute("/", "best_step");
  if (!best.empty() && std::stoll(best) > step_) {
    for (const char* key : {"best_step", "best_sha256", "best_metric", "best_value"}) log_.set_attribute("/", key, "");
    log_.flush();
    fs::remove(folder / snapshot_file(std::stoll(best), true));
  }
}

}  // namespace genfw
