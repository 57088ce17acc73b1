// Boost.DLL on std::filesystem, so no boost_filesystem library is needed.
#define BOOST_DLL_USE_STD_FS
#include "genfw/registry.hpp"

#include <iostream>

#include "genfw/config.hpp"

#include <dlfcn.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <filesystem>

namespace genfw {

FrameworkFailure::FrameworkFailure(const std::string& message) : Error(message) {}
FrameworkFailure::~FrameworkFailure() = default;

namespace fs = std::filesystem;

namespace {

// Libraries stay mapped until exit: objects they made may live in statics.
std::vector<boost::dll::shared_library*>& loaded_libraries() {
  static auto* libraries = new std::vector<boost::dll::shared_library*>();
  return *libraries;
}

// Why `path` could be replaced by someone other than root or us, or "" when it
// cannot. Sticky folders (/tmp) of root or us pass even when world-writable:
// only an entry's owner may rename or delete it there, and entries below are checked too.
std::string why_untrusted(const fs::path& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return std::string("cannot stat it: ") + std::strerror(errno);
  const uid_t self = ::geteuid();
  if (info.st_uid != 0 && info.st_uid != self) {
    const passwd* owner = ::getpwuid(info.st_uid);
    return "it is owned by " + (owner ? std::string(owner->pw_name) : "uid " + std::to_string(info.st_uid)) +
           ", neither root nor the current user";
  }
  const bool sticky_folder = S_ISDIR(info.st_mode) && (info.st_mode & S_ISVTX) != 0;
  if (sticky_folder) return "";
  if (info.st_mode & S_IWOTH) return "it is writable by other users (chmod o-w)";
  if (info.st_mode & S_IWGRP) return "it is writable by its group (chmod g-w)";
  return "";
}

// The rule sudo and ssh apply: after resolving symlinks, the file and every
// folder above it must be safe from other users, or they could swap the code we run.
void check_permissions(const fs::path& file) {
  fs::path walked;
  for (const fs::path& component : file) {
    walked /= component;
    std::string why = why_untrusted(walked);
    GENFW_CHECK(why.empty(), "refusing to load plugin ", file.string(), ": ", walked.string(), ": ", why,
                "; loading a library runs its code. Fix the permissions or pass --allow-insecure-plugins");
  }
}

}  // namespace

void check_sampler_options(const ComponentInfo& info) {
  if (info.kind != Kind::sampler) return;
  for (const OptionSpec& own : info.schema.specs()) {
    for (const OptionSpec& framework : sampling_schema().specs()) {
      GENFW_CHECK(own.name != framework.name, "plugin library ", info.library, ": sampler '", info.name,
                  "' declares an option '", own.name, "', but '", framework.name,
                  "' is a framework [sampler] key (", framework.doc,
                  ") and would shadow it; rename the sampler's option");
    }
  }
}

void Registry::load_library(const std::string& path) {
  GENFW_CHECK(fs::exists(path), "plugin library ", fs::absolute(path).string(), " does not exist");
  // The resolved path is both checked and loaded: a symlink retargeted in between changes nothing.
  fs::path file = fs::canonical(path);
  if (!allow_insecure) check_permissions(file);

  auto* library = new boost::dll::shared_library();
  boost::dll::fs::error_code ec;
  library->load(file.string(), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    delete library;
    // Boost.DLL reports only "bad file descriptor"; the dynamic loader says
    // which symbol or dependency is missing, so ask it again for its reason.
    void* retry = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    const char* reason = retry ? nullptr : ::dlerror();
    if (retry) ::dlclose(retry);
    throw Error("cannot load plugin library " + file.string() + ": " + (reason ? reason : ec.message()) +
                " (built against another genfw SDK or LibTorch build?)");
  }
  loaded_libraries().push_back(library);

  for (const char* symbol : {"genfw_plugin_abi_version", "genfw_plugin_torch_version",
                             "genfw_plugin_manifest"}) {
    GENFW_CHECK(library->has(symbol), "plugin library ", file.string(), " has no entry point '",
                symbol, "': not a genfw plugin, or it lacks GENFW_PLUGIN(...)");
  }
  // Versions first: nothing else in the library is called on a mismatch.
  int abi = library->get<int()>("genfw_plugin_abi_version")();
  GENFW_CHECK(abi == GENFW_ABI_VERSION, "plugin library ", file.string(),
              " was built for genfw plugin ABI ", abi, ", but this runner has ABI ",
              GENFW_ABI_VERSION, "; rebuild the plugin against this SDK");
  std::string torch_version = library->get<const char*()>("genfw_plugin_torch_version")();
  GENFW_CHECK(torch_version == GENFW_TORCH_VERSION_STRING, "plugin library ", file.string(),
              " was built against LibTorch ", torch_version, ", but this runner uses LibTorch ",
              GENFW_TORCH_VERSION_STRING, "; rebuild the plugin against this LibTorch");

  Manifest manifest;
  try {
    library->get<void(Manifest&)>("genfw_plugin_manifest")(manifest);
  } catch (const std::exception& e) {
    throw Error("plugin library " + file.string() + ": its manifest threw: " + e.what());
  }
  GENFW_CHECK(!manifest.components.empty(), "plugin library ", file.string(),
              " has an empty manifest (no components)");
  for (auto& info : manifest.components) {
    GENFW_CHECK(!info.name.empty(), "plugin library ", file.string(), " has a malformed manifest: a ",
                kind_name(info.kind), " entry without a name");
    GENFW_CHECK(info.factory != nullptr, "plugin library ", file.string(), " has a malformed manifest: ",
                kind_name(info.kind), " '", info.name, "' has no factory (add it with Manifest::add<T>)");
    info.library = file.string();
    check_sampler_options(info);
    if (const ComponentInfo* taken = try_find(info.name, info.kind)) {
      const bool replaces_builtin = !builtin_dir_.empty() && fs::path(taken->library).parent_path() == builtin_dir_ &&
                                    file.parent_path() != builtin_dir_;
      GENFW_CHECK(replaces_builtin, kind_name(info.kind), " name '", info.name, "' is taken twice: by ",
                  taken->library, " and by ", file.string(), "; remove one of them from the plugin path");
      std::cerr << "note: " << kind_name(info.kind) << " '" << info.name << "' from " << file.string()
                << " replaces the built-in one in " << taken->library << " (a plugin path comes first)\n";
      components_.erase(components_.begin() + (taken - components_.data()));
    }
    components_.push_back(std::move(info));
  }
}

void Registry::load_directory(const std::string& dir) {
  GENFW_CHECK(fs::is_directory(dir), "plugin folder ", dir, " does not exist");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".so") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) load_library(file.string());
}

