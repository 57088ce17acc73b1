#pragma once
// Shared by the fuzz targets: a scratch folder per process, and the rule that
// a genfw::Error is the expected answer to bad input while anything else
// (another exception, a crash, a sanitizer report) is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "genfw/error.hpp"
#include "genfw/registry.hpp"

namespace genfw_fuzz {

inline std::filesystem::path& dir_for_cleanup() {
  static std::filesystem::path path;
  return path;
}

/// A folder of this process for the files a target writes its input to.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() / ("genfw-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    std::filesystem::permissions(path, std::filesystem::perms::group_write | std::filesystem::perms::others_write,
                                 std::filesystem::perm_options::remove);
    std::atexit([] { std::filesystem::remove_all(dir_for_cleanup()); });
    dir_for_cleanup() = path;
    return path;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
}

/// The plugins of the target, loaded once per process from the built plugin folder:
/// the library `file` in it, or every plugin there when `file` is empty. Targets call
/// it from LLVMFuzzerInitialize too, so libFuzzer counts the plugins' coverage from
/// the first input.
inline const genfw::Registry& plugins(const std::string& file = "") {
  static const genfw::Registry loaded = [&] {
    genfw::Registry registry;
    if (file.empty()) {
      registry.load_directory(GENFW_FUZZ_PLUGIN_DIR);
    } else {
      registry.load_library(std::string(GENFW_FUZZ_PLUGIN_DIR) + "/" + file);
    }
    return registry;
  }();
  return loaded;
}

/// Runs `body` on one input: genfw::Error is a clean refusal; any other
/// exception escaping genfw is a finding and aborts, so the fuzzer keeps the input.
template <typename Body>
void expect_clean(Body body) {
  try {
    body();
  } catch (const genfw::Error&) {
  } catch (const std::exception& e) {
    std::cerr << "finding: an exception other than genfw::Error escaped: " << e.what() << "\n";
    std::abort();
  }
}

}  // namespace genfw_fuzz
