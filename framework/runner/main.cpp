// runner: the one executable. See `runner --help`.
#include <boost/program_options.hpp>
#include <set>
#include <sstream>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <unistd.h>

#include "genfw/artefact_cache.hpp"
#include "genfw/cache.hpp"
#include "genfw/config.hpp"
#include "genfw/durable.hpp"
#include "genfw/distributed.hpp"
#include "genfw/features.hpp"
#include "genfw/import_diffusers.hpp"
#include "genfw/import_ncsn.hpp"
#include "genfw/process.hpp"
#include "genfw/registry.hpp"
#include "genfw/run.hpp"
#include "genfw/scaffold.hpp"
#include "plots.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

const char* kUsage = R"(runner: train, sample, evaluate and compare generative models.

usage:
  runner EXPERIMENT.toml [options]     run an experiment (train if [train], sample, metrics)
  runner EXPERIMENT.toml --nproc N     train and sample data-parallel on N local processes (c10d gloo; also under
                                       torchrun or SLURM; collectives time out after --dist-timeout,
                                       default 300 s)
  runner SUITE.toml [--profile P]      run a suite's experiments and print their table
  runner sample RUN.h5 [--sampler S]  sample a trained run again: another sampler, or --set sampler.KEY=V
                                       on its own (also --nproc N; --step S: a snapshot [eval] kept)
  runner import diffusers FOLDER --out DIR
                                       a diffusers DDPM U-Net (save_pretrained folder, safetensors or .bin) as
                                       a completed run of model ddpm_unet, to sample and compare (docs/import.md)
  runner import ncsn CHECKPOINT --out DIR
                                       the original NCSN code's checkpoint.pth (ermongroup/ncsn) as a
                                       completed run of model ncsn
  runner compare RUN.h5...             one table across runs (runs that differ only in their seed: mean ± 95% CI)
  runner cache list|clear              the cached classifiers and reference statistics of FID, KID, IS
  runner plugins                       every component found
  runner describe NAME                 a component's options (also: train, sampler-common, log,
                                       eval, features, guidance, latent, cascade)
  runner new KIND NAME [--dir DIR]     scaffold a plugin to build against the installed SDK
                                       (KIND: sampler, model, objective, metric)
  runner SUBCOMMAND --help             that sub-command's options
)";

struct Common {
  std::vector<std::string> plugin_paths;
  bool allow_insecure = false;
  genfw::ProcessSettings process;
  bool keep_denormals = false, release_freed_memory = false;
};

void add_common(po::options_description& options, Common& common) {
  options.add_options()
      ("plugin-path", po::value(&common.plugin_paths)->composing(), "extra folder of plugin .so files (repeatable; also GENFW_PLUGIN_PATH)")
      ("allow-insecure-plugins", po::bool_switch(&common.allow_insecure), "load plugins from folders other users can write to")
      ("threads", po::value(&common.process.threads)->default_value(0),
       "intra-op threads (0 = the cores this process may use, shared among LOCAL_WORLD_SIZE workers)")
      ("keep-denormals", po::bool_switch(&common.keep_denormals),
       "compute with subnormal floats instead of flushing them to zero (slow on CPUs)")
      ("release-freed-memory", po::bool_switch(&common.release_freed_memory),
       "glibc malloc's default: return freed memory to the kernel (more page faults)");
}

// A count given on the command line below its least meaningful value is refused, never replaced.
struct Count {
  const char* option;
  int64_t value, least;
};
void check_counts(std::initializer_list<Count> counts) {
  for (const auto& count : counts) {
    GENFW_CHECK(count.value >= count.least, count.option, " ", count.value, ": expected an integer >= ", count.least,
                count.least == 0 ? " (0 = the default)" : "");
  }
}

genfw::Registry load_registry(const Common& common) {
  genfw::Registry registry;
  registry.allow_insecure = common.allow_insecure;
  registry.load_search_path(common.plugin_paths);
  return registry;
}

bool parse(int argc, char** argv, po::options_description& options, po::positional_options_description& positional,
           const std::string& usage) {
  po::options_description help("");
  help.add_options()("help,h", "show this help");
  options.add(help);
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << usage << "\n" << options << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

// Each column as wide as its widest cell plus two spaces; the last one unpadded.
void print_columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i + 1 < row.size(); ++i) width[i] = std::max(width[i], row[i].size() + 2);
  for (const auto& row : rows) {
    for (size_t i = 0; i + 1 < row.size(); ++i) std::cout << std::left << std::setw(int(width[i])) << row[i];
    std::cout << row.back() << "\n";
  }
}

