#include "genfw/precision.hpp"
#include "genfw/trainer.hpp"

#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "genfw/durable.hpp"
#include "genfw/distributed.hpp"
#include "genfw/progress.hpp"
#include "genfw/registry.hpp"
#include "genfw/sha256.hpp"
#include "snapshots.hpp"

namespace genfw {

namespace fs = std::filesystem;

// ---- data order -------------------------------------------------------------

namespace {
// The permutation of one epoch. Drawing it costs ~8 ns per item (0.17 ms for 20k points,
// as much as a small model's whole training step), so the last one drawn is kept (per
// thread) and every step of the epoch slices it instead of drawing it again.
const torch::Tensor& epoch_permutation(int64_t epoch, int64_t dataset_size, uint64_t seed) {
  struct Cached {
    uint64_t seed = 0;
    int64_t epoch = -1, size = 0;
    torch::Tensor permutation;
  };
  thread_local Cached cached;
  if (cached.epoch != epoch || cached.size != dataset_size || cached.seed != seed) {
    auto generator = at::detail::createCPUGenerator(seed * 1000003ULL + uint64_t(epoch) + 1);
    cached.permutation = torch::randperm(dataset_size, generator, torch::kLong);
    cached.seed = seed;
    cached.epoch = epoch;
    cached.size = dataset_size;
  }
  return cached.permutation;
}
}  // namespace

torch::Tensor batch_indices(int64_t step, int64_t batch_size, int64_t dataset_size, uint64_t seed) {
  GENFW_CHECK(dataset_size > 0, "the training dataset is empty");
  std::vector<torch::Tensor> parts;
  int64_t position = step * batch_size, needed = batch_size;
  while (needed > 0) {
    int64_t epoch = position / dataset_size, offset = position % dataset_size;
    const torch::Tensor& permutation = epoch_permutation(epoch, dataset_size, seed);
    int64_t take = std::min(needed, dataset_size - offset);
    parts.push_back(permutation.slice(0, offset, offset + take));
    position += take;
    needed -= take;
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

// ---- trainer ----------------------------------------------------------------

struct Trainer::Group {
  std::vector<torch::Tensor> parameters;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  double lr = 0;
};

namespace {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& parameters,
                                                        const OptimizerConfig& c) {
  if (c.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(
        parameters, torch::optim::AdamOptions(c.lr).betas({c.betas[0], c.betas[1]}).weight_decay(c.weight_decay));
  }
  if (c.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        parameters, torch::optim::AdamWOptions(c.lr).betas({c.betas[0], c.betas[1]}).weight_decay(c.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      parameters, torch::optim::SGDOptions(c.lr).momentum(c.momentum).weight_decay(c.weight_decay));
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// The global 2-norm clipping of torch::nn::utils::clip_grad_norm_, minus its final
// .item(): LibTorch's C++ version returns the norm as a double, a host sync every step.
void clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return;
  for (const auto& g : grads) norms.push_back(g.norm(2));
  auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  auto coefficient = torch::clamp_max(max_norm / (total + 1e-6), 1.0);
  for (auto& g : grads) g.mul_(coefficient);
}

}  // namespace

// Module::load resizes a parameter to whatever the archive holds, silently: a model built
// from an edited /config (hidden = 64) would sample the checkpoint's 32-wide network. So every
// parameter and buffer must keep the shape the config gave it.
void load_with_shapes_checked(torch::nn::Module& model, torch::serialize::InputArchive& archive,
                              const std::string& checkpoint) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> built;
  for (const auto& item : model.named_parameters()) built.emplace_back(item.key(), item.value().sizes().vec());
  for (const auto& item : model.named_buffers()) built.emplace_back(item.key(), item.value().sizes().vec());
  model.load(archive);
  auto loaded = model.named_parameters();
  auto buffers = model.named_buffers();
  for (const auto& [name, shape] : built) {
    const torch::Tensor* now = loaded.find(name);
    if (now == nullptr) now = buffers.find(name);
    if (now == nullptr || now->sizes().vec() == shape) continue;
    throw Error(detail::concat("checkpoint ", checkpoint, " holds '", name, "' of shape ", now->sizes(),
                               ", but the model built from the run's config has ", c10::IntArrayRef(shape),
                               ": the run file's /config was edited, or the checkpoint is another run's"));
  }
}

// Drawn from the generator the checkpoint saves: a resumed run flips as the uninterrupted one.
torch::Tensor randomly_flipped(const torch::Tensor& images) {
  auto flip = (torch::rand({images.size(0)}) < 0.5).view({-1, 1, 1, 1});
  return torch::where(flip, images.flip({3}), images);
}

TrainSettings TrainSettings::from(const ExperimentConfig& config) {
  GENFW_CHECK(config.train.has_value(), config.path, ": no [train] table");
  const Options& train = *config.train;
  TrainSettings s;
  s.steps = train.integer("steps");
  s.batch_size = train.integer("batch_size");
  s.warmup_steps = train.integer("warmup_steps");
  s.lr_schedule = train.string("lr_schedule");
  s.lr_final = train.real("lr_final");
  s.accumulate = train.integer("accumulate");
  s.max_minutes = train.real("max_minutes");
  s.ema_warmup = train.flag("ema_warmup");
  s.log_every = train.integer("log_every");
  s.checkpoint_every = train.integer("checkpoint_every");
  s.grad_clip = train.real("grad_clip");
  s.ema_decay = train.real("ema_decay");
  s.seed = config.seed;
  s.checkpoints = config.log.flag("checkpoint");
  s.progress = config.log.string("progress");
  s.precision = train.string("precision");
  s.optimizer = config.optimizer_for("");
  for (const auto& [group, _] : config.group_optimizers) s.group_optimizers[group] = config.optimizer_for(group);
  s.origin = config.path;
  return s;
}

const OptimizerConfig& TrainSettings::optimizer_for(const std::string& group) const {
  auto it = group_optimizers.find(group);
  return it != group_optimizers.end() ? it->second : optimizer;
}

Trainer::Trainer(TrainParts parts, TrainSettings settings, torch::Device device, RunLog& log,
                 std::string checkpoint_path)
    : model_(parts.model),
      objective_(parts.objective),
      objective_info_(parts.objective_info),
      parts_(parts),
      settings_(std::move(settings)),
      device_(device),
      log_(log),
      checkpoint_path_(std::move(checkpoint_path)),
      progress_(settings_.progress, std::chrono::seconds(5), std::chrono::seconds(0)) {
  total_steps_ = settings_.steps;
  batch_size_ = settings_.batch_size;
  warmup_steps_ = settings_.warmup_steps;
  log_every_ = settings_.log_every;
  checkpoint_every_ = settings_.checkpoint_every;
  grad_clip_ = settings_.grad_clip;
  checkpoints_ = settings_.checkpoints;
  std::vector<std::string> names;
  for (auto& group : model_.parameter_groups()) {
    names.push_back(group.name);
    GENFW_CHECK(!group.parameters.empty(), "model '", parts_.model_info.name, "': parameter group '", group.name,
                "' has no parameters; there is nothing to train (remove [train] to sample it as it is)");
    auto g = std::make_unique<Group>();
    const OptimizerConfig& optimizer = settings_.optimizer_for(group.name);
    g->parameters = group.parameters;
    g->lr = optimizer.lr;
    g->optimizer = make_optimizer(group.parameters, optimizer);
    groups_[group.name] = std::move(g);
  }
  for (const auto& [name, _] : settings_.group_optimizers) {
    GENFW_CHECK(groups_.count(name), settings_.origin, ": [train.groups.", name,
                "] names no parameter group of model '", parts_.model_info.name, "'", unknown_name_hint(name, names));
  }
  if (settings_.ema_decay > 0) ema_ = std::make_unique<Ema>(model_, settings_.ema_decay);
  flip_images_ = parts_.data.info().horizontal_flip;
  GENFW_CHECK(!flip_images_ || parts_.data.info().is_image(), settings_.origin,
              ": [data] hflip needs images [C, H, W]; dataset '", parts_.data_info.name, "' yields vectors");
  parallel_ = data_parallel();
  const int world = parallel_ ? parallel_->world_size() : 1;
  if (parallel_) check_global_batch(batch_size_, world);
  GENFW_CHECK(batch_size_ % (world * settings_.accumulate) == 0, settings_.origin, ": [train] batch_size = ",
              batch_size_, " is the global batch: with accumulate = ", settings_.accumulate, " on ", world,
              " rank(s) it must be divisible by ", world * settings_.accumulate, " (micro-batch × accumulate × ranks)");
}

double lr_factor(int64_t step, int64_t steps, int64_t warmup_steps, const std::string& schedule,
                 double final_fraction) {
  if (warmup_steps > 0 && step < warmup_steps) return double(step + 1) / double(warmup_steps);
  if (schedule == "constant") return 1.0;
  const int64_t decay_steps = std::max<int64_t>(1, steps - warmup_steps - 1);  // the last step reaches the end
  const double progress = std::min(1.0, double(step - warmup_steps) / double(decay_steps));
  const double decay = schedule == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return final_fraction + (1.0 - final_fraction) * decay;
}

Trainer::~Trainer() = default;

// Training time: the wall time of this segment less its evaluations, after the earlier segments'.
double Trainer::elapsed() const {
  return seconds_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() -
         eval_seconds_;
}

void Trainer::update(const std::string& group, const torch::Tensor& loss) {
  auto it = groups_.find(group);
  GENFW_CHECK(it != groups_.end(), "objective '", objective_info_.name, "' updated parameter group '", group,
              "', which model '", parts_.model_info.name, "' does not have");
  Group& g = *it->second;
  const int64_t accumulate = settings_.accumulate;
  if (accumulate > 1) {
    // One update per step is what accumulation averages: an objective that updates several groups in
    // turn (a GAN: discriminator, then generator on the updated discriminator) would see stale weights.
    GENFW_CHECK(accumulated_loss_.empty() || accumulated_loss_.count(group), settings_.origin,
                ": [train] accumulate = ", accumulate, ", but objective '", objective_info_.name,
                "' updates several parameter groups in one step (", accumulated_loss_.begin()->first, ", ", group,
                "), each update depending on the last; gradient accumulation needs one update per step");
  }
  if (micro_ == 0) g.optimizer->zero_grad();
  {
    AutocastPause backward_in_the_forwards_dtypes;
    (accumulate > 1 ? loss / double(accumulate) : loss).backward();  // the micro-batches' mean gradient
  }
  torch::Tensor& summed = accumulated_loss_[group];
  summed = summed.defined() ? summed + loss.detach() : loss.detach();
  if (micro_ + 1 < accumulate) return;  // the last micro-batch updates
  if (parallel_) parallel_->average_gradients(g.parameters);  // before clipping: clip the global gradient
  if (grad_clip_ > 0) clip_grad_norm(g.parameters, grad_clip_);
  set_lr(*g.optimizer, g.lr * lr_factor(step_, total_steps_, warmup_steps_, settings_.lr_schedule, settings_.lr_final));
  g.optimizer->step();
  pending_losses_[group].push_back({step_, accumulate > 1 ? summed / double(accumulate) : summed, elapsed()});
  accumulated_loss_.erase(group);
}

void Trainer::record(const std::string& name, const torch::Tensor& value) {
  pending_records_[name].push_back({step_, value.detach().reshape({}), elapsed()});
}

void Trainer::flush_pending(bool write_now) {
  auto drain = [&](std::map<std::string, std::vector<Pending>>& pending, const std::string& prefix, bool guard) {
    for (auto& [name, rows] : pending) {
      if (rows.empty()) continue;
      std::vector<torch::Tensor> values;
      for (const auto& r : rows) values.push_back(r.value);
      // One stack (promoting mixed dtypes), one conversion: the one host sync per flush.
      auto stacked = torch::stack(values).to(torch::kFloat64);
      if (parallel_) stacked = parallel_->mean_over_ranks(stacked);  // every rank logs and guards the same values
      auto host = stacked.cpu().contiguous();
      auto* data = host.data_ptr<double>();
      std::vector<ScalarRow>& out = unwritten_[prefix + name];
      for (size_t i = 0; i < rows.size(); ++i) {
        if (guard && !std::isfinite(data[i])) {
          write_run_file();  // everything before the bad step stays
          std::string message = detail::concat("training stopped at step ", rows[i].step, ": loss '", name,
                                               "' is ", data[i], " (objective '", objective_info_.name, "')");
          throw Error(message + (fs::exists(checkpoint_path_) ? "; the last good checkpoint is " + checkpoint_path_
                                                               : "; no checkpoint was written before it") +
                      " and the run file " + log_.path() + " holds the losses up to it");
        }
        out.push_back({rows[i].step, data[i], rows[i].wall_seconds});
      }
      last_values_[name] = data[rows.size() - 1];
      rows.clear();
    }
  };
  drain(pending_losses_, "/train/loss/", true);
  drain(pending_records_, "/train/record/", false);
  if (write_now || std::chrono::steady_clock::now() - last_write_ >= std::chrono::seconds(1)) write_run_file();
}

void Trainer::write_run_file() {
  for (auto& [path, rows] : unwritten_) {
    log_.append_series(path, rows);
    rows.clear();
  }
  log_.write_scalar("/timing/train_steps", double(step_));
  log_.write_scalar("/timing/train_seconds", elapsed());
  if (evaluation_.on()) log_.write_scalar("/timing/eval_seconds", eval_seconds_before_ + eval_seconds_);
  log_.flush();
  last_write_ = std::chrono::steady_clock::now();
}

std::string Trainer::checkpoint_bytes() {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model_.save(model_archive);
  archive.write("model", model_archive);
  for (auto& [name, group] : groups_) {
    torch::serialize::OutputArchive optimizer_archive;
    group->optimizer->save(optimizer_archive);
    archive.write("optimizer." + name, optimizer_archive);
  }
  if (ema_) {
    for (size_t i = 0; i < ema_->shadow().size(); ++i) archive.write("ema." + std::to_string(i), ema_->shadow()[i]);
  }
  archive.write("step", torch::tensor(step_));
  archive.write("train_seconds", torch::tensor(elapsed(), torch::kFloat64));
  archive.write("eval_seconds", torch::tensor(eval_seconds_before_ + eval_seconds_, torch::kFloat64));
  archive.write("rng.cpu", at::detail::getDefaultCPUGenerator().get_state());
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

void Trainer::save_checkpoint() {
  const std::string bytes = checkpoint_bytes();
  const std::string digest = sha256_hex(bytes);
  // Two phases, so the run file names the checkpoint on disk whenever a kill comes:
  // the new digest is flushed as "next" before the rename, "current" after it.
  log_.set_attribute("/", "checkpoint_sha256_next", digest);
  log_.flush();
  write_file_durably(checkpoint_path_, bytes);
  log_.set_attribute("/", "checkpoint", fs::path(checkpoint_path_).filename().string());
  log_.set_attribute("/", "checkpoint_step", step_);
  log_.set_attribute("/", "checkpoint_sha256", digest);
}

void Trainer::load_checkpoint() {
  GENFW_CHECK(fs::exists(checkpoint_path_), "cannot resume: no checkpoint at ", checkpoint_path_);
  RecordedCheckpoint recorded{checkpoint_path_, log_.path(), log_.attribute("/", "checkpoint_sha256"),
                              log_.attribute("/", "checkpoint_sha256_next")};
  std::istringstream bytes(recorded.read_verified());
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(bytes);
  } catch (const std::exception& e) {
    throw Error("cannot resume: checkpoint " + checkpoint_path_ + " is unreadable: " + e.what());
  }
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  load_with_shapes_checked(model_, model_archive, checkpoint_path_);
  model_.to(device_);
  for (auto& [name, group] : groups_) {
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer." + name, optimizer_archive);
    group->optimizer->load(optimizer_archive);
  }
  if (ema_) {
    for (size_t i = 0; i < ema_->shadow().size(); ++i) {
      torch::Tensor value;
      archive.read("ema." + std::to_string(i), value);
      ema_->shadow()[i] = value.to(device_);
    }
  }
  torch::Tensor step, seconds, rng;
  archive.read("step", step);
  archive.read("train_seconds", seconds);
  archive.read("rng.cpu", rng);
  step_ = step.item<int64_t>();
  seconds_before_ = seconds.item<double>();
  torch::Tensor eval_seconds;
  if (archive.try_read("eval_seconds", eval_seconds)) eval_seconds_before_ = eval_seconds.item<double>();
  at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle to the global one
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(rng);
}

void Trainer::print_progress(bool final) {
  if (!progress_.due(final)) return;
  double seconds = elapsed() - seconds_before_;
  double rate = seconds > 0 ? double(step_ - start_step_) / seconds : 0;
  double eta = rate > 0 ? double(total_steps_ - step_) / rate : NAN;
  double done = total_steps_ ? double(step_) / double(total_steps_) : 1.0;
  if (settings_.max_minutes > 0) {  // a budget ends training first when it is shorter than the steps
    const double budget = settings_.max_minutes * 60.0;
    if (!(eta <= budget - elapsed())) eta = std::max(0.0, budget - elapsed());
    done = std::max(done, std::min(1.0, elapsed() / budget));
  }
  std::string losses;
  for (const auto& [name, value] : last_values_) {
    char text[64];
    std::snprintf(text, sizeof text, " %s=%.4g", name.c_str(), value);
    losses += text;
  }
  char position[96];
  if (settings_.max_minutes > 0) {
    std::snprintf(position, sizeof position, "step %lld, %.2f/%g min", (long long)step_, elapsed() / 60.0,
                  settings_.max_minutes);
  } else {
    std::snprintf(position, sizeof position, "step %lld/%lld", (long long)step_, (long long)total_steps_);
  }
  char line[512];
  std::snprintf(line, sizeof line, "%s  %.1f it/s %s  ETA %s", position, rate, losses.c_str(),
                format_duration(eta).c_str());
  progress_.show(done, line, final);
}

TrainOutcome Trainer::run(bool resume) {
  start_ = std::chrono::steady_clock::now();
  if (resume) {
    load_checkpoint();
    GENFW_CHECK(step_ <= total_steps_, "cannot resume: the checkpoint ", checkpoint_path_, " is at step ", step_,
                ", past the planned [train] steps = ", total_steps_, " (--resume-set train.steps=N needs N >= ", step_,
                ")");
    log_.truncate_series("/train/loss", step_);
    log_.truncate_series("/train/record", step_);
    if (evaluation_.on()) forget_evaluations_after_checkpoint();
  }
  if (parallel_) join_replicas();
  if (evaluation_.every_minutes > 0) {  // the first timed evaluation after the training time so far
    const double interval = evaluation_.every_minutes * 60.0;
    next_eval_seconds_ = (std::floor(elapsed() / interval) + 1.0) * interval;
  }
  start_step_ = step_;
  model_.train();
  try {
    train_to_the_end();
  } catch (...) {
    try {
      write_run_file();  // the checked losses not yet written stay with the failed run
    } catch (...) {
    }
    throw;
  }
  model_.eval();
  return {step_, elapsed(), eval_seconds_before_ + eval_seconds_, budget_reached_};
}

void Trainer::train_to_the_end() {
  const int64_t dataset_size = parts_.data.size(), accumulate = settings_.accumulate;
  while (step_ < total_steps_ && !budget_reached_) {
    seed_rank_stream();
    torch::Tensor indices = batch_indices(step_, batch_size_, dataset_size, settings_.seed);
    if (parallel_) indices = rank_shard(indices, parallel_->rank(), parallel_->world_size());
    const int64_t micro_batch = indices.size(0) / accumulate;
    for (micro_ = 0; micro_ < accumulate; ++micro_) {
      torch::Tensor part = accumulate > 1 ? indices.slice(0, micro_ * micro_batch, (micro_ + 1) * micro_batch) : indices;
      Batch batch = call_plugin(parts_.data_info, "get() of a training batch", [&] { return parts_.data.get(part); });
      if (flip_images_) batch.x = randomly_flipped(batch.x);
      batch.x = batch.x.to(device_);
      if (batch.y.defined()) batch.y = batch.y.to(device_);
      // A super-resolution stage learns x given its own low-resolution version.
      if (auto* stage = as<LowResolutionConditioned>(model_)) stage->condition_on(stage->low_resolution_of(batch.x));
      call_plugin(objective_info_, "train_step()", [&] {
        AutocastScope autocast(settings_.precision, device_);  // one scope per step: updated weights are cast anew
        objective_.train_step(model_, batch, *this);
      });
    }
    micro_ = 0;
    if (ema_) {
      const double decay = settings_.ema_warmup ? std::min(settings_.ema_decay, (1.0 + double(step_)) / (10.0 + double(step_)))
                                                : settings_.ema_decay;
      ema_->update(decay);
    }
    ++step_;
    const ClockDecisions clock = clock_decisions();
    if (clock.stop) stop_at_safe_point();
    budget_reached_ = step_ < total_steps_ && clock.budget_spent;
    const bool last = step_ == total_steps_ || budget_reached_;
    bool checkpoint_due = checkpoints_ && (step_ % checkpoint_every_ == 0 || last);
    if (step_ % log_every_ == 0 || last || checkpoint_due) {
      flush_pending(checkpoint_due || last);  // NaN guard runs here, before any checkpoint can hold bad weights
      if (checkpoint_due) {
        if (parallel_) parallel_->check_replicas_agree(replicated_state(), detail::concat("parameters at step ", step_));
        if (is_rank0()) save_checkpoint();
        log_.flush();  // flush_pending(true) wrote everything before the checkpoint's attributes
      }
      print_progress(last);
    }
    if (evaluation_due(last, clock.evaluation_due)) evaluate_now();
  }
  if (budget_reached_) {
    log_.write_scalar("/timing/max_minutes", settings_.max_minutes);
    log_.flush();
    if (is_rank0()) {
      std::cerr << "training ended at step " << step_ << " of " << total_steps_ << ": the budget of "
                << settings_.max_minutes << " min ([train] max_minutes) is spent\n";
    }
  }
}

Trainer::ClockDecisions Trainer::clock_decisions() {
  const bool budget = settings_.max_minutes > 0, timed = evaluation_.on() && evaluation_.every_minutes > 0;
  const double now = budget || timed ? elapsed() : 0.0;
  const ClockDecisions mine{stop_requested(), budget && now >= settings_.max_minutes * 60.0,
                            timed && now >= next_eval_seconds_};
  if (!parallel_) return mine;
  // The ranks hear a signal, and reach a time, at different steps: one collective per step makes
  // the first rank's decision everyone's (a rank that stopped alone left the others in the next
  // all-reduce, and the run `failed` instead of `interrupted`).
  const auto agreed = parallel_->mean_over_ranks(
      torch::tensor({mine.stop ? 1.0 : 0.0, mine.budget_spent ? 1.0 : 0.0, mine.evaluation_due ? 1.0 : 0.0},
                    torch::kFloat64),
      "the decisions after a step (stop, budget, timed evaluation)");
  return {agreed[0].item<double>() > 0, agreed[1].item<double>() > 0, agreed[2].item<double>() > 0};
}

void Trainer::stop_at_safe_point() {
  if (!stop_requested()) request_stop(SIGTERM);  // another rank heard the signal: the job stops together
  flush_pending(true);
  if (checkpoints_ && is_rank0()) {
    save_checkpoint();
    log_.flush();
  }
  print_progress(true);
  stop_here_if_requested(detail::concat("at training step ", step_, "/", total_steps_,
                                        checkpoints_ ? " (checkpoint saved)" : " ([log] checkpoint = false: nothing to resume from)"));
}

std::vector<torch::Tensor> Trainer::replicated_state() {
  std::vector<torch::Tensor> state = model_.parameters();
  if (ema_) state.insert(state.end(), ema_->shadow().begin(), ema_->shadow().end());
  return state;
}

// Every rank starts from rank 0's weights, buffers and EMA (a checkpoint holds only
// global state, so any world size resumes it). Ranks above 0 draw their noise from
// streams of their own (seed_rank_stream), rank 0 from the checkpoint's.
void Trainer::join_replicas() {
  std::vector<torch::Tensor> state = replicated_state();
  for (const auto& buffer : model_.buffers()) state.push_back(buffer);
  parallel_->broadcast_from_rank0(state);
}

// A rank above 0 draws step s's noise from a stream of (seed, rank, s): what it draws never
// depends on where the run was stopped and resumed, so a resume is bit-identical without the
// checkpoint holding every rank's generator (a stop may find the ranks a step apart).
void Trainer::seed_rank_stream() {
  if (!parallel_ || parallel_->rank() == 0) return;
  auto mix = [](uint64_t x) {  // splitmix64's finaliser: nearby inputs, unrelated seeds
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  const uint64_t stream = mix(mix(mix(settings_.seed) ^ uint64_t(parallel_->rank())) ^ uint64_t(step_));
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_current_seed(stream);
}

void Trainer::use_ema_weights() {
  if (ema_) ema_->copy_to(model_);
}

RecordedCheckpoint RecordedCheckpoint::of_run(const std::string& run_file, int64_t step) {
  RunLog run = RunLog::open(run_file, false);
  const fs::path folder = fs::absolute(run_file).parent_path();
  std::string name = run.attribute("/", "checkpoint");
  const std::string checkpoint_step = run.attribute("/", "checkpoint_step"), best_step = run.attribute("/", "best_step");
  if (step < 0 || (!name.empty() && checkpoint_step == std::to_string(step))) {
    GENFW_CHECK(!name.empty(), run_file, " has no checkpoint (was it trained with [log] checkpoint = true?)");
    return {(folder / name).string(), run_file, run.attribute("/", "checkpoint_sha256"),
            run.attribute("/", "checkpoint_sha256_next")};
  }
  if (best_step == std::to_string(step)) {
    return {(folder / snapshot_file(step, true)).string(), run_file, run.attribute("/", "best_sha256"), ""};
  }
  std::string kept;
  for (const auto& snapshot : last_snapshots(run)) {
    if (snapshot.step == step) return {(folder / snapshot_file(step, false)).string(), run_file, snapshot.sha256, ""};
    kept += ", " + std::to_string(snapshot.step);
  }
  throw Error(detail::concat(run_file, " kept no weights of step ", step, "; it has ",
                             name.empty() ? std::string("no checkpoint") : "its checkpoint at step " + checkpoint_step,
                             best_step.empty() ? std::string() : ", the best evaluation's at step " + best_step,
                             kept.empty() ? std::string() : ", snapshots at steps " + kept.substr(2),
                             " ([eval] keep_best and keep_last keep snapshots of evaluations)"));
}

std::string RecordedCheckpoint::read_verified() const {
  GENFW_CHECK(fs::exists(path), "checkpoint ", path, " (of ", run_file, ") does not exist");
  std::string bytes = read_whole_file(path);
  if (sha256.empty() && sha256_next.empty()) return bytes;  // written before digests were recorded
  const std::string actual = sha256_hex(bytes);
  GENFW_CHECK(actual == sha256 || actual == sha256_next, "checkpoint ", path, " is damaged or was changed after ",
              run_file, " recorded it: its SHA-256 is ", actual, ", the run file recorded ", sha256,
              "; it will not be loaded");
  return bytes;
}

void load_weights_for_sampling(torch::nn::Module& model, const RecordedCheckpoint& checkpoint) {
  std::istringstream bytes(checkpoint.read_verified());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes);
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    load_with_shapes_checked(model, model_archive, checkpoint.path);
    auto parameters = model.parameters();
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < parameters.size(); ++i) {
      torch::Tensor shadow;
      if (!archive.try_read("ema." + std::to_string(i), shadow)) break;
      parameters[i].copy_(shadow);
    }
  } catch (const Error&) {
    throw;  // names the checkpoint already
  } catch (const std::exception& e) {
    throw Error("checkpoint " + checkpoint.path + " cannot be loaded into the model: " + e.what());
  }
}

}  // namespace genfw
