#pragma once
// Shared helpers of the framework tests.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "genfw/registry.hpp"

namespace test_support {

namespace fs = std::filesystem;

/// A fresh folder under the system temp dir, removed at destruction.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("genfw-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
    fs::permissions(path, fs::perms::others_write, fs::perm_options::remove);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

inline std::string fixture_dir(const std::string& name) { return std::string(GENFW_TEST_FIXTURE_DIR) + "/" + name; }

/// Registry holding only the good fixture components.
inline const genfw::Registry& fixtures() {
  static const genfw::Registry registry = [] {
    genfw::Registry r;
    r.load_directory(fixture_dir("good"));
    return r;
  }();
  return registry;
}

/// The message of the genfw::Error `body` throws (fails the test if none).
inline std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const genfw::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a genfw::Error";
  return "";
}

}  // namespace test_support

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)
