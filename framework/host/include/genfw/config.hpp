#pragma once
/// Experiment files: TOML with one table per component, `extends`, `--set`
/// overrides, and validation of every table against its schema with
/// file:line:column in every message.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "genfw/registry.hpp"

namespace genfw {

/// One component's table, validated: its plugin and resolved options.
struct ComponentConfig {
  std::string table;   ///< "data", "model", "objective", "sampler", "metrics[1]"
  std::string plugin;
  Kind kind = Kind::model;
  Options options;     ///< the plugin's own options, defaults filled in
};

/// Optimizer settings of one parameter group.
struct OptimizerConfig {
  std::string optimizer = "adam";
  double lr = 1e-3;
  std::vector<double> betas{0.9, 0.999};
  double momentum = 0.9;
  double weight_decay = 0.0;
};

struct GENFW_API ExperimentConfig {
  std::string path;          ///< the experiment file
  std::string name;
  uint64_t seed = 0;
  std::string device = "cpu";
  ComponentConfig data, model;
  std::optional<ComponentConfig> sampler;              ///< absent: the run trains only
  std::optional<ComponentConfig> objective;
  std::vector<ComponentConfig> metrics;
  std::optional<Options> train;                       ///< [train], framework schema
  std::map<std::string, Options> group_optimizers;    ///< [train.groups.NAME] merged over [train] (group_schema)
  Options sampling;          ///< framework keys of [sampler]: num_samples, batch_size
  Options log;               ///< [log]
  Options features;          ///< [features]: the run's one feature extractor (metric::FeatureSettings)
  /// [guidance], [latent], [cascade]: the runs this one uses as frozen components
  /// (component_run_tables), by table name; absent tables are not in it.
  std::map<std::string, Options> component_runs;
  Options eval;              ///< [eval]: evaluation during training (eval_schema)
  std::map<std::string, std::vector<std::string>> sweep;  ///< [sweep] "table.key" → values (TOML literals)
  /// What the files and overrides did that a reader may not expect (a switch of
  /// plugin dropped options a file set); the pipeline prints them as notes.
  std::vector<std::string> notes;

  /// Resolved TOML (every default filled in), loadable again as an experiment.
  std::string resolved_toml() const;
  /// Optimizer settings of a parameter group ([train.groups.NAME] over [train]).
  OptimizerConfig optimizer_for(const std::string& group) const;
  /// The [table] naming a component run, or nullptr when the experiment has none.
  const Options* component_run(const std::string& table) const;
  Options* component_run(const std::string& table);
};

/// A framework table that names another run as a frozen component of this one
/// (docs/design.md, "Runs as components"): `run = "RUN.h5"`, or `experiment =
/// "FILE.toml"` trained first; the stored config names the run and the SHA-256
/// of the weights it used, and a run whose weights changed since is refused.
struct GENFW_API ComponentRunTable {
  std::string table;        ///< "guidance", "latent", "cascade"
  std::string attribute;    ///< the root attribute of the run file naming it ("guidance_classifier")
  std::string role;         ///< what it is to this run, for messages ("the guidance classifier")
  std::string description;  ///< for `runner describe`
  Schema schema;            ///< run, experiment, sha256 and the table's own keys
};
/// Every table of that kind, in the order a run resolves them.
GENFW_API const std::vector<ComponentRunTable>& component_run_tables();
GENFW_API const ComponentRunTable& component_run_table(const std::string& table);

/// Framework-owned schemas (shown by `runner describe train|sampler-common|log`).
GENFW_API const Schema& train_schema();
GENFW_API const Schema& group_schema();
GENFW_API const Schema& sampling_schema();
GENFW_API const Schema& log_schema();
GENFW_API const Schema& eval_schema();

/// Loads `path`, applies `extends` chains and `overrides` ("table.key=value",
/// value parsed as TOML, else taken as a string), validates against the
/// registry's schemas. Throws genfw::Error with "file:line:col: ..." messages.
/// A component table ([data], [model], [objective], [sampler], a [[metrics]]
/// entry) whose `plugin` an extending file or an override changes is replaced,
/// not merged: the old plugin's options are dropped (a note each, in `notes`),
/// the framework's [sampler] keys kept.
GENFW_API ExperimentConfig load_experiment(const std::string& path,
                                           const std::vector<std::string>& overrides,
                                           const Registry& registry);
/// Same, from TOML text (the resolved config stored in a run file).
GENFW_API ExperimentConfig load_experiment_text(const std::string& text, const std::string& origin,
                                                const std::vector<std::string>& overrides,
                                                const Registry& registry);

/// The whole composition can work: every objective/sampler/metric requirement
/// is offered (or derivable) by the model. Throws one sentence naming what is
/// missing, e.g. "objective 'dsm' needs capability 'score'; model 'vae'
/// offers: latent-variable".
/// A suite: experiments run one after another and tabulated together (the
/// benchmark). `[suite]` holds name, experiments, set; `[suite.profiles.P]`
/// replaces experiments / set for `--profile P` (the default profile is "cpu").
struct SuiteConfig {
  std::string path, name, profile;
  std::vector<std::string> experiments;  ///< resolved against the suite file's folder
  std::vector<std::string> overrides;    ///< "table.key=value" applied to every experiment
};
/// A run's resolved config text with its [sampler] replaced by `sampler`'s
/// defaults, keeping num_samples and batch_size (`runner sample --sampler`): the
/// old sampler's options mean nothing to the new one.
GENFW_API std::string with_sampler(const std::string& config_text, const std::string& origin,
                                   const std::string& sampler);

GENFW_API bool is_suite_file(const std::string& path);
GENFW_API SuiteConfig load_suite(const std::string& path, const std::string& profile);

GENFW_API void check_composition(const ExperimentConfig& config, const Registry& registry);

/// One key whose resolved value differs between two configs: `key` as
/// "[train] steps" ("seed" for top-level keys, "[[metrics]] #2 plugin" for the
/// second [[metrics]] entry); `before`/`after` as written in resolved_toml(),
/// "(absent)" where the key is missing.
struct ConfigChange {
  std::string key, before, after;
};
/// Every key of `before.resolved_toml()` and `after.resolved_toml()` whose value differs.
GENFW_API std::vector<ConfigChange> config_changes(const ExperimentConfig& before, const ExperimentConfig& after);

/// Refuses a [train] batch_size or [sampler] num_samples whose samples alone
/// (float32, `sample_shape` each) exceed this machine's physical memory, naming
/// the file and key. load_experiment checks with {1} (the data's shape is not
/// known before the dataset is built); the pipeline checks again with the shape.
GENFW_API void check_memory_fits(const ExperimentConfig& config, const std::vector<int64_t>& sample_shape);

}  // namespace genfw
