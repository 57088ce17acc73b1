// The [guidance] classifier's run, resolved before the components are built:
// a trained run named by [guidance] run, or [guidance] experiment trained into
// the guided run's own folder (docs/design.md, "The pipeline in parts").
#include <filesystem>
#include <iostream>

#include "genfw/pipeline.hpp"
#include "genfw/rank_coordinator.hpp"
#include "genfw/run_log.hpp"

namespace genfw {

namespace fs = std::filesystem;

std::string Pipeline::named_guidance_run() const {
  const std::string run = config_.guidance->string("run");
  GENFW_CHECK(!run.empty(), config_.path, ": [guidance] experiment = \"", config_.guidance->string("experiment"),
              "\" is trained into the run's folder, so this classifier is known once run() has resolved it; ",
              "to sample without a run, train it first and name its run file: [guidance] run = \"FILE.h5\"");
  const std::string run_file = (fs::path(config_.path).parent_path() / run).string();
  GENFW_CHECK(fs::exists(run_file), config_.path, ": [guidance] run = \"", run, "\": ", run_file, " does not exist");
  return run_file;
}

std::string Pipeline::resolve_guidance_classifier(const std::string& run_folder) {
  if (!config_.guidance || !guidance_run_.empty()) return guidance_run_;
  if (!config_.guidance->string("run").empty()) return guidance_run_ = named_guidance_run();
  // Trained in this experiment: its own run, in a folder inside this one.
  RunRequest classifier;
  classifier.experiment = (fs::path(config_.path).parent_path() / config_.guidance->string("experiment")).string();
  classifier.device = request_.device;
  classifier.cache_dir = request_.cache_dir;
  Pipeline trainer(classifier, registry_);
  const std::string out_dir = (fs::path(run_folder) / trainer.config().name).string();
  const fs::path existing = fs::path(out_dir) / (trainer.config().name + ".h5");
  if (fs::exists(existing) && RunLog::open(existing.string(), false).attribute("/", "status") == "completed") {
    return guidance_run_ = existing.string();  // --resume: the classifier is done
  }
  trainer.set_output(out_dir, fs::exists(existing));
  std::cerr << "guidance: training the classifier of " << classifier.experiment << "\n";
  // Data-parallel: the classifier trains on every rank, rank 0 alone writes its run file.
  return guidance_run_ = ranks_->share_from_rank0("guidance_run", trainer.run());
}

}  // namespace genfw
