// The run file's contents for one run (genfw/run_recorder.hpp), environment capture included.
#include "genfw/run_recorder.hpp"

#include <map>

#include "genfw/sha256.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include "genfw/config.hpp"
#include "genfw/distributed.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/process.hpp"
#include "genfw/run_log.hpp"
#include "genfw/trainer.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

std::string output_of_command(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    ::pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string utc_now_iso() {
  std::time_t t = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return text;
}

// The source tree's commit, "-dirty" when tracked files differ from it.
std::string source_commit() {
  std::string git = output_of_command("git -C '" GENFW_SOURCE_DIR "' rev-parse HEAD 2>/dev/null");
  if (!git.empty() &&
      !output_of_command("git -C '" GENFW_SOURCE_DIR "' status --porcelain -uno 2>/dev/null").empty()) {
    git += "-dirty";
  }
  return git.empty() ? "unknown" : git;
}

void write_environment(RunLog& log, torch::Device device, uint64_t seed) {
  char host[256] = "unknown";
  ::gethostname(host, sizeof host);
  log.write_string("/env/framework", GENFW_VERSION_STRING);
  log.write_string("/env/abi", std::to_string(GENFW_ABI_VERSION));
  log.write_string("/env/torch", GENFW_TORCH_VERSION_STRING);
  log.write_string("/env/compiler", GENFW_COMPILER);
  log.write_string("/env/threads", std::to_string(torch::get_num_threads()));
  log.write_string("/env/flush_denormals", process_settings().flush_denormals ? "true" : "false");
  log.write_string("/env/keep_freed_memory", process_settings().keep_freed_memory ? "true" : "false");
  log.write_string("/env/device", device.str());
  log.write_string("/env/git_commit", source_commit());
  log.write_string("/env/host", host);
  log.write_string("/env/seed", std::to_string(seed));
  log.write_string("/env/started", utc_now_iso());
}

// Copies every /env/<key> (and /env/plugins/<key>) of the run file to `segment`/<key>.
void copy_environment(RunLog& log, const std::string& segment) {
  for (const auto& key : log.children("/env")) {
    if (key == "segments") continue;
    if (key == "plugins") {
      for (const auto& plugin : log.children("/env/plugins")) {
        log.write_string(segment + "/plugins/" + plugin, log.read_string("/env/plugins/" + plugin));
      }
      continue;
    }
    log.write_string(segment + "/" + key, log.read_string("/env/" + key));
  }
}

// /env/plugins/<kind>.<name> = "<library> version <v> sha256 <digest>", of this segment.
void write_plugin_libraries(RunLog& log, const std::vector<const ComponentInfo*>& components) {
  static std::map<std::string, std::string> digests;  // a library's file does not change while it is loaded
  for (const ComponentInfo* info : components) {
    if (info == nullptr) continue;
    auto digest = digests.find(info->library);
    if (digest == digests.end()) digest = digests.emplace(info->library, sha256_of_file(info->library)).first;
    log.write_string("/env/plugins/" + std::string(kind_name(info->kind)) + "." + info->name,
                     info->library + " version " + info->version + " sha256 " + digest->second);
  }
}

/// /env/<key> holds the environment of the run's latest segment (its start, then
/// each resume); /env/segments/<k>/<key> keeps every segment's, with the step it
/// started from, so that a resume with another world size, launcher or machine
/// does not erase how the earlier steps were trained.
void write_environment_segment(RunLog& log, torch::Device device, uint64_t seed, int64_t from_step,
                               const std::vector<const ComponentInfo*>& components) {
  if (log.exists("/env") && !log.exists("/env/segments")) copy_environment(log, "/env/segments/0");  // an older file
  write_environment(log, device, seed);
  write_plugin_libraries(log, components);
  write_distributed_environment(log, device);
  log.write_string("/env/from_step", std::to_string(from_step));
  const size_t earlier = log.exists("/env/segments") ? log.children("/env/segments").size() : 0;
  copy_environment(log, "/env/segments/" + std::to_string(earlier));
}

}  // namespace

const std::string& RunRecorder::path() const { return log_.path(); }

