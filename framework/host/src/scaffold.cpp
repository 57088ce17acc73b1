// `runner new KIND NAME`: an out-of-tree plugin's folder from the SDK's
// template files (framework/sdk/scaffold/, installed with the SDK). Each
// template is a working component (not a stub), so the folder configures,
// builds and passes its test as written; @NAME@, @CLASS@ and @KIND@ are filled in.
#include "genfw/scaffold.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "genfw/error.hpp"
#include "genfw/registry.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

// The kinds with templates, each a folder of the template directory.
const std::vector<Kind> kScaffoldKinds{Kind::sampler, Kind::model, Kind::objective, Kind::metric};

// The templates: installed next to the built-in plugins (<libdir>/genfw/scaffold),
// else this source tree's (a runner run from its build folder).
fs::path template_dir() {
  const fs::path installed = fs::path(Registry::installed_plugin_dir()).parent_path() / "scaffold";
  if (fs::is_directory(installed)) return installed;
  return fs::path(GENFW_SOURCE_DIR) / "framework" / "sdk" / "scaffold";
}

std::string read_template(const fs::path& file) {
  std::ifstream in(file);
  GENFW_CHECK(in.good(), "runner new: template ", file.string(),
              " is missing; the SDK's scaffold folder is incomplete (reinstall genfw)");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// my_sampler → MySampler.
std::string class_name(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
    } else {
      out += upper ? char(std::toupper(static_cast<unsigned char>(c))) : c;
      upper = false;
    }
  }
  return out;
}

std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

}  // namespace

std::vector<Kind> scaffold_kinds() { return kScaffoldKinds; }

Kind parse_scaffold_kind(const std::string& name) {
  std::string known;
  for (Kind kind : scaffold_kinds()) {
    if (name == kind_name(kind)) return kind;
    known += std::string(known.empty() ? "" : ", ") + kind_name(kind);
  }
  throw Error("runner new: unknown kind '" + name + "'; expected one of: " + known);
}

std::vector<std::string> write_plugin_scaffold(Kind kind, const std::string& name, const std::string& parent_dir) {
  // The name becomes a file, a CMake target, a C++ class and a TOML value.
  bool valid = !name.empty() && std::islower(static_cast<unsigned char>(name[0]));
  for (char c : name) valid = valid && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_');
  GENFW_CHECK(valid, "runner new: name '", name, "' must start with a lower-case letter and hold only a-z, 0-9 and _");
  GENFW_CHECK(std::find(kScaffoldKinds.begin(), kScaffoldKinds.end(), kind) != kScaffoldKinds.end(),
              "runner new: no template for kind '", kind_name(kind), "'");
  fs::path folder = parent_dir.empty() || parent_dir == "." ? fs::path(name) : fs::path(parent_dir) / name;
  GENFW_CHECK(!fs::exists(folder), "runner new: ", folder.string(), " already exists; choose another name or --dir");
  // Every template is read before the folder is made: a missing one leaves nothing behind.
  const fs::path templates = template_dir(), of_kind = templates / kind_name(kind);
  const std::map<std::string, std::string> values{{"@NAME@", name}, {"@CLASS@", class_name(name)},
                                                  {"@KIND@", kind_name(kind)}};
  const std::vector<std::pair<std::string, std::string>> files{
      {"CMakeLists.txt", fill(read_template(templates / "CMakeLists.txt.in"), values)},
      {name + ".cpp", fill(read_template(of_kind / "NAME.cpp.in"), values)},
      {"test_" + name + ".cpp", fill(read_template(of_kind / "test_NAME.cpp.in"), values)}};
  fs::create_directories(folder);
  std::vector<std::string> written;
  for (const auto& [file, text] : files) {
    fs::path path = folder / file;
    std::ofstream out(path);
    out << text;
    GENFW_CHECK(out.good(), "runner new: cannot write ", path.string());
    written.push_back(path.string());
  }
  return written;
}

std::string scaffold_next_steps(const std::string& folder) {
  // <libdir>/genfw/plugins exists only in an installed SDK; its package is in <libdir>/cmake/genfw.
  fs::path package = fs::path(Registry::installed_plugin_dir()).parent_path().parent_path() / "cmake" / "genfw";
  std::string find_sdk = fs::exists(package / "genfwConfig.cmake") ? "-Dgenfw_DIR=" + package.string()
                                                                     : "-DCMAKE_PREFIX_PATH=<genfw install prefix>";
  return "build and test it against the installed SDK:\n  cmake -S " + folder + " -B " + folder + "/build " +
         find_sdk + "\n  cmake --build " + folder + "/build\n  ctest --test-dir " + folder +
         "/build --output-on-failure\nthen load it with --plugin-path " + folder + "/build/plugins\n";
}

}  // namespace genfw
