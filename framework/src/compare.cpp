// `runner compare`: one table across run files.
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <ostream>
#include <set>
#include <sstream>

#include "genfw/run.hpp"
#include "genfw/run_log.hpp"

namespace genfw {

namespace {

struct RunRow {
  std::map<std::string, std::string> cells;
  std::map<std::string, std::map<std::string, std::string>> provenance;  // metric value → provenance
};

std::string number(double value, int precision = 4) {
  std::ostringstream out;
  out << std::setprecision(precision) << value;
  return out.str();
}

// `descendants` are the runs whose 'parent' led here: a run file edited or
// overwritten into its own ancestor must end in an error, not endless recursion.
RunRow read_row(const std::string& file, std::vector<std::string> descendants = {}) {
  const std::string canonical = std::filesystem::weakly_canonical(file).string();
  if (std::find(descendants.begin(), descendants.end(), canonical) != descendants.end()) {
    std::string chain;
    for (const auto& run : descendants) chain += run + " -> ";
    throw Error("run file " + descendants.front() + ": its 'parent' attributes form a cycle: " + chain + canonical +
                "; a run file was overwritten or its parent attribute edited");
  }
  descendants.push_back(canonical);
  RunLog log = RunLog::open(file, false);
  RunRow row;
  auto root = log.attributes("/");
  for (const char* key : {"experiment", "dataset", "model", "objective", "sampler", "status"}) row.cells[key] = root[key];
  row.cells["parameters"] = root["num_parameters"];
  auto timing = [&](const std::string& key, int precision) {
    return log.exists("/timing/" + key) ? number(log.read_scalar("/timing/" + key), precision) : "";
  };
  row.cells["train steps"] = timing("train_steps", 10);
  row.cells["train s"] = timing("train_seconds", 4);
  // A run that sampled an earlier run's weights (`runner sample`, a sampler sweep)
  // shows the training those weights came from.
  const std::string parent = root["parent"];
  if (!parent.empty() && row.cells["train steps"].empty() && std::filesystem::exists(parent)) {
    RunRow trained = read_row(parent, descendants);
    for (const char* key : {"objective", "train steps", "train s"}) row.cells[key] = trained.cells[key];
  }
  row.cells["NFE"] = timing("nfe", 6);
  row.cells["samples/s"] = timing("samples_per_second", 4);
  if (log.exists("/metrics")) {
    for (const auto& name : log.children("/metrics")) {
      auto rows = log.read_metric(name);
      if (rows.empty()) continue;
      row.cells["metric:" + name] = number(rows.back().value, 5);
      for (const auto& [key, value] : log.attributes("/metrics/" + name)) {
        if (key.rfind("provenance.", 0) == 0) row.provenance[name][key.substr(11)] = value;
      }
    }
  }
  return row;
}

// Provenance keys that describe the estimate itself, not its comparability. The
// estimator is one: test NLL is exact for a flow and a bound for a VAE or a DDPM,
// and papers tabulate them side by side; the table names each run's estimator.
bool comparable_key(const std::string& key) {
  return key != "num_samples" && key != "sample_count" && key != "samples" && key != "estimator";
}

// The metric that `name` is the spread of ("fid" for "fid_std"/"fid_sem"), or "".
std::string spread_of(const std::string& name, const std::set<std::string>& metrics) {
  for (const std::string suffix : {"_std", "_sem"}) {
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      std::string base = name.substr(0, name.size() - suffix.size());
      if (metrics.count(base)) return base;
    }
  }
  return "";
}

void merge_spreads(std::vector<RunRow>& rows, const std::set<std::string>& metrics) {
  for (const auto& metric : metrics) {
    std::string base = spread_of(metric, metrics);
    if (base.empty()) continue;
    for (auto& row : rows) {
      auto spread = row.cells.find("metric:" + metric);
      auto value = row.cells.find("metric:" + base);
      if (spread != row.cells.end() && value != row.cells.end()) {
        value->second += " ± " + number(std::stod(spread->second), 2);
      }
    }
  }
}

// "metric: estimator per run" lines for the columns whose runs used different estimators.
std::vector<std::string> estimator_notes(const std::vector<RunRow>& rows, const std::set<std::string>& metrics) {
  std::vector<std::string> notes;
  for (const auto& metric : metrics) {
    if (!spread_of(metric, metrics).empty()) continue;  // its value's note covers it
    std::set<std::string> distinct;
    std::string listing;
    for (const auto& row : rows) {
      auto it = row.provenance.find(metric);
      if (it == row.provenance.end() || !it->second.count("estimator")) continue;
      distinct.insert(it->second.at("estimator"));
      listing += "\n  " + row.cells.at("experiment") + ": " + it->second.at("estimator");
    }
    if (distinct.size() > 1) notes.push_back(metric + " estimators:" + listing);
  }
  return notes;
}

}  // namespace

