#pragma once
/// The HDF5 run file (layout documented in README.md, "The run file"):
///   /config                 resolved TOML text
///   /env/<key>              strings: framework, torch, compiler, threads, device, git, host, ...
///   /train/loss/<group>     float64 [rows, 3]: step, value, wall seconds
///   /train/record/<name>    same layout, extra scalars an objective records
///   /metrics/<value>        same layout; attributes "metric" and "provenance.<key>"
///                           say how it was computed (numbers as int64/float64)
///   /eval/<value>           same layout: evaluations during training ([eval]); wall seconds are
///                           training seconds (evaluations excluded)
///   /eval_floor/<value>     the real-data floor at the evaluations' N (as /floor at the run's)
///   /samples                float32 [N, C, H, W] or [N, D], data space
///   /timing/<key>           float64 scalars: train_seconds, sample_seconds, nfe, samples_per_second, ...
///   root attributes         run_file_version (int64 2), experiment, dataset, model, objective, sampler,
///                           status, checkpoint, checkpoint_step (int64), num_parameters (int64), parent, ...
/// Every [rows, 3] dataset names its column order in its text attribute
/// "columns" ("step,value,wall_seconds"). Version-1 files (no run_file_version)
/// wrote /metrics rows as value, step, wall seconds, the oldest of them without
/// "columns"; the readers here take every file's own order.
/// Writes are followed by a flush at the caller's pace (flush()). Between
/// flushes no HDF5 handle is open: a killed run leaves the last flushed state,
/// and h5py or h5dump can read the file while the run goes on (the writer takes
/// no HDF5 file lock; one writer per file is enforced by a lock of its own).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

struct ScalarRow {
  int64_t step;
  double value;
  double wall_seconds;
};

struct MetricRow {
  double value;
  int64_t step;
  double wall_seconds;
};

class GENFW_API RunLog {
 public:
  /// Creates a run file; refuses to overwrite an existing file.
  static RunLog create(const std::string& path);
  /// Opens an existing run file for appending (resume) or reading.
  static RunLog open(const std::string& path, bool writable);
  /// A run file held in memory only (HDF5 core driver, no backing store): the
  /// data-parallel ranks other than 0 log into one and write nothing to disk.
  static RunLog create_in_memory(const std::string& name);
  RunLog(RunLog&&) noexcept;
  RunLog& operator=(RunLog&&) noexcept;
  ~RunLog();

  const std::string& path() const { return path_; }

  void write_string(const std::string& dataset_path, const std::string& text);
  std::string read_string(const std::string& dataset_path) const;
  void write_scalar(const std::string& dataset_path, double value);
  double read_scalar(const std::string& dataset_path) const;
  void set_attribute(const std::string& object_path, const std::string& name, const std::string& value);
  /// Numbers are stored as HDF5 int64 / float64 attributes (h5py reads them as numbers).
  void set_attribute(const std::string& object_path, const std::string& name, int64_t value);
  void set_attribute(const std::string& object_path, const std::string& name, double value);
  /// "" if absent; a numeric attribute as text (integers in decimal, reals in
  /// their shortest round-trip form), so old files with text attributes read the same.
  std::string attribute(const std::string& object_path, const std::string& name) const;
  std::map<std::string, std::string> attributes(const std::string& object_path) const;

  /// Appends rows to /train/loss/<group> (or any [rows,3] series path).
  void append_series(const std::string& dataset_path, const std::vector<ScalarRow>& rows);
  std::vector<ScalarRow> read_series(const std::string& dataset_path) const;
  /// Drops rows with step >= `step` from every series under `group_path` (resume).
  void truncate_series(const std::string& group_path, int64_t step);
  /// Drops /metrics rows with step >= `step` (a resumed run computes them again).
  void truncate_metrics(int64_t step);

  /// A metric value's row under `group` (/metrics; /eval for evaluations during training).
  void append_metric(const std::string& name, const MetricRow& row, const std::string& metric,
                     const std::map<std::string, std::string>& provenance, const std::string& group = "/metrics");
  std::vector<MetricRow> read_metric(const std::string& name) const;

  void write_tensor(const std::string& dataset_path, const torch::Tensor& tensor);  ///< float32
  torch::Tensor read_tensor(const std::string& dataset_path) const;

  bool exists(const std::string& object_path) const;
  std::vector<std::string> children(const std::string& group_path) const;
  void flush();

  struct Impl;  ///< the HDF5 file (opaque)

 private:
  RunLog(std::unique_ptr<Impl> impl, std::string path);
  void truncate_rows(const std::string& group_path, int64_t step);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace genfw
