// The runner's command-line messages, as a user meets them: suggestions, lists
// and refusals of values it would otherwise replace silently.
#include <gtest/gtest.h>

#include <cstdio>

#include "genfw/out_of_memory.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

struct Said {
  int status;
  std::string text;  // stdout and stderr together
};

// The built runner with `arguments` (its built-in plugins, one thread), as a shell runs it.
Said runner(const std::string& arguments) {
  const std::string command = std::string(GENFW_TEST_BINARY_DIR) + "/runner " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) text.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, text};
}

}  // namespace

TEST(Cli, DescribeSuggestsListsKindsAndFrameworkTables) {
  auto typo = runner("describe anneald");
  EXPECT_EQ(typo.status, 1) << typo.text;
  EXPECT_CONTAINS(typo.text, "did you mean 'annealed_langevin'?");

  auto far = runner("describe zzzzzzzz");
  EXPECT_CONTAINS(far.text, "known: ");
  for (const char* table : {"train", "features", "guidance", "log", "sampler-common"}) EXPECT_CONTAINS(far.text, table);
  const std::string known = far.text.substr(far.text.find("known: "));
  EXPECT_EQ(known.find("nll"), known.rfind("nll")) << "a name offered by two kinds (objective, metric) listed once";

  auto samplers = runner("describe sampler");
  EXPECT_EQ(samplers.status, 0) << samplers.text;
  for (const char* name : {"ddim", "edm", "annealed_langevin", "prior"}) EXPECT_CONTAINS(samplers.text, name);
  EXPECT_EQ(samplers.text.find("fid"), std::string::npos) << "only samplers";
}

TEST(Cli, PluginsShowsEachComponentsDescription) {
  auto plugins = runner("plugins");
  EXPECT_EQ(plugins.status, 0) << plugins.text;
  EXPECT_CONTAINS(plugins.text, "Kernel Inception Distance");  // kid's summary, first sentence
}

TEST(Cli, CompareWithoutRunsSaysWhatIsMissing) {
  auto empty = runner("compare");
  EXPECT_EQ(empty.status, 1) << empty.text;
  EXPECT_CONTAINS(empty.text, "no run files given");
  EXPECT_EQ(empty.text.find("--runs"), std::string::npos) << empty.text;  // an internal option name
}

TEST(Cli, CountsBelowTheirLeastValueAreRefusedNotReplaced) {
  const std::string experiment = std::string(GENFW_TEST_SOURCE_DIR) + "/experiments/score_toy2d.toml";
  auto none = runner(experiment + " --nproc 0");
  EXPECT_EQ(none.status, 1) << none.text;
  EXPECT_CONTAINS(none.text, "--nproc 0: expected an integer >= 1");
  EXPECT_CONTAINS(runner(experiment + " --nproc=-1").text, "--nproc -1: expected an integer >= 1");
  EXPECT_CONTAINS(runner(experiment + " --threads=-5").text, "--threads -5: expected an integer >= 0");
  EXPECT_CONTAINS(runner(experiment + " --members-at-once 0").text, "--members-at-once 0: expected an integer >= 1");
}

// Gradient accumulation averages one update per step; a GAN's two updates depend on each other.
TEST(Cli, AccumulationIsRefusedForAnObjectiveWithSeveralUpdatesPerStep) {
  TempDir dir;
  auto gan = runner(std::string(GENFW_TEST_SOURCE_DIR) + "/experiments/gan_toy2d.toml --set train.accumulate=2 " +
                    "--set train.steps=2 --out " + (dir / "gan"));
  EXPECT_EQ(gan.status, 1) << gan.text;
  EXPECT_CONTAINS(gan.text, "updates several parameter groups in one step");
}

// A size the machine cannot hold is an allocator's failure inside a plugin: the message says
// it is memory, what was asked and what the machine has, and which table's sizes to lower.
TEST(Cli, SizesBeyondMemoryNameTheTablesToLower) {
  const std::string experiment = std::string(GENFW_TEST_SOURCE_DIR) + "/experiments/score_toy2d.toml";
  TempDir dir;
  auto levels = runner(experiment + " --set model.num_levels=4611686018427387904 --out " + dir / "run");
  EXPECT_EQ(levels.status, 1) << levels.text;
  EXPECT_CONTAINS(levels.text, "model 'score_mlp'");
  EXPECT_CONTAINS(levels.text, "— out of memory (this machine has ");
  EXPECT_CONTAINS(levels.text, "lower the [model] sizes (hidden, ngf, ch, num_levels, …)");
  EXPECT_FALSE(fs::exists(dir / "run"));  // nothing written for a run that could not be built
  EXPECT_EQ(genfw::out_of_memory_remedy("matmul: shapes cannot be multiplied", genfw::Kind::sampler), "");
  EXPECT_CONTAINS(genfw::out_of_memory_remedy("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                                              "154618822656 bytes. Error code 12", genfw::Kind::sampler),
                  "(144 GiB requested, this machine has ");
  EXPECT_CONTAINS(genfw::out_of_memory_remedy("CUDA out of memory. Tried to allocate 2.00 GiB", genfw::Kind::objective),
                  "lower [train] batch_size");
}
