// The runner's pictures: tools/plot_runs.py (h5py + matplotlib) run on the files
// a command wrote. A picture that cannot be drawn never fails the run.
#include "plots.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace fs = std::filesystem;

namespace {

std::string plot_script() {
  for (const char* dir : {GENFW_SOURCE_TOOLS_DIR, GENFW_INSTALLED_TOOLS_DIR}) {
    const fs::path script = fs::path(dir) / "plot_runs.py";
    if (fs::exists(script)) return script.string();
  }
  return "";
}

// Debian's interpreter first: that is where python3-h5py and python3-matplotlib install.
std::string python() { return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

// The folder the runs share: a suite's or sweep's folder, or the one run's own.
fs::path common_folder(const std::vector<std::string>& run_files) {
  fs::path common = fs::absolute(run_files.front()).parent_path();
  if (run_files.size() == 1) return common;
  common = common.parent_path();
  for (const auto& file : run_files) {
    while (!common.empty() && fs::absolute(file).string().rfind(common.string() + "/", 0) != 0) {
      common = common.parent_path();
    }
  }
  return common;
}

}  // namespace

void draw_plots(const std::vector<std::string>& run_files) {
  std::vector<std::string> files;
  for (const auto& file : run_files) {
    if (!file.empty()) files.push_back(file);
  }
  const char* setting = std::getenv("GENFW_PLOTS");
  if (files.empty() || (setting && std::string(setting) == "off")) return;
  const std::string script = plot_script();
  if (script.empty()) return;
  std::vector<std::string> command{python(), script};
  command.insert(command.end(), files.begin(), files.end());
  for (std::string extra : {std::string("-o"), common_folder(files).string()}) command.push_back(extra);
  std::cout.flush();
  pid_t child = ::fork();
  if (child == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // stdout stays the list of run files
    std::vector<char*> argv;
    for (auto& part : command) argv.push_back(part.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (child > 0 && ::waitpid(child, &status, 0) < 0) {
  }
  constexpr int kScriptNamedMissingModule = 3;  // tools/plot_runs.py MISSING_MODULE_EXIT: said once, there
  if (child < 0 || !WIFEXITED(status) ||
      (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != kScriptNamedMissingModule)) {
    std::cerr << "plots: not drawn (needs " << python() << " with h5py and matplotlib: apt-get install python3-h5py "
              << "python3-matplotlib); GENFW_PLOTS=off skips them\n";
  }
}
