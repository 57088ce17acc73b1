#pragma once
/// Finds plugin libraries, checks their versions, and makes components.
/// Libraries are never unloaded: every object a plugin made must outlive
/// nothing of its library, and the simplest guarantee is that the library
/// stays mapped until the process exits.
#include <memory>
#include <string>
#include <vector>

#include "genfw/durable.hpp"
#include "genfw/error.hpp"
#include "genfw/out_of_memory.hpp"
#include "genfw/plugin.hpp"

namespace genfw {

/// Refuses (genfw::Error naming the library, the component and both keys) a sampler
/// option named like a framework [sampler] key (sampling_schema(): num_samples,
/// batch_size, x_init, precision), which the framework's value would silently shadow.
/// Registry::load_library calls it for every sampler it registers.
GENFW_API void check_sampler_options(const ComponentInfo& info);

class GENFW_API Registry {
 public:
  /// Loads one library (by its real path, symlinks resolved). Refuses (genfw::Error
  /// naming the file): unless allow_insecure, a file with a path component owned
  /// by another user than root or us, or writable by group or others (sticky
  /// folders such as /tmp excepted), the rule of sudo and ssh; a missing entry
  /// point, another ABI or LibTorch version, a component name already taken.
  void load_library(const std::string& path);
  /// Loads every *.so in `dir` (sorted by name). A missing folder is an error.
  void load_directory(const std::string& dir);
  /// The default search path: the built-in plugins (builtin_plugin_dir()),
  /// `extra` folders, then GENFW_PLUGIN_PATH (colon-separated). Folders that
  /// do not exist are skipped except the explicit `extra` ones. A component of
  /// an `extra` or GENFW_PLUGIN_PATH folder replaces the built-in (installed) one
  /// of the same name and kind, with a note on stderr: a development build of an
  /// installed plugin is tried without uninstalling it.
  void load_search_path(const std::vector<std::string>& extra);

  /// Looks up a component; an unknown name lists the names of that kind.
  const ComponentInfo& find(const std::string& name, Kind kind) const;
  const ComponentInfo* try_find(const std::string& name, Kind kind) const;
  std::vector<const ComponentInfo*> components() const;

  /// Creates a component and checks that it is of the interface T.
  template <typename T>
  std::unique_ptr<T> create(const std::string& name, Kind kind, const Options& options,
                            const BuildContext& context) const {
    std::unique_ptr<Component> made = create_component(find(name, kind), options, context);
    T* typed = dynamic_cast<T*>(made.get());
    GENFW_CHECK(typed != nullptr, kind_name(kind), " '", name, "' from ", find(name, kind).library,
                " does not implement the ", kind_name(kind), " interface");
    made.release();
    return std::unique_ptr<T>(typed);
  }

  bool allow_insecure = false;  ///< load from paths other users could change

  /// Where the build tree puts built-in plugins (compiled in).
  static std::string build_plugin_dir();
  /// Folder of plugins installed beside the host library: <libdir>/genfw/plugins.
  static std::string installed_plugin_dir();
  /// The built-in plugins of this libgenfw: the installed folder when it
  /// exists (an installed SDK), else the build tree's.
  static std::string builtin_plugin_dir();

 private:
  std::unique_ptr<Component> create_component(const ComponentInfo& info, const Options& options,
                                              const BuildContext& context) const;
  std::vector<ComponentInfo> components_;
  std::string builtin_dir_;  ///< whose components a plugin path may replace
};

/// A failure of the framework's own services met inside a plugin call, e.g. a
/// data-parallel all-reduce that failed because another rank died:
/// call_plugin passes it on as it is instead of blaming the plugin.
class GENFW_API FrameworkFailure : public Error {
 public:
  explicit FrameworkFailure(const std::string& message);
  ~FrameworkFailure() override;
};

/// `message` without a leading "sampler 'x'" (and the ": " after it) that its caller names already.
GENFW_API std::string without_prefix(const std::string& message, const std::string& prefix);

/// Runs `call` and re-throws any exception with the plugin and call named:
/// "sampler 'langevin' (libsamplers.so) failed in sample(): <what>".
template <typename Call>
auto call_plugin(const ComponentInfo& info, const char* what, Call&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const Interrupted&) {
    throw;  // a requested stop, not the plugin's failure
  } catch (const FrameworkFailure&) {
    throw;  // nor is the network's
  } catch (const std::exception& e) {
    const std::string component = detail::concat(kind_name(info.kind), " '", info.name, "'");
    const std::string named = detail::concat(component, " (", info.library, ") failed in ");
    // A call nested in another of the same component's has named it already.
    const std::string message = message_of(e);  // a LibTorch error without its C++ backtrace
    if (message.rfind(named, 0) == 0) throw Error(message);
    throw Error(named + what + ": " + without_prefix(message, component) + out_of_memory_remedy(message, info.kind));
  }
}

}  // namespace genfw
