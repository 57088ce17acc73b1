#include "genfw/cache.hpp"

#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <ostream>

#include "genfw/artefact_cache.hpp"
#include "genfw/error.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

std::string environment_variable(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
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

void print_cache(const std::string& cache_dir, std::ostream& out) {
  const auto entries = ArtefactCache(cache_dir).list();
  uintmax_t total = 0;
  size_t unusable = 0;
  for (const auto& entry : entries) {
    total += entry.bytes;
    out << std::setw(10) << entry.bytes << "  " << entry.path << "\n";
    if (!entry.description.empty()) out << "            " << entry.description << "\n";
    if (!entry.problem.empty()) {
      out << "            NOT USED: it " << entry.problem << "\n";
      ++unusable;
    }
  }
  out << entries.size() << " entries, " << total << " bytes in " << cache_dir << "\n";
  if (unusable > 0) {
    out << unusable << " of them would be computed again when next needed; `runner cache clear --cache-dir "
        << cache_dir << "` removes every entry\n";
  }
}

}  // namespace genfw
