#include "genfw/precision.hpp"
#include "genfw/config.hpp"

#include "genfw/features.hpp"
#include "genfw/model.hpp"

#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "toml_text.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {
// Far above any learning rate that trains (SGD on a well-scaled problem stays
// below ~1); 1e308 or inf is a typo, and it would only produce NaN steps.
constexpr double kMaxLearningRate = 10.0;
}  // namespace

const Schema& group_schema() {
  static const Schema schema =
      Schema()
          .choice("optimizer", "adam", {"adam", "adamw", "sgd"}, "optimizer of the parameter group(s)")
          .real("lr", 1e-3, "learning rate after warm-up", between(0, kMaxLearningRate))
          .reals("betas", {0.9, 0.999}, "Adam/AdamW betas", between(0, 1))
          .real("momentum", 0.9, "SGD momentum", between(0, 1))
          .real("weight_decay", 0.0, "weight decay (decoupled for AdamW)", at_least(0));
  return schema;
}

const Schema& train_schema() {
  static const Schema schema =
      Schema()
          .integer("steps", 1000, "training steps (one batch each)", at_least(0))
          .integer("batch_size", 128, "samples per batch (the global batch)", at_least(1))
          .merge(group_schema())
          .integer("warmup_steps", 0, "linear learning-rate warm-up from 0 over this many steps", at_least(0))
          .choice("lr_schedule", "constant", {"constant", "cosine", "linear"},
                  "learning rate after the warm-up: constant, or a cosine or linear decay from lr to lr_final·lr "
                  "at the last of [train] steps")
          .real("lr_final", 0.0, "the decayed schedules' learning rate at the last step, as a fraction of lr",
                between(0, 1))
          .integer("accumulate", 1,
                   "gradient accumulation: each step averages the gradients of this many micro-batches before one "
                   "update (global batch = batch_size = micro-batch × accumulate × ranks)",
                   at_least(1))
          .real("max_minutes", 0.0,
                "end training at this wall-clock budget of training time (0 = none): a normal end, with a "
                "checkpoint and the budget recorded; steps is then a ceiling (and the decay schedules' horizon)",
                at_least(0))
          .real("grad_clip", 0.0, "clip the global gradient norm of each group to this (0 = off)", at_least(0))
          .real("ema_decay", 0.0, "exponential moving average of weights, used for sampling (0 = off)",
                between(0, 0.999999999))
          .boolean("ema_warmup", false,
                   "EMA decay min(ema_decay, (1 + n)/(10 + n)) at update n, so early weights fade fast "
                   "(TensorFlow's ExponentialMovingAverage with num_updates)")
          .integer("checkpoint_every", 1000, "write a checkpoint every N steps (and at the end)", at_least(1))
          .integer("log_every", 50, "flush losses to the run file and print progress every N steps", at_least(1))
          .choice("precision", "fp32", precision_choices(),
                  "bf16: autocast (convolutions and matrix products in bfloat16, weights and gradients float32; "
                  "fast only on CPUs with bf16 instructions or on GPUs); tf32: CUDA tensor cores on float32 "
                  "(float32 on the CPU)");
  return schema;
}

namespace {

// The keys every table naming a component run has.
Schema component_run_schema(const std::string& what) {
  return Schema()
      .string("run", "", "run file (.h5) of " + what + "; relative to the experiment file")
      .string("experiment", "",
              "or an experiment file that trains it first, into runs' folder beside this run's (reused there when "
              "a finished run of the same plan is found); relative to the experiment file")
      .string("sha256", "",
              "the SHA-256 of the weights used (the stored config records it; a run whose weights differ is "
              "refused)");
}

}  // namespace

const std::vector<ComponentRunTable>& component_run_tables() {
  static const std::vector<ComponentRunTable> tables{
      {"guidance", "guidance_classifier", "the guidance classifier",
       "[guidance] (framework): the classifier of classifier guidance, from a trained run or an experiment that "
       "trains it first; samplers use it when their guidance_scale > 0",
       component_run_schema("a trained classifier (a model offering 'classifier', e.g. noisy_classifier) whose "
                            "gradient guides sampling")},
      {"latent", "latent_autoencoder", "the autoencoder of latent diffusion",
       "[latent] (framework): latent diffusion (Rombach et al. 2022): the model is trained and sampled in the "
       "latent space of a trained autoencoder's encoder, scaled to unit variance; samples are decoded to images "
       "before they are recorded and scored",
       component_run_schema("a trained autoencoder (a model offering 'latent-variable', e.g. vae) of this run's "
                            "data")
           .real("scale", 0.0,
                 "latents are z·scale (LDM's scale_factor); 0 = 1/std of the encoded training latents (LDM: of "
                 "the first batch; here of up to 4096 images evenly spread over the split), recorded in the "
                 "stored config",
                 at_least(0.0))
           .choice("posterior", "sample", {"sample", "mean"},
                   "the latent of an image: a draw from the encoder's posterior q(z|x) in every training step "
                   "(LDM), or its mean")},
      {"cascade", "cascade_base", "the cascade's base stage",
       "[cascade] (framework): a cascade (Ho et al. 2021): this run's super-resolution model (e.g. sr_unet) is "
       "sampled conditioned on a base run's samples (its /samples, in order; [sampler] condition)",
       component_run_schema("the base stage: a run whose samples are the low-resolution images this run's "
                            "super-resolution model is conditioned on")},
  };
  return tables;
}

