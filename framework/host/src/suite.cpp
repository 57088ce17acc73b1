// A suite: the benchmark's several experiments, run in turn, on one table.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "genfw/distributed.hpp"
#include "genfw/durable.hpp"
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

// Every experiment of the suite resolved and checked (once): a typo in the fifth fails now, not in an hour.
std::vector<std::unique_ptr<Pipeline>> resolved_members(const SuiteConfig& suite, const RunRequest& request,
                                                        const Registry& registry) {
  std::vector<std::unique_ptr<Pipeline>> members;
  for (const auto& experiment : suite.experiments) {
    RunRequest member = request;
    member.experiment = experiment;
    member.overrides = suite.overrides;
    member.overrides.insert(member.overrides.end(), request.overrides.begin(), request.overrides.end());
    members.push_back(std::make_unique<Pipeline>(member, registry));
  }
  return members;
}

void fail_naming(const SuiteConfig& suite, const std::vector<std::string>& failures) {
  if (failures.empty()) return;
  std::string list;
  for (const auto& f : failures) list += (list.empty() ? "" : ", ") + f;
  throw Error("suite " + suite.name + ": " + std::to_string(failures.size()) + " of " +
              std::to_string(suite.experiments.size()) + " experiments failed (" + list +
              "); rerun with --resume to keep the completed ones");
}

}  // namespace

std::vector<std::string> run_suite(const RunRequest& request, const std::string& profile, const Registry& registry,
                                   std::ostream& table_out) {
  SuiteConfig suite = load_suite(request.experiment, profile);
  std::vector<std::unique_ptr<Pipeline>> members = resolved_members(suite, request, registry);
  if (request.print_config) {  // each member's resolved config: no folder, no run, no table
    for (auto& member : members) member->run();
    return {};
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
    } catch (const Interrupted& e) {
      // A stop request ends the suite here: every later member would stop at its first step.
      throw Interrupted(std::string(e.what()) + "; the suite stopped there, before " +
                            std::to_string(suite.experiments.size() - i - 1) +
                            " more; continue it with the same command and --resume",
                        e.signal_number());
    } catch (const Error& e) {
      std::cerr << "runner: " << experiment << " failed: " << e.what() << "\n";
      failures.push_back(experiment);
    }
  }
  if (request.shard_count > 1) {  // this shard's runs are part of one table: compare the union
    if (!std::getenv("GENFW_SUITE_MEMBER")) {  // run_suite_concurrently writes the table itself
      std::cerr << "shard " << request.shard_index << "/" << request.shard_count
                << " done; once every shard is: runner compare " << (suite_dir / "*" / "*.h5").string() << "\n";
    }
  } else if (!run_files.empty()) {
    write_table(run_files, suite, suite_dir, table_out);
  }
  fail_naming(suite, failures);
  return run_files;
}

std::vector<std::string> run_suite_concurrently(int at_once, int threads, const std::vector<std::string>& command,
                                                const RunRequest& request, const std::string& profile,
                                                const Registry& registry, std::ostream& table_out) {
  SuiteConfig suite = load_suite(request.experiment, profile);
  std::vector<std::unique_ptr<Pipeline>> members = resolved_members(suite, request, registry);
  if (request.print_config) {  // each member's resolved config: no folder, no run, no table
    for (auto& member : members) member->run();
    return {};
  }
  fs::path suite_dir = request.out_dir.empty() ? default_run_folder(suite.name, request.resume) : request.out_dir;
  fs::create_directories(suite_dir);
  const std::string count = std::to_string(members.size());
  std::vector<std::vector<std::string>> commands;
  for (size_t k = 0; k < members.size(); ++k) {
    std::vector<std::string> member = command;
    for (const std::string& argument : {std::string("--shard"), std::to_string(k) + "/" + count, std::string("--out"),
                                        suite_dir.string(), std::string("--threads"), std::to_string(threads),
                                        std::string("--set"), std::string("log.progress=\"plain\"")}) {
      member.push_back(argument);  // plain progress lines: several members share the terminal
    }
    commands.push_back(member);
  }
  std::cerr << "suite " << suite.name << ": " << members.size() << " experiments, " << at_once << " at a time, "
            << threads << " thread(s) each\n";
  // The children draw no pictures: the suite's are drawn once, over every member.
  const std::vector<int> statuses =
      run_at_most(at_once, commands, {{"GENFW_SUITE_MEMBER", "1"}, {"GENFW_PLOTS", "off"}}, "suite " + suite.name);
  std::vector<std::string> run_files, failures;
  for (size_t k = 0; k < members.size(); ++k) {
    const std::string& name = members[k]->config().name;
    const fs::path run_file = suite_dir / name / (name + ".h5");
    if (statuses[k] == 0 && completed(run_file)) run_files.push_back(run_file.string());
    else failures.push_back(suite.experiments[k]);
  }
  if (!run_files.empty()) write_table(run_files, suite, suite_dir, table_out);
  fail_naming(suite, failures);
  return run_files;
}

}  // namespace genfw
