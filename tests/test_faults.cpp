// Faults a run must survive without crashing, losing results or showing an
// unfinished run as a result: full disks, SIGINT/SIGTERM, damaged checkpoints,
// resumes that would mix configurations, two runners racing for one name.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <sstream>
#include <thread>

#include "genfw/durable.hpp"
#include "genfw/run.hpp"
#include "genfw/run_log.hpp"
#include "genfw/sha256.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

std::string file_text(const std::string& path) { return genfw::read_whole_file(path); }

bool any_temporary_file(const std::string& folder) {
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (entry.path().extension() == ".tmp") return true;
  }
  return false;
}

// Sends `signal` to `child` once `file` exists (the run is under way) and waits for it: its raw wait status.
int signal_once_written(pid_t child, const std::string& file, int signal) {
  for (int i = 0; i < 600 && !fs::exists(file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(child, signal);
  int status = 0;
  ::waitpid(child, &status, 0);
  return status;
}

}  // namespace

TEST(Sha256, KnownAnswersOfFips180) {
  EXPECT_EQ(genfw::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(genfw::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(genfw::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  genfw::Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk);  // crosses block boundaries unaligned
  EXPECT_EQ(million.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(DurableFile, AFullDiskLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir / "checkpoint.pt";
  genfw::write_file_durably(path, "old contents");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      genfw::write_file_durably(path, std::string(100000, 'x'));
    } catch (const genfw::Error& e) {
      const std::string message = e.what();
      ::_exit(message.find("cannot write " + path + ": File too large") != std::string::npos ? 0 : 2);
    }
    ::_exit(1);  // no error: wrong
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the failed write was not reported; 2: the message did not name the file";
  EXPECT_EQ(file_text(path), "old contents");
  EXPECT_FALSE(fs::exists(genfw::temporary_of(path)));
}

TEST(DiskFull, TheRunnerSaysWhichFileItCannotWriteKeepsTheRunFileAndExitsCleanly) {
  TempDir dir;
  // 200 000 samples of 2 floats (1.6 MB) do not fit on a 1 MB file system: the /samples write fails.
  const std::string experiment = dir.file("big.toml", fixture_experiment(20));
  const std::string disk = dir / "disk", out = disk + "/big";
  fs::create_directories(disk);
  // The small file system exists only in the child's own mount namespace, so the
  // child reports what it finds there into `dir`, which the parent can see.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=1m") != 0) {
      ::_exit(77);
    }
    pid_t runner = start_runner({experiment, "--out", out, "--set", "sampler.num_samples=200000"}, {}, dir / "stderr.txt");
    int status = 0;
    ::waitpid(runner, &status, 0);
    std::ofstream(dir / "status.txt") << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                            : "signal " + std::to_string(WTERMSIG(status)));
    std::ofstream(dir / "temporary.txt") << (any_temporary_file(out) ? "left" : "none");
    std::error_code ignored;
    fs::copy_file(out + "/fx.h5", dir / "fx.h5", ignored);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) GTEST_SKIP() << "no permission to mount a small tmpfs here";
  const std::string errors = file_text(dir / "stderr.txt");
  EXPECT_EQ(file_text(dir / "status.txt"), "exit 1") << errors;
  EXPECT_CONTAINS(errors, "cannot write " + out + "/fx.h5: No space left on device");
  EXPECT_EQ(file_text(dir / "temporary.txt"), "none");
  auto log = genfw::RunLog::open(dir / "fx.h5", false);  // everything flushed before the failure stays readable
  EXPECT_EQ(log.read_series("/train/loss/model").size(), 20u);
  EXPECT_EQ(log.attribute("/", "checkpoint_step"), "20");
  EXPECT_NE(log.attribute("/", "status"), "completed");
}

// A stop request ends a whole suite at the member it interrupts: the later members
// are not started (before: each was started and stopped at its first step, five
// more runs marked interrupted for one Ctrl-C).
TEST(Signals, SigtermStopsASuiteAtTheMemberItInterrupts) {
  TempDir dir;
  dir.file("long.toml", fixture_experiment(100000000));
  std::string next = fixture_experiment(5);
  next.replace(next.find("name = \"fx\""), 11, "name = \"next\"");
  dir.file("next.toml", next);
  const std::string suite = dir.file("pair.toml", "[suite]\nname = \"pair\"\nexperiments = [\"long.toml\", \"next.toml\"]\n");
  const std::string out = dir / "pair";
  pid_t child = start_runner({suite, "--out", out}, {{"GENFW_PLOTS", "off"}}, dir / "stderr.txt");
  const int status = signal_once_written(child, out + "/fx/checkpoint.pt", SIGTERM);
  const std::string errors = file_text(dir / "stderr.txt");
  ASSERT_TRUE(WIFEXITED(status)) << errors;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << errors;
  EXPECT_CONTAINS(errors, "the suite stopped there, before 1 more; continue it with the same command and --resume");
  EXPECT_FALSE(fs::exists(out + "/next")) << errors;
  EXPECT_CONTAINS(genfw::RunLog::open(out + "/fx/fx.h5", false).attribute("/", "status"), "interrupted");
}

TEST(Signals, SigtermStopsAtASafePointMarksInterruptedAndResumeCompletes) {
  TempDir dir;
  const std::string experiment = dir.file("long.toml", fixture_experiment(100000000));
  const std::string out = dir / "long";
  pid_t child = start_runner({experiment, "--out", out}, {}, dir / "stderr.txt");
  const int status = signal_once_written(child, out + "/checkpoint.pt", SIGTERM);
  const std::string errors = file_text(dir / "stderr.txt");
  ASSERT_TRUE(WIFEXITED(status)) << errors;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << errors;
  EXPECT_CONTAINS(errors, "interrupted by SIGTERM at training step");
  EXPECT_CONTAINS(errors, "--resume --out " + out);
  int64_t stopped_at = 0;
  {
    auto log = genfw::RunLog::open(out + "/fx.h5", false);
    EXPECT_CONTAINS(log.attribute("/", "status"), "interrupted: interrupted by SIGTERM");
    stopped_at = std::stoll(log.attribute("/", "checkpoint_step"));
    auto rows = log.read_series("/train/loss/model");
    ASSERT_EQ(int64_t(rows.size()), stopped_at);  // the checkpoint is taken at the step the losses end
  }
  // Finish it: a few more steps than it had (the step count may change on resume, the optimizer not).
  genfw::RunRequest resume;
  resume.experiment = experiment;
  resume.out_dir = out;
  resume.resume = true;
  resume.resume_changes = {"train.steps=" + std::to_string(stopped_at + 5)};
  genfw::run_experiment(resume, fixtures());
  auto log = genfw::RunLog::open(out + "/fx.h5", false);
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  auto rows = log.read_series("/train/loss/model");
  ASSERT_EQ(int64_t(rows.size()), stopped_at + 5);
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].step, int64_t(i));
}