void write_comparison(const std::vector<std::string>& run_files, TableFormat format, bool force, std::ostream& out) {
  GENFW_CHECK(!run_files.empty(), "compare needs at least one run file");
  std::vector<RunRow> rows;
  for (const auto& file : run_files) rows.push_back(read_row(file));
  std::set<std::string> metric_names;
  for (const auto& row : rows) {
    for (const auto& [key, _] : row.cells) {
      if (key.rfind("metric:", 0) == 0) metric_names.insert(key.substr(7));
    }
  }
  std::vector<std::string> notes;
  for (const auto& metric : metric_names) {
    const std::map<std::string, std::string>* reference = nullptr;
    size_t reference_index = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      auto it = rows[i].provenance.find(metric);
      if (it == rows[i].provenance.end()) continue;
      if (reference == nullptr) {
        reference = &it->second;
        reference_index = i;
        continue;
      }
      for (const auto& [key, value] : it->second) {
        if (!comparable_key(key)) continue;
        auto ref = reference->find(key);
        std::string ref_value = ref == reference->end() ? "(absent)" : ref->second;
        if (ref_value == value) continue;
        std::string why = detail::concat("metric '", metric, "': ", run_files[reference_index], " and ", run_files[i],
                                         " differ in ", key, " (", ref_value, " vs ", value, ")");
        GENFW_CHECK(force, why, "; their values are not comparable. Pass --force to show them in one column anyway");
        notes.push_back(why);
      }
    }
  }
  std::vector<std::string> columns{"experiment", "dataset", "model", "objective", "sampler", "parameters",
                                   "train steps", "train s", "NFE", "samples/s"};
  for (const auto& metric : metric_names) {
    // Markdown shows "value ± spread" in one cell; CSV keeps the spread's own column.
    if (format == TableFormat::markdown && !spread_of(metric, metric_names).empty()) continue;
    columns.push_back("metric:" + metric);
  }
  if (format == TableFormat::markdown) merge_spreads(rows, metric_names);
  auto header = [](const std::string& c) { return c.rfind("metric:", 0) == 0 ? c.substr(7) : c; };
  if (format == TableFormat::csv) {
    for (size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << header(columns[i]);
    out << "\n";
    for (const auto& row : rows) {
      for (size_t i = 0; i < columns.size(); ++i) {
        auto it = row.cells.find(columns[i]);
        out << (i ? "," : "") << (it == row.cells.end() ? "" : it->second);
      }
      out << "\n";
    }
  } else {
    out << "|";
    for (const auto& c : columns) out << " " << header(c) << " |";
    out << "\n|";
    for (size_t i = 0; i < columns.size(); ++i) out << (i < 6 ? " --- |" : " ---: |");
    out << "\n";
    for (const auto& row : rows) {
      out << "|";
      for (const auto& c : columns) {
        auto it = row.cells.find(c);
        out << " " << (it == row.cells.end() ? "" : it->second) << " |";
      }
      out << "\n";
    }
  }
  for (const auto& note : estimator_notes(rows, metric_names)) out << "\n" << note << "\n";
  for (const auto& note : notes) out << "\nwarning (--force): " << note << "\n";
}

}  // namespace genfw