void Registry::load_search_path(const std::vector<std::string>& extra) {
  std::string builtin = builtin_plugin_dir();
  if (fs::is_directory(builtin)) {
    builtin_dir_ = fs::weakly_canonical(builtin).string();  // libraries are named by their real paths
    load_directory(builtin);
  }
  for (const auto& dir : extra) load_directory(dir);
  if (const char* env = std::getenv("GENFW_PLUGIN_PATH")) {
    std::string paths = env;
    size_t start = 0;
    while (start <= paths.size()) {
      size_t end = paths.find(':', start);
      if (end == std::string::npos) end = paths.size();
      std::string dir = paths.substr(start, end - start);
      if (!dir.empty()) load_directory(dir);
      start = end + 1;
    }
  }
}

const ComponentInfo* Registry::try_find(const std::string& name, Kind kind) const {
  for (const auto& info : components_) {
    if (info.name == name && info.kind == kind) return &info;
  }
  return nullptr;
}

const ComponentInfo& Registry::find(const std::string& name, Kind kind) const {
  if (const ComponentInfo* info = try_find(name, kind)) return *info;
  std::vector<std::string> names;
  for (const auto& info : components_) {
    if (info.kind == kind) names.push_back(info.name);
  }
  throw Error(detail::concat("unknown ", kind_name(kind), " '", name, "'",
                             unknown_name_hint(name, names)));
}

std::vector<const ComponentInfo*> Registry::components() const {
  std::vector<const ComponentInfo*> all;
  for (const auto& info : components_) all.push_back(&info);
  return all;
}

std::unique_ptr<Component> Registry::create_component(const ComponentInfo& info,
                                                      const Options& options,
                                                      const BuildContext& context) const {
  return call_plugin(info, "its constructor", [&] { return info.factory(options, context); });
}

std::string Registry::build_plugin_dir() { return GENFW_BUILD_PLUGIN_DIR; }

std::string Registry::installed_plugin_dir() {
  // Found from where libgenfw itself was loaded, not a path fixed at configure
  // time, so an installed tree works under any --prefix and after being moved.
  Dl_info self{};
  if (::dladdr(reinterpret_cast<void*>(&Registry::installed_plugin_dir), &self) == 0 || !self.dli_fname) return "";
  return (fs::weakly_canonical(self.dli_fname).parent_path() / "genfw" / "plugins").string();
}

std::string Registry::builtin_plugin_dir() {
  // The installed copy wins: an installed runner must not pick up the build
  // tree it was installed from, which may since have changed.
  std::string installed = installed_plugin_dir();
  return !installed.empty() && fs::is_directory(installed) ? installed : build_plugin_dir();
}

std::string without_prefix(const std::string& message, const std::string& prefix) {
  if (message.rfind(prefix, 0) != 0) return message;
  const size_t rest = message.find_first_not_of(": ", prefix.size());
  return rest == std::string::npos ? message : message.substr(rest);
}

}  // namespace genfw
