#pragma once
/// `runner new KIND NAME`: the starting folder of a plugin built outside the
/// framework's tree against the installed SDK.
#include <string>
#include <vector>

#include "genfw/component.hpp"

namespace genfw {

/// The kinds `runner new` can scaffold: sampler, model, objective, metric.
GENFW_API std::vector<Kind> scaffold_kinds();

/// "sampler" → Kind::sampler; throws genfw::Error listing scaffold_kinds() otherwise.
GENFW_API Kind parse_scaffold_kind(const std::string& name);

/// Writes `parent_dir`/NAME/ with CMakeLists.txt (find_package(genfw) +
/// genfw_add_plugin), NAME.cpp (a working, commented component of `kind`) and
/// test_NAME.cpp (GoogleTest on genfw/testing.hpp), which configure, build and
/// pass as written. NAME must be a lower-case C identifier (it names the
/// library, the component and the CMake target). Refuses an existing folder.
/// Returns the paths written.
GENFW_API std::vector<std::string> write_plugin_scaffold(Kind kind, const std::string& name,
                                                         const std::string& parent_dir);

/// How to build, test and use the scaffolded `folder`; names this SDK's
/// CMake package folder when this libgenfw is an installed one.
GENFW_API std::string scaffold_next_steps(const std::string& folder);

}  // namespace genfw
