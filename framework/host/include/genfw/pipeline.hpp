#pragma once
/// One pipeline (docs/design.md, "The pipeline in parts"): resolve the config (read and
/// validated once) → build components (each looked up once) → train → sample →
/// evaluate → log. The runner, suites, sweeps, `runner sample`, the bench and
/// the tests all go through it; nothing re-implements a step of it.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "genfw/config.hpp"
#include "genfw/dataset.hpp"
#include "genfw/features.hpp"
#include "genfw/metric.hpp"
#include "genfw/objective.hpp"
#include "genfw/sampler.hpp"
#include "genfw/trainer.hpp"

namespace genfw {

class RunLog;
class RankCoordinator;
class RunRecorder;
class LatentSpace;

/// What a run is asked to do besides its experiment's config.
struct RunRequest {
  std::string experiment;                 ///< TOML file (ignored with parent_run)
  std::vector<std::string> overrides;     ///< "table.key=value"
  std::string out_dir;                    ///< "" = runs/<name> (a fresh -2, -3... if taken)
  bool resume = false;
  /// --resume-set: "train.steps=N", "train.lr=X" or "train.groups.NAME.lr=X"; the
  /// only changes a resumed run accepts to the plan it stored.
  std::vector<std::string> resume_changes;
  std::string device;                     ///< "" = the experiment's; cpu | cuda | auto
  std::string parent_run;                 ///< `runner sample`: a run file whose trained weights to sample
  std::string sampler;                    ///< `runner sample`: the sampler replacing the parent's
  int64_t parent_step = -1;               ///< `runner sample --step S`: a snapshot [eval] kept (-1: the last weights)
  bool print_config = false;              ///< print the resolved config and stop
  std::string cache_dir;                  ///< --cache-dir; "" = the user's (genfw/cache.hpp)
  int seed_count = 1;                     ///< --seeds N: run_with_sweep runs seeds s..s+N-1
  /// --shard i/N: of a suite's or sweep's runs, only those whose index ≡ i (mod N);
  /// independent machines or job-array tasks each take one shard.
  int shard_index = 0, shard_count = 1;
  bool owns(size_t run_index) const { return int(run_index % size_t(shard_count)) == shard_index; }
};

/// Parses "i/N" (0 <= i < N) for --shard.
GENFW_API void parse_shard(const std::string& text, RunRequest& request);

/// A component a plugin made, with its manifest entry (which names it in messages).
template <typename T>
struct Built {
  std::unique_ptr<T> object;
  const ComponentInfo* info = nullptr;
  T* operator->() const { return object.get(); }
  T& operator*() const { return *object; }
  explicit operator bool() const { return object != nullptr; }
};

/// The components of one experiment, each built once.
struct GENFW_API Components {
  Components();
  ~Components();
  BuildContext context;            ///< data description (from the train split), device, folders
  Built<Dataset> train_data;
  Built<Dataset> test_data;        ///< built (and so validated) before training when metrics need it
  Built<Model> model;
  Built<Objective> objective;      ///< empty without [train]
  Built<Sampler> sampler;
  std::vector<Built<Metric>> metrics;
  Built<Model> classifier;         ///< the [guidance] classifier, or empty
  /// [latent]: the autoencoder's latent space the model lives in (its samples are
  /// decoded to data space), and the training split as latents; else empty.
  std::unique_ptr<LatentSpace> latent;
  std::unique_ptr<Dataset> latent_train_data;
  const ComponentInfo* autoencoder_info = nullptr;
  bool built_from_runs = false;    ///< the component runs' parts are built (Pipeline::components)

  /// What the model is trained on and samples: the data, or its latents.
  const DataInfo& model_data() const;
  Dataset& model_train_data() const;
};

/// What sample() drew and how long it took.
struct SampleOutcome {
  torch::Tensor samples;           ///< float32 on CPU, [N, shape...], data space
  torch::Tensor labels;            ///< int64 [N]: the class each sample was drawn for, or undefined
  double seconds = 0;
  double nfe = 0;                  ///< network evaluations per sample (per batch call, averaged)
  torch::Tensor trajectory_x, trajectory_x0, trajectory_levels;  ///< the first batch's reported steps
};

/// One metric's result and when it was ready.
struct MetricOutcome {
  const ComponentInfo* info = nullptr;
  MetricResult result;
  double wall_seconds = 0;
};

/// The single-process pipeline: each stage returns its values. What several
/// ranks must agree on goes through its RankCoordinator, and while run()
/// records, each value goes into the run file through a RunRecorder.
class GENFW_API Pipeline {
 public:
  /// Resolves `request` once: the experiment file (extends, overrides,
  /// validation), or the parent run's stored config for `runner sample`; then
  /// checks the composition.
  Pipeline(const RunRequest& request, const Registry& registry);
  ~Pipeline();

  const ExperimentConfig& config() const { return config_; }
  const RunRequest& request() const { return request_; }
  /// Where run() writes, decided after the config is known (a suite's folder per member).
  void set_output(const std::string& out_dir, bool resume);
  torch::Device device() const { return device_; }

