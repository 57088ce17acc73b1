// Fuzz target: TOML text → validated experiment config (the path every
// experiment file, --set and stored /config takes), with every built plugin's
// schema. Oracle beyond "no crash": a config that loads must write a resolved
// TOML that loads back to the same resolved TOML.
#include "fuzz_support.hpp"
#include "genfw/config.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  genfw_fuzz::plugins();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const genfw::Registry& plugins = genfw_fuzz::plugins();
  const std::string text(reinterpret_cast<const char*>(data), size);
  genfw_fuzz::expect_clean([&] {
    genfw::ExperimentConfig config = genfw::load_experiment_text(text, "fuzz.toml", {}, plugins);
    const std::string resolved = config.resolved_toml();
    genfw::ExperimentConfig again;
    try {
      again = genfw::load_experiment_text(resolved, "resolved.toml", {}, plugins);
    } catch (const genfw::Error& e) {
      std::cerr << "finding: the resolved config does not load back: " << e.what() << "\n" << resolved;
      std::abort();
    }
    if (again.resolved_toml() != resolved) {
      std::cerr << "finding: the resolved config changes when loaded back:\n" << resolved << "\n--- became\n"
                << again.resolved_toml();
      std::abort();
    }
    try {
      genfw::check_composition(config, plugins);
    } catch (const genfw::Error&) {
    }
  });
  return 0;
}