const ComponentRunTable& component_run_table(const std::string& table) {
  for (const auto& entry : component_run_tables()) {
    if (entry.table == table) return entry;
  }
  throw Error("no framework table [" + table + "] names a component run");
}

const Options* ExperimentConfig::component_run(const std::string& table) const {
  auto it = component_runs.find(table);
  return it == component_runs.end() ? nullptr : &it->second;
}

Options* ExperimentConfig::component_run(const std::string& table) {
  auto it = component_runs.find(table);
  return it == component_runs.end() ? nullptr : &it->second;
}

const Schema& sampling_schema() {
  static const Schema schema =
      Schema()
          .integer("num_samples", 256, "samples drawn after training (logged, scored by metrics)", at_least(1))
          .integer("batch_size", 256, "samples per sampler call", at_least(1))
          .string("x_init", "",
                  "start the sampler from these points (e.g. a fixed x_T, or x0 to invert with DDIM) instead of "
                  "fresh noise: FILE.h5:/dataset (an earlier run's /samples) or FILE.pt (one saved tensor)")
          .choice("precision", "fp32", precision_choices(),
                  "bf16: the model's forward passes under autocast (convolutions and matrix products in bfloat16); "
                  "tf32: CUDA tensor cores on float32 (float32 on the CPU)")
          .choice("condition", "auto", {"auto", "cascade", "data"},
                  "what a super-resolution model (e.g. sr_unet) is conditioned on: cascade = the [cascade] run's "
                  "samples, sample i on its i-th; data = the training split's images averaged down by the model "
                  "(evenly spread over it: a perfect base stage); auto = cascade with a [cascade] table, else data");
  return schema;
}

const Schema& log_schema() {
  static const Schema schema =
      Schema()
          .integer("grid_samples", 64, "samples in the PNG grid", at_least(0))
          .choice("progress", "auto", {"auto", "bar", "plain", "off"},
                  "progress output: a bar on a terminal, plain lines otherwise")
          .boolean("checkpoint", true, "write checkpoints (needed by --resume and `runner sample`)");
  return schema;
}

const Schema& eval_schema() {
  static const Schema schema =
      Schema()
          .integer("every", 0, "evaluate during training every N steps (0 = not by steps)", at_least(0))
          .real("every_minutes", 0.0,
                "evaluate during training every this many minutes of training time (0 = not by time); "
                "evaluation time is not training time",
                at_least(0))
          .integer("num_samples", 0,
                   "samples drawn per evaluation, from the EMA weights with the run's sampler and noise "
                   "(0 = [sampler] num_samples)",
                   at_least(0))
          .string("keep_best", "",
                  "keep a snapshot of the weights with the best value of this sample metric value (e.g. \"fid\"; "
                  "its metric says which way is better), as snapshots/best_step_S.pt; \"\" = none")
          .integer("keep_last", 0, "keep snapshots of the last K evaluations (snapshots/step_S.pt)", at_least(0));
  return schema;
}

