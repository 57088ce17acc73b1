// Pipeline::run(): the stages into a run folder — the folder reserved (or the
// run resumed on its stored plan), the component runs resolved, then
// train → sample → evaluate, each recorded as it ends; how the run ended is
// marked in its file.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "genfw/distributed.hpp"
#include "genfw/durable.hpp"
#include "genfw/images.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/process.hpp"
#include "genfw/rank_coordinator.hpp"
#include "genfw/run.hpp"
#include "genfw/run_file_guard.hpp"
#include "genfw/run_log.hpp"
#include "genfw/run_recorder.hpp"
#include "resume_plan.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

int64_t count_parameters(Model& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

// The stored config and status of a run to resume, read without opening it for writing.
std::pair<std::string, std::string> stored_plan_of(const std::string& run_file) {
  GENFW_CHECK(fs::exists(run_file), "cannot resume: ", run_file,
              " does not exist; nothing to continue (start the run without --resume)");
  check_run_file_readable(run_file);  // a corrupt file is an error here, not a crash or a hang
  const RunLog log = RunLog::open(run_file, false);
  GENFW_CHECK(log.exists("/config"), "cannot resume: ", run_file, " holds no stored config (the run stopped before "
              "it began); start it again without --resume, after removing its folder");
  return {log.read_string("/config"), log.attribute("/", "status")};
}

// The recorder's slot of a pipeline while run() records: evaluate() writes each metric through it.
struct RecordingScope {
  RunRecorder*& slot;
  ~RecordingScope() { slot = nullptr; }
};

}  // namespace

std::string Pipeline::run() {
  if (request_.print_config) {
    std::cout << config_.resolved_toml();
    return "";
  }
  torch::manual_seed(config_.seed);
  ranks_->check_same_plan(config_.resolved_toml());  // before a folder is made or a batch drawn
  const bool rank0 = ranks_->is_rank0();
  auto run_file_in = [&](const std::string& folder) { return (fs::path(folder) / (config_.name + ".h5")).string(); };
  std::string out_dir = request_.out_dir;
  if (request_.resume) {
    if (out_dir.empty() && rank0) out_dir = default_run_folder(config_.name, true);
    // It continues its stored plan; a command line asking for another is refused before anything is built.
    if (adopt_stored_plan(run_file_in(out_dir))) {  // and a finished plan is left as it is, not reopened
      if (rank0) std::cerr << run_file_in(out_dir) << " has completed its plan; nothing to resume\n";
      return rank0 ? run_file_in(out_dir) : std::string();
    }
  } else {
    GENFW_CHECK(out_dir.empty() || !rank0 || !fs::exists(run_file_in(out_dir)), run_file_in(out_dir),
                " already exists; pass --resume to continue it or another --out");
  }
  // Built before the run folder exists: a run whose components or data cannot be
  // built leaves no folder behind (nor pushes the next good run to NAME-2).
  components_without_runs();
  // So are the component runs: an experiment of one trains beside this run's folder
  // (`runs/`, or the suite's folder), where the other runs using it find it; the
  // stored config names the run it became.
  resolve_component_runs((out_dir.empty() ? fs::absolute("runs") : fs::absolute(out_dir).parent_path()).string());
  components();  // the component runs' parts too
  // Rank 0 alone reserves a run folder (default_run_folder creates it); the others get its name.
  if (out_dir.empty() && rank0) out_dir = default_run_folder(config_.name, false);
  out_dir = ranks_->share_from_rank0("run_folder", out_dir);
  if (rank0) fs::create_directories(out_dir);  // the other ranks write nothing there
  const std::string run_file = run_file_in(out_dir);
  const std::string checkpoint = (fs::path(out_dir) / "checkpoint.pt").string();
  // The feature extractor too: a missing TorchScript file, or a classifier for data without labels,
  // fails now and not after the training (a classifier trained now is the one the metrics use).
  const auto& metrics = components().metrics;
  if (rank0 && std::any_of(metrics.begin(), metrics.end(), [](const Built<Metric>& m) { return m->needs_samples(); })) {
    feature_service(metric_context()).extractor();
  }
  // A kill during a checkpoint write leaves its temporary file; it is genfw's own, and stale.
  if (rank0) fs::remove(temporary_of(checkpoint));
  RunLog log = open_run_log_of_rank(run_file, request_.resume);
  RunRecorder recorder(log);
  try {
    return run_stages(recorder, out_dir);
  } catch (const Interrupted& e) {
    recorder.mark_ended(std::string("interrupted: ") + e.what());
    throw Interrupted(std::string(e.what()) + "; " + run_file + " is marked interrupted" +
                          (request_.experiment.empty() ? std::string()
                                                       : "; continue with: " + continuation_command(out_dir)),
                      e.signal_number());
  } catch (const std::exception& e) {
    recorder.mark_ended("failed: " + message_of(e));
    throw;
  }
}

