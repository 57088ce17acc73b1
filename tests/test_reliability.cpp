// Hostile or broken input (issue 14): each case ends in a genfw::Error that
// names the file, never a crash, a hang or a write outside --out.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <cmath>
#include <future>
#include <limits>
#include <random>
#include <sstream>
#include <thread>
#include <toml++/toml.h>

#include "genfw/config.hpp"
#include "genfw/images.hpp"
#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

const char* kExperiment = R"(name = "fixture_run"

[data]
plugin = "fixture_gaussian"

[model]
plugin = "fixture_mean"

[objective]
plugin = "fixture_nll"

[train]
steps = 2

[sampler]
plugin = "fixture_prior"
num_samples = 4

[[metrics]]
plugin = "fixture_mean_error"
)";

genfw::ExperimentConfig load(const std::string& path, const std::vector<std::string>& sets = {}) {
  return genfw::load_experiment(path, sets, fixtures());
}

std::string repeated(const std::string& part, int times, const std::string& separator = "") {
  std::string out;
  for (int i = 0; i < times; ++i) out += (i ? separator : "") + part;
  return out;
}

// Documents 50 000 levels deep: each overflowed the stack of toml++ before.
std::vector<std::pair<std::string, std::string>> deep_documents() {
  const int deep = 50000;
  return {{"dotted key", "a." + repeated("a", deep, ".") + " = 1\n"},
          {"table header", "[" + repeated("a", deep, ".") + "]\n"},
          {"nested arrays", "x = " + std::string(deep, '[') + std::string(deep, ']') + "\n"},
          {"nested inline tables", "x = " + repeated("{a = ", deep) + "1" + std::string(deep, '}') + "\n"}};
}

}  // namespace

TEST(TomlNesting, DeepDocumentsAreRefusedBeforeParsingNamingFileAndLine) {
  TempDir dir;
  for (const auto& [what, body] : deep_documents()) {
    std::string path = dir.file("deep.toml", "seed = 1\n" + body);
    std::string message = error_of([&] { load(path); });
    EXPECT_CONTAINS(message, path + ":2: TOML nested more than 64 levels deep") << what;
    message = error_of([&] { genfw::load_experiment_text("seed = 1\n" + body, "run.h5:/config", {}, fixtures()); });
    EXPECT_CONTAINS(message, "run.h5:/config:2: TOML nested more than 64") << what;
  }
}

TEST(TomlNesting, SuiteFilesSetOverridesAndStoredConfigsAreCheckedToo) {
  TempDir dir;
  std::string suite = dir.file("suite.toml", "[suite]\n" + deep_documents()[0].second);
  EXPECT_CONTAINS(error_of([&] { genfw::is_suite_file(suite); }), suite + ":2: TOML nested more than 64");
  std::string good = dir.file("good.toml", kExperiment);
  EXPECT_CONTAINS(error_of([&] { load(good, {"data." + repeated("a", 5000, ".") + "=1"}); }),
                  "TOML nested more than 64");
  EXPECT_CONTAINS(error_of([&] { load(good, {"data.size=" + std::string(5000, '[')}); }), "TOML nested more than 64");
  EXPECT_CONTAINS(error_of([&] { genfw::with_sampler(deep_documents()[1].second, "r.h5", "fixture_prior"); }),
                  "r.h5:1: TOML nested more than 64");
}

