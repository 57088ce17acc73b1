// `runner compare`: seed groups with confidence intervals, the real-data floor,
// a rectangular CSV and numbers printed for people.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "genfw/options.hpp"
#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "genfw/sha256.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Fields of one CSV record (RFC 4180 quoting), an independent reader of what write_csv writes.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') fields.back() += '"', ++i;
    else if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) fields.emplace_back();
    else fields.back() += c;
  }
  return fields;
}

double last_metric(const std::string& file, const std::string& name) {
  return genfw::RunLog::open(file, false).read_metric(name).back().value;
}

// The fixture experiment (6 steps) with `--seeds count` into dir/seeds: its run files.
std::vector<std::string> run_seeds(const TempDir& dir, int count) {
  genfw::RunRequest request;
  request.experiment = dir.file("fx.toml", fixture_experiment(6));
  request.out_dir = dir / "seeds";
  request.seed_count = count;
  return genfw::run_with_sweep(request, fixtures(), {});
}

}  // namespace

TEST(Compare, StudentQuantilesMatchTables) {
  // t_{0.975, df} from standard tables (df ≤ 30) and the exact values for larger df.
  // Reference values: bisection on a Simpson integral of the t density (Python, 20 000 intervals).
  EXPECT_NEAR(genfw::student_t_975(1), 12.706204736, 1e-6);
  EXPECT_NEAR(genfw::student_t_975(2), 4.302652730, 1e-8);
  EXPECT_NEAR(genfw::student_t_975(3), 3.182446305, 1e-8);
  EXPECT_NEAR(genfw::student_t_975(10), 2.228138852, 1e-8);
  EXPECT_NEAR(genfw::student_t_975(30), 2.042272456, 1e-8);
  EXPECT_NEAR(genfw::student_t_975(31), 2.039513446, 1e-4);
  EXPECT_NEAR(genfw::student_t_975(60), 2.000297822, 1e-4);
  EXPECT_NEAR(genfw::student_t_975(120), 1.979930405, 1e-4);
  EXPECT_NEAR(genfw::student_t_975(100000), 1.95998, 1e-4);
}