bool Pipeline::adopt_stored_plan(const std::string& run_file) {
  check_resume_changes(request_.resume_changes);
  auto [stored_text, status] = ranks_->is_rank0() ? stored_plan_of(run_file) : std::pair<std::string, std::string>();
  stored_text = ranks_->share_from_rank0("stored_config", stored_text);
  status = ranks_->share_from_rank0("stored_status", status);
  check_same_plan(load_experiment_text(stored_text, run_file, {}, registry_), config_, request_.resume_changes,
                  run_file);
  ExperimentConfig plan = load_experiment_text(stored_text, run_file, request_.resume_changes, registry_);
  plan.path = config_.path;  // relative paths in it are the experiment file's
  plan.device = config_.device;
  config_ = std::move(plan);
  return status == "completed" && request_.resume_changes.empty();
}

std::string Pipeline::continuation_command(const std::string& out_dir) const {
  std::string command = "runner " + shell_word(request_.experiment);
  for (const auto& assignment : request_.overrides) command += " --set " + shell_word(assignment);
  // A variant of a [sweep] names its values in its --set; the file's [sweep] must not expand again.
  if (file_has_sweep_) command += " --set " + shell_word("sweep={}");
  for (const auto& assignment : request_.resume_changes) command += " --resume-set " + shell_word(assignment);
  if (!request_.device.empty()) command += " --device " + shell_word(request_.device);
  if (!request_.cache_dir.empty()) command += " --cache-dir " + shell_word(request_.cache_dir);
  // A worker of `runner --nproc N` (local_workers.cpp tells it N): the command starts N again.
  if (const char* nproc = std::getenv("GENFW_NPROC")) command += std::string(" --nproc ") + nproc;
  return command + " --resume --out " + shell_word(out_dir);
}

std::string Pipeline::run_stages(RunRecorder& recorder, const std::string& out_dir) {
  Components& c = components();
  const std::string checkpoint_step = request_.resume ? recorder.log().attribute("/", "checkpoint_step") : "";
  RunOrigin origin;
  origin.num_parameters = count_parameters(*c.model);
  origin.from_step = checkpoint_step.empty() ? 0 : std::stoll(checkpoint_step);
  origin.parent_run = request_.parent_run;
  for (const auto& [table, run_file] : component_run_files_) {
    origin.component_runs[component_run_table(table).attribute] = run_file;
  }
  origin.components = {c.train_data.info, c.model.info,      c.objective.info,
                       c.sampler.info,    c.classifier.info, c.autoencoder_info};
  for (const auto& metric : c.metrics) origin.components.push_back(metric.info);
  recorder.begin(config_, device_, origin);

  trained_steps_ = 0;
  RecordingScope scope{recorder_ = &recorder};  // evaluations during training record too
  if (config_.train && config_.train->integer("steps") > 0) {
    const std::string checkpoint = (fs::path(out_dir) / "checkpoint.pt").string();
    const TrainOutcome trained = train(recorder.log(), checkpoint, request_.resume);
    trained_steps_ = trained.steps;
    // Only a run that reached its plan (its steps, or its max_minutes budget) is a result.
    GENFW_CHECK(trained.budget_reached || trained_steps_ == config_.train->integer("steps"), "training ended at step ",
                trained_steps_, " of the planned ", config_.train->integer("steps"));
  } else if (parent_checkpoint_) {
    recorder.record_parent_checkpoint(*parent_checkpoint_, out_dir);
  }
  recorder.discard_metrics_from(trained_steps_);  // an earlier attempt of this run may have written them
  if (!c.sampler) {  // a run that only trains: no samples, only the metrics of the model
    if (!ranks_->is_rank0()) return "";  // data-parallel: rank 0 alone evaluates and writes
    evaluate(SampleOutcome{});
    recorder.complete();
    return recorder.path();
  }
  SampleOutcome drawn = sample();  // data-parallel: every rank draws its share, rank 0 gets them all
  if (!ranks_->is_rank0()) {       // and alone writes and evaluates them; the others extract features
    serve_metrics_of_rank0();
    return "";
  }
  recorder.record_samples(drawn, c.context.data.low, c.context.data.high);  // in data space (a latent model's decoded)
  write_sample_picture(drawn.samples, c.context.data, (fs::path(out_dir) / (config_.name + ".png")).string(),
                 config_.log.integer("grid_samples"));
  evaluate(drawn);
  recorder.complete();
  return recorder.path();
}

}  // namespace genfw