namespace {

const Schema& top_schema() {
  static const Schema schema =
      Schema()
          .string("name", "", "experiment name (default: the file name without .toml)")
          .integer("seed", 0, "seed of every random number in the run", at_least(0))
          .choice("device", "cpu", {"cpu", "cuda", "auto"}, "where tensors live")
          .string("extends", "", "base experiment file(s) this one overrides: a path or a list, later ones win");
  return schema;
}

const std::vector<std::string>& top_level_keys() {
  static const std::vector<std::string> keys{"name",    "seed",    "device",  "extends", "data",
                                             "model",   "objective", "train", "sampler", "metrics",
                                             "features", "guidance", "latent", "cascade", "log",  "eval",
                                             "sweep"};
  return keys;
}

std::string location(const toml::source_region& source, const std::string& fallback) {
  std::ostringstream out;
  out << (source.path ? *source.path : fallback);
  if (source.begin.line > 0) out << ':' << source.begin.line << ':' << source.begin.column;
  return out.str();
}

[[noreturn]] void fail_at(const toml::source_region& source, const std::string& fallback,
                          const std::string& message) {
  throw Error(location(source, fallback) + ": " + message);
}

// `role` names the file in messages: "experiment file" or "a.toml: 'extends' names".
toml::table parse_toml_file(const std::string& path, const std::string& role = "experiment file") {
  return parse_toml_text(read_regular_file(path, role), path);
}

// Tables merge key by key; arrays of tables ([[metrics]]) concatenate, base
// entries first, so a file of shared metrics can be mixed in; values and plain
// arrays are replaced. `over`'s nodes are moved, not copied: toml++ keeps a
// node's file and line only when it moves, and notes and errors name them.
void merge_into(toml::table& base, toml::table&& over) {
  for (auto&& [key, node] : over) {
    if (auto* over_table = node.as_table()) {
      if (auto* base_table = base.get_as<toml::table>(key)) {
        merge_into(*base_table, std::move(*over_table));
        continue;
      }
    }
    toml::array* over_tables = node.as_array();
    toml::array* base_tables = base.get_as<toml::array>(key);
    if (over_tables && base_tables && over_tables->is_array_of_tables() && base_tables->is_array_of_tables()) {
      for (auto& element : *over_tables) base_tables->push_back(std::move(element));
      continue;
    }
    base.insert_or_assign(key, std::move(node));
  }
}

// A component table's keys that belong to the framework, not to its plugin
// ([sampler] num_samples, batch_size, ...): they survive a change of plugin.
bool framework_key(const std::string& table, const std::string& key) {
  return key == "plugin" || (table == "sampler" && sampling_schema().find(key) != nullptr);
}

// The component table `name` (or an element of [[name]]) is about to get `plugin`
// by `by` ("x.toml:12:1", "--set ..."): when that is another plugin, the old one's
// options mean nothing to the new one, so they are dropped, each noted with where
// a file set it; the framework's keys stay.
void switch_plugin(toml::table& table, const std::string& name, const std::string& plugin, const std::string& by,
                   std::vector<std::string>& notes) {
  const std::string old_plugin = table.get("plugin") ? table.get("plugin")->value_or(std::string()) : "";
  if (old_plugin.empty() || old_plugin == plugin) return;
  std::string dropped;
  for (auto it = table.begin(); it != table.end();) {
    const std::string key(it->first.str());
    if (framework_key(name, key)) {
      ++it;
      continue;
    }
    dropped += (dropped.empty() ? "" : ", ") + key + " (" + location(it->second.source(), "the stored config") + ")";
    it = table.erase(it);
  }
  if (dropped.empty()) return;
  notes.push_back(by + ": [" + name + "] plugin '" + old_plugin + "' is replaced by '" + plugin +
                  "', so the options set for '" + old_plugin + "' are dropped: " + dropped);
}

// merge_into, where a component table of `over` that names another plugin
// replaces base's instead of adding to it (switch_plugin).
void merge_experiment(toml::table& base, toml::table&& over, const std::string& file,
                      std::vector<std::string>& notes) {
  for (const char* name : {"data", "model", "objective", "sampler"}) {
    toml::table* base_table = base.get_as<toml::table>(name);
    const toml::table* over_table = over.get_as<toml::table>(name);
    const toml::node* plugin = over_table ? over_table->get("plugin") : nullptr;
    if (base_table && plugin && plugin->is_string()) {
      switch_plugin(*base_table, name, plugin->value_or(std::string()), location(plugin->source(), file), notes);
    }
  }
  merge_into(base, std::move(over));
}

// `chain` holds the files above this one, to refuse cycles (not diamonds).
toml::table load_with_extends(const std::string& path, std::vector<std::string> chain,
                              std::vector<std::string>& notes) {
  std::string canonical = fs::weakly_canonical(path).string();
  for (const auto& seen : chain) {
    GENFW_CHECK(seen != canonical, path, ": 'extends' forms a cycle through ", canonical);
  }
  std::string role = chain.empty() ? "experiment file" : chain.back() + ": 'extends' names";
  chain.push_back(canonical);
  toml::table table = parse_toml_file(path, role);
  const toml::node* extends = table.get("extends");
  if (!extends) return table;
  std::vector<const toml::node*> bases;
  if (const toml::array* list = extends->as_array()) {
    for (const auto& item : *list) bases.push_back(&item);
  } else {
    bases.push_back(extends);
  }
  toml::table merged;
  for (const toml::node* base : bases) {  // later bases override earlier ones
    auto base_name = base->value<std::string>();
    if (!base_name) fail_at(base->source(), path, "'extends' must be a file path or a list of file paths");
    merge_experiment(merged, load_with_extends((fs::path(path).parent_path() / *base_name).string(), chain, notes),
                     path, notes);
  }
  table.erase("extends");
  merge_experiment(merged, std::move(table), path, notes);
  return merged;
}

// The table of an array of tables ([[metrics]]) whose plugin is `plugin`.
toml::table* element_by_plugin(toml::array& tables, const std::string& plugin, const std::string& assignment) {
  std::vector<std::string> plugins;
  toml::table* found = nullptr;
  for (auto& element : tables) {
    toml::table* table = element.as_table();
    std::string name = table ? table->get("plugin") ? table->get("plugin")->value_or(std::string()) : "" : "";
    plugins.push_back(name);
    if (name == plugin) {
      GENFW_CHECK(!found, "--set ", assignment, ": several entries use plugin '", plugin, "'");
      found = table;
    }
  }
  GENFW_CHECK(found, "--set ", assignment, ": no entry with plugin '", plugin, "'", unknown_name_hint(plugin, plugins));
  return found;
}

void apply_override(toml::table& root, const std::string& assignment, std::vector<std::string>& notes) {
  auto eq = assignment.find('=');
  GENFW_CHECK(eq != std::string::npos && eq > 0, "--set ", assignment,
              ": expected table.key=value (e.g. --set sampler.steps_per_level=50)");
  std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  // A line break would end the value early and parse the rest as other keys, silently dropped.
  GENFW_CHECK(assignment.find_first_of("\n\r") == std::string::npos, "--set ", format_value(OptionValue(assignment)),
              ": the assignment holds a line break; --set takes one line, table.key=value (put a multi-line value "
              "in the experiment file)");
  check_toml_nesting(path + " = " + text, "--set " + assignment);  // the path's dots nest tables too
  toml::table parsed;
  try {
    parsed = toml::parse("value = " + text, "--set " + assignment);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"value", text}};  // a bare word is a string
  }
  GENFW_CHECK(parsed.size() == 1, "--set ", assignment, ": the value must be one TOML value, e.g. 3, 0.5, \"text\" "
              "or [1, 2]");
  toml::table* table = &root;
  toml::array* tables = nullptr;  // set when the previous part named an array of tables
  size_t start = 0;
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    std::string part = path.substr(start, dot - start);
    start = dot + 1;
    if (tables) {  // metrics.fid.key: the element whose plugin is 'fid'
      table = element_by_plugin(*tables, part, assignment);
      tables = nullptr;
      continue;
    }
    if (!table->contains(part)) table->insert(part, toml::table{});
    tables = table->get_as<toml::array>(part);
    table = table->get_as<toml::table>(part);
    GENFW_CHECK(table != nullptr || (tables && tables->is_array_of_tables()), "--set ", assignment, ": '", part,
                "' is not a table");
  }
  GENFW_CHECK(!tables, "--set ", assignment, ": name the element, e.g. metrics.fid.num_samples=1000");
  const std::string key = path.substr(start);
  if (key == "plugin" && parsed.get("value")->is_string()) {
    const std::string table_name = path.substr(0, path.find('.'));
    switch_plugin(*table, table_name, parsed.get("value")->value_or(std::string()), "--set " + assignment, notes);
  }
  table->insert_or_assign(key, *parsed.get("value"));
}

