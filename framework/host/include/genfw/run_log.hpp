#pragma once
/// The HDF5 run file (layout documented in README.md, "The run file"):
///   /config                 resolved TOML text
///   /env/<key>              strings: framework, torch, compiler, threads, device, git, host, ...
///   /train/loss/<group>     float64 [rows, 3]: step, value, wall seconds
///   /train/record/<name>    same layout, extra scalars an objective records
///   /metrics/<value>        float64 [rows, 3]: value, step, wall seconds; attributes
///                           "metric" and "provenance.<key>" say how it was computed
///   /samples                float32 [N, C, H, W] or [N, D], data space
///   /timing/<key>           float64 scalars: train_seconds, sample_seconds, nfe, samples_per_second, ...
///   root attributes         experiment, dataset, model, objective, sampler, status, checkpoint, parent, ...
/// Every write is followed by a flush at the caller's pace (flush()); between
/// flushes nothing touches the file, so a killed run leaves the last flushed state.
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
  std::string attribute(const std::string& object_path, const std::string& name) const;  ///< "" if absent
  std::map<std::string, std::string> attributes(const std::string& object_path) const;

  /// Appends rows to /train/loss/<group> (or any [rows,3] series path).
  void append_series(const std::string& dataset_path, const std::vector<ScalarRow>& rows);
  std::vector<ScalarRow> read_series(const std::string& dataset_path) const;
  /// Drops rows with step >= `step` from every series under `group_path` (resume).
  void truncate_series(const std::string& group_path, int64_t step);
  /// Drops /metrics rows with step >= `step` (a resumed run computes them again).
  void truncate_metrics(int64_t step);

  void append_metric(const std::string& name, const MetricRow& row, const std::string& metric,
                     const std::map<std::string, std::string>& provenance);
  std::vector<MetricRow> read_metric(const std::string& name) const;

  void write_tensor(const std::string& dataset_path, const torch::Tensor& tensor);  ///< float32
  torch::Tensor read_tensor(const std::string& dataset_path) const;

  bool exists(const std::string& object_path) const;
  std::vector<std::string> children(const std::string& group_path) const;
  void flush();

  struct Impl;  ///< the HDF5 file (opaque)

 private:
  RunLog(std::unique_ptr<Impl> impl, std::string path);
  void truncate_rows(const std::string& group_path, size_t step_column, int64_t step);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace genfw
