#pragma once
/// The plugin boundary. A library exports three C entry points (written by
/// GENFW_PLUGIN): its ABI version, the LibTorch version it was built with, and
/// its manifest. The loader checks both versions before calling the manifest.
///
///   GENFW_PLUGIN(manifest) {
///     manifest.add<Langevin>("langevin", Kind::sampler, "Langevin dynamics at one σ")
///         .require(Capability::score);
///   }
///
/// A component class T provides `static Schema schema()` and a constructor
/// `T(const Options&, const BuildContext&)`. A model's capabilities are not
/// listed: they are the capability interfaces T derives from (capabilities_of).
#include <functional>
#include <memory>
#include <type_traits>
#include <string>
#include <vector>

#include "genfw/component.hpp"
#include "genfw/model.hpp"
#include "genfw/options.hpp"
#include "genfw/version.hpp"

namespace genfw {

using Factory = std::function<std::unique_ptr<Component>(const Options&, const BuildContext&)>;

struct GENFW_API ComponentInfo {
  std::string name;
  Kind kind = Kind::model;
  std::string summary;                                ///< one line, cites the paper
  std::string version = "1.0.0";
  std::vector<Capability> offers;                     ///< models: the interfaces they derive from
  std::vector<std::vector<Capability>> requires_all;  ///< each entry: any one of these
  Schema schema;
  Factory factory;
  std::string library;                                ///< filled by the loader

  /// Needs a model offering (or deriving) one of `any_of`.
  ComponentInfo& require(std::vector<Capability> any_of);
  ComponentInfo& require(Capability capability) { return require(std::vector<Capability>{capability}); }
  ComponentInfo& with_version(std::string v);
};

class GENFW_API Manifest {
 public:
  template <typename T>
  ComponentInfo& add(const std::string& name, Kind kind, const std::string& summary) {
    ComponentInfo info;
    info.name = name;
    info.kind = kind;
    info.summary = summary;
    info.schema = T::schema();
    if constexpr (std::is_base_of_v<Model, T>) info.offers = capabilities_of<T>();
    info.factory = [](const Options& options, const BuildContext& context) -> std::unique_ptr<Component> {
      return std::make_unique<T>(options, context);
    };
    components.push_back(std::move(info));
    return components.back();
  }
  std::vector<ComponentInfo> components;
};

}  // namespace genfw

#define GENFW_PLUGIN(manifest)                                                         \
  extern "C" GENFW_API int genfw_plugin_abi_version() { return GENFW_ABI_VERSION; }      \
  extern "C" GENFW_API const char* genfw_plugin_torch_version() {                       \
    return GENFW_TORCH_VERSION_STRING;                                                  \
  }                                                                                     \
  extern "C" GENFW_API void genfw_plugin_manifest(::genfw::Manifest& manifest)
