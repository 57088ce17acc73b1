#pragma once
/// The training loop: batches from a seeded shuffle, the objective's updates
/// on per-group optimizers (warm-up, clipping), EMA, atomic checkpoints,
/// resume, a NaN guard and progress output.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "genfw/config.hpp"
#include "genfw/dataset.hpp"
#include "genfw/ema.hpp"
#include "genfw/objective.hpp"
#include "genfw/progress.hpp"
#include "genfw/run_log.hpp"

namespace genfw {

class DataParallel;

/// A run's checkpoint as its run file records it: the path and the SHA-256
/// digests of the current checkpoint and of the one being renamed into place
/// ("checkpoint_sha256", "checkpoint_sha256_next"), either of which the file
/// on disk may match after a kill between the rename and the next flush.
struct GENFW_API RecordedCheckpoint {
  std::string path, run_file, sha256, sha256_next;
  /// The checkpoint of the run file at `run_file` (error when it has none); with a
  /// `step` >= 0, the weights of that step: the last checkpoint, the best snapshot
  /// or one of the last snapshots [eval] kept (error naming the steps kept).
  static RecordedCheckpoint of_run(const std::string& run_file, int64_t step = -1);
  /// The checkpoint's bytes after checking them against the digests (none
  /// recorded: accepted as is); genfw::Error naming both files on a mismatch.
  std::string read_verified() const;
};

/// Loads the model weights of a verified checkpoint (EMA weights when it has them).
GENFW_API void load_weights_for_sampling(torch::nn::Module& model, const RecordedCheckpoint& checkpoint);

/// Dataset indices of training step `step`: consecutive slices of per-epoch
/// permutations seeded by (seed, epoch), so any step's batch is known without
/// replaying earlier ones (what makes resume exact).
GENFW_API torch::Tensor batch_indices(int64_t step, int64_t batch_size, int64_t dataset_size, uint64_t seed);

struct TrainOutcome {
  int64_t steps = 0;
  double seconds = 0;         ///< training time, evaluations excluded
  double eval_seconds = 0;    ///< time spent in evaluations during training
  bool budget_reached = false;  ///< ended by [train] max_minutes before its steps: a normal end
};

/// [data] hflip: each image [N, C, H, W] mirrored left-right with probability 1/2.
GENFW_API torch::Tensor randomly_flipped(const torch::Tensor& images);

/// The learning rate's factor at update `step` (0-based) of `steps`: the linear warm-up,
/// then constant or a cosine or linear decay to `final_fraction` at the last step.
GENFW_API double lr_factor(int64_t step, int64_t steps, int64_t warmup_steps, const std::string& schedule,
                           double final_fraction);

/// What an evaluation during training concluded.
struct EvaluationVerdict {
  bool best = false;   ///< the best value so far of [eval] keep_best: keep these weights
  std::string metric;  ///< that value's name and value, recorded with the best snapshot
  double value = 0;
};

/// Evaluation during training ([eval]; the pipeline's training_evaluation.cpp
/// scores, the trainer decides when and keeps the snapshots).
struct TrainingEvaluation {
  int64_t every = 0;         ///< every N steps (0 = not by steps)
  double every_minutes = 0;  ///< every M minutes of training time (0 = not by time)
  int64_t keep_last = 0;     ///< snapshots of the last K evaluations
  /// Scores the model as it is at `step` (the EMA weights in place, eval mode),
  /// after `train_seconds` of training. Its time is not training time, and it
  /// draws no random number of the training's streams (they are restored).
  std::function<EvaluationVerdict(int64_t step, double train_seconds)> evaluate;
  bool on() const { return evaluate && (every > 0 || every_minutes > 0); }
};

/// What the trainer is told: [train], [log]'s checkpoint and progress keys, the
/// per-group optimizers and the seed, nothing else of the experiment.
struct GENFW_API TrainSettings {
  int64_t steps = 0, batch_size = 1, warmup_steps = 0, log_every = 50, checkpoint_every = 1000, accumulate = 1;
  double grad_clip = 0, ema_decay = 0, lr_final = 0, max_minutes = 0;
  bool ema_warmup = false;
  std::string lr_schedule = "constant";                 ///< constant | cosine | linear
  uint64_t seed = 0;
  bool checkpoints = true;
  std::string progress = "auto";                        ///< auto | bar | plain | off
  std::string precision = "fp32";                       ///< fp32 | tf32 | bf16 (genfw/precision.hpp)
  OptimizerConfig optimizer;                            ///< every group without its own
  std::map<std::string, OptimizerConfig> group_optimizers;
  std::string origin;                                   ///< the experiment file, for messages