std::string capability_list(const std::vector<genfw::Capability>& capabilities) {
  std::string out;
  for (auto c : capabilities) out += std::string(out.empty() ? "" : ",") + genfw::capability_name(c);
  return out;
}

std::string requirement_list(const std::vector<std::vector<genfw::Capability>>& requirements) {
  std::string out;
  for (const auto& any_of : requirements) {
    std::string alternatives;
    for (auto c : any_of) alternatives += std::string(alternatives.empty() ? "" : "|") + genfw::capability_name(c);
    out += (out.empty() ? "needs " : ",") + alternatives;
  }
  return out;
}

// A summary's first sentence, for one-line listings.
std::string first_sentence(const std::string& summary) {
  const auto end = summary.find(". ");
  return end == std::string::npos ? summary : summary.substr(0, end + 1);
}

int cmd_plugins(int argc, char** argv) {
  Common common;
  po::options_description options("runner plugins options");
  add_common(options, common);
  po::positional_options_description positional;
  if (!parse(argc, argv, options, positional, "usage: runner plugins [--plugin-path DIR]...")) return 0;
  genfw::Registry registry = load_registry(common);
  auto components = registry.components();
  std::stable_sort(components.begin(), components.end(),
                   [](auto* a, auto* b) { return std::tie(a->kind, a->name) < std::tie(b->kind, b->name); });
  std::vector<std::vector<std::string>> rows{{"name", "kind", "capabilities", "version", "library"}};
  for (const auto* info : components) {
    std::string caps = info->kind == genfw::Kind::model ? "offers " + capability_list(info->offers)
                                                         : requirement_list(info->requires_all);
    rows.push_back({info->name, genfw::kind_name(info->kind), caps, info->version, info->library});
    rows.push_back({"", first_sentence(info->summary)});  // under kind: the last cell is never padded
  }
  print_columns(rows);
  return 0;
}

// "runner describe sampler": the components of that kind, one line each. False when
// `kind` names no kind.
bool print_components_of_kind(const genfw::Registry& registry, const std::string& kind) {
  std::vector<std::vector<std::string>> rows;
  for (const auto* info : registry.components()) {
    if (genfw::kind_name(info->kind) == kind) rows.push_back({info->name, first_sentence(info->summary)});
  }
  if (rows.empty()) return false;
  std::sort(rows.begin(), rows.end());
  rows.insert(rows.begin(), {kind, "(runner describe NAME for its options)"});
  print_columns(rows);
  return true;
}

void print_schema(const genfw::Schema& schema) {
  std::vector<std::vector<std::string>> rows{{"option", "type", "default", "range", "doc"}};
  for (const auto& spec : schema.specs()) {
    std::string range;
    if (spec.min || spec.max) {
      range = "[" + (spec.min ? genfw::shortest_number(*spec.min) : "-inf") + ", " +
              (spec.max ? genfw::shortest_number(*spec.max) : "inf") + "]";
    }
    for (const auto& c : spec.choices) range += (range.empty() ? "" : "|") + c;
    std::string def = spec.required ? "(required)" : genfw::format_value(spec.default_value);
    rows.push_back({spec.name, genfw::option_type_name(spec.type), def, range, spec.doc});
  }
  print_columns(rows);
}