TEST(TomlNesting, OrdinaryNestingStringsAndCommentsPass) {
  TempDir dir;
  // 60 levels of arrays is legal (the schema then refuses the shape, not the scanner).
  std::string path = dir.file("ok.toml", std::string(kExperiment) + "[log]\ngrid_samples = " + std::string(60, '[') +
                                             std::string(60, ']') + "\n");
  std::string message = error_of([&] { load(path); });
  EXPECT_EQ(message.find("nested"), std::string::npos) << message;
  EXPECT_CONTAINS(message, "option 'grid_samples' has the wrong type");
  // Brackets, braces and dots inside strings and comments do not nest anything.
  std::string quoted = std::string(kExperiment) + "# " + std::string(500, '[') + "\n" +
                       "[train.groups.\"" + repeated("a", 300, ".") + "\"]\nlr = 0.5 # {{{{\n";
  auto config = load(dir.file("quoted.toml", quoted));
  EXPECT_DOUBLE_EQ(config.optimizer_for(repeated("a", 300, ".")).lr, 0.5);
  auto stored = genfw::load_experiment_text(config.resolved_toml(), "stored", {}, fixtures());
  EXPECT_DOUBLE_EQ(stored.optimizer_for(repeated("a", 300, ".")).lr, 0.5);
}

TEST(ExperimentFiles, ExtendsOfAFolderIsRefusedNamingTheFileThatExtendsIt) {
  TempDir dir;
  fs::create_directories(dir.path / "base");
  std::string child = dir.file("child.toml", "extends = \"base\"\n");
  std::string message = error_of([&] { load(child); });
  EXPECT_CONTAINS(message, child + ": 'extends' names");
  EXPECT_CONTAINS(message, "base is a directory, not a regular file");
  EXPECT_CONTAINS(error_of([&] { load(dir / "base"); }), "experiment file " + (dir / "base") + " is a directory");
}

TEST(ExperimentFiles, ExtendsOfAFifoIsRefusedWithoutWaitingForAWriter) {
  TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "base.toml").c_str(), 0600), 0);
  std::string child = dir.file("child.toml", "extends = \"base.toml\"\n");
  auto loading = std::async(std::launch::async, [&] { return error_of([&] { load(child); }); });
  if (loading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::cerr << "loading an experiment that extends a FIFO hangs\n";
    std::_Exit(1);  // the thread is stuck in open(): nothing else can end this test
  }
  std::string message = loading.get();
  EXPECT_CONTAINS(message, child + ": 'extends' names");
  EXPECT_CONTAINS(message, "is a FIFO (named pipe), not a regular file");
}

TEST(ExperimentNames, NamesThatWouldLeaveTheOutputFolderAreRefused) {
  TempDir dir;
  for (const std::string& name : std::vector<std::string>{"../../x", "/abs/x", "a/b", "..", "a..b", ".hidden", "tab\there",
                           std::string(101, 'n')}) {
    std::string text = kExperiment;
    text.replace(text.find("\"fixture_run\""), 13, genfw::format_value(name));
    std::string path = dir.file("named.toml", text);
    std::string message = error_of([&] { load(path); });
    EXPECT_CONTAINS(message, path + ":1:8: name = ") << name;
    EXPECT_CONTAINS(message, "1 to 100 characters from A-Z a-z 0-9 . _ -") << name;
  }
  std::string text = kExperiment;
  text.replace(text.find("\"fixture_run\""), 13, "\"Run-1.2_b\"");
  EXPECT_EQ(load(dir.file("ok.toml", text)).name, "Run-1.2_b");
}

TEST(StoredConfig, StringsWithQuotesBackslashesAndNewlinesRoundTrip) {
  TempDir dir;
  const std::string tag = "say \"hi\" \\ C:\\path\nline 2\ttab \x01 end ünï";
  auto config = load(dir.file("good.toml", kExperiment),
                     {"metrics.fixture_mean_error.provenance_tag=" + genfw::format_value(tag)});
  ASSERT_EQ(config.metrics[0].options.string("provenance_tag"), tag);
  auto stored = genfw::load_experiment_text(config.resolved_toml(), "stored", {}, fixtures());
  EXPECT_EQ(stored.metrics[0].options.string("provenance_tag"), tag);
  EXPECT_EQ(stored.resolved_toml(), config.resolved_toml());
}

