// The user's artefact cache: where it is, its entries (keyed by their inputs,
// checked against their digest) and `runner cache list|clear`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "genfw/artefact_cache.hpp"
#include "genfw/cache.hpp"
#include "genfw/error.hpp"
#include "genfw/sha256.hpp"
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

// An entry written through the SDK's cache (what the feature extractor does)
// and found again by the same key: the sidecar names what made it and records
// the payload's digest; `runner cache list` shows it; another input is another entry.
TEST(Cache, AnEntryIsFoundByTheInputsThatMadeItAndListedWithThem) {
  TempDir dir;
  const genfw::CacheKey key = genfw::CacheKey("metric_reference").add("split", "test").add("count", 3);
  {
    genfw::CachedArtefact entry(dir.path.string(), "reference-toy2d-test", key);
    ASSERT_FALSE(entry.cached());
    torch::serialize::OutputArchive archive;
    archive.write("mean", torch::tensor({1.0, 2.0}, torch::kFloat64));
    entry.save(archive);
  }
  genfw::CachedArtefact again(dir.path.string(), "reference-toy2d-test", key);
  ASSERT_TRUE(again.cached());
  torch::serialize::InputArchive archive;
  again.load(archive);
  torch::Tensor mean;
  archive.read("mean", mean);
  EXPECT_TRUE(torch::equal(mean, torch::tensor({1.0, 2.0}, torch::kFloat64)));
  EXPECT_CONTAINS(key.text(), "genfw=");  // the code's versions are inputs too
  EXPECT_CONTAINS(key.text(), "|split=test|count=3");
  const genfw::CacheKey other = genfw::CacheKey("metric_reference").add("split", "test").add("count", 4);
  EXPECT_FALSE(genfw::CachedArtefact(dir.path.string(), "reference-toy2d-test", other).cached());

  auto entries = genfw::ArtefactCache(dir.path.string()).list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, again.path());
  EXPECT_EQ(entries[0].kind, "metric_reference");
  EXPECT_EQ(entries[0].description, key.text());
  EXPECT_EQ(entries[0].problem, "");
  EXPECT_EQ(entries[0].bytes, fs::file_size(again.path()));
  std::ostringstream listing;
  genfw::print_cache(dir.path.string(), listing);
  EXPECT_CONTAINS(listing.str(), again.path());
  EXPECT_CONTAINS(listing.str(), "1 entries");
  EXPECT_EQ(listing.str().find("NOT USED"), std::string::npos);
  EXPECT_THROW(genfw::CacheKey("my_kind"), genfw::Error);  // a kind `runner cache` would not list
}

// A payload that no longer matches its sidecar's digest is listed as damaged,
// named when it is next needed, and computed again, never used.
TEST(Cache, ADamagedEntryIsNamedAndComputedAgain) {
  TempDir dir;
  const genfw::CacheKey key = genfw::CacheKey("metric_extractors").add("extractor", "classifier");
  std::string path;
  {
    genfw::CachedArtefact entry(dir.path.string(), "classifier-toy", key);
    torch::serialize::OutputArchive archive;
    archive.write("test_accuracy", torch::tensor(0.9, torch::kFloat64));
    entry.save(archive);
    path = entry.path();
  }
  std::fstream(path, std::ios::in | std::ios::out | std::ios::binary).write("X", 1);  // one byte changed
  auto entries = genfw::ArtefactCache(dir.path.string()).list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_CONTAINS(entries[0].problem, "is damaged");
  std::ostringstream listing;
  genfw::print_cache(dir.path.string(), listing);
  EXPECT_CONTAINS(listing.str(), "NOT USED");
  EXPECT_CONTAINS(listing.str(), "runner cache clear --cache-dir " + dir.path.string());

  genfw::CachedArtefact entry(dir.path.string(), "classifier-toy", key);
  testing::internal::CaptureStderr();
  const bool cached = entry.cached();
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(cached);
  EXPECT_CONTAINS(said, path);
  EXPECT_CONTAINS(said, "computing it again");
  EXPECT_FALSE(fs::exists(path));
}

// A payload whose digest matches but that torch cannot read (another writer's
// format) is refused, naming it and the command that removes it.
TEST(Cache, AnUnreadableEntryIsRefusedWithItsRemedy) {
  TempDir dir;
  const genfw::CacheKey key = genfw::CacheKey("metric_reference").add("split", "train");
  std::string path;
  {
    genfw::CachedArtefact entry(dir.path.string(), "reference-toy", key);
    torch::serialize::OutputArchive archive;
    archive.write("mean", torch::zeros({2}));
    entry.save(archive);
    path = entry.path();
  }
  std::ofstream(path, std::ios::trunc) << "not a torch archive";
  std::string sidecar = path.substr(0, path.size() - 3) + ".txt";
  std::ofstream(sidecar, std::ios::trunc) << key.text() << "\npayload_sha256 " << genfw::sha256_of_file(path) << "\n";
  genfw::CachedArtefact entry(dir.path.string(), "reference-toy", key);
  ASSERT_TRUE(entry.cached());
  torch::serialize::InputArchive archive;
  const std::string message = error_of([&] { entry.load(archive); });
  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "runner cache clear --cache-dir " + dir.path.string());
}

TEST(Cache, ClearRemovesEveryEntryWithItsSidecarAndLock) {
  TempDir dir;
  for (const char* label : {"a", "b"}) {
    genfw::CachedArtefact entry(dir.path.string(), label, genfw::CacheKey("metric_reference").add("label", label));
    torch::serialize::OutputArchive archive;
    archive.write("x", torch::zeros({1}));
    entry.save(archive);
  }
  EXPECT_EQ(genfw::ArtefactCache(dir.path.string()).list().size(), 2u);
  EXPECT_EQ(genfw::ArtefactCache(dir.path.string()).clear().removed, 2u);
  EXPECT_TRUE(fs::is_empty(dir / "metric_reference"));  // the folder stays: a runner may be creating an entry in it
  EXPECT_TRUE(genfw::ArtefactCache(dir.path.string()).list().empty());
}

// `runner cache clear` while a runner computes an entry: that entry (its lock held) is kept, so the
// run can still save it; the others go.
TEST(Cache, ClearKeepsAnEntryBeingComputed) {
  TempDir dir;
  {
    genfw::CachedArtefact done(dir.path.string(), "done", genfw::CacheKey("metric_reference").add("label", "done"));
    torch::serialize::OutputArchive archive;
    archive.write("x", torch::zeros({1}));
    done.save(archive);
  }
  genfw::CachedArtefact computing(dir.path.string(), "busy", genfw::CacheKey("metric_reference").add("label", "busy"));
  const auto cleared = genfw::ArtefactCache(dir.path.string()).clear();
  EXPECT_EQ(cleared.removed, 1u);
  EXPECT_EQ(cleared.in_use, 1u);
  torch::serialize::OutputArchive archive;
  archive.write("x", torch::ones({1}));
  computing.save(archive);
  const auto entries = genfw::ArtefactCache(dir.path.string()).list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_CONTAINS(entries[0].path, "busy");
  EXPECT_TRUE(entries[0].problem.empty()) << entries[0].problem;
}
