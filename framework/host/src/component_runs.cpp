// Runs as components (docs/design.md, "Runs as components"): the [guidance]
// classifier, the [latent] autoencoder and the [cascade] base stage are other
// runs, resolved before anything is built from them (named, or trained now),
// checked against the digest of the weights this run used, and built frozen.
#include <filesystem>
#include <iostream>

#include "genfw/evenly_strided.hpp"
#include "genfw/latent_space.hpp"
#include "genfw/pipeline.hpp"
#include "genfw/rank_coordinator.hpp"
#include "genfw/run_file_guard.hpp"
#include "genfw/run_log.hpp"
#include "genfw/sha256.hpp"
#include "resume_plan.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

std::string header_of(const ComponentRunTable& use) { return "[" + use.table + "]"; }

// The digest of a component run's weights, checked against the run's own record (damaged)
// and against `expected`, the one this run's config recorded when it used them (changed).
std::string checked_weights_digest(const ComponentRunTable& use, const std::string& owner,
                                   const std::string& run_file, const std::string& expected) {
  std::string digest;
  try {
    digest = sha256_hex(RecordedCheckpoint::of_run(run_file).read_verified());
  } catch (const Error& e) {
    throw Error(owner + ": " + header_of(use) + " run = " + run_file + " (" + use.role + "): " + e.what());
  }
  GENFW_CHECK(expected.empty() || expected == digest, owner, ": ", header_of(use), " run = ", run_file, " (", use.role,
              "): its weights changed since this run recorded them (sha256 ", expected, ", now ", digest,
              "): it was trained again or replaced. Name the run whose weights this run used, or start this run "
              "anew from its experiment");
  return digest;
}

// How a component experiment's run in a folder is used: "reuse" (finished, same plan),
// "resume" (stopped, same plan) or "new" (a fresh folder), and the folder.
std::pair<std::string, std::string> component_folder(const Pipeline& component, const std::string& folder,
                                                     const Registry& registry) {
  const std::string name = component.config().name;
  for (int k = 1;; ++k) {
    const fs::path dir = fs::path(folder) / (k == 1 ? name : name + "-" + std::to_string(k));
    const fs::path run_file = dir / (name + ".h5");
    if (!fs::exists(dir)) return {"new", dir.string()};
    if (!fs::exists(run_file)) continue;  // reserved by another runner, or not a run of it
    try {
      check_run_file_readable(run_file.string());
      const RunLog log = RunLog::open(run_file.string(), false);
      if (!log.exists("/config")) continue;
      const ExperimentConfig stored = load_experiment_text(log.read_string("/config"), run_file.string(), {}, registry);
      if (!same_plan(stored, component.config())) continue;
      const std::string status = log.attribute("/", "status");
      if (status == "completed") return {"reuse", run_file.string()};
      // A run still marked running may be another runner's: it is left alone.
      if (status.rfind("interrupted", 0) == 0 || status.rfind("failed", 0) == 0) return {"resume", dir.string()};
    } catch (const Error&) {
      continue;  // a damaged file is no run to reuse; a fresh folder is taken
    }
  }
}

}  // namespace

std::string Pipeline::component_run_file(const std::string& table) const {
  if (auto resolved = component_run_files_.find(table); resolved != component_run_files_.end()) {
    return resolved->second;
  }
  const ComponentRunTable& use = component_run_table(table);
  const Options* options = config_.component_run(table);
  GENFW_CHECK(options != nullptr, config_.path, ": no ", header_of(use), " table names ", use.role);
  const std::string run = options->string("run");
  GENFW_CHECK(!run.empty(), config_.path, ": ", header_of(use), " experiment = \"", options->string("experiment"),
              "\" is trained when the run starts, so ", use.role, " is known once run() has resolved it; to use it "
              "without a run, train it first and name its run file: ", header_of(use), " run = \"FILE.h5\"");
  const std::string run_file = (fs::path(config_.path).parent_path() / run).string();
  GENFW_CHECK(fs::exists(run_file), config_.path, ": ", header_of(use), " run = \"", run, "\" (", use.role, "): ",
              run_file, " does not exist");
  return run_file;
}

void Pipeline::resolve_component_runs(const std::string& folder) {
  for (const auto& use : component_run_tables()) {
    Options* options = config_.component_run(use.table);
    if (options == nullptr || component_run_files_.count(use.table)) continue;
    const std::string run_file = options->string("run").empty() && !folder.empty()
                                     ? trained_component_run(use, folder)
                                     : component_run_file(use.table);
    check_run_file_readable(run_file);
    const std::string digest = checked_weights_digest(use, config_.path, run_file, options->string("sha256"));
    component_run_files_[use.table] = run_file;
    // The stored config names the run and its weights, so `runner sample`, sweeps and
    // --resume use these and no other (and refuse them once they change).
    options->set("run", fs::absolute(run_file).string());
    options->set("experiment", std::string());
    options->set("sha256", digest);
  }
}