namespace {

// A random string of valid UTF-8: ASCII with TOML's special characters, control
// characters, and code points of every UTF-8 length.
std::string random_string(std::mt19937_64& rng) {
  static const std::vector<uint32_t> specials{'"', '\\', '\n', '\r', '\t', '\b', '\f', 0, 1, 0x1f, 0x7f, '\'', '#',
                                              '[', ']', '=', 0xe9, 0x3c0, 0x20ac, 0x1f600, 0x10ffff};
  std::string out;
  int length = int(rng() % 24);
  for (int i = 0; i < length; ++i) {
    uint32_t c;
    switch (rng() % 3) {
      case 0: c = specials[rng() % specials.size()]; break;
      case 1: c = 0x20 + rng() % 0x5f; break;
      default: do c = rng() % 0x110000; while (c >= 0xd800 && c < 0xe000); break;  // no surrogates
    }
    if (c < 0x80) {
      out += char(c);
    } else if (c < 0x800) {
      out += char(0xc0 | (c >> 6));
      out += char(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += char(0xe0 | (c >> 12));
      out += char(0x80 | ((c >> 6) & 0x3f));
      out += char(0x80 | (c & 0x3f));
    } else {
      out += char(0xf0 | (c >> 18));
      out += char(0x80 | ((c >> 12) & 0x3f));
      out += char(0x80 | ((c >> 6) & 0x3f));
      out += char(0x80 | (c & 0x3f));
    }
  }
  return out;
}

double random_double(std::mt19937_64& rng) {
  static const std::vector<double> specials{0.0, -0.0, 0.9, 0.1, 1e-300, 4.9e-324, -2.2250738585072014e-308,
                                            1.7976931348623157e308, -1e308, 3e-4, 1e21, 123456789012345678.0,
                                            std::numeric_limits<double>::infinity(),
                                            -std::numeric_limits<double>::infinity()};
  if (rng() % 4 == 0) return specials[rng() % specials.size()];
  uint64_t bits = rng();
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return std::isnan(value) ? 1.5 : value;
}

int64_t random_integer(std::mt19937_64& rng) {
  static const std::vector<int64_t> specials{0, -1, INT64_MAX, INT64_MIN, INT64_MIN + 1, 9007199254740993};
  return rng() % 4 == 0 ? specials[rng() % specials.size()] : int64_t(rng());
}

genfw::OptionValue random_value(std::mt19937_64& rng) {
  auto several = [&](auto make) {
    std::vector<decltype(make())> out(rng() % 5);
    for (auto& x : out) x = make();
    return out;
  };
  switch (rng() % 7) {
    case 0: return random_integer(rng);
    case 1: return random_double(rng);
    case 2: return rng() % 2 == 0;
    case 3: return random_string(rng);
    case 4: {
      auto v = several([&] { return random_integer(rng); });
      return v.empty() ? genfw::OptionValue(std::vector<double>{}) : genfw::OptionValue(v);
    }
    case 5: return several([&] { return random_double(rng); });
    default: {
      auto m = several([&] { return several([&] { return random_double(rng); }); });
      return m.empty() ? genfw::OptionValue(std::vector<double>{}) : genfw::OptionValue(m);
    }
  }
}

// The value toml++ reads back from `value = <literal>`, in genfw's representation.
genfw::OptionValue read_back(const std::string& literal) {
  toml::table table = toml::parse("value = " + literal);
  const toml::node& node = *table.get("value");
  auto doubles = [](const toml::array& a) {
    std::vector<double> out;
    for (auto& e : a) out.push_back(e.as_floating_point()->get());
    return out;
  };
  if (auto v = node.as_integer()) return int64_t(v->get());
  if (auto v = node.as_floating_point()) return v->get();
  if (auto v = node.as_boolean()) return v->get();
  if (auto v = node.as_string()) return v->get();
  const toml::array& array = *node.as_array();
  if (array.empty()) return std::vector<double>{};
  if (array.is_homogeneous(toml::node_type::integer)) {
    std::vector<int64_t> out;
    for (auto& e : array) out.push_back(e.as_integer()->get());
    return out;
  }
  if (array.is_homogeneous(toml::node_type::floating_point)) return doubles(array);
  genfw::Matrix matrix;
  for (auto& row : array) matrix.push_back(doubles(*row.as_array()));
  return matrix;
}

// Bitwise equality for doubles, so -0.0 and 0.0 differ and inf matches inf.
bool same(const genfw::OptionValue& a, const genfw::OptionValue& b) {
  if (a.index() != b.index()) return false;
  auto same_double = [](double x, double y) { return std::memcmp(&x, &y, sizeof x) == 0; };
  auto same_doubles = [&](const std::vector<double>& x, const std::vector<double>& y) {
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), same_double);
  };
  if (auto x = std::get_if<double>(&a)) return same_double(*x, std::get<double>(b));
  if (auto x = std::get_if<std::vector<double>>(&a)) return same_doubles(*x, std::get<std::vector<double>>(b));
  if (auto x = std::get_if<genfw::Matrix>(&a)) {
    const auto& y = std::get<genfw::Matrix>(b);
    return x->size() == y.size() && std::equal(x->begin(), x->end(), y.begin(), same_doubles);
  }
  return a == b;
}

}  // namespace

