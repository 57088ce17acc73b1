// A suite: the benchmark's several experiments, run in turn, on one table.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "genfw/run.hpp"
#include "genfw/run_log.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

bool completed(const fs::path& run_file) {
  return fs::exists(run_file) && RunLog::open(run_file.string(), false).attribute("/", "status") == "completed";
}

// Runs one experiment of the suite into its own sub-folder; returns the run file.
std::string run_member(Pipeline& pipeline, const RunRequest& request, const fs::path& suite_dir) {
  const std::string& name = pipeline.config().name;
  fs::path run_file = suite_dir / name / (name + ".h5");
  if (request.resume && completed(run_file)) {
    std::cerr << "kept (completed): " << run_file.string() << "\n";
    return run_file.string();
  }
  pipeline.set_output((suite_dir / name).string(), request.resume && fs::exists(run_file));
  return pipeline.run();
}

void write_table(const std::vector<std::string>& run_files, const SuiteConfig& suite, const fs::path& suite_dir,
                 std::ostream& table_out) {
  std::ostringstream table;
  table << "# " << suite.name << " (profile " << suite.profile << ")\n\n";
  write_comparison(run_files, {}, table, table);
  table << "\nSample grids:\n\n";
  for (const auto& file : run_files) {
    fs::path png = fs::path(file).replace_extension(".png");
    if (fs::exists(png)) {
      std::string relative = fs::relative(png, suite_dir).string();
      table << "- " << png.stem().string() << ": [" << relative << "](" << relative << ")\n";
    }
  }
  fs::path table_file = suite_dir / (suite.name + ".md");
  std::ofstream(table_file) << table.str();
  table_out << table.str() << "\ntable: " << table_file.string() << "\n";
}

}  // namespace

std::vector<std::string> run_suite(const RunRequest& request, const std::string& profile, const Registry& registry,
                                   std::ostream& table_out) {
  SuiteConfig suite = load_suite(request.experiment, profile);
  // Every experiment is resolved and checked first (once): a typo in the fifth fails now, not in an hour.
  std::vector<std::unique_ptr<Pipeline>> members;
  for (const auto& experiment : suite.experiments) {
    RunRequest member = request;
    member.experiment = experiment;
    member.overrides = suite.overrides;
    member.overrides.insert(member.overrides.end(), request.overrides.begin(), request.overrides.end());
    members.push_back(std::make_unique<Pipeline>(member, registry));
  }
  fs::path suite_dir = request.out_dir.empty() ? default_run_folder(suite.name, request.resume) : request.out_dir;
  fs::create_directories(suite_dir);
  std::vector<std::string> run_files, failures;
  for (size_t i = 0; i < suite.experiments.size(); ++i) {
    if (!request.owns(i)) continue;
    const std::string& experiment = suite.experiments[i];
    std::cerr << "[" << i + 1 << "/" << suite.experiments.size() << "] " << experiment << "\n";
    try {
      run_files.push_back(run_member(*members[i], request, suite_dir));
    } catch (const Error& e) {
      std::cerr << "runner: " << experiment << " failed: " << e.what() << "\n";
      failures.push_back(experiment);
    }
  }
  if (request.shard_count > 1) {  // this shard's runs are part of one table: compare the union
    std::cerr << "shard " << request.shard_index << "/" << request.shard_count << " done; once every shard is: runner compare "
              << (suite_dir / "*" / "*.h5").string() << "\n";
  } else if (!run_files.empty()) {
    write_table(run_files, suite, suite_dir, table_out);
  }
  if (!failures.empty()) {
    std::string list;
    for (const auto& f : failures) list += (list.empty() ? "" : ", ") + f;
    throw Error("suite " + suite.name + ": " + std::to_string(failures.size()) + " of " +
                std::to_string(suite.experiments.size()) + " experiments failed (" + list +
                "); rerun with --resume to keep the completed ones");
  }
  return run_files;
}

}  // namespace genfw
