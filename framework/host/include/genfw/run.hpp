#pragma once
/// A run: load config → resolve plugins → check composition → train → sample
/// → metrics → HDF5. And the comparison table across run files.
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "genfw/config.hpp"
#include "genfw/pipeline.hpp"

namespace genfw {

/// Runs one experiment (expanding nothing) through the Pipeline; returns the run file path.
GENFW_API std::string run_experiment(const RunRequest& request, const Registry& registry);
/// Expands [sweep] (and extra `sweep` assignments "table.key=v1,v2") into one
/// run per combination; returns every run file written.
GENFW_API std::vector<std::string> run_with_sweep(const RunRequest& request, const Registry& registry,
                                                  const std::vector<std::string>& sweep);

/// runs/<name>, or runs/<name>-2, -3... when taken, created here so that no
/// other runner takes it; with `resume`, the newest existing one.
GENFW_API std::string default_run_folder(const std::string& name, bool resume);

/// "-KEYvalue" for an assignment "table.KEY=value", as sweeps and sampled runs name
/// themselves: characters a run name may not hold become '_' ('/', "..", spaces).
GENFW_API std::string name_part(const std::string& assignment);

/// The name of a run that samples another run's weights: `name` (the parent's, or one a
/// sweep gave) keeps each name part of `stale_keys` (the parent sampler's options) only
/// where `used` (this run's sampler options, as TOML values) has that value; then
/// "-SAMPLER" when one is named, and the name part of each `sampler.` override not stated
/// yet: the options this run actually used. A part is read as the longest of `all_keys`
/// it starts with, so "-seed8" is no part of a key "s".
GENFW_API std::string sampled_run_name(std::string name, const std::vector<std::string>& stale_keys,
                                       const std::vector<std::string>& all_keys,
                                       const std::map<std::string, std::string>& used, const std::string& sampler,
                                       const std::vector<std::string>& overrides);

/// Runs every experiment of a suite file (see SuiteConfig) into one folder, then
/// writes and prints their comparison table. With `request.resume`, completed
/// runs of the newest suite folder are kept and unfinished ones resumed. A failed
/// experiment does not stop the others; the suite then fails naming them.
GENFW_API std::vector<std::string> run_suite(const RunRequest& request, const std::string& profile,
                                             const Registry& registry, std::ostream& table_out);

/// run_suite with up to `at_once` experiments running at the same time, each in
/// a child process (`command` without its --out, --threads and --members-at-once,
/// plus --shard k/N to pick experiment k) with `threads` intra-op threads; the
/// children take the experiments in order as earlier ones finish. The cached
/// classifier and reference statistics are computed once under their locks.
GENFW_API std::vector<std::string> run_suite_concurrently(int at_once, int threads,
                                                          const std::vector<std::string>& command,
                                                          const RunRequest& request, const std::string& profile,
                                                          const Registry& registry, std::ostream& table_out);

enum class TableFormat { markdown, csv };
struct CompareOptions {
  TableFormat format = TableFormat::markdown;
  bool force = false;               ///< put values of different provenance in one column anyway
  bool include_unfinished = false;  ///< also runs whose status is not "completed"
  bool per_seed = false;            ///< one row per run even where runs differ only in their seed
  /// Rows in natural order of their file paths (steps10 < steps50 < steps200), as a user
  /// listing files by a glob expects; off, they keep the given order (a suite's own).
  bool natural_order = false;
};

/// One row per run file, except that runs whose stored configs differ only in
/// the seed share one row: the mean ± the 95% Student-t confidence interval,
/// with the count of seeds. Then one "real data" row per recorded floor.
/// Refuses metric columns mixing provenances unless `force`. Runs whose status
/// is not "completed" (running, interrupted, failed) are left out unless
/// `include_unfinished`. The table goes to `table`, notes under it to `notes`
/// (CSV callers pass another stream, so that the CSV stays rectangular).
GENFW_API void write_comparison(const std::vector<std::string>& run_files, const CompareOptions& options,
                                std::ostream& table, std::ostream& notes);

/// t such that P(T ≤ t) = 0.975 for Student's t with `degrees_of_freedom`.
GENFW_API double student_t_975(int degrees_of_freedom);
/// `significant` digits in fixed notation (52183, 34.18, 0.001235); below 1e-4 as 1.23e-5.
GENFW_API std::string number_for_people(double value, int significant);

GENFW_API torch::Device resolve_device(const std::string& setting);

}  // namespace genfw
