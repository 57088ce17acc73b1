#pragma once
/// The cache of derived artefacts (docs/design.md, "One artefact cache"): the
/// in-domain classifier of FID/IS and reference feature statistics, shared by
/// every run of a user. One format, written by the SDK's feature extractor and
/// listed and cleared by `runner cache`, both through this file:
///   <cache_dir>/<kind>/<label>-<32 hex of SHA-256(key)>.pt     the payload (a torch archive)
///                                                     .txt    the sidecar: line 1 the key (what the
///                                                             entry was computed from), line 2
///                                                             "payload_sha256 <64 hex>"
///                                                     .lock   held while the entry is computed
/// A key is derived from the inputs that made the entry (digests of the data
/// read, the extractor's weights and settings, the split and count) and the code
/// that wrote it (framework and LibTorch versions), never from a tag to bump by hand.
/// A payload that does not match its sidecar's digest is never used.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

/// What an entry was computed from: named inputs in order, led by the code
/// versions that wrote it. Its text is the sidecar's first line.
class GENFW_API CacheKey {
 public:
  /// `kind`: the entry's sub-folder (one of ArtefactCache::kinds()).
  explicit CacheKey(const std::string& kind);
  CacheKey& add(const std::string& name, const std::string& value);
  CacheKey& add(const std::string& name, int64_t value);
  const std::string& kind() const { return kind_; }
  /// "name=value|name=value|...".
  const std::string& text() const { return text_; }

 private:
  std::string kind_, text_;
};

/// One entry of the cache, locked from construction to destruction: computed
/// by one process while any other that needs it waits, saved under a name of
/// this process and renamed, so no reader sees half a file.
class GENFW_API CachedArtefact {
 public:
  /// An empty `cache_dir` caches nothing (tests, library users without a folder).
  /// `label` starts the file name, for people; the key's digest ends it.
  CachedArtefact(const std::string& cache_dir, const std::string& label, const CacheKey& key);
  ~CachedArtefact();
  CachedArtefact(const CachedArtefact&) = delete;
  CachedArtefact& operator=(const CachedArtefact&) = delete;

  /// Whether a sound entry is there. A damaged one (its payload's SHA-256 is
  /// not the one its sidecar records, or it has no sidecar) is named on
  /// stderr and removed, so the caller computes it again.
  bool cached();
  /// Reads the payload; one that the digest accepts but torch cannot read is
  /// refused, naming it and the command that removes it.
  void load(torch::serialize::InputArchive& archive) const;
  /// Writes the payload and its sidecar (with the payload's digest).
  void save(torch::serialize::OutputArchive& archive);
  const std::string& path() const { return path_; }

 private:
  std::string path_, sidecar_path_, key_text_;
  int lock_ = -1;
};

/// An entry as `runner cache list` shows it.
struct CacheListing {
  std::string path;          ///< the payload (.pt)
  std::string kind;          ///< its sub-folder
  std::string description;   ///< the key it was computed from (sidecar line 1), "" if no sidecar
  uintmax_t bytes = 0;
  std::string problem;       ///< "" for a sound entry, else why it would not be used
};

/// The cache folder as a whole.
class GENFW_API ArtefactCache {
 public:
  /// The kinds of entry (sub-folders): metric_extractors, metric_reference.
  static const std::vector<std::string>& kinds();

  explicit ArtefactCache(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  /// Every entry, sorted by path, each checked against its sidecar's digest.
  std::vector<CacheListing> list() const;
  struct Cleared {
    size_t removed = 0;  ///< payloads removed
    size_t in_use = 0;   ///< entries kept: a runner holds their lock (it is computing them)
  };
  /// Removes every entry (payloads, sidecars, lock and partial files) but those a
  /// runner is computing now.
  Cleared clear() const;

 private:
  std::string dir_;
};

}  // namespace genfw
