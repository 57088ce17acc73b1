// `runner compare`: one table across run files.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <iostream>
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

// A row crosses the pipe from the reading child as length-prefixed strings.
void put(std::string& out, const std::string& text) {
  out += std::to_string(text.size()) + ':' + text;
}

std::string take(const std::string& in, size_t& at) {
  size_t colon = in.find(':', at);
  GENFW_CHECK(colon != std::string::npos, "compare: malformed answer from the reading process");
  size_t length = std::stoul(in.substr(at, colon - at));
  GENFW_CHECK(colon + 1 + length <= in.size(), "compare: malformed answer from the reading process");
  at = colon + 1 + length;
  return in.substr(colon + 1, length);
}

std::string encode(const RunRow& row) {
  std::string out;
  put(out, std::to_string(row.cells.size()));
  for (const auto& [key, value] : row.cells) put(out, key), put(out, value);
  put(out, std::to_string(row.provenance.size()));
  for (const auto& [metric, entries] : row.provenance) {
    put(out, metric);
    put(out, std::to_string(entries.size()));
    for (const auto& [key, value] : entries) put(out, key), put(out, value);
  }
  return out;
}

RunRow decode(const std::string& in) {
  RunRow row;
  size_t at = 0;
  for (size_t n = std::stoul(take(in, at)); n > 0; --n) {
    std::string key = take(in, at);
    row.cells[key] = take(in, at);
  }
  for (size_t n = std::stoul(take(in, at)); n > 0; --n) {
    auto& entries = row.provenance[take(in, at)];
    for (size_t m = std::stoul(take(in, at)); m > 0; --m) {
      std::string key = take(in, at);
      entries[key] = take(in, at);
    }
  }
  return row;
}

// libhdf5 may crash or loop forever on a corrupt file (fuzz/findings/: a
// SIGSEGV in H5A__close, an endless H5HG_read), so each run file is read in a
// child process: whatever the file does to the library ends in an error naming it.
// GENFW_COMPARE_SECONDS_PER_FILE overrides the time limit (default 60 s; the fuzz smoke test uses 5).
RunRow read_row_isolated(const std::string& file) {
  const char* limit = std::getenv("GENFW_COMPARE_SECONDS_PER_FILE");
  const int kSecondsPerFile = limit && std::atoi(limit) > 0 ? std::atoi(limit) : 60;
  int channel[2];
  GENFW_CHECK(::pipe(channel) == 0, "compare: cannot create a pipe: ", std::strerror(errno));
  std::cout.flush();
  std::cerr.flush();
  pid_t child = ::fork();
  GENFW_CHECK(child >= 0, "compare: cannot fork to read ", file, ": ", std::strerror(errno));
  if (child == 0) {
    ::close(channel[0]);
    std::string answer;
    try {
      answer = "R" + encode(read_row(file));
    } catch (const std::exception& e) {
      answer = std::string("E") + e.what();
    }
    for (size_t done = 0; done < answer.size();) {
      ssize_t wrote = ::write(channel[1], answer.data() + done, answer.size() - done);
      if (wrote <= 0) break;
      done += size_t(wrote);
    }
    ::_exit(0);  // no atexit handlers or static destructors of the parent's state
  }
  ::close(channel[1]);
  std::string answer;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kSecondsPerFile);
  for (char buffer[65536];;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd ready{channel[0], POLLIN, 0};
    int polled = left.count() > 0 ? ::poll(&ready, 1, int(left.count())) : 0;
    if (polled < 0 && errno == EINTR) continue;
    if (polled == 0) {
      timed_out = true;
      ::kill(child, SIGKILL);
      break;
    }
    ssize_t got = ::read(channel[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    answer.append(buffer, size_t(got));
  }
  ::close(channel[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  GENFW_CHECK(!timed_out, "run file ", file, ": reading it took more than ", kSecondsPerFile,
              " s; the HDF5 library is stuck on it: the file is corrupt");
  if (WIFSIGNALED(status)) {
    throw Error(detail::concat("run file ", file, ": the HDF5 library crashed reading it (signal ", WTERMSIG(status),
                               ", ", ::strsignal(WTERMSIG(status)), "): the file is corrupt"));
  }
  GENFW_CHECK(!answer.empty() && WIFEXITED(status) && WEXITSTATUS(status) == 0, "run file ", file,
              ": reading it failed inside the HDF5 library (exit status ", WEXITSTATUS(status), "): the file is corrupt");
  if (answer[0] == 'E') throw Error(answer.substr(1));
  return decode(answer.substr(1));
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

void write_comparison(const std::vector<std::string>& all_run_files, TableFormat format, bool force,
                      std::ostream& out, bool include_unfinished) {
  GENFW_CHECK(!all_run_files.empty(), "compare needs at least one run file");
  std::vector<RunRow> rows;
  std::vector<std::string> run_files, left_out;
  for (const auto& file : all_run_files) {
    RunRow row = read_row_isolated(file);
    if (!include_unfinished && row.cells["status"] != "completed") {
      left_out.push_back(file + " (" + (row.cells["status"].empty() ? "no status" : row.cells["status"]) + ")");
      continue;
    }
    rows.push_back(std::move(row));
    run_files.push_back(file);
  }
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
  std::vector<std::string> columns{"experiment", "dataset", "model", "objective", "sampler", "status",
                                   "parameters", "train steps", "train s", "NFE", "samples/s"};
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
    for (size_t i = 0; i < columns.size(); ++i) out << (i < 7 ? " --- |" : " ---: |");
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
  if (!left_out.empty()) {
    out << "\nleft out, not completed (runner compare --all shows them):\n";
    for (const auto& file : left_out) out << "  " << file << "\n";
  }
}

}  // namespace genfw