// TOML node → OptionValue, or nullopt for shapes no option type has.
std::optional<OptionValue> to_value(const toml::node& node) {
  if (auto v = node.as_integer()) return OptionValue(int64_t(v->get()));
  if (auto v = node.as_floating_point()) return OptionValue(v->get());
  if (auto v = node.as_boolean()) return OptionValue(v->get());
  if (auto v = node.as_string()) return OptionValue(v->get());
  const toml::array* array = node.as_array();
  if (array == nullptr) return std::nullopt;
  if (array->empty()) return OptionValue(std::vector<double>{});
  if (array->is_homogeneous(toml::node_type::integer)) {
    std::vector<int64_t> out;
    for (auto& e : *array) out.push_back(e.as_integer()->get());
    return OptionValue(out);
  }
  if (array->is_homogeneous(toml::node_type::string)) {
    std::vector<std::string> out;
    for (auto& e : *array) out.push_back(e.as_string()->get());
    return OptionValue(out);
  }
  auto number = [](const toml::node& e) -> std::optional<double> {
    if (auto i = e.as_integer()) return double(i->get());
    if (auto f = e.as_floating_point()) return f->get();
    return std::nullopt;
  };
  std::vector<double> flat;
  bool all_numbers = true;
  for (auto& e : *array) {
    auto n = number(e);
    if (!n) { all_numbers = false; break; }
    flat.push_back(*n);
  }
  if (all_numbers) return OptionValue(flat);
  Matrix matrix;
  for (auto& e : *array) {
    const toml::array* row = e.as_array();
    if (row == nullptr) return std::nullopt;
    std::vector<double> values;
    for (auto& x : *row) {
      auto n = number(x);
      if (!n) return std::nullopt;
      values.push_back(*n);
    }
    matrix.push_back(values);
  }
  return OptionValue(matrix);
}

std::vector<std::string> names_of(const Schema& schema) {
  std::vector<std::string> names;
  for (const auto& spec : schema.specs()) names.push_back(spec.name);
  return names;
}

// Every error of a file at once, not the first only: each step's error is kept, the
// next step runs, and the end throws them all (one error: its message as it is).
class ErrorList {
 public:
  /// Several errors in one: a list nested in another (a table's keys in the file's) joins it flat.
  class Many : public Error {
   public:
    Many(const std::string& all, std::vector<std::string> messages) : Error(all), messages(std::move(messages)) {}
    std::vector<std::string> messages;
  };

  template <typename Step>
  void collect(Step&& step) {
    try {
      step();
    } catch (const Many& e) {
      messages_.insert(messages_.end(), e.messages.begin(), e.messages.end());
    } catch (const Error& e) {
      messages_.push_back(e.what());
    }
  }
  void throw_if_any(const std::string& file) const {
    if (messages_.empty()) return;
    if (messages_.size() == 1) throw Error(messages_.front());
    std::string all = file + ": " + std::to_string(messages_.size()) + " errors:";
    for (const auto& message : messages_) all += "\n  " + message;
    throw Many(all, messages_);
  }

 private:
  std::vector<std::string> messages_;
};

// Validates `table` against `schema` (skipping `skip` keys); fills defaults. Every bad
// key of the table is reported, each with its line and column.
Options validate_table(const toml::table& table, const Schema& schema, const std::string& owner,
                       const std::string& file, const std::set<std::string>& skip = {}) {
  Options options(owner);
  ErrorList errors;
  auto names = names_of(schema);
  for (auto&& [key, node] : table) {
    std::string name(key.str());
    if (skip.count(name)) continue;
    const toml::key& at_key = key;
    const toml::node& at_node = node;
    errors.collect([&] {
      const OptionSpec* spec = schema.find(name);
      if (spec == nullptr) {
        fail_at(at_key.source(), file, owner + ": unknown option '" + name + "'" + unknown_name_hint(name, names));
      }
      auto value = to_value(at_node);
      if (!value) {
        fail_at(at_node.source(), file, owner + ": option '" + name + "' has the wrong type; expected " +
                                            option_type_name(spec->type));
      }
      try {
        options.set(name, check_option(*spec, *value, owner));
      } catch (const Error& e) {
        fail_at(at_node.source(), file, e.what());
      }
    });
  }
  for (const auto& spec : schema.specs()) {
    if (options.has(spec.name)) continue;
    if (spec.required) {
      errors.collect([&] {
        fail_at(table.source(), file, owner + ": option '" + spec.name + "' is required (" +
                                          option_type_name(spec.type) + "): " + spec.doc);
      });
      continue;
    }
    options.set(spec.name, spec.default_value);
  }
  errors.throw_if_any(file);
  return options;
}

