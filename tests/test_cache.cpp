// The user's cache folder: where it is, and `runner cache list|clear`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "genfw/cache.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

// Sets an environment variable for one scope, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~ScopedEnv() { old_.empty() ? ::unsetenv(name_) : ::setenv(name_, old_.c_str(), 1); }

 private:
  const char* name_;
  std::string old_;
};

}  // namespace

TEST(Cache, FolderPrecedence) {
  ScopedEnv home("HOME", "/home/u"), xdg("XDG_CACHE_HOME", nullptr), env("GENFW_CACHE_DIR", nullptr);
  EXPECT_EQ(genfw::resolve_cache_dir(""), "/home/u/.cache/genfw");
  {
    ScopedEnv set_xdg("XDG_CACHE_HOME", "/x");
    EXPECT_EQ(genfw::resolve_cache_dir(""), "/x/genfw");
    ScopedEnv set_env("GENFW_CACHE_DIR", "/g");
    EXPECT_EQ(genfw::resolve_cache_dir(""), "/g");
    EXPECT_EQ(genfw::resolve_cache_dir("/flag"), "/flag");
  }
  ScopedEnv no_home("HOME", nullptr);
  EXPECT_CONTAINS(error_of([] { genfw::resolve_cache_dir(""); }), "--cache-dir");
}

TEST(Cache, ListShowsWhatEachEntryWasComputedFromAndClearRemovesThem) {
  TempDir dir;
  fs::create_directories(dir / "metric_reference");
  std::ofstream(dir / "metric_reference/reference-toy2d-test-ab.pt") << "12345";
  std::ofstream(dir / "metric_reference/reference-toy2d-test-ab.txt") << "reference-v3|toy2d|test|1000|...\n";
  std::ofstream(dir / "metric_reference/reference-toy2d-test-ab.lock");
  auto entries = genfw::list_cache(dir.path.string());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].kind, "metric_reference");
  EXPECT_EQ(entries[0].bytes, 5u);
  EXPECT_EQ(entries[0].description, "reference-v3|toy2d|test|1000|...");
  std::ostringstream listing;
  genfw::print_cache(dir.path.string(), listing);
  EXPECT_CONTAINS(listing.str(), "reference-toy2d-test-ab.pt");
  EXPECT_CONTAINS(listing.str(), "1 entries, 5 bytes");
  EXPECT_EQ(genfw::clear_cache(dir.path.string()), 1u);
  EXPECT_FALSE(fs::exists(dir / "metric_reference"));
  EXPECT_TRUE(genfw::list_cache(dir.path.string()).empty());
}
