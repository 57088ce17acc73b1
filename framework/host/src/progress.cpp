#include "genfw/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "genfw/config.hpp"
#include "genfw/distributed.hpp"
#include "genfw/sampler.hpp"

namespace genfw {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds > 100.0 * 365 * 24 * 3600) return ">100y";  // also keeps the integer below in range
  char text[32];
  const int64_t s = int64_t(seconds);
  if (s >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
  else std::snprintf(text, sizeof text, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  return text;
}

ProgressDisplay::ProgressDisplay(const std::string& setting, Seconds plain_interval, Seconds bar_interval)
    : off_(setting == "off" || !is_rank0()),
      bar_(setting == "bar" || (setting == "auto" && ::isatty(STDERR_FILENO))),
      plain_interval_(plain_interval),
      bar_interval_(bar_interval),
      last_shown_(std::chrono::steady_clock::now()) {}

bool ProgressDisplay::due(bool final) const {
  if (off_) return false;
  return final || std::chrono::steady_clock::now() - last_shown_ >= (bar_ ? bar_interval_ : plain_interval_);
}

void ProgressDisplay::show(double fraction, const std::string& text, bool final) {
  if (!due(final)) return;
  last_shown_ = std::chrono::steady_clock::now();
  if (!bar_) {
    std::cerr << text << std::endl;
    return;
  }
  const int width = 30;
  std::string bar(size_t(std::clamp(fraction, 0.0, 1.0) * width), '#');
  bar.resize(size_t(width), '.');
  // "\x1b[K" clears what a longer earlier line left to the right.
  std::cerr << "\r[" << bar << "] " << text << "\x1b[K" << (final ? "\n" : "") << std::flush;
}

namespace {

/// Above this many planned batch-forward passes, sampling warns before it goes on:
/// at a few ms per pass for the smallest image networks on a CPU (and ~1 s for a
/// CIFAR U-Net batch), 20 000 passes are many minutes to hours; toys stay below it.
constexpr int64_t kManyNetworkEvaluations = 20000;

}  // namespace

SamplingProgress::SamplingProgress(const ExperimentConfig& config, int64_t total, int64_t batch_size, int64_t share,
                                   int64_t share_batches)
    : config_(config),
      total_(total),
      batch_size_(batch_size),
      batches_((total + batch_size - 1) / batch_size),
      share_(share),
      share_batches_(share_batches),
      display_(config.log.string("progress"), std::chrono::seconds(2), std::chrono::milliseconds(250)) {}

void SamplingProgress::step(const StepRecord& record, int64_t drawn, int64_t batch, int64_t batch_samples,
                            int64_t nfe) {
  if (!planned_ && nfe > 0 && record.total > 0) plan(nfe * record.total / (record.index + 1), "about ");
  if (!display_.due(false)) return;
  const double fraction_of_batch = record.total > 0 ? double(record.index + 1) / double(record.total) : 0.0;
  show(double(drawn) + fraction_of_batch * double(batch_samples),
       detail::concat(", step ", record.index + 1, "/", record.total, " of batch ", batch + 1, "/", share_batches_),
       false);
}

void SamplingProgress::evaluated(int64_t drawn, int64_t batch, int64_t batch_samples, int64_t nfe) {
  if (!display_.due(false)) return;
  const double fraction_of_batch = nfe_per_batch_ > 0 ? std::min(1.0, double(nfe) / double(nfe_per_batch_)) : 0.0;
  show(double(drawn) + fraction_of_batch * double(batch_samples),
       detail::concat(", NFE ", nfe, nfe_per_batch_ > 0 ? detail::concat("/", nfe_per_batch_) : "", " of batch ",
                      batch + 1, "/", share_batches_),
       false);
}

void SamplingProgress::batch_done(int64_t drawn, int64_t batch_samples, int64_t nfe) {
  if (!planned_) plan(nfe, "");
  const bool final = drawn + batch_samples >= share_;
  if (display_.due(final)) show(double(drawn + batch_samples), "", final);
}

void SamplingProgress::plan(int64_t nfe_per_batch, const char* about) {
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

void SamplingProgress::show(double samples_done, const std::string& where, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = samples_done / double(share_);
  const double eta = fraction > 0 ? elapsed * (1 - fraction) / fraction : NAN;
  const std::string of_all = share_ < total_ ? detail::concat(" (this rank's share of ", total_, ")") : "";
  display_.show(fraction,
                detail::concat("sampling: ", int64_t(samples_done), "/", share_, " samples", of_all, where, ", ",
                               format_duration(elapsed), " elapsed, ETA ", format_duration(eta)),
                final);
}

}  // namespace genfw