const toml::table& require_table(const toml::table& root, const std::string& key,
                                 const std::string& file, const std::string& what) {
  const toml::node* node = root.get(key);
  if (node == nullptr) {
    throw Error(file + ": missing table [" + key + "] (" + what + ")");
  }
  if (!node->is_table()) fail_at(node->source(), file, "'" + key + "' must be a table [" + key + "]");
  return *node->as_table();
}

ComponentConfig component_from(const toml::table& table, const std::string& table_name, Kind kind,
                               const Registry& registry, const std::string& file,
                               const Schema* framework_keys = nullptr,
                               Options* framework_options = nullptr) {
  ComponentConfig config;
  config.table = table_name;
  config.kind = kind;
  const toml::node* plugin = table.get("plugin");
  if (plugin == nullptr) {
    fail_at(table.source(), file, "[" + table_name + "] needs plugin = \"NAME\" (the " +
                                      kind_name(kind) + " to use; `runner plugins` lists them)");
  }
  auto name = plugin->value<std::string>();
  if (!name) fail_at(plugin->source(), file, "[" + table_name + "] plugin must be a string");
  config.plugin = *name;
  const ComponentInfo* info = registry.try_find(config.plugin, kind);
  if (info == nullptr) {
    try {
      registry.find(config.plugin, kind);
    } catch (const Error& e) {
      fail_at(plugin->source(), file, "[" + table_name + "] " + e.what());
    }
  }
  Schema schema = info->schema;
  std::set<std::string> framework_names;
  if (framework_keys != nullptr) {
    schema.merge(*framework_keys);
    for (const auto& spec : framework_keys->specs()) framework_names.insert(spec.name);
  }
  std::string owner = std::string(kind_name(kind)) + " '" + config.plugin + "'";
  Options all = validate_table(table, schema, owner, file, {"plugin"});
  config.options = Options(owner);
  if (framework_options != nullptr) *framework_options = Options("[" + table_name + "]");
  for (const auto& [key, value] : all.values()) {
    if (framework_names.count(key)) framework_options->set(key, value);
    else config.options.set(key, value);
  }
  return config;
}

OptimizerConfig optimizer_from(const Options& options) {
  OptimizerConfig config;
  config.optimizer = options.string("optimizer");
  config.lr = options.real("lr");
  config.betas = options.reals("betas");
  config.momentum = options.real("momentum");
  config.weight_decay = options.real("weight_decay");
  GENFW_CHECK(config.betas.size() == 2, options.owner(), ": betas must have two values, got ",
              config.betas.size());
  return config;
}

// The name becomes a file and folder name under --out: one path component of
// portable characters, so it can neither climb out ("../x", "/abs") nor hide.
bool ascii_alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

void check_run_name(const std::string& name, const std::string& where) {
  const size_t kMaxLength = 100;
  bool valid = !name.empty() && name.size() <= kMaxLength && ascii_alnum(name[0]);
  for (char c : name) valid = valid && (ascii_alnum(c) || c == '.' || c == '_' || c == '-');
  valid = valid && name.find("..") == std::string::npos;
  GENFW_CHECK(valid, where, ": an experiment name is used as a file name under --out, so it must be 1 to ",
              kMaxLength, " characters from A-Z a-z 0-9 . _ - starting with a letter or digit, without '..'");
}

// name, seed, device: the experiment's own keys; the name is checked as the file name it becomes.
void build_top(const toml::table& root, const std::string& file, ExperimentConfig& config) {
  toml::table top;
  for (const char* key : {"name", "seed", "device"}) {
    if (auto* node = root.get(key)) top.insert(key, *node);
  }
  Options top_options = validate_table(top, top_schema(), "experiment", file);
  config.name = top_options.string("name");
  if (config.name.empty()) {
    config.name = fs::path(file).stem().string();
    check_run_name(config.name, file + ": the file name gives the experiment name '" + config.name +
                                    "'; set name = \"...\" instead");
  } else {
    const toml::node* name = root.get("name");
    check_run_name(config.name, location(name->source(), file) + ": name = " + format_value(config.name));
  }
  config.seed = uint64_t(top_options.integer("seed"));
  config.device = top_options.string("device");
}