// annealed_langevin reports no steps by default: one batch of 200 000 samples used to
// ignore SIGINT until the batch ended (minutes). The denoiser's evaluation hook polls the
// stop request before every network call, so the run stops within about one evaluation
// (a few ms here) and is marked interrupted.
TEST(Signals, SigintStopsANonReportingSamplerMidBatchWithinTwoSeconds) {
  TempDir dir;
  const std::string experiment = dir.file("langevin.toml", "name = \"langevin\"\nseed = 1\n" +
                                                               two_mode_mixture_data(100) + R"(
[model]
plugin = "analytic_gmm"
means = [[-2.0, 0.0], [2.0, 0.0]]
weights = [0.5, 0.5]
stds = [0.5, 0.5]
[sampler]
plugin = "annealed_langevin"
steps_per_level = 1000000
num_samples = 200000
batch_size = 200000
[log]
progress = "plain"
)");
  const std::string out = dir / "langevin";
  pid_t child = start_runner({experiment, "--out", out}, {}, dir / "stderr.txt");
  for (int i = 0; i < 600 && text_of(dir / "stderr.txt").find("sampling: ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // mid-batch, well past its first evaluations
  const auto start = std::chrono::steady_clock::now();
  ::kill(child, SIGINT);
  const int status = wait_for(child);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string errors = file_text(dir / "stderr.txt");
  std::cerr << "the runner ended " << seconds << " s after SIGINT mid-batch\n";
  EXPECT_EQ(status, 128 + SIGINT) << errors;
  EXPECT_LT(seconds, 2.0) << errors;
  EXPECT_CONTAINS(errors, "interrupted by SIGINT while sampling");
  EXPECT_CONTAINS(genfw::RunLog::open(out + "/langevin.h5", false).attribute("/", "status"),
                  "interrupted: interrupted by SIGINT");
}

TEST(Status, AnExceptionWhileSamplingMarksTheRunFailedWithTheReason) {
  TempDir dir;
  std::string message = error_of([&] {
    run_fixture(dir, "a", fixture_experiment(5), false, {"sampler.throw_message=\"sampler exploded\""});
  });
  EXPECT_CONTAINS(message, "sampler exploded");
  auto log = genfw::RunLog::open(dir / "a/fx.h5", false);
  EXPECT_CONTAINS(log.attribute("/", "status"), "failed: ");
  EXPECT_CONTAINS(log.attribute("/", "status"), "sampler exploded");
}

TEST(Checkpoints, AFlippedBitIsRefusedNamingTheFileWhenSamplingAndResuming) {
  TempDir dir;
  const std::string run_file = run_fixture(dir, "a", fixture_experiment(10));
  const std::string checkpoint = dir / "a/checkpoint.pt";
  std::string bytes = file_text(checkpoint);
  bytes[bytes.size() / 2] ^= 0x10;
  std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << bytes;

  genfw::RunRequest sample;
  sample.parent_run = run_file;
  sample.out_dir = dir / "sampled";
  std::string message = error_of([&] { genfw::run_experiment(sample, fixtures()); });
  EXPECT_CONTAINS(message, "checkpoint " + checkpoint + " is damaged or was changed");
  EXPECT_CONTAINS(message, "SHA-256");

  message = error_of([&] { run_fixture(dir, "a", fixture_experiment(10), true, {}, {"train.steps=20"}); });
  EXPECT_CONTAINS(message, checkpoint);
  EXPECT_CONTAINS(message, "SHA-256");
}

TEST(Checkpoints, ResumeRefusesAnotherModelOrOptimizerNamingTheKeys) {
  TempDir dir;
  run_fixture(dir, "a", fixture_experiment(10));
  std::string message = error_of([&] { run_fixture(dir, "a", fixture_experiment(10), true, {"model.init=1.5"}); });
  EXPECT_CONTAINS(message, "[model] init was 0.0, now 1.5");
  message = error_of([&] { run_fixture(dir, "a", fixture_experiment(10), true, {"train.optimizer=\"sgd\""}); });
  EXPECT_CONTAINS(message, "[train] optimizer was \"adam\", now \"sgd\"");
  // A refused resume changes nothing.
  EXPECT_EQ(genfw::RunLog::open(dir / "a/fx.h5", false).attribute("/", "status"), "completed");
  // The learning rate may change, by --resume-set alone.
  message = error_of([&] { run_fixture(dir, "a", fixture_experiment(10), true, {"train.lr=0.01"}); });
  EXPECT_CONTAINS(message, "[train] lr was 0.05, now 0.01");
  run_fixture(dir, "a", fixture_experiment(10), true, {}, {"train.lr=0.01"});
  const auto stored = genfw::load_experiment_text(genfw::RunLog::open(dir / "a/fx.h5", false).read_string("/config"),
                                                  "stored", {}, fixtures());
  EXPECT_EQ(stored.train->real("lr"), 0.01);
}

TEST(Resume, ACommandLineAskingForAnotherPlanIsRefusedNamingEachKey) {
  TempDir dir;
  const std::string run_file = run_fixture(dir, "a", fixture_experiment(10), false, {"sampler.num_samples=30"});
  const std::string before = file_text(run_file);
  // The same file without the --set the run started with asks for another plan.
  std::string message = error_of([&] { run_fixture(dir, "a", fixture_experiment(20), true); });
  EXPECT_CONTAINS(message, "cannot resume " + run_file);
  EXPECT_CONTAINS(message, "[train] steps was 10, now 20");
  EXPECT_CONTAINS(message, "[sampler] num_samples was 30, now 50");
  EXPECT_CONTAINS(message, "--resume-set train.steps=N");
  message = error_of([&] {
    run_fixture(dir, "a", fixture_experiment(10), true, {"sampler.num_samples=30"}, {"sampler.num_samples=60"});
  });
  EXPECT_CONTAINS(message, "--resume-set sampler.num_samples=60: only train.steps, train.lr and train.groups.NAME.lr");
  EXPECT_EQ(file_text(run_file), before);  // refused before the run file was opened for writing
}

TEST(Resume, ACompletedRunIsNotReopenedForWritingWhenNothingIsLeftToDo) {
  TempDir dir;
  const std::string run_file = run_fixture(dir, "a", fixture_experiment(10));
  const std::string before = file_text(run_file);
  EXPECT_EQ(run_fixture(dir, "a", fixture_experiment(10), true), run_file);
  EXPECT_EQ(file_text(run_file), before);
}

TEST(Resume, TheOverridesAreKeptAndThePrintedCommandContinuesTheRunExactly) {
  TempDir dir;
  // The file plans 20 steps; the command line 400 of 5 ms each.
  const std::string experiment = dir.file("plan.toml", fixture_experiment(20));
  const std::string out = dir / "plan out";  // a space: the command must quote it
  pid_t child = start_runner({experiment, "--out", out, "--set", "train.steps=400", "--set",
                              "objective.sleep_seconds=0.005"},
                             {}, dir / "first.txt");
  for (int i = 0; i < 600 && !fs::exists(out + "/checkpoint.pt"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(child, SIGTERM);
  ASSERT_EQ(wait_for(child), 128 + SIGTERM) << file_text(dir / "first.txt");
  const std::string errors = file_text(dir / "first.txt");
  const std::string marker = "continue with: runner ";
  ASSERT_NE(errors.find(marker), std::string::npos) << errors;
  std::string command = errors.substr(errors.find(marker) + marker.size());
  command = command.substr(0, command.find('\n'));
  const std::string runner = std::string(GENFW_TEST_BINARY_DIR) + "/runner";
  const int status = std::system(("'" + runner + "' " + command + " --plugin-path '" + fixture_dir("good") +
                                  "' --threads 1 > '" + (dir / "second.txt") + "' 2>&1").c_str());
  ASSERT_EQ(status, 0) << command << "\n" << file_text(dir / "second.txt");
  auto log = genfw::RunLog::open(out + "/fx.h5", false);
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  EXPECT_EQ(log.read_series("/train/loss/model").size(), 400u);
  EXPECT_EQ(log.read_scalar("/timing/train_steps"), 400.0);
  EXPECT_CONTAINS(log.read_string("/config"), "steps = 400");
}

TEST(Resume, EachSegmentKeepsItsEnvironmentAndFirstStep) {
  TempDir dir;
  const std::string run_file = run_fixture(dir, "a", fixture_experiment(13));
  run_fixture(dir, "a", fixture_experiment(13), true, {}, {"train.steps=30"});
  auto log = genfw::RunLog::open(run_file, false);
  ASSERT_EQ(log.children("/env/segments").size(), 2u);
  EXPECT_EQ(log.read_string("/env/segments/0/from_step"), "0");
  EXPECT_EQ(log.read_string("/env/segments/1/from_step"), "13");
  for (const char* segment : {"0", "1"}) {
    EXPECT_EQ(log.read_string(std::string("/env/segments/") + segment + "/world_size"), "1");
    EXPECT_EQ(log.read_string(std::string("/env/segments/") + segment + "/launcher"), "none");
  }
  EXPECT_EQ(log.read_string("/env/from_step"), "13");  // /env/<key>: the latest segment's
}

TEST(Resume, MetricsOfTheFinalStepAreNotDuplicated) {
  TempDir dir;
  const std::string run_file = run_fixture(dir, "a", fixture_experiment(10));
  run_fixture(dir, "a", fixture_experiment(10), true);
  auto log = genfw::RunLog::open(run_file, false);
  for (const auto& name : log.children("/metrics")) EXPECT_EQ(log.read_metric(name).size(), 1u) << name;
}

TEST(RunFolders, ARunWhoseDataIsMissingLeavesNoFolder) {
  TempDir dir;
  genfw::RunRequest request;
  request.experiment = std::string(GENFW_TEST_SOURCE_DIR) + "/experiments/vae_fashion.toml";
  request.overrides = {"data.path=\"" + (dir / "missing") + "\""};
  const auto previous = fs::current_path();
  fs::current_path(dir.path);
  const std::string message = error_of([&] { genfw::run_experiment(request, builtins()); });
  const bool folder_left = fs::exists("runs/vae_fashion");
  fs::current_path(previous);
  EXPECT_CONTAINS(message, dir / "missing");
  EXPECT_FALSE(folder_left);
}

TEST(RunFolders, TwoRunnersOfOneExperimentGetTwoFolders) {
  TempDir dir;
  const auto previous = fs::current_path();
  fs::current_path(dir.path);
  const std::string first = genfw::default_run_folder("exp", false);
  const std::string second = genfw::default_run_folder("exp", false);
  fs::current_path(previous);
  EXPECT_EQ(first, "runs/exp");
  EXPECT_EQ(second, "runs/exp-2");
  EXPECT_TRUE(fs::is_directory(dir / "runs/exp-2"));
}

TEST(Compare, UnfinishedRunsAreLeftOutUnlessAskedForAndShowTheirStatus) {
  TempDir dir;
  const std::string done = run_fixture(dir, "a", fixture_experiment(5));
  const std::string failed = run_fixture(dir, "b", fixture_experiment(5));
  genfw::RunLog::open(failed, true).set_attribute("/", "status", "failed: something");
  std::ostringstream table;
  genfw::write_comparison({done, failed}, {}, table, table);
  EXPECT_CONTAINS(table.str(), "| status |");
  EXPECT_CONTAINS(table.str(), "| completed |");
  EXPECT_CONTAINS(table.str(), "left out, not completed");
  EXPECT_CONTAINS(table.str(), failed + " (failed: something)");
  std::ostringstream all;
  genfw::write_comparison({done, failed}, {genfw::TableFormat::markdown, false, true}, all, all);
  EXPECT_CONTAINS(all.str(), "| failed: something |");
}

// RunLog driven into a full disk on small file systems (one per variant, in the
// child's own mount namespace), with datasets of several sizes between flushes:
// every failure is a genfw::Error naming the file, nothing crashes (neither the
// failing write, the writes after it, nor the destructor's close), and every row
// flushed before the failure stays readable.
TEST(DiskFull, RunLogWriteFailuresNeverCrashAndKeepWhatWasFlushed) {
  TempDir dir;
  constexpr int kVariants = 6;
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(77);
    for (int variant = 0; variant < kVariants; ++variant) {
      const std::string disk = dir / ("disk" + std::to_string(variant)), file = disk + "/run.h5";
      fs::create_directories(disk);
      const std::string size = "size=" + std::to_string(96 + 40 * variant) + "k";
      if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, size.c_str()) != 0) ::_exit(77);
      int64_t flushed = 0;
      std::string first_error, later_error;
      {
        genfw::RunLog log = genfw::RunLog::create(file);
        try {
          for (int64_t step = 0; step < 1000000; ++step) {
            log.append_series("/train/loss/model", {{step, double(step), 0.0}});
            if (step % 50 == 49) {
              log.write_tensor("/junk/" + std::to_string(step), torch::ones({int64_t(200 + 700 * variant)}));
              log.set_attribute("/", "checkpoint_step", step);
              log.flush();
              flushed = step + 1;
            }
          }
        } catch (const genfw::Error& e) {
          first_error = e.what();
        }
        try {
          log.set_attribute("/", "status", "failed: disk full");
          log.flush();
        } catch (const genfw::Error& e) {
          later_error = e.what();
        }
      }  // the destructor closes the file, or abandons one whose close failed
      std::ofstream(dir / ("result" + std::to_string(variant) + ".txt"))
          << flushed << "\n" << first_error << "\n" << later_error << "\n";
      std::error_code ignored;
      fs::copy_file(file, dir / ("run" + std::to_string(variant) + ".h5"), ignored);
      ::umount(disk.c_str());
    }
    ::_exit(0);
  }
  const int status = wait_for(child);
  if (status == 77) GTEST_SKIP() << "no permission to mount a small tmpfs here";
  ASSERT_EQ(status, 0) << "the process writing the run files crashed (128 + signal)";
  for (int variant = 0; variant < kVariants; ++variant) {
    std::istringstream result(file_text(dir / ("result" + std::to_string(variant) + ".txt")));
    std::string flushed, first_error, later_error;
    std::getline(result, flushed);
    std::getline(result, first_error);
    std::getline(result, later_error);
    EXPECT_CONTAINS(first_error, "No space left on device");
    EXPECT_CONTAINS(later_error, "cannot write ");
    const std::string copy = dir / ("run" + std::to_string(variant) + ".h5");
    std::vector<genfw::ScalarRow> rows;
    EXPECT_NO_THROW(rows = genfw::RunLog::open(copy, false).read_series("/train/loss/model")) << "variant " << variant;
    EXPECT_GE(int64_t(rows.size()), std::stoll(flushed)) << "variant " << variant;
    EXPECT_GT(std::stoll(flushed), 0) << "variant " << variant;
  }
}

// Module::load resizes parameters silently: a run file whose /config was edited (a
// wider model) would sample the checkpoint's network under the edited name. Refused,
// naming the parameter and both shapes.
TEST(Checkpoints, SamplingARunWhoseConfigWasEditedIsRefusedNamingTheShapes) {
  TempDir dir;
  const std::string run = run_fixture(dir, "a", fixture_experiment(10));
  {
    auto log = genfw::RunLog::open(run, true);
    std::string config = log.read_string("/config");
    const auto at = config.find("dim = 2");
    ASSERT_NE(at, std::string::npos) << config;
    log.write_string("/config", config.replace(at, 7, "dim = 3"));
    log.flush();
  }
  genfw::RunRequest request;
  request.parent_run = run;
  request.out_dir = dir / "sampled";
  const std::string message = error_of([&] { genfw::run_experiment(request, fixtures()); });
  EXPECT_CONTAINS(message, "holds 'mu' of shape [2], but the model built from the run's config has [3]");
}