int cmd_describe(int argc, char** argv) {
  Common common;
  std::string name, kind;
  po::options_description options("runner describe options");
  options.add_options()("name", po::value(&name)->required(), "component name (or train, sampler-common, log, eval, features, guidance, latent, cascade)")
      ("kind", po::value(&kind), "dataset|model|objective|sampler|metric, when a name has several kinds");
  add_common(options, common);
  po::positional_options_description positional;
  positional.add("name", 1);
  if (!parse(argc, argv, options, positional, "usage: runner describe NAME [--kind KIND]")) return 0;
  // The framework's own tables.
  std::map<std::string, std::pair<std::string, const genfw::Schema*>> framework_tables{
      {"train", {"[train] (framework): the training loop; [train.groups.NAME] overrides optimizer, lr, betas, "
                 "momentum, weight_decay per parameter group. Data-parallel (--nproc, torchrun, SLURM): batch_size "
                 "is the global batch; each of the WORLD_SIZE ranks takes batch_size/WORLD_SIZE of it (it must "
                 "divide evenly) and the gradients are averaged, so the run matches one process",
                 &genfw::train_schema()}},
      {"log", {"[log] (framework): outputs of a run", &genfw::log_schema()}},
      {"eval", {"[eval] (framework): evaluation during training: samples from the EMA weights scored with the "
                "run's sample metrics into /eval/<value> (step, value, training seconds), a grid per evaluation "
                "(eval/step_S.png), snapshots for `runner sample RUN.h5 --step S`",
                &genfw::eval_schema()}},
      {"sampler-common", {"[sampler] keys every sampler has (framework)", &genfw::sampling_schema()}},
      {"features", {"[features] (framework): the one feature extractor of a run's sample metrics (FID, KID, IS, "
                    "class_accuracy); the samples' and the reference's features are extracted once and shared. "
                    "classifier: in-domain CNN (numbers comparable within genfw, not with papers); torchscript: a "
                    "pretrained network such as pytorch-fid's Inception; identity: raw coordinates (vectors)",
                    &genfw::metric::FeatureSettings::schema()}}};
  for (const auto& use : genfw::component_run_tables()) framework_tables[use.table] = {use.description, &use.schema};
  if (auto table = framework_tables.find(name); table != framework_tables.end()) {
    std::cout << table->second.first << "\n";
    print_schema(*table->second.second);
    return 0;
  }
  genfw::Registry registry = load_registry(common);
  std::vector<const genfw::ComponentInfo*> matches;
  for (const auto* info : registry.components()) {
    if (info->name == name && (kind.empty() || kind == genfw::kind_name(info->kind))) matches.push_back(info);
  }
  if (matches.empty() && print_components_of_kind(registry, name)) return 0;  // "runner describe sampler"
  if (matches.empty()) {
    std::set<std::string> names;  // a name offered by two kinds is one suggestion
    for (const auto* info : registry.components()) names.insert(info->name);
    for (const auto& [table, _] : framework_tables) names.insert(table);
    throw genfw::Error("unknown component or table '" + name + "'" +
                       genfw::unknown_name_hint(name, std::vector<std::string>(names.begin(), names.end())) +
                       " (runner plugins lists every component)");
  }
  for (const auto* info : matches) {
    std::cout << info->name << " (" << genfw::kind_name(info->kind) << ", version " << info->version << ")\n  "
              << info->summary << "\n  library: " << info->library << "\n";
    if (!info->offers.empty()) std::cout << "  offers: " << capability_list(info->offers) << "\n";
    if (!info->requires_all.empty()) std::cout << "  " << requirement_list(info->requires_all) << "\n";
    std::cout << "\n";
    print_schema(info->schema);
    if (info->kind == genfw::Kind::sampler) {
      std::cout << "\nframework keys of [sampler]:\n";
      print_schema(genfw::sampling_schema());
    }
    std::cout << "\n";
  }
  return 0;
}

int cmd_compare(int argc, char** argv) {
  std::vector<std::string> files;
  std::string format = "markdown";
  genfw::CompareOptions compare;
  compare.natural_order = true;
  po::options_description options("runner compare options");
  options.add_options()("runs", po::value(&files)->multitoken(), "run files (.h5)")
      ("format", po::value(&format)->default_value("markdown"), "markdown or csv")
      ("force", po::bool_switch(&compare.force), "put values of different provenance in one column anyway")
      ("all", po::bool_switch(&compare.include_unfinished), "also show runs that did not complete (running, interrupted, failed)")
      ("per-seed", po::bool_switch(&compare.per_seed), "one row per run, even for runs that differ only in their seed");
  po::positional_options_description positional;
  positional.add("runs", -1);
  if (!parse(argc, argv, options, positional,
             "usage: runner compare RUN.h5... [--format markdown|csv] [--force] [--all] [--per-seed]")) return 0;
  if (files.empty()) throw genfw::Error("runner compare: no run files given; usage: runner compare RUN.h5... (e.g. runs/NAME/*.h5)");
  if (format != "markdown" && format != "csv") throw genfw::Error("--format must be markdown or csv, got '" + format + "'");
  compare.format = format == "csv" ? genfw::TableFormat::csv : genfw::TableFormat::markdown;
  // A CSV stays rectangular for CSV readers: its notes go to stderr.
  genfw::write_comparison(files, compare, std::cout, compare.format == genfw::TableFormat::csv ? std::cerr : std::cout);
  return 0;
}