// [train] and its groups, each group's optimizer checked with the table named.
void build_train(const toml::table& root, const std::string& file, ExperimentConfig& config) {
  if (!root.contains("train")) return;
  {
    const toml::table& train = require_table(root, "train", file, "");
    config.train = validate_table(train, train_schema(), "[train]", file, {"groups"});
    optimizer_from(*config.train);  // checks betas with the table named
    if (const toml::node* groups = train.get("groups")) {
      if (!groups->is_table()) fail_at(groups->source(), file, "[train.groups] must be a table of tables");
      for (auto&& [group, node] : *groups->as_table()) {
        if (!node.is_table()) {
          fail_at(node.source(), file, "[train.groups." + std::string(group.str()) + "] must be a table");
        }
        Options group_options = validate_table(*node.as_table(), group_schema(),
                                               "[train.groups." + std::string(group.str()) + "]", file);
        // Keys a group does not set take the [train] value, not the schema default.
        for (const auto& [k, v] : group_options.values()) {
          if (!node.as_table()->contains(k)) group_options.set(k, config.train->values().at(k));
        }
        optimizer_from(group_options);
        config.group_optimizers.emplace(std::string(group.str()), group_options);
      }
    }
    GENFW_CHECK(root.contains("objective"), file, ": [train] needs an [objective] table (what to minimise)");
  }
}

void build_metrics(const toml::table& root, const std::string& file, const Registry& registry,
                   ExperimentConfig& config) {
  if (const toml::node* metrics = root.get("metrics")) {
    const toml::array* array = metrics->as_array();
    if (array == nullptr || !array->is_homogeneous(toml::node_type::table)) {
      fail_at(metrics->source(), file, "metrics must be an array of tables: [[metrics]] plugin = \"fid\"");
    }
    int index = 0;
    for (auto& node : *array) {
      config.metrics.push_back(component_from(*node.as_table(), "metrics[" + std::to_string(index++) + "]",
                                              Kind::metric, registry, file));
    }
  }
}

// [eval] evaluates during training, with the run's sampler: it needs both, and its keep_* keys need it on.
void check_evaluation_plan(const ExperimentConfig& config, const toml::table* eval, const std::string& file) {
  if (eval == nullptr) return;
  const Options& e = config.eval;
  const bool on = e.integer("every") > 0 || e.real("every_minutes") > 0;
  if (!on && (!e.string("keep_best").empty() || e.integer("keep_last") > 0 || e.integer("num_samples") > 0)) {
    fail_at(eval->source(), file, "[eval] keep_best, keep_last and num_samples need evaluations: set every = N "
                                  "(steps) or every_minutes = M");
  }
  if (on && !config.train) fail_at(eval->source(), file, "[eval] evaluates during training, but there is no [train]");
  if (on && !config.sampler) {
    fail_at(eval->source(), file, "[eval] evaluates samples during training, but there is no [sampler] to draw them");
  }
}

// [log], [features], [guidance], [eval]: the framework's own tables.
void build_framework_tables(const toml::table& root, const std::string& file, ExperimentConfig& config) {
  toml::table empty;
  const toml::table* log = root.get_as<toml::table>("log");
  config.log = validate_table(log ? *log : empty, log_schema(), "[log]", file);
  const toml::table* features = root.get_as<toml::table>("features");
  config.features = validate_table(features ? *features : empty, metric::FeatureSettings::schema(), "[features]", file);
  metric::FeatureSettings::from_options(config.features);  // cross-key checks, with the table named
  const toml::table* eval = root.get_as<toml::table>("eval");
  config.eval = validate_table(eval ? *eval : empty, eval_schema(), "[eval]", file);
  check_evaluation_plan(config, eval, file);
  for (const auto& use : component_run_tables()) {
    const toml::node* node = root.get(use.table);
    if (node == nullptr) continue;
    const std::string header = "[" + use.table + "]";
    if (!node->is_table()) fail_at(node->source(), file, "'" + use.table + "' must be a table " + header);
    Options options = validate_table(*node->as_table(), use.schema, header, file);
    if (options.string("run").empty() == options.string("experiment").empty()) {
      fail_at(node->source(), file, header + " needs exactly one of run = \"RUN.h5\" (" + use.role +
                                        ", trained) or experiment = \"FILE.toml\" (one that trains it)");
    }
    config.component_runs.emplace(use.table, std::move(options));
  }
}

ExperimentConfig build(const toml::table& root, const std::string& file, const Registry& registry) {
  ExperimentConfig config;
  config.path = file;
  ErrorList errors;
  for (auto&& [key, node] : root) {
    std::string name(key.str());
    const auto& known = top_level_keys();
    const toml::key& at_key = key;
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      errors.collect([&] {
        fail_at(at_key.source(), file, "unknown top-level key '" + name + "'" + unknown_name_hint(name, known));
      });
    }
  }
  errors.collect([&] { build_top(root, file, config); });

  errors.collect([&] {
    config.data = component_from(require_table(root, "data", file, "the dataset"), "data", Kind::dataset,
                                 registry, file);
  });
  errors.collect([&] {
    config.model = component_from(require_table(root, "model", file, "the model"), "model", Kind::model,
                                  registry, file);
  });
  errors.collect([&] {
    if (root.contains("sampler")) {
      config.sampler = component_from(require_table(root, "sampler", file, ""), "sampler", Kind::sampler, registry,
                                      file, &sampling_schema(), &config.sampling);
    } else {  // a run that only trains (e.g. a guidance classifier)
      config.sampling = validate_table(toml::table{}, sampling_schema(), "[sampler]", file);
    }
  });
  errors.collect([&] {
    if (root.contains("objective")) {
      config.objective = component_from(require_table(root, "objective", file, ""), "objective",
                                        Kind::objective, registry, file);
    }
  });
  errors.collect([&] { build_train(root, file, config); });
  errors.collect([&] { build_metrics(root, file, registry, config); });
  errors.collect([&] { build_framework_tables(root, file, config); });
  errors.throw_if_any(file);
  if (const toml::table* sweep = root.get_as<toml::table>("sweep")) {
    for (auto&& [key, node] : *sweep) {
      const toml::array* values = node.as_array();
      if (values == nullptr || values->empty()) {
        fail_at(node.source(), file, "[sweep] '" + std::string(key.str()) +
                                         "' must be a non-empty array of values, e.g. [10, 20, 50]");
      }
      std::vector<std::string> literals;
      for (auto& v : *values) {
        auto value = to_value(v);
        if (!value) fail_at(v.source(), file, "[sweep] values must be numbers, booleans or strings");
        literals.push_back(format_value(*value));
      }
      config.sweep[std::string(key.str())] = literals;
    }
  }
  check_memory_fits(config, {1});  // one float per sample: the data's shape is not known yet
  return config;
}