TEST(Compare, NumbersForPeopleAndShortestNumbers) {
  EXPECT_EQ(genfw::number_for_people(52183.4, 4), "52183");
  EXPECT_EQ(genfw::number_for_people(34.182912, 4), "34.18");
  EXPECT_EQ(genfw::number_for_people(0.001234567, 4), "0.001235");
  EXPECT_EQ(genfw::number_for_people(3.0, 4), "3");
  EXPECT_EQ(genfw::number_for_people(-0.5, 2), "-0.5");
  EXPECT_EQ(genfw::number_for_people(0.0, 4), "0");
  EXPECT_EQ(genfw::number_for_people(1.234e-5, 4), "1.234e-5");
  EXPECT_EQ(genfw::shortest_number(0.9), "0.9");
  EXPECT_EQ(genfw::shortest_number(3e-4), "3e-4");
  EXPECT_EQ(genfw::shortest_number(1e20), "1e20");
  EXPECT_EQ(genfw::shortest_number(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(genfw::format_value(2.0), "2.0");
  EXPECT_EQ(genfw::format_value(1e-5), "1e-5");
}

// Three seeds of one experiment (--seeds 3) are one row: the mean ± the 95%
// Student-t interval, computed here independently from the run files.
TEST(Compare, SeedsAggregateToMeanAndConfidenceInterval) {
  TempDir dir;
  auto files = run_seeds(dir, 3);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(fs::path(files[2]).stem(), "fx-seed9");  // the experiment's seed 7, then 8, 9
  std::vector<double> values;
  for (const auto& f : files) values.push_back(last_metric(f, "mean_error"));
  const double mean = (values[0] + values[1] + values[2]) / 3;
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const double half_width = 4.302652730 * std::sqrt(squares / 2) / std::sqrt(3.0);

  std::ostringstream table, notes;
  genfw::write_comparison(files, {}, table, notes);
  const auto lines = lines_of(table.str());
  ASSERT_EQ(lines.size(), 4u) << table.str();  // header, rule, one seed row, the floor row
  EXPECT_CONTAINS(lines[0], "| seeds |");
  EXPECT_CONTAINS(lines[2], "| fx |");
  EXPECT_CONTAINS(lines[2], "| 3 | " + genfw::number_for_people(mean, 4) + " ± " + genfw::number_for_people(half_width, 2) + " |");
  EXPECT_CONTAINS(notes.str(), "95% confidence interval");

  std::ostringstream csv, csv_notes;
  genfw::write_comparison(files, {genfw::TableFormat::csv}, csv, csv_notes);
  auto records = lines_of(csv.str());
  auto header = csv_fields(records[0]), row = csv_fields(records[1]);
  auto column = [&](const std::string& name) {
    return size_t(std::find(header.begin(), header.end(), name) - header.begin());
  };
  ASSERT_LT(column("mean_error ci95"), header.size()) << csv.str();
  EXPECT_NEAR(std::stod(row[column("mean_error")]), mean, 1e-12);
  EXPECT_NEAR(std::stod(row[column("mean_error ci95")]), half_width, 1e-8);
  EXPECT_EQ(row[column("seeds")], "3");

  std::ostringstream per_seed, per_seed_notes;
  genfw::write_comparison(files, {genfw::TableFormat::markdown, false, false, true}, per_seed, per_seed_notes);
  EXPECT_EQ(lines_of(per_seed.str()).size(), 6u) << per_seed.str();  // header, rule, 3 runs, floor
}

// `runner sample RUN --seeds 3` names its runs RUN-seed<k>-SAMPLER: one row too.
TEST(Compare, SeedsOfRunnerSampleAggregateToo) {
  TempDir dir;
  genfw::RunRequest request;
  request.parent_run = run_fixture(dir, "trained", fixture_experiment(6));
  request.sampler = "fixture_prior";
  request.out_dir = dir / "resampled";
  request.seed_count = 3;
  auto files = genfw::run_with_sweep(request, fixtures(), {});
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(fs::path(files[1]).stem(), "fx-seed8-fixture_prior");
  std::ostringstream table, notes;
  genfw::write_comparison(files, {}, table, notes);
  const auto lines = lines_of(table.str());
  ASSERT_EQ(lines.size(), 4u) << table.str();  // header, rule, one row of 3 seeds, the floor row
  EXPECT_CONTAINS(lines[2], "| fx-fixture_prior |");
}

// The floor: as many real examples of the train split (the reference is the
// test split) as samples, scored by the same metric, in the run file and as a row.
TEST(Compare, RealDataFloorRowAndRectangularCsv) {
  TempDir dir;
  std::string a = run_fixture(dir, "a", fixture_experiment(6));
  auto log = genfw::RunLog::open(a, false);
  ASSERT_TRUE(log.exists("/floor/mean_error"));
  EXPECT_EQ(log.attribute("/floor/mean_error", "split"), "train");
  EXPECT_EQ(log.attribute("/floor/mean_error", "count"), "50");
  const double floor = log.read_series("/floor/mean_error").back().value;
  // 50 points of N(3, I) in 2-D against the test mean: |error| ~ √(2/50) ≈ 0.2.
  EXPECT_GT(floor, 0.0);
  EXPECT_LT(floor, 1.0);

  std::string b = run_fixture(dir, "b", fixture_experiment(6), false, {"name=\"fy\"", "sampler.num_samples=30"});
  std::ostringstream csv, notes;
  genfw::write_comparison({a, b}, {genfw::TableFormat::csv}, csv, notes);
  auto records = lines_of(csv.str());
  ASSERT_EQ(records.size(), 5u) << csv.str();  // header, 2 runs, floors at N = 50 and N = 30
  const size_t width = csv_fields(records[0]).size();
  for (const auto& record : records) EXPECT_EQ(csv_fields(record).size(), width) << record;
  EXPECT_CONTAINS(records[3], "real data (train split),fixture_gaussian,");
  EXPECT_CONTAINS(records[3], "," + genfw::shortest_number(floor));
  EXPECT_CONTAINS(notes.str(), "real data: N real examples");
  EXPECT_EQ(csv.str().find("real data: N"), std::string::npos);  // notes never inside the CSV
}

// A metric may declare that its floor means nothing (memorization: the floor's examples
// are the ones it searches); the host then scores none and the table has no floor row.
TEST(Compare, AMetricWithoutAFloorGetsNoFloorRow) {
  TempDir dir;
  const std::string a = run_fixture(dir, "a", fixture_experiment(6), false, {"metrics.fixture_mean_error.has_floor=false"});
  EXPECT_FALSE(genfw::RunLog::open(a, false).exists("/floor/mean_error"));
  std::ostringstream table, notes;
  genfw::write_comparison({a}, {}, table, notes);
  EXPECT_EQ(lines_of(table.str()).size(), 3u) << table.str();  // header, rule, the run
}

// A copied run file (or one run twice) repeats a seed: no other seed, so it is
// counted once and named under the table.
TEST(Compare, ACopyOfARunIsNotCountedAsAnotherSeed) {
  TempDir dir;
  const auto files = run_seeds(dir, 2);
  ASSERT_EQ(files.size(), 2u);
  fs::create_directories(dir / "copy");
  const std::string copy = dir / "copy/fx-seed7.h5";
  fs::copy_file(files[0], copy);
  std::ostringstream csv, notes;
  genfw::write_comparison({files[0], files[1], copy}, {genfw::TableFormat::csv}, csv, notes);
  const auto records = lines_of(csv.str());
  ASSERT_EQ(records.size(), 3u) << csv.str();  // header, the row of 2 seeds, the floor
  const auto header = csv_fields(records[0]), row = csv_fields(records[1]);
  const size_t seeds = size_t(std::find(header.begin(), header.end(), "seeds") - header.begin());
  ASSERT_LT(seeds, header.size()) << csv.str();
  EXPECT_EQ(row[seeds], "2");
  EXPECT_CONTAINS(notes.str(), copy + " repeats " + files[0] + " (same config, seed 7)");
}

// Headers say which way is better and the unit (MetricResult::describe); `runner
// compare` orders rows as a person reads numbers: steps10, steps50, steps200.
TEST(Compare, HeadersShowDirectionAndUnitRowsInNaturalOrder) {
  TempDir dir;
  std::vector<std::string> files;
  for (const char* steps : {"200", "10", "50"}) {
    files.push_back(run_fixture(dir, std::string("s") + steps, fixture_experiment(6), false,
                                {std::string("name=\"steps") + steps + "\"", std::string("seed=") + steps}));
  }
  genfw::CompareOptions options;
  options.natural_order = true;
  std::ostringstream table, notes;
  genfw::write_comparison(files, options, table, notes);
  const auto lines = lines_of(table.str());
  ASSERT_EQ(lines.size(), 6u) << table.str();  // header, rule, 3 runs, the floor
  EXPECT_CONTAINS(lines[0], "| mean_error (data units) ↓ |");
  EXPECT_CONTAINS(lines[2], "| steps10 |");
  EXPECT_CONTAINS(lines[3], "| steps50 |");
  EXPECT_CONTAINS(lines[4], "| steps200 |");
  std::ostringstream given_order, unused;
  genfw::write_comparison(files, {}, given_order, unused);  // a suite's order is its own
  EXPECT_CONTAINS(lines_of(given_order.str())[2], "| steps200 |");
}

// The run file names the library of each component (path, version, SHA-256); two
// builds of one plugin are two rows, told apart by a "plugin builds" column, never
// merged as copies or seeds.
TEST(Compare, TwoBuildsOfOnePluginAreTwoRowsNamedByTheirLibraries) {
  TempDir dir;
  const std::string a = run_fixture(dir, "a", fixture_experiment(6));
  const std::string recorded = genfw::RunLog::open(a, false).read_string("/env/plugins/sampler.fixture_prior");
  const std::string library = fixtures().find("fixture_prior", genfw::Kind::sampler).library;
  EXPECT_EQ(recorded, library + " version " + fixtures().find("fixture_prior", genfw::Kind::sampler).version +
                          " sha256 " + genfw::sha256_of_file(library));
  fs::create_directories(dir / "rebuilt");
  const std::string b = dir / "rebuilt/fx.h5";
  fs::copy_file(a, b);
  {
    auto other = genfw::RunLog::open(b, true);
    other.write_string("/env/plugins/sampler.fixture_prior", library + " version 1 sha256 " + std::string(64, 'e'));
    other.flush();
  }
  std::ostringstream table, notes;
  genfw::write_comparison({a, b}, {}, table, notes);
  const auto lines = lines_of(table.str());
  ASSERT_EQ(lines.size(), 5u) << table.str();  // header, rule, two runs, the floor
  EXPECT_CONTAINS(lines[0], "| plugin builds |");
  EXPECT_CONTAINS(lines[2], "sampler.fixture_prior@" + genfw::sha256_of_file(library).substr(0, 12));
  EXPECT_CONTAINS(lines[3], "sampler.fixture_prior@eeeeeeeeeeee");
  EXPECT_EQ(notes.str().find("repeats"), std::string::npos) << notes.str();
}