  static TrainSettings from(const ExperimentConfig& config);
  const OptimizerConfig& optimizer_for(const std::string& group) const;
};

/// The components a trainer works on, with their manifest entries: each
/// failure is reported as the failing component's.
struct TrainParts {
  Model& model;
  const ComponentInfo& model_info;
  Objective& objective;
  const ComponentInfo& objective_info;
  Dataset& data;
  const ComponentInfo& data_info;
};

class GENFW_API Trainer : public TrainContext {
 public:
  Trainer(TrainParts parts, TrainSettings settings, torch::Device device, RunLog& log, std::string checkpoint_path);
  ~Trainer() override;

  /// Trains to [train] steps; with `resume`, continues from the checkpoint.
  /// Throws genfw::Error on a NaN/Inf loss after logging everything up to it.
  TrainOutcome run(bool resume);
  /// Puts the EMA weights (if any) into the model, for sampling.
  void use_ema_weights();
  /// Evaluates during training (set before run()).
  void set_evaluation(TrainingEvaluation evaluation) { evaluation_ = std::move(evaluation); }

  void update(const std::string& group, const torch::Tensor& loss) override;
  void record(const std::string& name, const torch::Tensor& value) override;
  int64_t step() const override { return step_; }
  int64_t total_steps() const override { return total_steps_; }
  torch::Device device() const override { return device_; }

 private:
  struct Group;
  /// Every log_every steps: the pending values to the host, the NaN guard, and into
  /// unwritten_. The run file is written when `write_now` or when a second has passed
  /// since its last write: opening, writing and closing it costs about a millisecond,
  /// 1.5% of a 1 ms step at log_every 100.
  void flush_pending(bool write_now);
  void write_run_file();
  void train_to_the_end();
  void save_checkpoint();
  /// The checkpoint archive of the current state (weights, optimizers, EMA, step, RNG).
  std::string checkpoint_bytes();
  void load_checkpoint();
  // Evaluation during training.
  /// `timed_due`: every_minutes has come round (clock_decisions()).
  bool evaluation_due(bool last, bool timed_due);
  void evaluate_now();
  /// Keeps the snapshot of this step: one of the last K, or (verdict.best) the best.
  void keep_snapshots(const EvaluationVerdict& verdict);
  /// A resumed run forgets the evaluations and snapshots its earlier attempt made after its checkpoint.
  void forget_evaluations_after_checkpoint();
  /// What the clock decides after a step: the [train] max_minutes budget is spent, a
  /// timed evaluation is due. Data-parallel, every rank agrees, in one collective.
  /// What ends or interrupts training after a step, the same on every rank.
  struct ClockDecisions {
    bool stop = false, budget_spent = false, evaluation_due = false;
  };
  ClockDecisions clock_decisions();
  /// On SIGINT/SIGTERM: flush, checkpoint, throw genfw::Interrupted.
  void stop_at_safe_point();
  void print_progress(bool final);
  double elapsed() const;
  // Data-parallel (distributed.hpp): one model replica per rank.
  void join_replicas();
  void seed_rank_stream();
  std::vector<torch::Tensor> replicated_state();

  Model& model_;
  Objective& objective_;
  const ComponentInfo& objective_info_;
  TrainParts parts_;
  TrainSettings settings_;
  torch::Device device_;
  RunLog& log_;
  std::string checkpoint_path_;
  std::map<std::string, std::unique_ptr<Group>> groups_;
  std::unique_ptr<Ema> ema_;
  int64_t step_ = 0, total_steps_ = 0, batch_size_ = 0, warmup_steps_ = 0, log_every_ = 0,
          checkpoint_every_ = 0;
  /// Gradient accumulation: the micro-batch being trained, and each group's loss summed over them.
  int64_t micro_ = 0;
  std::map<std::string, torch::Tensor> accumulated_loss_;
  bool budget_reached_ = false;
  bool flip_images_ = false;  ///< [data] hflip (DataInfo::horizontal_flip)
  double grad_clip_ = 0;
  bool checkpoints_ = true;
  // Per-step losses and records waiting for the next flush (kept on device: no sync per step).
  struct Pending {
    int64_t step;
    torch::Tensor value;
    double wall_seconds;
  };
  std::map<std::string, std::vector<Pending>> pending_losses_, pending_records_;
  std::map<std::string, std::vector<ScalarRow>> unwritten_;  // by run-file path, checked
  std::chrono::steady_clock::time_point last_write_;
  std::map<std::string, double> last_values_;
  double seconds_before_ = 0;
  TrainingEvaluation evaluation_;
  double eval_seconds_before_ = 0, eval_seconds_ = 0;  // evaluation time: before this segment, in it
  double next_eval_seconds_ = 0;                       // the training time of the next timed evaluation
  int64_t last_evaluated_step_ = -1;
  std::chrono::steady_clock::time_point start_;
  int64_t start_step_ = 0;
  // Shown at flushes: every one on a terminal, at most every 5 s in a log file.
  ProgressDisplay progress_;
  DataParallel* parallel_ = nullptr;  // the process's group; null in one process
};

}  // namespace genfw