// A bare key where TOML allows one, else a quoted one: group names are the user's.
std::string toml_key(const std::string& key) {
  bool bare = !key.empty();
  for (char c : key) bare = bare && (ascii_alnum(c) || c == '_' || c == '-');
  return bare ? key : format_value(key);
}

void write_options(std::ostringstream& out, const Options& options) {
  for (const auto& [key, value] : options.values()) out << toml_key(key) << " = " << format_value(value) << "\n";
}

void write_component(std::ostringstream& out, const std::string& header, const ComponentConfig& c,
                     const Options* extra = nullptr) {
  out << "\n" << header << "\nplugin = " << format_value(c.plugin) << "\n";
  if (extra) write_options(out, *extra);
  write_options(out, c.options);
}

}  // namespace

OptimizerConfig ExperimentConfig::optimizer_for(const std::string& group) const {
  auto it = group_optimizers.find(group);
  return optimizer_from(it != group_optimizers.end() ? it->second : *train);
}

void check_memory_fits(const ExperimentConfig& config, const std::vector<int64_t>& sample_shape) {
  const double memory = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
  if (!(memory > 0)) return;  // unknown on this system
  double sample_bytes = sizeof(float);
  std::string shape;
  for (int64_t extent : sample_shape) {
    sample_bytes *= double(extent);
    shape += (shape.empty() ? "" : ", ") + std::to_string(extent);
  }
  auto check = [&](const Options& options, const std::string& key, const char* what) {
    const double bytes = double(options.integer(key)) * sample_bytes;
    GENFW_CHECK(bytes <= memory, config.path, ": ", options.owner(), " ", key, " = ", options.integer(key), " needs ",
                bytes / double(1 << 30), " GiB for ", what, " of samples of shape [", shape,
                "] (float32) alone, more than this machine's ", memory / double(1 << 30), " GiB of memory");
  };
  if (config.train) check(*config.train, "batch_size", "one batch");
  check(config.sampling, "num_samples", "the samples kept for metrics");
}

std::string ExperimentConfig::resolved_toml() const {
  std::ostringstream out;
  out << "name = " << format_value(name) << "\nseed = " << seed << "\ndevice = " << format_value(device) << "\n";
  write_component(out, "[data]", data);
  write_component(out, "[model]", model);
  if (objective) write_component(out, "[objective]", *objective);
  if (train) {
    out << "\n[train]\n";
    write_options(out, *train);
    for (const auto& [group, optimizer] : group_optimizers) {
      out << "\n[train.groups." << toml_key(group) << "]\n";
      write_options(out, optimizer);
    }
  }
  if (sampler) write_component(out, "[sampler]", *sampler, &sampling);
  for (const auto& metric : metrics) write_component(out, "[[metrics]]", metric);
  out << "\n[features]\n";
  write_options(out, features);
  for (const auto& use : component_run_tables()) {
    if (const Options* options = component_run(use.table)) {
      out << "\n[" << use.table << "]\n";
      write_options(out, *options);
    }
  }
  out << "\n[eval]\n";
  write_options(out, eval);
  out << "\n[log]\n";
  write_options(out, log);
  return out.str();
}

namespace {
std::vector<std::string> string_list(const toml::table& table, const std::string& key, const std::string& path) {
  std::vector<std::string> out;
  const toml::node* node = table.get(key);
  if (!node) return out;
  const toml::array* list = node->as_array();
  if (!list) fail_at(node->source(), path, "suite key '" + key + "' must be a list of strings");
  for (const auto& item : *list) {
    auto text = item.value<std::string>();
    if (!text) fail_at(item.source(), path, "suite key '" + key + "' must be a list of strings");
    out.push_back(*text);
  }
  return out;
}

void check_suite_keys(const toml::table& table, const std::vector<std::string>& known, const std::string& path) {
  for (auto&& [key, node] : table) {
    std::string name(key.str());
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      fail_at(node.source(), path, "unknown suite key '" + name + "'" + unknown_name_hint(name, known));
    }
  }
}
}  // namespace

std::string with_sampler(const std::string& config_text, const std::string& origin, const std::string& sampler) {
  toml::table root = parse_toml_text(config_text, origin);
  std::vector<std::string> notes;  // every option of the stored sampler is dropped: its defaults are asked for
  apply_override(root, "sampler.plugin=" + format_value(sampler), notes);
  std::ostringstream out;
  out << root;
  return out.str();
}

bool is_suite_file(const std::string& path) { return parse_toml_file(path).contains("suite"); }

