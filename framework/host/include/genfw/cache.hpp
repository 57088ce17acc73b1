#pragma once
/// The user's cache of derived artefacts (the in-domain classifier of FID/IS,
/// reference feature statistics): one folder per user, shared by every run and
/// working directory, each entry keyed by a digest of everything that made it.
///   --cache-dir DIR  >  $GENFW_CACHE_DIR  >  $XDG_CACHE_HOME/genfw  >  $HOME/.cache/genfw
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "genfw/export.hpp"

namespace genfw {

/// The cache folder for `flag` (the --cache-dir value, "" when not given).
GENFW_API std::string resolve_cache_dir(const std::string& flag);

struct CacheEntry {
  std::string path;         ///< the artefact (.pt)
  std::string kind;         ///< its sub-folder: metric_extractors, metric_reference
  std::string description;  ///< what it was computed from (its .txt sidecar), "" if none
  uintmax_t bytes = 0;
};

GENFW_API std::vector<CacheEntry> list_cache(const std::string& cache_dir);
/// `runner cache list`: one line per entry, then the total.
GENFW_API void print_cache(const std::string& cache_dir, std::ostream& out);
/// Removes every entry (artefacts, sidecars, lock files); returns how many artefacts.
GENFW_API size_t clear_cache(const std::string& cache_dir);

}  // namespace genfw
