#pragma once
// Shared helpers of the framework tests.
#include <fcntl.h>
#include <sys/wait.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "genfw/registry.hpp"
#include "genfw/run.hpp"

namespace test_support {

namespace fs = std::filesystem;

/// A fresh folder under the system temp dir, removed at destruction.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("genfw-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
    fs::permissions(path, fs::perms::others_write, fs::perm_options::remove);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

inline std::string fixture_dir(const std::string& name) { return std::string(GENFW_TEST_FIXTURE_DIR) + "/" + name; }

/// Registry holding only the good fixture components.
inline const genfw::Registry& fixtures() {
  static const genfw::Registry registry = [] {
    genfw::Registry r;
    r.load_directory(fixture_dir("good"));
    return r;
  }();
  return registry;
}

/// The message of the genfw::Error `body` throws (fails the test if none).
/// The built-in plugins (the build's plugin folder), loaded once per process.
inline const genfw::Registry& builtins() {
  static const genfw::Registry registry = [] {
    genfw::Registry r;
    r.load_directory(genfw::Registry::builtin_plugin_dir());
    return r;
  }();
  return registry;
}

/// max |a − b| / max |b| in float64: a difference on the scale of the reference b.
inline double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>() /
         b.to(torch::kFloat64).abs().max().item<double>();
}

inline std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const genfw::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a genfw::Error";
  return "";
}

/// The fixture experiment "fx": 100 points of N(3, I), a learnable mean trained
/// by its NLL (batch 16, lr 0.05) for `steps` steps, losses flushed every 3,
/// checkpoints every 10, 50 samples of the prior scored by fixture_mean_error.
/// `objective_extra` lines go into [objective], `extra` at the end.
/// [data]: a two-mode 2-D mixture (toy2d) of `size` points.
inline std::string two_mode_mixture_data(int64_t size) {
  return R"(
[data]
plugin = "toy2d"
distribution = "gmm"
means = [[-2.0, 0.0], [2.0, 0.0]]
weights = [0.5, 0.5]
stds = [0.5]
size = )" + std::to_string(size) + "\n";
}

/// [model]: the exact ε of that mixture (analytic_gmm_eps), sampled without training.
inline std::string two_mode_mixture_eps_model(int64_t timesteps) {
  return R"(
[model]
plugin = "analytic_gmm_eps"
means = [[-2.0, 0.0], [2.0, 0.0]]
weights = [0.5, 0.5]
stds = [0.5, 0.5]
num_train_timesteps = )" + std::to_string(timesteps) + "\n";
}

inline std::string fixture_experiment(int64_t steps, const std::string& extra = "",
                                      const std::string& objective_extra = "") {
  return R"(name = "fx"
seed = 7
[data]
plugin = "fixture_gaussian"
size = 100
[model]
plugin = "fixture_mean"
[objective]
plugin = "fixture_nll"
)" + objective_extra + R"(
[train]
batch_size = 16
lr = 0.05
log_every = 3
checkpoint_every = 10
steps = )" + std::to_string(steps) + R"(
[sampler]
plugin = "fixture_prior"
num_samples = 50
batch_size = 20
[[metrics]]
plugin = "fixture_mean_error"
[log]
progress = "off"
)" + extra;
}

/// Runs experiment `text` in-process as dir/<name>.toml into dir/<name>; returns the run file.
/// `resume_sets` are --resume-set changes (train.steps, train.lr) of a resumed run's plan.
inline std::string run_fixture(const TempDir& dir, const std::string& name, const std::string& text,
                               bool resume = false, const std::vector<std::string>& sets = {},
                               const std::vector<std::string>& resume_sets = {}) {
  genfw::RunRequest request;
  request.experiment = dir.file(name + ".toml", text);
  request.out_dir = dir / name;
  request.resume = resume;
  request.overrides = sets;
  request.resume_changes = resume_sets;
  return genfw::run_experiment(request, fixtures());
}

/// Starts the built runner with `arguments`, the fixture plugins and one thread in a
/// child process with `environment` added; its stdout and stderr go to `log_file`.
inline pid_t start_runner(const std::vector<std::string>& arguments,
                          const std::map<std::string, std::string>& environment, const std::string& log_file) {
  pid_t child = ::fork();
  if (child != 0) return child;
  for (const auto& [name, value] : environment) ::setenv(name.c_str(), value.c_str(), 1);
  int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  std::vector<std::string> all{std::string(GENFW_TEST_BINARY_DIR) + "/runner"};
  all.insert(all.end(), arguments.begin(), arguments.end());
  for (std::string common : {std::string("--plugin-path"), fixture_dir("good"), std::string("--threads"), std::string("1")}) {
    all.push_back(common);
  }
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

/// The exit status of child `pid` once it ends (128 + the signal when one killed it).
inline int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// The whole text of a file ("" if it is missing).
inline std::string text_of(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace test_support

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)