SuiteConfig load_suite(const std::string& path, const std::string& profile) {
  toml::table root = parse_toml_file(path);
  const toml::table* suite = root.get_as<toml::table>("suite");
  GENFW_CHECK(suite, path, ": not a suite file (it has no [suite] table)");
  check_suite_keys(root, {"suite"}, path);
  check_suite_keys(*suite, {"name", "experiments", "set", "profiles"}, path);
  SuiteConfig config;
  config.path = path;
  config.profile = profile.empty() ? "cpu" : profile;
  config.name = suite->get("name") ? suite->get("name")->value_or(std::string()) : fs::path(path).stem().string();
  GENFW_CHECK(!config.name.empty(), path, ": [suite] name must be a non-empty string");
  const toml::table* chosen = suite;
  if (config.profile != "cpu") {
    const toml::table* profiles = suite->get_as<toml::table>("profiles");
    std::vector<std::string> names{"cpu"};
    if (profiles) for (auto&& [key, node] : *profiles) names.emplace_back(key.str());
    chosen = profiles ? profiles->get_as<toml::table>(config.profile) : nullptr;
    GENFW_CHECK(chosen, path, ": unknown profile '", config.profile, "'", unknown_name_hint(config.profile, names));
    check_suite_keys(*chosen, {"experiments", "set"}, path);
  }
  config.experiments = string_list(chosen->contains("experiments") ? *chosen : *suite, "experiments", path);
  config.overrides = string_list(chosen->contains("set") ? *chosen : *suite, "set", path);
  GENFW_CHECK(!config.experiments.empty(), path, ": profile '", config.profile, "' lists no experiments");
  for (auto& experiment : config.experiments) {
    experiment = (fs::path(path).parent_path() / experiment).string();
    GENFW_CHECK(fs::exists(experiment), path, ": suite experiment ", experiment, " does not exist");
  }
  return config;
}

ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                                 const Registry& registry) {
  std::vector<std::string> chain, notes;
  toml::table root = load_with_extends(path, chain, notes);
  for (const auto& assignment : overrides) apply_override(root, assignment, notes);
  ExperimentConfig config = build(root, path, registry);
  config.notes = notes;
  return config;
}

ExperimentConfig load_experiment_text(const std::string& text, const std::string& origin,
                                      const std::vector<std::string>& overrides,
                                      const Registry& registry) {
  toml::table root = parse_toml_text(text, origin);
  std::vector<std::string> notes;
  for (const auto& assignment : overrides) apply_override(root, assignment, notes);
  ExperimentConfig config = build(root, origin, registry);
  config.notes = notes;
  return config;
}

namespace {
// "[table] key" → value of each line of a resolved_toml() text, which writes one
// key per line (format_value escapes line breaks); [[metrics]] entries numbered.
std::map<std::string, std::string> resolved_entries(const std::string& text) {
  std::map<std::string, std::string> entries;
  std::map<std::string, int> repeated;
  std::string header;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("[[", 0) == 0) {
      header = line + " #" + std::to_string(++repeated[line]);
    } else if (line.rfind('[', 0) == 0) {
      header = line;
    } else if (const auto eq = line.find(" = "); eq != std::string::npos) {
      entries[(header.empty() ? "" : header + " ") + line.substr(0, eq)] = line.substr(eq + 3);
    }
  }
  return entries;
}
}  // namespace

std::vector<ConfigChange> config_changes(const ExperimentConfig& before, const ExperimentConfig& after) {
  const auto old_entries = resolved_entries(before.resolved_toml());
  const auto new_entries = resolved_entries(after.resolved_toml());
  std::set<std::string> keys;
  for (const auto& entries : {&old_entries, &new_entries}) {
    for (const auto& [key, value] : *entries) keys.insert(key);
  }
  std::vector<ConfigChange> changes;
  for (const auto& key : keys) {
    auto value_in = [&](const std::map<std::string, std::string>& entries) {
      auto it = entries.find(key);
      return it == entries.end() ? std::string("(absent)") : it->second;
    };
    if (value_in(old_entries) != value_in(new_entries)) changes.push_back({key, value_in(old_entries), value_in(new_entries)});
  }
  return changes;
}

void check_composition(const ExperimentConfig& config, const Registry& registry) {
  const ComponentInfo& model = registry.find(config.model.plugin, Kind::model);
  std::string offered;
  for (Capability c : model.offers) offered += std::string(offered.empty() ? "" : ", ") + capability_name(c);
  if (offered.empty()) offered = "nothing";
  auto check = [&](const ComponentConfig& user) {
    const ComponentInfo& info = registry.find(user.plugin, user.kind);
    for (const auto& any_of : info.requires_all) {
      bool satisfied = false;
      for (Capability c : any_of) satisfied = satisfied || can_derive(model.offers, c);
      if (satisfied) continue;
      std::string needed;
      for (Capability c : any_of) needed += std::string(needed.empty() ? "'" : "' or '") + capability_name(c);
      throw Error(detail::concat(config.path, ": ", kind_name(user.kind), " '", user.plugin,
                                 "' needs capability ", needed, "'; model '", model.name,
                                 "' offers: ", offered));
    }
  };
  if (config.objective) check(*config.objective);
  if (config.sampler) check(*config.sampler);
  for (const auto& metric : config.metrics) check(metric);
}

}  // namespace genfw
