#pragma once
/// What a run writes into its run file, in one place (the layout is
/// run_log.hpp's): its plan and environment when it starts or resumes, its
/// samples, its metrics and floor as each is known, and how it ended. The
/// pipeline's stages return values; only this names HDF5 paths.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "genfw/registry.hpp"

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

class RunLog;
struct ExperimentConfig;
struct RecordedCheckpoint;
struct SampleOutcome;
struct MetricOutcome;

/// Who made a run, for its root attributes.
struct RunOrigin {
  int64_t num_parameters = 0;
  int64_t from_step = 0;          ///< the checkpoint step a resumed segment starts from (0: a fresh run)
  std::string parent_run;         ///< `runner sample`: the run whose weights are sampled, or ""
  /// The runs used as components: root attribute (ComponentRunTable::attribute) → run file.
  std::map<std::string, std::string> component_runs;
  /// The components this run used, each recorded under /env/plugins with the library
  /// that made it (path, version, SHA-256): two builds of one plugin are two rows.
  std::vector<const ComponentInfo*> components;
};

class GENFW_API RunRecorder {
 public:
  /// Records into `log` (this rank's: rank 0's file, an in-memory one elsewhere).
  explicit RunRecorder(RunLog& log) : log_(log) {}

  RunLog& log() { return log_; }
  const std::string& path() const;

  /// The run starts (or resumes): /config, this segment's environment
  /// (versions, threads, device, git commit, host, ranks), the components and
  /// status "running".
  void begin(const ExperimentConfig& config, torch::Device device, const RunOrigin& origin);
  /// `runner sample`: the parent's checkpoint, relative to `out_dir`, with its digests.
  void record_parent_checkpoint(const RecordedCheckpoint& parent, const std::string& out_dir);
  /// Drops the /metrics rows at or after `step`: an earlier attempt of a resumed run may have written them.
  void discard_metrics_from(int64_t step);
  /// /samples (with the data's range), /sample_labels, the first batch's trajectory and /timing.
  void record_samples(const SampleOutcome& drawn, double data_low, double data_high);
  /// Each value of one metric under /metrics, at training step `step`, with its provenance.
  void record_metric(const MetricOutcome& outcome, int64_t step);
  /// Each value of one metric of an evaluation during training under /eval, at
  /// `step` after `train_seconds` of training (its wall-seconds column).
  void record_evaluation(const MetricOutcome& outcome, int64_t step, double train_seconds);
  /// The real-data floor of one metric value: `group`/<name> (/floor, /eval_floor), with the metric, split and N.
  void record_floor(const std::string& group, const std::string& name, double value, const std::string& metric, const std::string& split,
                    int64_t count, int64_t step, double wall_seconds);
  /// The run reached its plan.
  void complete();
  /// The run ended otherwise ("interrupted: ...", "failed: ..."); a file that
  /// cannot be written any more (a full disk) keeps its last flushed state.
  void mark_ended(const std::string& status) noexcept;

 private:
  RunLog& log_;
};

}  // namespace genfw
