// `runner compare`: one table across run files.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <filesystem>
#include <iomanip>
#include <ostream>
#include <set>
#include <sstream>

#include "genfw/config.hpp"
#include "genfw/run.hpp"
#include "genfw/run_file_guard.hpp"
#include "genfw/run_log.hpp"
#include "toml_text.hpp"

namespace genfw {

namespace {

// A run file as the table sees it. Cells hold text; numbers are kept in
// shortest round-trip form ("metric:NAME", "floor:NAME", timing) so that the
// table can aggregate them and CSV can show them exactly; "config:KEY" holds the
// stored config flattened (what seed groups and the sampler-options column use).
struct RunRow {
  std::map<std::string, std::string> cells;
  std::map<std::string, std::map<std::string, std::string>> provenance;  // metric value → provenance
};

std::string config_value(const toml::node& node) {
  if (auto real = node.as_floating_point()) return shortest_number(real->get());
  if (auto text = node.as_string()) return text->get();
  std::ostringstream out;
  node.visit([&](const auto& typed) { out << typed; });
  return out.str();
}

// "table.key" → value for every leaf; arrays of tables as "metrics[0].plugin".
void flatten_config(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : table) {
    const std::string path = prefix + std::string(key.str());
    if (auto child = node.as_table()) {
      flatten_config(*child, path + ".", out);
    } else if (auto array = node.as_array(); array && array->is_array_of_tables()) {
      for (size_t i = 0; i < array->size(); ++i) {
        flatten_config(*array->get(i)->as_table(), path + "[" + std::to_string(i) + "].", out);
      }
    } else {
      out[path] = config_value(node);
    }
  }
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
  auto timing = [&](const std::string& key) {
    return log.exists("/timing/" + key) ? shortest_number(log.read_scalar("/timing/" + key)) : "";
  };
  row.cells["train steps"] = timing("train_steps");
  row.cells["train s"] = timing("train_seconds");
  row.cells["eval s"] = timing("eval_seconds");  // evaluations during training, apart from training
  // A run that sampled an earlier run's weights (`runner sample`, a sampler sweep)
  // shows the training those weights came from.
  const std::string parent = root["parent"];
  if (!parent.empty() && row.cells["train steps"].empty() && std::filesystem::exists(parent)) {
    RunRow trained = read_row(parent, descendants);
    for (const char* key : {"objective", "train steps", "train s"}) row.cells[key] = trained.cells[key];
  }
  // The runs it used as frozen components (docs/design.md, "Runs as components") and what their training took.
  for (const auto& use : component_run_tables()) {
    const std::string component = root[use.attribute];
    if (component.empty()) continue;
    std::string summary = component + " (missing)";
    if (std::filesystem::exists(component)) {
      RunRow used = read_row(component, descendants);
      summary = used.cells["experiment"] + ", " + used.cells["model"];
      if (!used.cells["train steps"].empty()) {
        std::ostringstream seconds;
        seconds << std::setprecision(3) << std::stod(used.cells["train s"]);
        summary += ", " + used.cells["train steps"] + " steps in " + seconds.str() + " s";
      }
    }
    row.cells["component:" + use.table] = summary;
  }
  row.cells["NFE"] = timing("nfe");
  row.cells["samples/s"] = timing("samples_per_second");
  row.cells["N"] = timing("num_samples");
  if (log.exists("/metrics")) {
    for (const auto& name : log.children("/metrics")) {
      auto rows = log.read_metric(name);
      if (rows.empty()) continue;
      row.cells["metric:" + name] = shortest_number(rows.back().value);
      for (const auto& [key, value] : log.attributes("/metrics/" + name)) {
        if (key.rfind("provenance.", 0) == 0) row.provenance[name][key.substr(11)] = value;
      }
    }
  }
  if (log.exists("/floor")) {
    for (const auto& name : log.children("/floor")) {
      auto rows = log.read_series("/floor/" + name);
      if (rows.empty()) continue;
      row.cells["floor:" + name] = shortest_number(rows.back().value);
      row.cells["floor split"] = log.attribute("/floor/" + name, "split");
      row.cells["floor N"] = log.attribute("/floor/" + name, "count");
    }
  }
  if (log.exists("/env/plugins")) {  // which library made each component: sha256 (a rebuilt plugin differs)
    for (const auto& component : log.children("/env/plugins")) {
      const std::string text = log.read_string("/env/plugins/" + component);
      const auto at = text.rfind(" sha256 ");
      if (at != std::string::npos) row.cells["library:" + component] = text.substr(at + 8, 12);
    }
  }
  if (log.exists("/config")) {
    std::map<std::string, std::string> config;
    flatten_config(parse_toml_text(log.read_string("/config"), file + ":/config"), "", config);
    for (const auto& [key, value] : config) row.cells["config:" + key] = value;
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

// Each run file is read in a child process (genfw/run_file_guard.hpp): whatever
// a corrupt file does to the HDF5 library ends in an error naming it.
RunRow read_row_isolated(const std::string& file) {
  return decode(read_in_child_process(file, [&] { return encode(read_row(file)); }));
}

// Provenance keys that describe the estimate itself, not its comparability. The
// estimator is one: test NLL is exact for a flow and a bound for a VAE or a DDPM,
// and papers tabulate them side by side; the table names each run's estimator.
bool comparable_key(const std::string& key) {
  return key != "num_samples" && key != "sample_count" && key != "samples" && key != "estimator";
}

// "steps10" < "steps50" < "steps200": runs of digits compare as numbers, the rest as text.
bool natural_less(const std::string& a, const std::string& b) {
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t i_end = i, j_end = j;
      while (i_end < a.size() && digit(a[i_end])) ++i_end;
      while (j_end < b.size() && digit(b[j_end])) ++j_end;
      std::string x = a.substr(i, i_end - i), y = b.substr(j, j_end - j);
      x.erase(0, std::min(x.find_first_not_of('0'), x.size()));  // leading zeros do not count
      y.erase(0, std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = i_end, j = j_end;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

// "fid ↓", "nll_bpd (bits/dim) ↓": the direction and unit its metric declared
// (MetricResult::describe), from the first run that recorded them.
std::string metric_header(const std::string& metric, const std::vector<RunRow>& rows) {
  std::string header = metric;
  for (const auto& row : rows) {
    auto provenance = row.provenance.find(metric);
    if (provenance == row.provenance.end()) continue;
    const auto& entries = provenance->second;
    auto unit = entries.find("unit." + metric), better = entries.find("better." + metric);
    if (better == entries.end()) continue;
    if (unit != entries.end()) header += " (" + unit->second + ")";
    return header + (better->second == "lower" ? " ↓" : " ↑");
  }
  return header;
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

// One line per run that used other runs as components: what each of them is and trained.
std::string component_notes(const std::vector<RunRow>& rows) {
  std::string listing;
  for (const auto& row : rows) {
    for (const auto& [key, summary] : row.cells) {
      if (key.rfind("component:", 0) == 0) {
        listing += "\n  " + row.cells.at("experiment") + ": [" + key.substr(10) + "] " + summary;
      }
    }
  }
  return listing.empty() ? "" : "runs used as components (their training is not in the row's):" + listing;
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

double student_t_975(int degrees_of_freedom) {
  GENFW_CHECK(degrees_of_freedom >= 1, "student_t_975: degrees of freedom must be at least 1");
  static const double table[] = {12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
                                 2.364624252, 2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830,
                                 2.160368656, 2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.100922040,
                                 2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
                                 2.059538553, 2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456};
  if (degrees_of_freedom <= 30) return table[degrees_of_freedom - 1];
  // Cornish–Fisher expansion around the normal quantile: error below 1e-4 from 31 on.
  const double z = 1.959963984540054, n = degrees_of_freedom;
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
}

std::string number_for_people(double value, int significant) {
  if (!std::isfinite(value)) return shortest_number(value);
  if (value != 0 && std::abs(value) < 1e-4) {  // 0.0000123 is harder to read than 1.23e-5
    std::ostringstream out;
    out << std::setprecision(significant) << value;
    return shortest_number(std::stod(out.str()));
  }
  const int magnitude = value == 0 ? 0 : int(std::floor(std::log10(std::abs(value))));
  const int decimals = std::max(0, significant - 1 - magnitude);
  std::ostringstream out;
  out << std::fixed << std::setprecision(decimals) << value;
  std::string text = out.str();
  if (text.find('.') != std::string::npos) {
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
  }
  return text == "-0" ? "0" : text;
}

namespace {

// One line of the table: a run, a group of runs that differ only in their seed,
// or the real-data floor at one sample count.
struct Line {
  std::map<std::string, std::string> cells;  // non-metric columns
  std::map<std::string, double> values;      // metric → value (the mean over seeds)
  std::map<std::string, double> interval;    // metric → half-width of the 95% CI over seeds
  int seeds = 1;
};

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// "fx-seed2" → "fx", "fx-seed2-ddim" → "fx-ddim": `--seeds` and `--sweep seed=...`
// name their runs so, and `runner sample` appends its sampler to such a name.
std::string without_seed_suffix(const std::string& name) {
  for (auto at = name.rfind("-seed"); at != std::string::npos; at = at == 0 ? std::string::npos : name.rfind("-seed", at - 1)) {
    auto end = at + 5;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
    if (end > at + 5 && (end == name.size() || name[end] == '-')) return name.substr(0, at) + name.substr(end);
  }
  return name;
}

// Runs whose stored configs agree on everything but the seed (and the name a
// seed sweep gives them) are repetitions of one experiment.
std::string seed_group_key(const RunRow& row) {
  std::string key = without_seed_suffix(row.cells.at("experiment")) + "\n" + row.cells.at("status");
  bool has_config = false;
  for (const auto& [cell, value] : row.cells) {
    if (starts_with(cell, "library:")) key += "\n" + cell + "=" + value;  // another build is another experiment
    if (!starts_with(cell, "config:")) continue;
    has_config = true;
    if (cell != "config:seed" && cell != "config:name") key += "\n" + cell + "=" + value;
  }
  return has_config ? key : "";  // no stored config: never grouped
}

// Drops each run whose stored config, seed included, is that of an earlier one
// (a copied run file, or one run twice): it is no other seed. Returns
// "COPY repeats ORIGINAL" for each, naming the files.
std::vector<std::string> drop_copies(std::vector<RunRow>& rows, std::vector<std::string>& files) {
  std::map<std::string, std::string> first_of;  // config with seed → its first file
  std::vector<std::string> copies;
  for (size_t i = 0; i < rows.size();) {
    const std::string group = seed_group_key(rows[i]);
    const auto seed = rows[i].cells.find("config:seed");
    if (group.empty() || seed == rows[i].cells.end()) {
      ++i;
      continue;
    }
    const auto [original, first] = first_of.emplace(group + "\nseed=" + seed->second, files[i]);
    if (first) {
      ++i;
      continue;
    }
    copies.push_back(files[i] + " repeats " + original->second + " (same config, seed " + seed->second + ")");
    rows.erase(rows.begin() + std::ptrdiff_t(i));
    files.erase(files.begin() + std::ptrdiff_t(i));
  }
  return copies;
}

Line line_of_run(const RunRow& row) {
  Line line;
  for (const auto& [cell, value] : row.cells) {
    if (starts_with(cell, "metric:")) line.values[cell.substr(7)] = std::stod(value);
    else if (!starts_with(cell, "floor")) line.cells[cell] = value;  // config: kept for the sampler options
  }
  return line;
}

Line line_of_seeds(const std::vector<const RunRow*>& runs, const std::set<std::string>& metrics) {
  Line line = line_of_run(*runs.front());
  line.seeds = int(runs.size());
  line.cells["experiment"] = without_seed_suffix(line.cells["experiment"]);
  for (const char* timing : {"train s", "eval s", "samples/s"}) {  // means: they vary from run to run
    double sum = 0;
    for (const auto* run : runs) sum += run->cells.at(timing).empty() ? 0.0 : std::stod(run->cells.at(timing));
    if (!line.cells[timing].empty()) line.cells[timing] = shortest_number(sum / double(runs.size()));
  }
  line.values.clear();
  for (const auto& metric : metrics) {
    if (!spread_of(metric, metrics).empty()) continue;  // a run's own spread: the CI over seeds replaces it
    std::vector<double> xs;
    for (const auto* run : runs) {
      auto it = run->cells.find("metric:" + metric);
      if (it != run->cells.end()) xs.push_back(std::stod(it->second));
    }
    if (xs.empty()) continue;
    double mean = 0, squares = 0;
    for (double x : xs) mean += x / double(xs.size());
    for (double x : xs) squares += (x - mean) * (x - mean);
    line.values[metric] = mean;
    if (xs.size() >= 2) {
      line.interval[metric] = student_t_975(int(xs.size()) - 1) * std::sqrt(squares / double(xs.size() - 1)) /
                              std::sqrt(double(xs.size()));
    }
  }
  return line;
}

std::vector<Line> lines_of_runs(const std::vector<RunRow>& rows, const std::set<std::string>& metrics, bool per_seed) {
  std::vector<Line> lines;
  std::map<std::string, std::vector<const RunRow*>> groups;
  std::vector<std::string> order;
  for (const auto& row : rows) {
    const std::string key = per_seed ? "" : seed_group_key(row);
    if (key.empty()) {
      lines.push_back(line_of_run(row));
      continue;
    }
    if (!groups.count(key)) order.push_back(key), lines.push_back({});  // a placeholder keeps the runs' order
    groups[key].push_back(&row);
  }
  size_t next = 0;
  for (auto& line : lines) {
    if (!line.cells.empty()) continue;
    const auto& runs = groups[order[next++]];
    line = runs.size() == 1 ? line_of_run(*runs.front()) : line_of_seeds(runs, metrics);
  }
  return lines;
}

// One line per distinct (dataset, N, split) floor the runs recorded.
std::vector<Line> floor_lines(const std::vector<RunRow>& rows) {
  std::vector<Line> lines;
  std::set<std::string> seen;
  for (const auto& row : rows) {
    if (!row.cells.count("floor N")) continue;
    const std::string key = row.cells.at("dataset") + "|" + row.cells.at("floor N") + "|" + row.cells.at("floor split");
    if (!seen.insert(key).second) continue;
    Line line;
    line.cells["experiment"] = "real data (" + row.cells.at("floor split") + " split)";
    line.cells["dataset"] = row.cells.at("dataset");
    line.cells["N"] = row.cells.at("floor N");
    for (const auto& [cell, value] : row.cells) {
      if (starts_with(cell, "floor:")) line.values[cell.substr(6)] = std::stod(value);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

// "plugin builds": for the components whose library differs between runs (two builds of
// one plugin), each row's "kind.name@sha256-prefix", so rows that look alike are told apart.
void add_plugin_builds(const std::vector<RunRow>& rows, std::vector<Line>& lines) {
  std::map<std::string, std::set<std::string>> builds;  // component → library digests
  for (const auto& row : rows) {
    for (const auto& [cell, value] : row.cells) {
      if (starts_with(cell, "library:")) builds[cell].insert(value);
    }
  }
  for (auto& line : lines) {
    std::string shown;
    for (const auto& [cell, digests] : builds) {
      auto it = line.cells.find(cell);
      if (digests.size() > 1 && it != line.cells.end()) shown += (shown.empty() ? "" : ", ") + cell.substr(8) + "@" + it->second;
    }
    line.cells["plugin builds"] = shown;
  }
}

// The [sampler] options (other than the plugin and the framework's sample count
// and batch size) whose values differ between runs of the same sampler.
// A framework [sampler] key (condition, precision, x_init) at its default says nothing about the row's sampler.
bool framework_default(const std::string& key, const std::string& value) {
  const OptionSpec* spec = sampling_schema().find(key);
  const auto* text = spec == nullptr ? nullptr : std::get_if<std::string>(&spec->default_value);
  return text != nullptr && *text == value;
}

void add_sampler_options(const std::vector<RunRow>& rows, std::vector<Line>& lines) {
  std::map<std::string, std::map<std::string, std::set<std::string>>> values;  // sampler → key → values
  for (const auto& row : rows) {
    for (const auto& [cell, value] : row.cells) {
      if (starts_with(cell, "config:sampler.")) values[row.cells.at("sampler")][cell.substr(15)].insert(value);
    }
  }
  for (auto& line : lines) {
    auto sampler = values.find(line.cells["sampler"]);
    if (sampler == values.end()) continue;
    std::string shown;
    for (const auto& [key, distinct] : sampler->second) {
      if (distinct.size() < 2 || key == "plugin" || key == "num_samples" || key == "batch_size") continue;
      auto it = line.cells.find("config:sampler." + key);
      if (it != line.cells.end() && !framework_default(key, it->second)) {
        shown += (shown.empty() ? "" : ", ") + key + "=" + it->second;
      }
    }
    line.cells["sampler options"] = shown;
  }
}

}  // namespace

namespace {

// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string cell_of(const Line& line, const std::string& column) {
  auto it = line.cells.find(column);
  return it == line.cells.end() ? "" : it->second;
}

// Markdown: numbers rounded for people, "value ± spread" in one cell (the 95% CI
// over seeds, or the metric's own spread such as kid_std).
std::string metric_for_people(const Line& line, const std::string& metric, const std::set<std::string>& metrics) {
  auto value = line.values.find(metric);
  if (value == line.values.end()) return "";
  std::string text = number_for_people(value->second, 4);
  if (auto ci = line.interval.find(metric); ci != line.interval.end()) return text + " ± " + number_for_people(ci->second, 2);
  for (const std::string suffix : {"_std", "_sem"}) {
    if (!metrics.count(metric + suffix)) continue;
    if (auto spread = line.values.find(metric + suffix); spread != line.values.end()) {
      return text + " ± " + number_for_people(spread->second, 2);
    }
  }
  return text;
}

std::vector<std::string> text_columns(const std::vector<Line>& lines) {
  std::vector<std::string> columns{"experiment", "dataset", "model", "objective", "sampler"};
  auto any = [&](const std::string& column) {
    return std::any_of(lines.begin(), lines.end(), [&](const Line& l) { return !cell_of(l, column).empty(); });
  };
  if (any("sampler options")) columns.push_back("sampler options");
  if (any("plugin builds")) columns.push_back("plugin builds");
  for (const char* c : {"status", "parameters", "train steps", "train s"}) columns.push_back(c);
  if (any("eval s")) columns.push_back("eval s");
  for (const char* c : {"NFE", "samples/s", "N"}) columns.push_back(c);
  if (std::any_of(lines.begin(), lines.end(), [](const Line& l) { return l.seeds > 1; })) columns.push_back("seeds");
  return columns;
}

void write_markdown(const std::vector<Line>& lines, const std::set<std::string>& metrics,
                    const std::map<std::string, std::string>& headers, std::ostream& out) {
  const auto columns = text_columns(lines);
  std::vector<std::string> shown_metrics;
  for (const auto& metric : metrics) {
    if (spread_of(metric, metrics).empty()) shown_metrics.push_back(metric);  // spreads join their value's cell
  }
  out << "|";
  for (const auto& c : columns) out << " " << c << " |";
  for (const auto& m : shown_metrics) out << " " << headers.at(m) << " |";
  out << "\n|";
  for (const auto& c : columns) out << (c == "experiment" || c == "dataset" || c == "model" || c == "objective" ||
                                                c == "sampler" || c == "sampler options" || c == "plugin builds" || c == "status"
                                            ? " --- |"
                                            : " ---: |");
  for (size_t i = 0; i < shown_metrics.size(); ++i) out << " ---: |";
  out << "\n";
  const std::set<std::string> numeric{"train s", "eval s", "samples/s"};
  for (const auto& line : lines) {
    out << "|";
    for (const auto& c : columns) {
      std::string text = c == "seeds" ? (line.seeds > 1 ? std::to_string(line.seeds) : "") : cell_of(line, c);
      if (numeric.count(c) && !text.empty()) text = number_for_people(std::stod(text), 4);
      out << " " << text << " |";
    }
    for (const auto& m : shown_metrics) out << " " << metric_for_people(line, m, metrics) << " |";
    out << "\n";
  }
}

// CSV: one header, the same columns on every line, numbers exact (shortest
// round-trip), the CI over seeds in its own column; notes go elsewhere.
void write_csv(const std::vector<Line>& lines, const std::set<std::string>& metrics, std::ostream& out) {
  const auto columns = text_columns(lines);
  const bool any_interval = std::any_of(lines.begin(), lines.end(), [](const Line& l) { return !l.interval.empty(); });
  std::vector<std::string> header = columns;
  for (const auto& m : metrics) {
    header.push_back(m);
    if (any_interval && spread_of(m, metrics).empty()) header.push_back(m + " ci95");
  }
  for (size_t i = 0; i < header.size(); ++i) out << (i ? "," : "") << csv_field(header[i]);
  out << "\n";
  for (const auto& line : lines) {
    std::vector<std::string> fields;
    for (const auto& c : columns) fields.push_back(c == "seeds" ? std::to_string(line.seeds) : cell_of(line, c));
    for (const auto& m : metrics) {
      auto value = line.values.find(m);
      fields.push_back(value == line.values.end() ? "" : shortest_number(value->second));
      if (!any_interval || !spread_of(m, metrics).empty()) continue;
      auto ci = line.interval.find(m);
      fields.push_back(ci == line.interval.end() ? "" : shortest_number(ci->second));
    }
    for (size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << csv_field(fields[i]);
    out << "\n";
  }
}

}  // namespace

void write_comparison(const std::vector<std::string>& all_run_files, const CompareOptions& options,
                      std::ostream& table, std::ostream& notes_out) {
  GENFW_CHECK(!all_run_files.empty(), "compare needs at least one run file");
  std::vector<RunRow> rows;
  std::vector<std::string> run_files, left_out;
  std::vector<std::string> ordered_files = all_run_files;
  if (options.natural_order) std::stable_sort(ordered_files.begin(), ordered_files.end(), natural_less);
  for (const auto& file : ordered_files) {
    RunRow row = read_row_isolated(file);
    if (!options.include_unfinished && row.cells["status"] != "completed") {
      left_out.push_back(file + " (" + (row.cells["status"].empty() ? "no status" : row.cells["status"]) + ")");
      continue;
    }
    rows.push_back(std::move(row));
    run_files.push_back(file);
  }
  const std::vector<std::string> copies = options.per_seed ? std::vector<std::string>() : drop_copies(rows, run_files);
  std::set<std::string> metric_names;
  for (const auto& row : rows) {
    for (const auto& [key, _] : row.cells) {
      if (starts_with(key, "metric:")) metric_names.insert(key.substr(7));
      if (starts_with(key, "floor:")) metric_names.insert(key.substr(6));
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
        GENFW_CHECK(options.force, why, "; their values are not comparable. Pass --force to show them in one column anyway");
        notes.push_back(why);
      }
    }
  }
  std::vector<Line> lines = lines_of_runs(rows, metric_names, options.per_seed);
  add_sampler_options(rows, lines);
  add_plugin_builds(rows, lines);
  for (auto& floor : floor_lines(rows)) lines.push_back(std::move(floor));
  std::map<std::string, std::string> headers;
  for (const auto& metric : metric_names) headers[metric] = metric_header(metric, rows);
  if (options.format == TableFormat::csv) write_csv(lines, metric_names, table);
  else write_markdown(lines, metric_names, headers, table);

  if (std::any_of(lines.begin(), lines.end(), [](const Line& l) { return l.seeds > 1; })) {
    notes_out << "\nrows with seeds > 1: the mean over runs that differ only in their seed, ± the 95% confidence "
                 "interval of that mean (Student t, seeds − 1 degrees of freedom); runner compare --per-seed shows each run\n";
  }
  if (std::any_of(lines.begin(), lines.end(), [](const Line& l) { return starts_with(cell_of(l, "experiment"), "real data"); })) {
    notes_out << "\nreal data: N real examples of the split named, never in the reference, scored exactly like the "
                 "samples (same N, extractor and preprocessing): the value a perfect model would get at this N\n";
  }
  for (const auto& note : estimator_notes(rows, metric_names)) notes_out << "\n" << note << "\n";
  if (const std::string components = component_notes(rows); !components.empty()) notes_out << "\n" << components << "\n";
  for (const auto& note : notes) notes_out << "\nwarning (--force): " << note << "\n";
  if (!copies.empty()) {
    notes_out << "\nleft out, copies of another run, not other seeds (runner compare --per-seed shows them):\n";
    for (const auto& copy : copies) notes_out << "  " << copy << "\n";
  }
  if (!left_out.empty()) {
    notes_out << "\nleft out, not completed (runner compare --all shows them):\n";
    for (const auto& file : left_out) notes_out << "  " << file << "\n";
  }
}

}  // namespace genfw
