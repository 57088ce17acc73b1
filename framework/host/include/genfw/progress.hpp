#pragma once
/// Progress on stderr, shown the same way for training and sampling: the
/// display, and what sampling shows on it.
#include <chrono>
#include <cstdint>
#include <string>

#include "genfw/export.hpp"

namespace genfw {

struct ExperimentConfig;
struct StepRecord;

/// "0m05s", "2h03m"; "?" when unknown (not finite or negative), ">100y" beyond.
GENFW_API std::string format_duration(double seconds);

/// One stage's progress display, as [log] progress says: "bar" redraws one line
/// in place ("auto" does on a terminal), "plain" writes lines, "off" (and every
/// data-parallel rank but 0) nothing. Callers may offer updates as often as they
/// like: at most one per interval is shown, so a log file is never flooded.
class GENFW_API ProgressDisplay {
 public:
  using Seconds = std::chrono::duration<double>;
  ProgressDisplay(const std::string& setting, Seconds plain_interval, Seconds bar_interval);

  bool off() const { return off_; }
  /// Whether an update offered now would be shown (a final one always is).
  bool due(bool final) const;
  /// Shows `text`, led by a bar filled to `fraction` (0..1) on a terminal; a final
  /// update ends the bar's line.
  void show(double fraction, const std::string& text, bool final);

 private:
  bool off_ = false, bar_ = false;
  Seconds plain_interval_, bar_interval_;
  std::chrono::steady_clock::time_point last_shown_;
};

/// What sampling shows while it runs: this rank's progress with an ETA
/// (throttled, as [log] progress says; rank 0's alone is shown), and, as soon as
/// the NFE per batch is known (the first reported step of the first batch, or
/// its end), a warning when the planned network evaluations of all ranks
/// together are very many.
class GENFW_API SamplingProgress {
 public:
  /// `total` samples in batches of `batch_size` over all ranks, of which this
  /// rank draws `share` in `share_batches` batches; `config` names the sampler
  /// and its step budgets in the warning.
  SamplingProgress(const ExperimentConfig& config, int64_t total, int64_t batch_size, int64_t share,
                   int64_t share_batches);

  /// The sampler reported `record` in this rank's batch number `batch` (from 0)
  /// of `batch_samples`, after `drawn` earlier samples of this rank and `nfe`
  /// network evaluations of this batch.
  void step(const StepRecord& record, int64_t drawn, int64_t batch, int64_t batch_samples, int64_t nfe);
  /// The sampler's denoiser is about to make the batch's evaluation number `nfe`:
  /// progress by NFE, for samplers that report no steps (its fraction of the
  /// batch once the first batch has told the NFE per batch).
  void evaluated(int64_t drawn, int64_t batch, int64_t batch_samples, int64_t nfe);
  /// This rank's batch of `batch_samples` after `drawn` earlier samples is drawn, with `nfe` evaluations.
  void batch_done(int64_t drawn, int64_t batch_samples, int64_t nfe);

 private:
  void plan(int64_t nfe_per_batch, const char* about);
  void show(double samples_done, const std::string& where, bool final);

  const ExperimentConfig& config_;
  const int64_t total_, batch_size_, batches_, share_, share_batches_;
  ProgressDisplay display_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  bool planned_ = false;
  int64_t nfe_per_batch_ = 0;  // known once planned
};

}  // namespace genfw