  /// Every run this one uses as a component ([guidance], [latent], [cascade];
  /// docs/design.md, "Runs as components"), resolved before anything is built from
  /// it: `run` as named, or `experiment` trained into `folder`/<its name> (a
  /// finished run of the same plan found there is reused, an unfinished one
  /// continued); "" trains nothing and refuses an experiment. Each run's weights
  /// are checked against its own digest (damaged) and against the config's
  /// `sha256` (changed since); the config then names the run file and the digest.
  void resolve_component_runs(const std::string& folder);
  /// The run file of a resolved [table].
  std::string component_run_file(const std::string& table) const;
  /// Builds every component once; a failure names the component. Component runs
  /// given as experiments must have been resolved first (resolve_component_runs).
  Components& components();
  /// What can be built before the component runs are resolved: the data and the
  /// metrics, and the model, objective and sampler unless they live in a [latent] space.
  Components& components_without_runs();
  /// Trains with [train] into `log`, checkpointing to `checkpoint` (resuming from it when asked).
  TrainOutcome train(RunLog& log, const std::string& checkpoint, bool resume);
  /// Draws `count` samples ([sampler] num_samples when 0) in batches of batch_size. Data-parallel, a
  /// collective: each rank draws its batches (sampling_batches_of_rank) and
  /// rank 0 returns them all in order; the other ranks return no samples.
  SampleOutcome sample(int64_t count = 0);
  /// Scores `drawn` with every [[metrics]] entry (features extracted once for all).
  std::vector<MetricOutcome> evaluate(const SampleOutcome& drawn);
  /// An evaluation during training ([eval]): `count` samples from the model as it
  /// is, scored by the sample metrics into /eval, a grid in `out_dir`/eval/; a
  /// collective, like sample(). Says whether it is the best of [eval] keep_best.
  EvaluationVerdict evaluate_during_training(int64_t step, double train_seconds, const std::string& out_dir);
  /// Data-parallel ranks above 0, after sample(): the part of rank 0's
  /// evaluate() they share (extracting the features of the samples they drew).
  void serve_metrics_of_rank0();
  /// The whole run into its folder (train, sample, PNG, metrics, run file); returns the run file.
  std::string run();

 private:
  /// The model, objective and sampler, on the data or the latent space (with the parent's weights under `runner sample`).
  void build_modelled(Components& c);
  /// The frozen models of the component runs, the latent space and what it needs.
  void build_from_component_runs(Components& c);
  /// The trained model of a component run, frozen, checked to offer `capability` (and
  /// to be trained on this run's dataset when `of_this_data`).
  Built<Model> frozen_model(const ComponentRunTable& use, Capability capability, const BuildContext& context,
                            bool of_this_data);
  /// A component experiment's run in `folder`: reused, continued or trained now.
  std::string trained_component_run(const ComponentRunTable& use, const std::string& folder);
  /// A super-resolution model's conditions for samples [0, total) ([sampler] condition), or undefined.
  torch::Tensor low_resolution_images(Components& c, int64_t total);
  /// One metric, its randomness seeded by the run seed (the same whichever metrics ran before).
  MetricResult compute_metric(const Built<Metric>& metric, MetricContext& context) const;
  /// evaluate()'s work: with `final`, every metric, recorded under /metrics, and
  /// the floor; otherwise the sample metrics only, returned.
  std::vector<MetricOutcome> score(const SampleOutcome& drawn, bool final);
  /// [eval]: when the trainer evaluates, and what the evaluation does.
  TrainingEvaluation evaluation_plan(const std::string& out_dir);
  /// Whether `outcomes` hold the best value so far of [eval] keep_best (the run file has the last best).
  EvaluationVerdict verdict_of(const std::vector<MetricOutcome>& outcomes) const;
  /// What every metric is given, without samples.
  MetricContext metric_context();
  /// The run's one feature service, built on first use.
  FeatureService& feature_service(const MetricContext& context);
  /// The real-data floor: every sample metric on N real held-out examples (recorded
  /// under `group`: /floor, or /eval_floor for the evaluations during training).
  void evaluate_floor(MetricContext context, int64_t count, bool with_labels, const std::string& group);
  /// run()'s stages once the run file exists; their failures are marked in it by run().
  std::string run_stages(RunRecorder& recorder, const std::string& out_dir);
  /// --resume: the plan becomes the run file's stored config with request_.resume_changes
  /// applied; a command line that resolves to another plan is refused, naming each key.
  /// True when the run already completed that plan: nothing is left to do.
  bool adopt_stored_plan(const std::string& run_file);
  /// The command that continues this run: the experiment, every --set and --resume-set, --resume --out.
  std::string continuation_command(const std::string& out_dir) const;

  RunRequest request_;
  const Registry& registry_;
  std::unique_ptr<RankCoordinator> ranks_;  // this process's world (one process, or its data-parallel group)
  ExperimentConfig config_;
  torch::Device device_ = torch::kCPU;
  std::optional<RecordedCheckpoint> parent_checkpoint_;  // `runner sample`: the parent's weights
  std::map<std::string, std::string> component_run_files_;  // [table] → its run file, once resolved
  std::unique_ptr<Components> components_;
  std::unique_ptr<FeatureService> features_;
  RunRecorder* recorder_ = nullptr;  // while run() records
  int64_t trained_steps_ = 0;        // the step the metrics are logged at
  bool file_has_sweep_ = false;      // the experiment file has a [sweep]: this run is one of its variants
};

}  // namespace genfw
