#include "genfw/cache.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <ostream>

#include "genfw/error.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

std::string environment_variable(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// The kinds of artefact the feature service caches (genfw/features.hpp).
const char* const kKinds[] = {"metric_extractors", "metric_reference"};

std::string first_line_of(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

std::string resolve_cache_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (std::string dir = environment_variable("GENFW_CACHE_DIR"); !dir.empty()) return dir;
  if (std::string xdg = environment_variable("XDG_CACHE_HOME"); !xdg.empty()) return (fs::path(xdg) / "genfw").string();
  const std::string home = environment_variable("HOME");
  GENFW_CHECK(!home.empty(), "no cache folder: HOME is not set; pass --cache-dir DIR or set GENFW_CACHE_DIR");
  return (fs::path(home) / ".cache" / "genfw").string();
}

std::vector<CacheEntry> list_cache(const std::string& cache_dir) {
  std::vector<CacheEntry> entries;
  for (const char* kind : kKinds) {
    const fs::path dir = fs::path(cache_dir) / kind;
    if (!fs::is_directory(dir)) continue;
    for (const auto& item : fs::directory_iterator(dir)) {
      if (item.path().extension() != ".pt" || !item.is_regular_file()) continue;
      fs::path sidecar = item.path();
      sidecar.replace_extension(".txt");
      entries.push_back({item.path().string(), kind, first_line_of(sidecar), item.file_size()});
    }
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return entries;
}

void print_cache(const std::string& cache_dir, std::ostream& out) {
  const auto entries = list_cache(cache_dir);
  uintmax_t total = 0;
  for (const auto& entry : entries) {
    total += entry.bytes;
    out << std::setw(10) << entry.bytes << "  " << entry.path << "\n";
    if (!entry.description.empty()) out << "            " << entry.description << "\n";
  }
  out << entries.size() << " entries, " << total << " bytes in " << cache_dir << "\n";
}

size_t clear_cache(const std::string& cache_dir) {
  size_t removed = 0;
  for (const char* kind : kKinds) {
    const fs::path dir = fs::path(cache_dir) / kind;
    if (!fs::is_directory(dir)) continue;
    for (const auto& item : fs::directory_iterator(dir)) removed += item.path().extension() == ".pt";
    fs::remove_all(dir);
  }
  return removed;
}

}  // namespace genfw