std::string Pipeline::trained_component_run(const ComponentRunTable& use, const std::string& folder) {
  RunRequest request;
  request.experiment =
      (fs::path(config_.path).parent_path() / config_.component_run(use.table)->string("experiment")).string();
  request.device = request_.device;
  request.cache_dir = request_.cache_dir;
  Pipeline component(request, registry_);
  // Rank 0 looks; every rank trains (data-parallel), rank 0 alone writes.
  auto [how, where] = ranks_->is_rank0() ? component_folder(component, folder, registry_)
                                         : std::pair<std::string, std::string>();
  how = ranks_->share_from_rank0("component_" + use.table + "_how", how);
  where = ranks_->share_from_rank0("component_" + use.table + "_where", where);
  if (how == "reuse") {
    if (ranks_->is_rank0()) std::cerr << header_of(use) << ": " << use.role << " is " << where << "\n";
    return where;
  }
  if (ranks_->is_rank0()) {
    std::cerr << header_of(use) << ": " << (how == "resume" ? "continuing " : "training ") << use.role << " ("
              << request.experiment << ") in " << where << "\n";
  }
  component.set_output(where, how == "resume");
  return ranks_->share_from_rank0("component_" + use.table + "_run", component.run());
}

Built<Model> Pipeline::frozen_model(const ComponentRunTable& use, Capability capability, const BuildContext& context,
                                    bool of_this_data) {
  const std::string run_file = component_run_file(use.table);
  const ExperimentConfig trained =
      load_experiment_text(RunLog::open(run_file, false).read_string("/config"), run_file, {}, registry_);
  Built<Model> model;
  model.info = &registry_.find(trained.model.plugin, Kind::model);
  GENFW_CHECK(std::find(model.info->offers.begin(), model.info->offers.end(), capability) != model.info->offers.end(),
              config_.path, ": ", header_of(use), " run = ", run_file, ": its model '", trained.model.plugin,
              "' offers no '", capability_name(capability), "', which ", use.role, " must offer");
  GENFW_CHECK(!of_this_data || trained.data.plugin == config_.data.plugin, config_.path, ": ", header_of(use),
              " run = ", run_file, ": ", use.role, " was trained on dataset '", trained.data.plugin,
              "', this run's data is '", config_.data.plugin, "'");
  model.object = call_plugin(*model.info, "its constructor", [&] {
    return registry_.create<Model>(trained.model.plugin, Kind::model, trained.model.options, context);
  });
  model->to(device_);
  load_weights_for_sampling(*model, RecordedCheckpoint::of_run(run_file));
  model->eval();
  for (auto& parameter : model->parameters()) parameter.set_requires_grad(false);
  return model;
}

void Pipeline::build_from_component_runs(Components& c) {
  if (Options* latent = config_.component_run("latent")) {
    Built<Model> autoencoder = frozen_model(component_run_table("latent"), Capability::latent_variable, c.context, true);
    c.autoencoder_info = autoencoder.info;
    c.latent = std::make_unique<LatentSpace>(std::move(autoencoder.object), *c.train_data, latent->real("scale"),
                                             latent->string("posterior") == "sample", config_.seed, device_);
    latent->set("scale", c.latent->scale());  // the stored config records the scale the run used
    c.latent_train_data = std::make_unique<LatentDataset>(*c.train_data, *c.latent);
    for (const auto& metric : c.metrics) {
      GENFW_CHECK(metric->needs_samples(), config_.path, ": metric '", metric.info->name,
                  "' scores the model itself on the data, but a [latent] model is a model of latents, not of the "
                  "data: score it by its decoded samples (fid, kid, inception_score, ...)");
    }
    build_modelled(c);
  }
  if (config_.component_run("guidance")) {
    c.classifier = frozen_model(component_run_table("guidance"), Capability::classifier, c.context, false);
  }
  auto* stage = as<LowResolutionConditioned>(*c.model);
  GENFW_CHECK(stage != nullptr || !config_.component_run("cascade"), config_.path, ": [cascade] names a base stage, "
              "but model '", config_.model.plugin, "' is no super-resolution stage (e.g. sr_unet)");
  GENFW_CHECK(stage != nullptr || config_.sampling.string("condition") == "auto", config_.path,
              ": [sampler] condition = \"", config_.sampling.string("condition"), "\" conditions a super-resolution "
              "stage, but model '", config_.model.plugin, "' is none");
}

torch::Tensor Pipeline::low_resolution_images(Components& c, int64_t total) {
  auto* stage = as<LowResolutionConditioned>(*c.model);
  if (stage == nullptr) return {};
  const std::vector<int64_t> shape = stage->low_resolution_shape();
  std::string source = config_.sampling.string("condition");
  if (source == "auto") source = config_.component_run("cascade") ? "cascade" : "data";
  if (source == "cascade") {
    GENFW_CHECK(config_.component_run("cascade"), config_.path,
                ": [sampler] condition = \"cascade\" needs a [cascade] table naming the base run");
    const std::string base = component_run_file("cascade");
    RunLog log = RunLog::open(base, false);
    GENFW_CHECK(log.exists("/samples"), config_.path, ": [cascade] run = ", base, ": the base stage drew no samples");
    torch::Tensor samples = log.read_tensor("/samples");
    GENFW_CHECK(samples.dim() == 4 && samples.sizes().slice(1).vec() == shape && samples.size(0) >= total,
                config_.path, ": [cascade] run = ", base, ": its /samples are ", samples.sizes(), "; this run needs ",
                total, " low-resolution images of shape ", c10::IntArrayRef(shape),
                " (the base stage's [sampler] num_samples must be at least this run's)");
    return samples.slice(0, 0, total).to(torch::kFloat32);
  }
  // A perfect base stage: real images of the training split, averaged down as in training.
  const torch::Tensor indices = evenly_strided_indices(total, c.train_data->size());
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < total; first += 256) {
    const torch::Tensor images = c.train_data->get(indices.slice(0, first, first + 256)).x.to(device_);
    parts.push_back(stage->low_resolution_of(images).cpu());
  }
  return torch::cat(parts);
}

}  // namespace genfw