void RunRecorder::begin(const ExperimentConfig& config, torch::Device device, const RunOrigin& origin) {
  log_.write_string("/config", config.resolved_toml());
  write_environment_segment(log_, device, config.seed, origin.from_step, origin.components);
  log_.set_attribute("/", "experiment", config.name);
  log_.set_attribute("/", "dataset", config.data.plugin);
  log_.set_attribute("/", "model", config.model.plugin);
  log_.set_attribute("/", "objective", config.objective ? config.objective->plugin : "");
  log_.set_attribute("/", "sampler", config.sampler ? config.sampler->plugin : "");
  log_.set_attribute("/", "num_parameters", origin.num_parameters);
  log_.set_attribute("/", "status", "running");
  if (!origin.parent_run.empty()) log_.set_attribute("/", "parent", fs::absolute(origin.parent_run).string());
  for (const auto& [attribute, run_file] : origin.component_runs) {
    log_.set_attribute("/", attribute, fs::absolute(run_file).string());
  }
  log_.flush();
}

void RunRecorder::record_parent_checkpoint(const RecordedCheckpoint& parent, const std::string& out_dir) {
  log_.set_attribute("/", "checkpoint", fs::relative(parent.path, out_dir).string());
  log_.set_attribute("/", "checkpoint_sha256", parent.sha256);
  log_.set_attribute("/", "checkpoint_sha256_next", parent.sha256_next);
}

void RunRecorder::discard_metrics_from(int64_t step) { log_.truncate_metrics(step); }

void RunRecorder::record_samples(const SampleOutcome& drawn, double data_low, double data_high) {
  log_.write_tensor("/samples", drawn.samples);
  log_.set_attribute("/samples", "low", data_low);
  log_.set_attribute("/samples", "high", data_high);
  if (drawn.labels.defined()) log_.write_tensor("/sample_labels", drawn.labels.to(torch::kFloat32));
  if (drawn.trajectory_x.defined()) {
    log_.write_tensor("/trajectory/x", drawn.trajectory_x);
    if (drawn.trajectory_x0.defined()) log_.write_tensor("/trajectory/x0_pred", drawn.trajectory_x0);
    log_.write_tensor("/trajectory/noise_level", drawn.trajectory_levels);
  }
  const double total = double(drawn.samples.size(0));
  log_.write_scalar("/timing/sample_seconds", drawn.seconds);
  log_.write_scalar("/timing/num_samples", total);
  log_.write_scalar("/timing/nfe", drawn.nfe);
  log_.write_scalar("/timing/samples_per_second", drawn.seconds > 0 ? total / drawn.seconds : 0.0);
  log_.flush();
}

void RunRecorder::record_metric(const MetricOutcome& outcome, int64_t step) {
  for (const auto& [name, value] : outcome.result.values) {
    log_.append_metric(name, {value, step, outcome.wall_seconds}, outcome.info->name, outcome.result.provenance);
  }
  log_.flush();
}

void RunRecorder::record_evaluation(const MetricOutcome& outcome, int64_t step, double train_seconds) {
  for (const auto& [name, value] : outcome.result.values) {
    log_.append_metric(name, {value, step, train_seconds}, outcome.info->name, outcome.result.provenance, "/eval");
  }
  log_.flush();
}

void RunRecorder::record_floor(const std::string& group, const std::string& name, double value,
                               const std::string& metric, const std::string& split, int64_t count, int64_t step,
                               double wall_seconds) {
  const std::string path = group + "/" + name;
  log_.append_series(path, {{step, value, wall_seconds}});
  log_.set_attribute(path, "metric", metric);
  log_.set_attribute(path, "split", split);
  log_.set_attribute(path, "count", count);
  log_.flush();
}

void RunRecorder::complete() {
  log_.set_attribute("/", "status", "completed");
  log_.flush();
}

void RunRecorder::mark_ended(const std::string& status) noexcept {
  try {
    log_.set_attribute("/", "status", status);
    log_.flush();
  } catch (const std::exception&) {
  }
}

}  // namespace genfw
