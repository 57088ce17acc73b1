// What every `runner import FORMAT` shares (genfw/imported_run.hpp): weights into a
// model by name, and the completed run written around them.
#include "genfw/imported_run.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "genfw/config.hpp"
#include "genfw/durable.hpp"
#include "genfw/error.hpp"
#include "genfw/registry.hpp"
#include "genfw/run_log.hpp"
#include "genfw/run_recorder.hpp"
#include "genfw/sha256.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

std::string listed(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 8) out += detail::concat(" and ", names.size() - 8, " more");
  return out;
}

}  // namespace

void load_named_weights(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& tensors,
                        const std::function<std::string(const std::string&)>& source_name_of,
                        const std::string& weights) {
  std::map<std::string, torch::Tensor> expected;  // the file's name → the model's parameter
  for (const auto& item : model.named_parameters()) expected[source_name_of(item.key())] = item.value();
  std::vector<std::string> unexpected, misshapen;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors) {
    auto target = expected.find(name);
    if (target == expected.end()) {
      unexpected.push_back(name);
      continue;
    }
    torch::Tensor source = tensor;
    const auto& shape = target->second.sizes();
    if (shape.size() == 4 && tensor.dim() == 2 && shape[2] == 1 && shape[3] == 1) source = tensor.reshape(shape);
    if (source.sizes() != shape) {
      misshapen.push_back(detail::concat(name, " is ", tensor.sizes(), ", expected ", shape));
      continue;
    }
    GENFW_CHECK(source.is_floating_point(), weights, ": tensor '", name, "' holds ", source.scalar_type(),
                ", expected floating-point weights");
    target->second.copy_(source.to(target->second.scalar_type()));
    used.insert(name);
  }
  std::vector<std::string> missing;
  for (const auto& [name, parameter] : expected) {
    if (!used.count(name)) missing.push_back(name);
  }
  GENFW_CHECK(misshapen.empty(), weights, ": tensors of the wrong shape for the network its config describes: ",
              listed(misshapen));
  GENFW_CHECK(missing.empty(), weights, ": missing tensors the network its config describes needs: ", listed(missing));
  GENFW_CHECK(unexpected.empty(), weights, ": unexpected tensors, not part of the network its config describes: ",
              listed(unexpected));
}

namespace {

std::string toml_table(const std::string& table, const std::string& plugin,
                       const std::map<std::string, OptionValue>& options) {
  std::string text = "\n[" + table + "]\n";
  if (!plugin.empty()) text += "plugin = " + format_value(plugin) + "\n";
  for (const auto& [key, value] : options) text += key + " = " + format_value(value) + "\n";
  return text;
}

// --set data.plugin=NAME, or the dataset genfw has for the network's image shape.
std::string dataset_for(const ImportedNetwork& network, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    if (o.rfind("data.plugin=", 0) == 0) {
      std::string name = o.substr(12);
      name.erase(std::remove(name.begin(), name.end(), '"'), name.end());
      return name;
    }
  }
  const auto& s = network.sample_shape;
  if (s == std::vector<int64_t>{3, 32, 32}) return "cifar10";
  if (s == std::vector<int64_t>{1, 28, 28}) return "fashion_mnist";
  throw Error(detail::concat(network.source, ": genfw has no default dataset of ", s[0], "×", s[1], "×", s[2],
                             " images; name the one the network was trained on with --set data.plugin=NAME"));
}

std::string origin_of(const ImportedNetwork& network) {
  return "runner import " + network.format + " " + network.source;
}

std::string experiment_text(const ImportedNetwork& network, const std::string& name,
                            const std::vector<std::string>& overrides) {
  std::string text = "# Imported by `" + origin_of(network) + "` (docs/import.md).\n";
  text += "name = " + format_value(name) + "\nseed = 0\ndevice = \"auto\"\n";
  text += toml_table("data", dataset_for(network, overrides), network.data);
  text += toml_table("model", network.model_plugin, network.model);
  text += toml_table("sampler", network.sampler_plugin, network.sampler);
  return text;
}

// "table.key=value" for each mapped option: the mapping laid over an experiment file.
void add_overrides(std::vector<std::string>& out, const std::string& table,
                   const std::map<std::string, OptionValue>& options) {
  for (const auto& [key, value] : options) out.push_back(table + "." + key + "=" + format_value(value));
}