TEST(FormatValue, EveryGeneratedValueReadsBackIdenticallyThroughToml) {
  std::mt19937_64 rng(14);
  for (int i = 0; i < 5000; ++i) {
    genfw::OptionValue value = random_value(rng);
    std::string literal = genfw::format_value(value);
    genfw::OptionValue back;
    try {
      back = read_back(literal);
    } catch (const std::exception& e) {
      FAIL() << "case " << i << ": toml++ cannot read " << literal << ": " << e.what();
    }
    ASSERT_TRUE(same(value, back)) << "case " << i << ": " << literal << " reads back as " << genfw::format_value(back);
  }
}

TEST(FormatValue, DoublesPrintInTheirShortestRoundTripForm) {
  EXPECT_EQ(genfw::format_value(0.9), "0.9");
  EXPECT_EQ(genfw::format_value(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(genfw::format_value(3e-4), "3e-4");
  EXPECT_EQ(genfw::format_value(2.0), "2.0");
  EXPECT_EQ(genfw::format_value(-0.0), "-0.0");
  EXPECT_EQ(genfw::format_value(1e300), "1e300");
  EXPECT_EQ(genfw::format_value(std::string("a\"b\\c\nd\x01")), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(Compare, ARunFileThatIsItsOwnParentIsReportedAsACycle) {
  TempDir dir;
  auto write_run = [&](const std::string& name, const std::string& parent) {
    auto log = genfw::RunLog::create(dir / name);
    log.set_attribute("/", "experiment", name);
    log.set_attribute("/", "parent", parent);
    log.flush();
  };
  write_run("self.h5", dir / "self.h5");
  std::ostringstream out;
  std::string message = error_of([&] { genfw::write_comparison({dir / "self.h5"}, {}, out, out); });
  EXPECT_CONTAINS(message, "'parent' attributes form a cycle: " + (dir / "self.h5") + " -> " + (dir / "self.h5"));

  write_run("a.h5", dir / "b.h5");
  write_run("b.h5", dir / "a.h5");
  message = error_of([&] { genfw::write_comparison({dir / "a.h5"}, {genfw::TableFormat::csv}, out, out); });
  EXPECT_CONTAINS(message, (dir / "a.h5") + " -> " + (dir / "b.h5") + " -> " + (dir / "a.h5"));
}

namespace {

// A folder holding a copy of the fixture plugin library.
fs::path plugin_folder(const TempDir& dir, const std::string& name) {
  fs::path folder = dir.path / name;
  fs::create_directories(folder);
  fs::copy_file(fixture_dir("good") + "/fixture_components.so", folder / "fixture_components.so");
  return folder;
}

std::string load_error(const fs::path& folder) {
  genfw::Registry registry;
  return error_of([&] { registry.load_directory(folder.string()); });
}

}  // namespace

TEST(PluginPermissions, AGroupWritableFolderIsRefusedNamingIt) {
  TempDir dir;
  fs::path folder = plugin_folder(dir, "group");
  fs::permissions(folder, fs::perms::group_write, fs::perm_options::add);
  std::string message = load_error(folder);
  EXPECT_CONTAINS(message, folder.string() + ": it is writable by its group (chmod g-w)");
  genfw::Registry permissive;
  permissive.allow_insecure = true;
  permissive.load_directory(folder.string());
  EXPECT_NE(permissive.try_find("fixture_mean", genfw::Kind::model), nullptr);
}

TEST(PluginPermissions, AFolderOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a folder to another user";
  TempDir dir;
  fs::path folder = plugin_folder(dir, "theirs");
  ASSERT_EQ(::chown(folder.c_str(), 65534, 65534), 0);  // nobody
  std::string message = load_error(folder);
  EXPECT_CONTAINS(message, folder.string() + ": it is owned by ");
  EXPECT_CONTAINS(message, "neither root nor the current user");
}

TEST(PluginPermissions, ASymlinkIntoAWorldWritableFolderIsJudgedByItsTarget) {
  TempDir dir;
  fs::path open_folder = plugin_folder(dir, "open");
  fs::permissions(open_folder, fs::perms::others_write | fs::perms::group_write, fs::perm_options::add);
  fs::path safe = dir.path / "safe";
  fs::create_directories(safe);
  fs::create_symlink(open_folder / "fixture_components.so", safe / "fixture_components.so");
  std::string message = load_error(safe);
  EXPECT_CONTAINS(message, fs::canonical(open_folder).string() + ": it is writable by other users");
}

TEST(PluginPermissions, AFolderOfOursUnderStickyTmpLoads) {
  TempDir dir;  // under /tmp (sticky, world-writable)
  fs::path folder = plugin_folder(dir, "mine");
  genfw::Registry registry;
  registry.load_directory(folder.string());
  EXPECT_NE(registry.try_find("fixture_mean", genfw::Kind::model), nullptr);
}

TEST(ResourceLimits, AHugeLearningRateIsRefusedNamingLr) {
  TempDir dir;
  std::string path = dir.file("good.toml", kExperiment);
  EXPECT_CONTAINS(error_of([&] { load(path, {"train.lr=1e308"}); }),
                  "[train]: option 'lr' = 1e+308 is out of range; expected float in [0, 10]");
  EXPECT_CONTAINS(error_of([&] { load(path, {"train.groups.model.lr=inf"}); }),
                  "[train.groups.model]: option 'lr' = inf is out of range");
}

TEST(ResourceLimits, BatchesThatCannotFitInMemoryAreRefusedBeforeAnyWork) {
  TempDir dir;
  std::string path = dir.file("good.toml", kExperiment);
  std::string message = error_of([&] { load(path, {"train.batch_size=1000000000000"}); });
  EXPECT_CONTAINS(message, path + ": [train] batch_size = 1000000000000 needs");
  EXPECT_CONTAINS(message, "GiB of memory");
  EXPECT_CONTAINS(error_of([&] { load(path, {"sampler.num_samples=1000000000000"}); }),
                  "[sampler] num_samples = 1000000000000 needs");
  // With the data's shape known, a batch that fits as floats per sample may not fit as images.
  auto config = load(path, {"train.batch_size=100000000"});
  genfw::check_memory_fits(config, {1});
  EXPECT_CONTAINS(error_of([&] { genfw::check_memory_fits(config, {3, 1024, 1024}); }),
                  "samples of shape [3, 1024, 1024]");
}

// Inputs the fuzz target fuzz_run_file found (fuzz/findings/): libhdf5 1.10
// dereferences a null pointer on one (in the ASan build), loops forever on the other. `runner
// compare` reads run files in a child process, so both are errors naming the file.
TEST(Compare, RunFilesThatCrashOrHangTheHdf5LibraryAreErrorsNamingThem) {
  const std::string findings = std::string(GENFW_TEST_SOURCE_DIR) + "/fuzz/findings/";
  std::ostringstream out;
  std::string message = error_of([&] {
    genfw::write_comparison({findings + "hdf5_h5a_close_segv.h5"}, {}, out, out);
  });
  // Under ASan the library crashes on it; built without, it may report an error instead: either way, one message.
  EXPECT_CONTAINS(message, "run file " + findings + "hdf5_h5a_close_segv.h5: ");
  ::setenv("GENFW_COMPARE_SECONDS_PER_FILE", "2", 1);
  message = error_of([&] {
    genfw::write_comparison({findings + "hdf5_h5hg_read_hang.h5"}, {}, out, out);
  });
  ::unsetenv("GENFW_COMPARE_SECONDS_PER_FILE");
  EXPECT_CONTAINS(message, "run file " + findings + "hdf5_h5hg_read_hang.h5: reading it took more than 2 s");
}

namespace {

// The exit status of `pid` (as wait_for), or -1 after killing it when it runs past `seconds`.
int wait_at_most(pid_t pid, int seconds) {
  for (int tenth = 0; tenth < seconds * 10; ++tenth) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  wait_for(pid);
  return -1;
}

}  // namespace

// The same findings as the run file of `--resume` and of `runner sample`: read
// first in a child process too, so each is an error naming the file within
// seconds, never a crash or a hang of the runner.
TEST(RunFiles, CorruptRunFilesAreErrorsWhenResumingAndSampling) {
  TempDir dir;
  const std::string findings = std::string(GENFW_TEST_SOURCE_DIR) + "/fuzz/findings/";
  const std::string experiment = dir.file("fx.toml", fixture_experiment(10));
  for (const std::string finding : {"hdf5_h5a_close_segv", "hdf5_h5hg_read_hang"}) {
    const std::string out = dir / finding, run_file = out + "/fx.h5";
    fs::create_directories(out);
    fs::copy_file(findings + finding + ".h5", run_file);
    const std::vector<std::vector<std::string>> commands{
        {experiment, "--resume", "--out", out},
        {"sample", run_file, "--sampler", "fixture_prior", "--out", out + "-sampled"}};
    for (const auto& command : commands) {
      const std::string log = dir / "runner.txt";
      const int status = wait_at_most(start_runner(command, {{"GENFW_COMPARE_SECONDS_PER_FILE", "2"}}, log), 30);
      EXPECT_EQ(status, 1) << command[0] << " " << finding << ":\n" << text_of(log);
      EXPECT_CONTAINS(text_of(log), "run file " + run_file + ": ");
    }
  }
}

// A symbolic link planted where the runner writes its picture (OUT/NAME.png) is
// replaced by the picture; the file it pointed to, outside --out, is untouched.
TEST(Reliability, APlantedLinkAtThePicturesNameIsReplacedNotFollowed) {
  TempDir dir;
  const std::string outside = dir.file("outside.txt", "precious");
  fs::create_directories(dir / "out");
  const fs::path picture = dir / "out/run.png";
  fs::create_symlink(outside, picture);
  fs::create_symlink(outside, picture.string() + ".tmp");  // and at its temporary's name
  genfw::write_png(picture.string(), torch::zeros({4, 5, 3}, torch::kUInt8));
  EXPECT_EQ(text_of(outside), "precious");
  EXPECT_FALSE(fs::is_symlink(picture));
  EXPECT_EQ(text_of(picture.string()).substr(1, 3), "PNG");
  EXPECT_FALSE(fs::exists(picture.string() + ".tmp"));
}