int cmd_cache(int argc, char** argv) {
  std::string action, cache_dir;
  po::options_description options("runner cache options");
  options.add_options()("action", po::value(&action)->required(), "list | clear")
      ("cache-dir", po::value(&cache_dir), "the cache folder (default $GENFW_CACHE_DIR, $XDG_CACHE_HOME/genfw or ~/.cache/genfw)");
  po::positional_options_description positional;
  positional.add("action", 1);
  if (!parse(argc, argv, options, positional, "usage: runner cache list|clear [--cache-dir DIR]")) return 0;
  const std::string dir = genfw::resolve_cache_dir(cache_dir);
  if (action == "list") {
    genfw::print_cache(dir, std::cout);
  } else if (action == "clear") {
    const auto cleared = genfw::ArtefactCache(dir).clear();
    std::cout << "removed " << cleared.removed << " entries from " << dir << "\n";
    if (cleared.in_use > 0) {
      std::cout << "kept " << cleared.in_use << " that a running runner is computing (clear again once it is done)\n";
    }
  } else {
    throw genfw::Error("runner cache: unknown action '" + action + "'; expected list or clear");
  }
  return 0;
}

// `runner import diffusers FOLDER | ncsn CHECKPOINT --out DIR`: the work is genfw/imported_run.hpp's and each format's.
int cmd_import(int argc, char** argv) {
  Common common;
  std::string format, source;
  genfw::ImportRequest request;
  po::options_description options("runner import options");
  options.add_options()("format", po::value(&format)->required(), "what to import: diffusers | ncsn")
      ("source", po::value(&source)->required(),
       "diffusers: the folder save_pretrained wrote (model_index.json, unet/, scheduler/) or its unet/; "
       "ncsn: the checkpoint.pth of ermongroup/ncsn")
      ("out", po::value(&request.out_dir)->required(), "the run's folder; the run file is DIR/<DIR's name>.h5")
      ("experiment", po::value(&request.experiment),
       "an experiment file whose data, sampler, metrics and features the run takes, its [model] the mapped "
       "network (e.g. experiments/ddpm_cifar_pretrained.toml)")
      ("set", po::value(&request.overrides)->composing(),
       "override of the mapped experiment: table.key=value (repeatable), e.g. data.plugin=NAME");
  add_common(options, common);
  po::positional_options_description positional;
  positional.add("format", 1).add("source", 1);
  if (!parse(argc, argv, options, positional,
             "usage: runner import diffusers FOLDER | ncsn CHECKPOINT --out DIR [--experiment FILE] "
             "[--set table.key=value]...")) {
    return 0;
  }
  GENFW_CHECK(format == "diffusers" || format == "ncsn", "runner import: unknown format '", format,
              "'; expected diffusers or ncsn");
  request.source = source;
  genfw::Registry registry = load_registry(common);
  const std::string run_file =
      format == "ncsn" ? genfw::import_ncsn(request, registry) : genfw::import_diffusers(request, registry);
  std::cout << "wrote " << run_file << "\n";
  return 0;
}

int cmd_new(int argc, char** argv) {
  std::string kind, name, dir = ".";
  po::options_description options("runner new options");
  options.add_options()("kind", po::value(&kind)->required(), "sampler | model | objective | metric")
      ("name", po::value(&name)->required(), "component name: a-z, 0-9, _ (names the folder, library and class)")
      ("dir", po::value(&dir)->default_value("."), "folder in which to create NAME/");
  po::positional_options_description positional;
  positional.add("kind", 1).add("name", 1);
  if (!parse(argc, argv, options, positional, "usage: runner new sampler|model|objective|metric NAME [--dir DIR]")) return 0;
  auto files = genfw::write_plugin_scaffold(genfw::parse_scaffold_kind(kind), name, dir);
  for (const auto& file : files) std::cout << "wrote " << file << "\n";
  std::cout << genfw::scaffold_next_steps(fs::path(files.front()).parent_path().string());
  return 0;
}

