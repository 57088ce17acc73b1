#include "genfw/run.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>

namespace genfw {

namespace fs = std::filesystem;

torch::Device resolve_device(const std::string& setting) {
  if (setting == "cpu") return torch::kCPU;
  if (setting == "cuda") {
    GENFW_CHECK(torch::cuda::is_available(), "device = \"cuda\" but no CUDA device is available to this LibTorch");
    return torch::kCUDA;
  }
  GENFW_CHECK(setting == "auto", "unknown device '", setting, "'; expected cpu, cuda or auto");
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

std::string default_run_folder(const std::string& name, bool resume) {
  fs::path base = fs::path("runs") / name;
  if (resume) {  // the newest of runs/<name>, runs/<name>-2, ...
    fs::path newest;
    for (int k = 1; fs::exists(k == 1 ? base : fs::path(base.string() + "-" + std::to_string(k))); ++k) {
      newest = k == 1 ? base : fs::path(base.string() + "-" + std::to_string(k));
    }
    GENFW_CHECK(!newest.empty(), "--resume: no earlier run of '", name, "' under runs/ (pass --out DIR)");
    return newest.string();
  }
  // Reserved by creating it: of two runners starting together, one gets -2.
  fs::create_directories(base.parent_path());
  fs::path candidate = base;
  for (int k = 2; !fs::create_directory(candidate); ++k) candidate = base.string() + "-" + std::to_string(k);
  return candidate.string();
}

std::string name_part(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  const size_t dot = assignment.rfind('.', eq);
  const std::string key = assignment.substr(dot == std::string::npos ? 0 : dot + 1, eq - (dot == std::string::npos ? 0 : dot + 1));
  std::string value = assignment.substr(eq + 1);
  // Run names allow [A-Za-z0-9._-]: any other character of the value becomes '_',
  std::replace_if(value.begin(), value.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-'; }, '_');
  // and so does ".." (a relative path's), which a run name may not hold.
  for (auto dots = value.find(".."); dots != std::string::npos; dots = value.find("..")) value.replace(dots, 2, "_");
  return "-" + key + value;
}

namespace {
// Two spellings of one value, as a name part holds it: "0" and "0.0" are one number.
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char* end_a = nullptr;
  char* end_b = nullptr;
  const double x = std::strtod(a.c_str(), &end_a), y = std::strtod(b.c_str(), &end_b);
  return !a.empty() && !b.empty() && *end_a == '\0' && *end_b == '\0' && x == y;
}
}  // namespace

std::string sampled_run_name(std::string name, const std::vector<std::string>& stale_keys,
                             const std::vector<std::string>& all_keys, const std::map<std::string, std::string>& used,
                             const std::string& sampler, const std::vector<std::string>& overrides) {
  auto key_at = [&](size_t at) {  // the longest known key right after the '-' at `at`
    std::string longest;
    for (const auto& key : all_keys) {
      if (key.size() > longest.size() && name.compare(at + 1, key.size(), key) == 0) longest = key;
    }
    return longest;
  };
  auto part_end = [&](size_t at) {  // the next '-' that starts another "-KEYvalue" part, or the end
    for (size_t end = at + 1; end < name.size(); ++end) {
      if (name[end] == '-' && !key_at(end).empty()) return end;
    }
    return name.size();
  };
  for (size_t at = name.find('-'); at != std::string::npos; at = name.find('-', at + 1)) {
    const std::string key = key_at(at);
    if (key.empty() || std::find(stale_keys.begin(), stale_keys.end(), key) == stale_keys.end()) continue;
    const size_t end = part_end(at);
    const std::string stated = name.substr(at + 1 + key.size(), end - at - 1 - key.size());
    auto mine = used.find(key);
    if (mine != used.end() && same_value(stated, name_part("sampler." + key + "=" + mine->second).substr(1 + key.size()))) {
      continue;  // this run uses the value the name states
    }
    name.erase(at, end - at);
    at = at == 0 ? 0 : at - 1;
  }
  if (!sampler.empty()) name += "-" + sampler;
  for (const auto& assignment : overrides) {
    if (assignment.rfind("sampler.", 0) != 0 || assignment.find('=') == std::string::npos) continue;
    const std::string part = name_part(assignment);
    if (name.find(part) == std::string::npos) name += part;
  }
  return name;
}

void parse_shard(const std::string& text, RunRequest& request) {
  const auto slash = text.find('/');
  int index = -1, count = 0;
  try {
    if (slash != std::string::npos) {
      size_t used = 0;
      index = std::stoi(text.substr(0, slash), &used);
      if (used != slash) index = -1;
      count = std::stoi(text.substr(slash + 1), &used);
      if (used != text.size() - slash - 1) count = 0;
    }
  } catch (const std::exception&) {
  }
  GENFW_CHECK(count >= 1 && index >= 0 && index < count, "--shard ", text,
              ": expected i/N with 0 <= i < N, e.g. 0/4 (SLURM: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)");
  request.shard_index = index;
  request.shard_count = count;
}

std::string run_experiment(const RunRequest& request, const Registry& registry) {
  return Pipeline(request, registry).run();
}

std::vector<std::string> run_with_sweep(const RunRequest& request, const Registry& registry,
                                        const std::vector<std::string>& sweep_arguments) {
  // The config is resolved once here for its [sweep]; each variant is another config.
  ExperimentConfig config = request.parent_run.empty()
                                ? load_experiment(request.experiment, request.overrides, registry)
                                : ExperimentConfig{};
  // `runner sample --seeds N`: from the parent's seed (or the one --set gives).
  if (!request.parent_run.empty() && request.seed_count > 1) config.seed = Pipeline(request, registry).config().seed;
  std::map<std::string, std::vector<std::string>> sweep = config.sweep;
  for (const auto& argument : sweep_arguments) {
    auto eq = argument.find('=');
    GENFW_CHECK(eq != std::string::npos, "--sweep ", argument, ": expected table.key=v1,v2,...");
    std::vector<std::string> values;
    std::string list = argument.substr(eq + 1);
    for (size_t start = 0; start <= list.size();) {
      size_t comma = std::min(list.find(',', start), list.size());
      values.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    sweep[argument.substr(0, eq)] = values;
  }
  GENFW_CHECK(request.seed_count >= 1, "--seeds ", request.seed_count, ": expected a count of at least 1");
  if (request.seed_count > 1) {
    GENFW_CHECK(!sweep.count("seed"), "--seeds and a sweep of 'seed' both choose the seeds; use one of them");
    for (int k = 0; k < request.seed_count; ++k) sweep["seed"].push_back(std::to_string(config.seed + k));
  }
  if (sweep.empty()) return {run_experiment(request, registry)};
  std::vector<std::vector<std::string>> combinations{{}};
  for (const auto& [key, values] : sweep) {
    std::vector<std::vector<std::string>> next;
    for (const auto& partial : combinations) {
      for (const auto& value : values) {
        auto extended = partial;
        extended.push_back(key + "=" + value);
        next.push_back(extended);
      }
    }
    combinations = next;
  }
  // A sweep of sampler keys only (DDIM steps, η, ...) trains once: every other
  // variant samples the first one's weights, as `runner sample` does, so the
  // table compares samplers on the same model.
  const bool samples_one_training =
      request.parent_run.empty() && config.train && config.train->integer("steps") > 0 &&
      config.log.flag("checkpoint") &&
      std::all_of(sweep.begin(), sweep.end(), [](const auto& entry) { return entry.first.rfind("sampler.", 0) == 0; });
  GENFW_CHECK(!samples_one_training || request.shard_count == 1, "--shard: this sweep changes only sampler keys, so "
              "every variant samples the first one's training; run it unsharded, or give each shard its own training");
  // Without --out a sweep gets a folder of its own (runs/NAME, runs/NAME-2, ...), so its table and
  // pictures are never overwritten by the next sweep's.
  const std::string sweep_name = request.parent_run.empty() ? config.name : fs::path(request.parent_run).stem().string();
  RunRequest swept = request;
  if (swept.out_dir.empty()) swept.out_dir = default_run_folder(sweep_name, request.resume);
  std::vector<std::string> files;
  for (size_t k = 0; k < combinations.size(); ++k) {
    if (!request.owns(k)) continue;
    const auto& assignments = combinations[k];
    RunRequest variant = swept;
    if (samples_one_training && !files.empty()) variant.parent_run = files.front();
    std::string suffix;
    for (const auto& a : assignments) {
      variant.overrides.push_back(a);
      suffix += name_part(a);
    }
    std::string name = sweep_name + suffix;
    variant.overrides.push_back("name=" + format_value(name));
    variant.out_dir = (fs::path(swept.out_dir) / name).string();
    std::cerr << "sweep: " << name << (variant.parent_run.empty() ? "" : " (the weights of " + variant.parent_run + ")")
              << "\n";
    files.push_back(run_experiment(variant, registry));
  }
  return files;
}

}  // namespace genfw
