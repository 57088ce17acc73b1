#pragma once
/// Where the user's artefact cache is (its format is the SDK's, genfw/artefact_cache.hpp):
/// one folder per user, shared by every run and working directory.
///   --cache-dir DIR  >  $GENFW_CACHE_DIR  >  $XDG_CACHE_HOME/genfw  >  $HOME/.cache/genfw
#include <iosfwd>
#include <string>

#include "genfw/export.hpp"

namespace genfw {

/// The cache folder for `flag` (the --cache-dir value, "" when not given).
GENFW_API std::string resolve_cache_dir(const std::string& flag);

/// `runner cache list`: one line per entry with what it was computed from and,
/// for an entry that would not be used, why; then the total.
GENFW_API void print_cache(const std::string& cache_dir, std::ostream& out);

}  // namespace genfw