// This command line without the options named (each takes a value: "--name V" or "--name=V").
std::vector<std::string> without_options(int argc, char** argv, const std::vector<std::string>& names) {
  std::vector<std::string> arguments;
  for (int i = 0; i < argc; ++i) {
    const std::string argument = argv[i];
    bool dropped = false;
    for (const auto& name : names) {
      if (argument == name) ++i;
      dropped = dropped || argument == name || argument.rfind(name + "=", 0) == 0;
    }
    if (!dropped) arguments.push_back(argument);
  }
  return arguments;
}

int cmd_run(int argc, char** argv, bool sample_mode) {
  Common common;
  genfw::RunRequest request;
  std::string sampler, profile, shard;
  std::vector<std::string> sweep;
  int nproc = 1, members_at_once = 1;
  genfw::DistributedSettings distributed;
  po::options_description options(sample_mode ? "runner sample options" : "runner options");
  options.add_options()
      ("input", po::value<std::string>()->required(), sample_mode ? "trained run file (.h5)" : "experiment file (.toml)")
      ("set", po::value(&request.overrides)->composing(), "override: table.key=value (repeatable; value is TOML)")
      ("sweep", po::value(&sweep)->composing(), "run once per value: table.key=v1,v2,... (repeatable)")
      ("out", po::value(&request.out_dir), "run folder (default runs/<name>, never overwritten)")
      ("device", po::value(&request.device), "cpu | cuda | auto (overrides the experiment)")
      ("seeds", po::value(&request.seed_count)->default_value(1),
       "run N times, with seeds s, s+1, ..., s+N-1 (s: the experiment's seed); compare aggregates them")
      ("cache-dir", po::value(&request.cache_dir),
       "cached classifiers and reference statistics (default $GENFW_CACHE_DIR, $XDG_CACHE_HOME/genfw or ~/.cache/genfw)");
  if (sample_mode) {
    options.add_options()("sampler", po::value(&sampler),
                          "sampler to use (its options via --set sampler.KEY=V; default: the run's own sampler and options)")
        ("step", po::value(&request.parent_step)->default_value(-1),
         "sample the weights of this training step: a snapshot [eval] kept (keep_best, keep_last) or the last "
         "checkpoint (default: the weights the run ended with)");
  } else {
    options.add_options()("resume", po::bool_switch(&request.resume),
                          "continue the last run of this experiment from its checkpoint, with the plan it stored "
                          "(give the same --set options; a command line asking for another plan is refused)")
        ("resume-set", po::value(&request.resume_changes)->composing(),
         "with --resume: change the plan's train.steps, train.lr or train.groups.NAME.lr (KEY=VALUE, repeatable)")
        ("print-config", po::bool_switch(&request.print_config), "print the resolved config and exit")
        ("profile", po::value(&profile), "a suite's profile (default cpu; e.g. full = the papers' sizes)")
        ("members-at-once", po::value(&members_at_once)->default_value(1),
         "a suite: run up to N of its experiments at the same time, each in its own process with 1/N of the "
         "cores (or --threads each); faster where a second thread speeds a model up less than a second process");
  }
  options.add_options()
      ("shard", po::value(&shard), sample_mode ? "i/N: run only every N-th run of the sweep, from the i-th (0-based)"
                                               : "i/N: run only every N-th run of a suite or sweep, from the i-th (0-based)")
      ("nproc", po::value(&nproc)->default_value(1),
       "data-parallel on N local processes: training, sampling and feature extraction (each gets RANK, "
       "WORLD_SIZE, ...; see README)")
      ("dist-backend", po::value(&distributed.backend)->default_value("gloo"),
       "data-parallel backend: gloo (CPU) | nccl (CUDA builds of LibTorch only)")
      ("dist-timeout", po::value(&distributed.timeout_seconds)->default_value(300),
       "data-parallel: seconds a rendezvous or collective may wait, or a rank stay silent, before the others fail");
  add_common(options, common);
  po::positional_options_description positional;
  positional.add("input", 1);
  const char* usage = sample_mode ? "usage: runner sample RUN.h5 [--sampler NAME] [--set sampler.key=value]..."
                                  : "usage: runner EXPERIMENT.toml [--set table.key=value]... [--out DIR] [--resume]\n"
                                    "       [--device cpu|cuda|auto] [--threads N] [--plugin-path DIR]...";
  if (!parse(argc, argv, options, positional, usage)) return 0;
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
  std::string input = vm["input"].as<std::string>();
  check_counts({{"--nproc", nproc, 1}, {"--members-at-once", members_at_once, 1}, {"--threads", common.process.threads, 0}});
  GENFW_CHECK(distributed.timeout_seconds > 0, "--dist-timeout ", distributed.timeout_seconds,
              ": expected a number of seconds > 0");
  if (sample_mode) {
    request.parent_run = input;
    request.sampler = sampler;  // a named sampler starts from its own defaults, not the parent sampler's options
  } else {
    request.experiment = input;
  }
  if (!request.resume_changes.empty() && !request.resume) {
    throw genfw::Error("--resume-set changes the plan of a resumed run; without --resume use --set");
  }
  if (!shard.empty()) genfw::parse_shard(shard, request);
  if (nproc > 1) {
    std::vector<std::string> arguments = without_options(argc, argv, {"--nproc"});
    if (sample_mode) arguments.insert(arguments.begin(), "runner");  // argv[0] was "sample"
    return genfw::run_local_workers(nproc, arguments);
  }
  common.process.flush_denormals = !common.keep_denormals;
  common.process.keep_freed_memory = !common.release_freed_memory;
  genfw::apply_process_settings(common.process);
  genfw::install_stop_handlers();  // SIGINT/SIGTERM: stop at a safe point, mark the run interrupted
  genfw::Registry registry = load_registry(common);
  genfw::DataParallelScope data_parallel(distributed);  // joins the job when WORLD_SIZE > 1
  if (!sample_mode && genfw::is_suite_file(input)) {
    if (!sweep.empty() || request.seed_count > 1) {
      throw genfw::Error("--sweep and --seeds apply to one experiment, not to the suite " + input);
    }
    auto files = members_at_once > 1
                     ? genfw::run_suite_concurrently(
                           members_at_once,
                           common.process.threads > 0 ? common.process.threads
                                                      : std::max(1, genfw::usable_cores() / members_at_once),
                           without_options(argc, argv, {"--members-at-once", "--out", "--threads"}), request, profile,
                           registry, std::cout)
                     : genfw::run_suite(request, profile, registry, std::cout);
    if (genfw::is_rank0()) draw_plots(files);
    return 0;
  }
  if (!profile.empty()) throw genfw::Error("--profile applies to suite files; " + input + " has no [suite] table");
  if (members_at_once > 1) throw genfw::Error("--members-at-once applies to suite files; " + input + " has no [suite] table");
  const auto files = genfw::run_with_sweep(request, registry, sweep);
  for (const auto& file : files) {
    if (!file.empty()) std::cout << file << std::endl;
  }
  if (genfw::is_rank0()) draw_plots(files);
  return 0;
}

}  // namespace

