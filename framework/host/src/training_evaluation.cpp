// Evaluation during training ([eval]): the plan the trainer follows, and one
// evaluation — samples from the model as it is (the trainer has put the EMA
// weights in), the run's sample metrics on them into /eval, a grid per
// evaluation, and whether it is the best so far of [eval] keep_best.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "genfw/images.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/rank_coordinator.hpp"
#include "genfw/run_log.hpp"
#include "genfw/run_recorder.hpp"

namespace genfw {

namespace fs = std::filesystem;

TrainingEvaluation Pipeline::evaluation_plan(const std::string& out_dir) {
  TrainingEvaluation plan;
  plan.every = config_.eval.integer("every");
  plan.every_minutes = config_.eval.real("every_minutes");
  plan.keep_last = config_.eval.integer("keep_last");
  plan.evaluate = [this, out_dir](int64_t step, double train_seconds) {
    return evaluate_during_training(step, train_seconds, out_dir);
  };
  return plan;
}

EvaluationVerdict Pipeline::evaluate_during_training(int64_t step, double train_seconds, const std::string& out_dir) {
  const auto start = std::chrono::steady_clock::now();
  const SampleOutcome drawn = sample(config_.eval.integer("num_samples"));
  if (!ranks_->is_rank0()) {  // rank 0 scores and writes; the others extract the features of their samples
    serve_metrics_of_rank0();
    return {};
  }
  char grid[64];
  std::snprintf(grid, sizeof grid, "eval/step_%08lld.png", (long long)step);
  fs::create_directories(fs::path(out_dir) / "eval");
  write_sample_picture(drawn.samples, components().context.data, (fs::path(out_dir) / grid).string(),
                       config_.log.integer("grid_samples"));
  const std::vector<MetricOutcome> outcomes = score(drawn, false);
  std::ostringstream line;
  line << "eval at step " << step << " (" << train_seconds / 60.0 << " min of training, " << drawn.samples.size(0)
       << " samples):";
  for (const auto& outcome : outcomes) {
    if (recorder_ != nullptr) recorder_->record_evaluation(outcome, step, train_seconds);
    for (const auto& [name, value] : outcome.result.values) line << " " << name << " = " << value;
  }
  const EvaluationVerdict verdict = verdict_of(outcomes);
  std::cerr << line.str() << (verdict.best ? " (best so far)" : "") << "; took "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
  return verdict;
}

EvaluationVerdict Pipeline::verdict_of(const std::vector<MetricOutcome>& outcomes) const {
  const std::string wanted = config_.eval.string("keep_best");
  if (wanted.empty()) return {};
  std::string given;
  for (const auto& outcome : outcomes) {
    for (const auto& [name, value] : outcome.result.values) {
      given += (given.empty() ? "" : ", ") + name;
      if (name != wanted) continue;
      const auto better = outcome.result.provenance.find("better." + name);
      GENFW_CHECK(better != outcome.result.provenance.end(), config_.path, ": [eval] keep_best = \"", wanted,
                  "\": metric '", outcome.info->name, "' does not say which way its value is better");
      const std::string last = recorder_ != nullptr ? recorder_->log().attribute("/", "best_value") : "";
      const bool lower = better->second == "lower";
      const bool best = last.empty() || (lower ? value < std::stod(last) : value > std::stod(last));
      return {best, name, value};
    }
  }
  throw Error(detail::concat(config_.path, ": [eval] keep_best = \"", wanted,
                             "\" is no value of the run's sample metrics; they give: ",
                             given.empty() ? std::string("none") : given));
}

}  // namespace genfw