// The run's experiment: the mapped one, or request.experiment with the mapping laid over it
// (the user's --set last, so that they win).
ExperimentConfig imported_experiment(const ImportedNetwork& network, const ImportRequest& request,
                                     const std::string& name, const Registry& registry) {
  if (request.experiment.empty()) {
    return load_experiment_text(experiment_text(network, name, request.overrides), origin_of(network),
                                request.overrides, registry);
  }
  std::vector<std::string> overrides{"model.plugin=" + format_value(network.model_plugin)};
  add_overrides(overrides, "model", network.model);
  add_overrides(overrides, "data", network.data);
  const ExperimentConfig before = load_experiment(request.experiment, overrides, registry);
  if (before.sampler && before.sampler->plugin == network.sampler_plugin) {
    add_overrides(overrides, "sampler", network.sampler);
  }
  overrides.insert(overrides.end(), request.overrides.begin(), request.overrides.end());
  return load_experiment(request.experiment, overrides, registry);
}

std::string run_name(const std::string& out_dir) {
  fs::path path = fs::path(out_dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  GENFW_CHECK(!path.filename().empty() && path.filename() != "." && path.filename() != "..",
              "runner import: --out ", out_dir, " names no folder");
  return path.filename().string();
}

std::string checkpoint_bytes(torch::nn::Module& model) {
  torch::serialize::OutputArchive archive, model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  archive.write("step", torch::tensor(int64_t(0)));
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

// The checkpoint as the trainer records one: "next" digest before the file, "current" after.
void write_checkpoint(RunLog& log, const std::string& path, const std::string& bytes) {
  const std::string digest = sha256_hex(bytes);
  log.set_attribute("/", "checkpoint_sha256_next", digest);
  log.flush();
  write_file_durably(path, bytes);
  log.set_attribute("/", "checkpoint", fs::path(path).filename().string());
  log.set_attribute("/", "checkpoint_step", int64_t(0));
  log.set_attribute("/", "checkpoint_sha256", digest);
}

}  // namespace

std::string write_imported_run(ImportedNetwork network, const ImportRequest& request, const Registry& registry,
                               const std::function<void(Model&, ImportedNetwork&)>& load) {
  GENFW_CHECK(!request.out_dir.empty(), "runner import ", network.format, ": --out DIR is required");
  const std::string name = run_name(request.out_dir);
  const ExperimentConfig config = imported_experiment(network, request, name, registry);
  GENFW_CHECK(config.model.plugin == network.model_plugin, "runner import ", network.format, ": the model is ",
              network.model_plugin, "; --set model.plugin=", config.model.plugin, " cannot hold these weights");
  check_composition(config, registry);
  BuildContext context;
  context.data.name = config.data.plugin;
  context.data.shape = network.sample_shape;
  auto model = registry.create<Model>(network.model_plugin, Kind::model, config.model.options, context);
  load(*model, network);
  network.tensors.clear();  // the model holds the weights now: one copy fewer while the checkpoint is written

  fs::create_directories(request.out_dir);
  const std::string run_file = (fs::path(request.out_dir) / (name + ".h5")).string();
  GENFW_CHECK(!fs::exists(run_file), run_file, " already exists; import into another --out folder");
  RunLog log = RunLog::create(run_file);
  RunRecorder recorder(log);
  try {
    RunOrigin origin;
    for (const auto& p : model->parameters()) origin.num_parameters += p.numel();
    origin.components = {&registry.find(config.model.plugin, Kind::model)};
    if (config.sampler) origin.components.push_back(&registry.find(config.sampler->plugin, Kind::sampler));
    recorder.begin(config, torch::kCPU, origin);
    log.set_attribute("/", "imported_from", fs::absolute(network.source).string());
    log.set_attribute("/", "imported_weights", fs::absolute(network.weights).string());
    log.set_attribute("/", "imported_weights_sha256", network.weights_sha256);
    write_checkpoint(log, (fs::path(request.out_dir) / "checkpoint.pt").string(), checkpoint_bytes(*model));
    recorder.complete();
  } catch (const std::exception& e) {
    recorder.mark_ended(std::string("failed: ") + e.what());
    throw;
  }
  for (const auto& note : network.notes) std::cerr << "note: " << note << "\n";
  return run_file;
}

}  // namespace genfw