// libgomp busy-waits ~300k spins at every barrier by default; when the cores
// are shared with other processes that makes 2-thread convolutions 10-20x
// slower (measured: 64 ms vs 3.4 ms for one 16-channel conv). Its settings are
// read when the library loads, so the runner restarts itself once with a short
// spin, unless the user chose a policy.
void bound_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  ::setenv("GOMP_SPINCOUNT", "1000", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: carry on unchanged
}

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  try {
    if (argc < 2) {
      std::cerr << kUsage;
      return 2;
    }
    std::string first = argv[1];
    if (first == "--help" || first == "-h" || first == "help") {
      std::cout << kUsage;
      return 0;
    }
    if (first == "plugins") return cmd_plugins(argc - 1, argv + 1);
    if (first == "describe") return cmd_describe(argc - 1, argv + 1);
    if (first == "compare") return cmd_compare(argc - 1, argv + 1);
    if (first == "sample") return cmd_run(argc - 1, argv + 1, true);
    if (first == "new") return cmd_new(argc - 1, argv + 1);
    if (first == "import") return cmd_import(argc - 1, argv + 1);
    if (first == "cache") return cmd_cache(argc - 1, argv + 1);
    return cmd_run(argc, argv, false);
  } catch (const genfw::Interrupted& e) {
    // Data-parallel, rank 0 marked the run and says how to continue; the other ranks only stop.
    if (genfw::LaunchEnvironment::from_environment().rank == 0) std::cerr << "runner: " << e.what() << "\n";
    return 128 + e.signal_number();
  } catch (const po::error& e) {
    std::cerr << "runner: " << e.what() << " (see runner --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "runner: error: " << genfw::message_of(e) << "\n";
    return 1;
  }
}
