// The artefact cache's one format (genfw/artefact_cache.hpp): entries, their
// lock, their sidecar and its payload digest.
#include "genfw/artefact_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>

#include "genfw/error.hpp"
#include "genfw/sha256.hpp"
#include "genfw/version.hpp"

namespace genfw {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDigestField = "payload_sha256 ";

fs::path sidecar_of(const fs::path& payload) {
  fs::path sidecar = payload;
  return sidecar.replace_extension(".txt");
}

struct Sidecar {
  std::string key, payload_sha256;
};

Sidecar read_sidecar(const fs::path& file) {
  Sidecar sidecar;
  std::ifstream in(file);
  std::getline(in, sidecar.key);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(kDigestField, 0) == 0) sidecar.payload_sha256 = line.substr(std::strlen(kDigestField));
  }
  return sidecar;
}

// Why the payload at `payload` must not be used, or "" when it matches its sidecar.
std::string problem_of(const fs::path& payload) {
  const fs::path sidecar = sidecar_of(payload);
  if (!fs::exists(sidecar)) return "has no sidecar " + sidecar.string() + " (what made it is unknown)";
  const std::string recorded = read_sidecar(sidecar).payload_sha256;
  if (recorded.empty()) return "has no payload digest in its sidecar " + sidecar.string() + " (an older genfw wrote it)";
  const std::string actual = sha256_of_file(payload.string());
  if (actual != recorded) {
    return "is damaged: its SHA-256 is " + actual + ", its sidecar " + sidecar.string() + " records " + recorded;
  }
  return "";
}

}  // namespace

CacheKey::CacheKey(const std::string& kind) : kind_(kind) {
  const auto& kinds = ArtefactCache::kinds();
  GENFW_CHECK(std::find(kinds.begin(), kinds.end(), kind) != kinds.end(), "artefact cache: unknown kind '", kind,
              "' (ArtefactCache::kinds() lists those `runner cache` knows)");
  // The code that computes and serializes an entry is part of what made it.
  add("genfw", GENFW_VERSION_STRING).add("torch", GENFW_TORCH_VERSION_STRING);
}

CacheKey& CacheKey::add(const std::string& name, const std::string& value) {
  text_ += (text_.empty() ? "" : "|") + name + "=" + value;
  return *this;
}

CacheKey& CacheKey::add(const std::string& name, int64_t value) { return add(name, std::to_string(value)); }

CachedArtefact::CachedArtefact(const std::string& cache_dir, const std::string& label, const CacheKey& key) {
  if (cache_dir.empty()) return;
  const fs::path dir = fs::path(cache_dir) / key.kind();
  fs::create_directories(dir);
  const std::string stem = (dir / (label + "-" + sha256_hex(key.text()).substr(0, 32))).string();
  path_ = stem + ".pt";
  sidecar_path_ = stem + ".txt";
  key_text_ = key.text();
  lock_ = ::open((stem + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  GENFW_CHECK(lock_ >= 0, "artefact cache: cannot open ", stem, ".lock: ", std::strerror(errno));
  if (::flock(lock_, LOCK_EX | LOCK_NB) != 0) {
    std::cerr << "artefact cache: another runner is computing " << path_ << "; waiting for it" << std::endl;
    while (::flock(lock_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
}

CachedArtefact::~CachedArtefact() {
  if (lock_ >= 0) ::close(lock_);  // releases the flock
}

bool CachedArtefact::cached() {
  if (path_.empty() || !fs::exists(path_)) return false;
  const std::string problem = problem_of(path_);
  if (problem.empty()) return true;
  // Held under the lock: no other process reads it meanwhile.
  std::cerr << "artefact cache: " << path_ << " " << problem << "; computing it again" << std::endl;
  fs::remove(path_);
  fs::remove(sidecar_path_);
  return false;
}

void CachedArtefact::load(torch::serialize::InputArchive& archive) const {
  try {
    archive.load_from(path_);
  } catch (const c10::Error& e) {
    const std::string cache_dir = fs::path(path_).parent_path().parent_path().string();
    throw Error("artefact cache: cannot read " + path_ + " (its digest matches its sidecar, so another LibTorch or "
                "genfw may have written it): " + e.what_without_backtrace() + "; remove the cache's entries with "
                "`runner cache clear --cache-dir " + cache_dir + "` and run again");
  }
}

void CachedArtefact::save(torch::serialize::OutputArchive& archive) {
  if (path_.empty()) return;
  const std::string suffix = ".partial." + std::to_string(::getpid());
  fs::create_directories(fs::path(path_).parent_path());  // an older genfw's `cache clear` may have removed it
  archive.save_to(path_ + suffix);
  std::ofstream(sidecar_path_ + suffix) << key_text_ << "\n" << kDigestField << sha256_of_file(path_ + suffix) << "\n";
  // The sidecar first: a payload is never there without the digest it must match.
  fs::rename(sidecar_path_ + suffix, sidecar_path_);
  fs::rename(path_ + suffix, path_);
}

const std::vector<std::string>& ArtefactCache::kinds() {
  static const std::vector<std::string> kinds{"metric_extractors", "metric_reference"};
  return kinds;
}

std::vector<CacheListing> ArtefactCache::list() const {
  std::vector<CacheListing> entries;
  for (const std::string& kind : kinds()) {
    const fs::path dir = fs::path(dir_) / kind;
    if (!fs::is_directory(dir)) continue;
    for (const auto& item : fs::directory_iterator(dir)) {
      if (item.path().extension() != ".pt" || !item.is_regular_file()) continue;
      entries.push_back({item.path().string(), kind, read_sidecar(sidecar_of(item.path())).key, item.file_size(),
                         problem_of(item.path())});
    }
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return entries;
}

namespace {
// The entry a file of the cache belongs to: its name without ".partial.PID" and without .pt, .txt or .lock.
std::string entry_stem(std::string name) {
  name = name.substr(0, name.find(".partial."));
  for (const char* suffix : {".pt", ".txt", ".lock"}) {
    const size_t length = std::strlen(suffix);
    if (name.size() > length && name.compare(name.size() - length, length, suffix) == 0) return name.substr(0, name.size() - length);
  }
  return name;
}
}  // namespace

ArtefactCache::Cleared ArtefactCache::clear() const {
  Cleared cleared;
  for (const std::string& kind : kinds()) {
    const fs::path dir = fs::path(dir_) / kind;
    if (!fs::is_directory(dir)) continue;
    std::map<std::string, std::vector<fs::path>> files_of_entry;  // by stem: payload, sidecar, lock, partials
    for (const auto& item : fs::directory_iterator(dir)) {
      files_of_entry[entry_stem(item.path().filename().string())].push_back(item.path());
    }
    for (const auto& [stem, files] : files_of_entry) {
      // An entry a runner is computing keeps its lock: removing it would fail that run after its training.
      const int lock = ::open((dir / (stem + ".lock")).c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
      if (lock >= 0 && ::flock(lock, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock);
        ++cleared.in_use;
        continue;
      }
      for (const auto& file : files) cleared.removed += fs::remove(file) && file.extension() == ".pt";
      fs::remove(dir / (stem + ".lock"));
      if (lock >= 0) ::close(lock);
    }
  }
  return cleared;
}

}  // namespace genfw
