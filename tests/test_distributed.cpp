// Data-parallel training and sampling on c10d (gloo, 127.0.0.1): shards,
// collectives, the loss curve and the samples and metrics of 2 processes
// against 1, rank 0 as the only writer, resume with another world size, and a
// killed or hung rank ending the other in time.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "genfw/distributed.hpp"
#include "genfw/features.hpp"
#include "genfw/rank_coordinator.hpp"
#include "genfw/run_log.hpp"
#include "genfw/trainer.hpp"
#include "../data/fixtures/dataset_fixtures.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

using Clock = std::chrono::steady_clock;

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Without the objective's noise, so 1 and 2 processes see the same arithmetic.
std::string experiment(int steps, const std::string& objective_extra = "") {
  return fixture_experiment(steps, "", "noise = 0.0\n" + objective_extra);
}

// One rank of a torchrun-style job of `world_size` on 127.0.0.1:`port`.
std::map<std::string, std::string> rank_environment(int rank, int world_size, int port) {
  return {{"RANK", std::to_string(rank)},          {"WORLD_SIZE", std::to_string(world_size)},
          {"LOCAL_RANK", std::to_string(rank)},    {"LOCAL_WORLD_SIZE", std::to_string(world_size)},
          {"MASTER_ADDR", "127.0.0.1"},            {"MASTER_PORT", std::to_string(port)}};
}

std::vector<genfw::ScalarRow> losses(const std::string& run_file) {
  return genfw::RunLog::open(run_file, false).read_series("/train/loss/model");
}

// Runs `body(group)` on two ranks, as two threads of this process.
void on_two_ranks(const std::function<void(genfw::DataParallel&)>& body, double timeout_seconds = 10) {
  const int port = free_port();
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      genfw::LaunchEnvironment launch;
      launch.rank = launch.local_rank = rank;
      launch.world_size = launch.local_world_size = 2;
      launch.master_addr = "127.0.0.1";
      launch.master_port = port;
      genfw::DataParallel group(launch, {"gloo", timeout_seconds});
      body(group);
    });
  }
  for (auto& t : threads) t.join();
}

// The exact ε of a two-mode mixture (nothing to train) sampled by DDPM: a
// sample is a function of its noise alone. 37 samples in batches of 8 over 2
// ranks: 5 batches, the last one short, rank 0 draws 3 and rank 1 draws 2.
std::string sampled_experiment() {
  return "name = \"drawn\"\nseed = 3\n" + two_mode_mixture_data(200) + two_mode_mixture_eps_model(50) + R"(
[sampler]
plugin = "ddpm"
num_samples = 37
batch_size = 8
[[metrics]]
plugin = "fid"
[[metrics]]
plugin = "kid"
subsets = 10
[log]
progress = "plain"
)";
}

// Images drawn by the decoder of a VAE trained for 2 steps (so that `runner
// sample` accepts its run), scored through the in-domain classifier: 45 samples
// in batches of 10 over 2 ranks, rank 0 draws 3 batches and rank 1 draws 2, and
// each extracts features of its own in extraction batches of 7.
std::string image_experiment(const std::string& cifar_folder) {
  return R"(name = "images"
seed = 5
[data]
plugin = "cifar10"
path = ")" + cifar_folder + R"("
[model]
plugin = "vae"
[objective]
plugin = "elbo"
[train]
steps = 2
batch_size = 10
[sampler]
plugin = "prior"
num_samples = 45
batch_size = 10
[features]
classifier_epochs = 1
classifier_width = 4
batch_size = 7
max_reference = 40
[[metrics]]
plugin = "fid"
[[metrics]]
plugin = "inception_score"
splits = 3
[log]
progress = "plain"
)";
}

// A small CIFAR-10 folder of random pixels: 60 training and 40 test images.
std::string random_cifar10(const TempDir& dir) {
  torch::manual_seed(11);
  const std::string folder = dir / "cifar";
  genfw::fixtures::write_cifar10(folder, torch::randint(0, 256, {60, 3, 32, 32}), torch::randint(0, 10, {60}),
                                torch::randint(0, 256, {40, 3, 32, 32}), torch::randint(0, 10, {40}));
  return folder;
}

// Rank 1's SIGKILL or SIGSTOP once training is under way (a checkpoint exists);
// returns the seconds rank 0 then needed to exit, and its exit status and output.
struct Ended {
  double seconds;
  int status;
  std::string output;
};

// Two torchrun-style ranks training; once the first checkpoint is written, rank `stopped`
// gets `signal_number`, and the other is timed until it ends.
Ended stop_a_rank_mid_training(const TempDir& dir, int signal_number, int stopped = 1) {
  const std::string toml = dir.file("long.toml", experiment(100000, "sleep_seconds = 0.01\n"));
  const int port = free_port();
  const std::string out = dir / "long";
  pid_t ranks[2];
  for (int r = 0; r < 2; ++r) {
    ranks[r] = start_runner({toml, "--out", out, "--dist-timeout", "3"}, rank_environment(r, 2, port),
                            dir / ("rank" + std::to_string(r) + ".log"));
  }
  for (int i = 0; i < 600 && !fs::exists(out + "/checkpoint.pt"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = Clock::now();
  ::kill(ranks[stopped], signal_number);
  const int other = 1 - stopped;
  const int status = wait_for(ranks[other]);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::kill(ranks[stopped], SIGKILL);
  wait_for(ranks[stopped]);
  return {seconds, status, text_of(dir / ("rank" + std::to_string(other) + ".log"))};
}

Ended stop_rank1_mid_training(const TempDir& dir, int signal_number) { return stop_a_rank_mid_training(dir, signal_number); }

}  // namespace

TEST(Distributed, TheRanksShardsMakeTheSingleProcessBatchAndEpoch) {
  const int64_t dataset_size = 100, batch_size = 12;
  for (int world_size : {2, 3, 4}) {
    std::vector<torch::Tensor> epoch;
    for (int64_t step = 0; step < 9; ++step) {  // 108 indices: one epoch and into the next
      torch::Tensor global = genfw::batch_indices(step, batch_size, dataset_size, 5);
      std::vector<torch::Tensor> shards;
      for (int rank = 0; rank < world_size; ++rank) shards.push_back(genfw::rank_shard(global, rank, world_size));
      EXPECT_TRUE(torch::equal(torch::cat(shards), global)) << "world " << world_size << " step " << step;
      epoch.insert(epoch.end(), shards.begin(), shards.end());
    }
    torch::Tensor first_epoch = torch::cat(epoch).slice(0, 0, dataset_size);
    EXPECT_TRUE(torch::equal(std::get<0>(first_epoch.sort()), torch::arange(dataset_size)));
  }
  EXPECT_CONTAINS(error_of([] { genfw::rank_shard(torch::arange(10), 0, 4); }),
                  "[train] batch_size = 10 is the global batch: it must be divisible by the world size 4");
}

TEST(Distributed, TheRanksSamplingBatchesAreTheSingleProcessBatches) {
  for (int64_t total : {37, 40, 5}) {  // not a multiple of the batch; a multiple; fewer than one batch per rank
    for (int world_size : {1, 2, 3, 4}) {
      std::vector<torch::Tensor> rows_of_ranks;
      for (int rank = 0; rank < world_size; ++rank) {
        std::vector<torch::Tensor> batches{torch::empty({0}, torch::kLong)};
        for (int64_t first : genfw::sampling_batches_of_rank(total, 8, rank, world_size)) {
          EXPECT_EQ(first % 8, 0);
          EXPECT_EQ((first / 8) % world_size, rank);  // round-robin
          batches.push_back(torch::arange(first, std::min(first + 8, total)));
        }
        rows_of_ranks.push_back(torch::cat(batches));
      }
      EXPECT_TRUE(torch::equal(genfw::rows_in_global_order(rows_of_ranks, 8), torch::arange(total)))
          << total << " samples over " << world_size << " ranks";
    }
  }
}

namespace {

// What a rank drew of `all` (one row per sample) in batches of 8, with batch k's NFE 10 + k.
genfw::DrawnRows drawn_by(genfw::RankCoordinator& ranks, const torch::Tensor& all) {
  std::vector<torch::Tensor> rows{torch::empty({0, all.size(1)})}, nfe{torch::empty({0}, torch::kLong)};
  for (int64_t first : ranks.sampling_batches(all.size(0), 8)) {
    rows.push_back(all.slice(0, first, std::min(first + 8, all.size(0))));
    nfe.push_back(torch::full({1}, 10 + first / 8, torch::kLong));
  }
  return {torch::cat(rows), torch::cat(nfe)};
}

// A feature service of identity features (the raw coordinates) for 2-D points.
std::unique_ptr<genfw::FeatureService> identity_features() {
  genfw::metric::FeatureSettings settings;
  settings.extractor.kind = "identity";
  genfw::MetricContext context;
  context.data.shape = {2};
  return std::make_unique<genfw::FeatureService>(settings, context);
}

const torch::Tensor kDrawn = torch::arange(74, torch::kFloat32).view({37, 2});  // 37 samples: 5 batches of 8

}  // namespace

// The coordinator alone, without a pipeline: a world of one process keeps everything local.
TEST(RankCoordinator, OneProcessKeepsEverythingLocal) {
  auto ranks = genfw::single_process_coordinator();
  EXPECT_EQ(ranks->world_size(), 1);
  EXPECT_TRUE(ranks->is_rank0());
  EXPECT_EQ(ranks->sampling_batches(37, 8), (std::vector<int64_t>{0, 8, 16, 24, 32}));
  EXPECT_EQ(ranks->share_from_rank0("run_folder", "runs/x"), "runs/x");
  const genfw::DrawnRows own = drawn_by(*ranks, kDrawn);
  const genfw::DrawnRows all = ranks->gather_drawn(own, 8);
  EXPECT_TRUE(all.samples.is_same(own.samples));
  EXPECT_TRUE(torch::equal(all.nfe_of_batches, torch::arange(10, 15, torch::kLong)));
  auto service = identity_features();
  ranks->offer_sample_extraction(*service, all.samples);
  EXPECT_TRUE(torch::equal(service->of(all.samples).features, kDrawn));
  ranks->end_sample_extraction(*service);
  EXPECT_EQ(service->sample_extractions(), 1);
}

// Two ranks (threads of a gloo group): rank 0 gets every rank's samples and NFE
// in the single-process order; when its metric asks for the samples' features,
// rank 1 extracts its own share (its service made only then), and when no metric
// asks, rank 1 is released without extracting. Features of any other tensor
// (the floor's real data) are rank 0's own.
TEST(RankCoordinator, TwoRanksGatherInOrderAndExtractTheirOwnShareWhenAsked) {
  for (bool metric_asks : {true, false}) {
    on_two_ranks([&](genfw::DataParallel& group) {
      auto ranks = genfw::data_parallel_coordinator(group);
      const std::vector<int64_t> batches_of_rank = group.rank() == 0 ? std::vector<int64_t>{0, 16, 32}
                                                                     : std::vector<int64_t>{8, 24};
      EXPECT_EQ(ranks->sampling_batches(37, 8), batches_of_rank);
      const genfw::DrawnRows all = ranks->gather_drawn(drawn_by(*ranks, kDrawn), 8);
      auto service = identity_features();
      if (group.rank() != 0) {
        EXPECT_FALSE(all.samples.defined());
        int services_made = 0;
        ranks->serve_sample_extraction([&]() -> genfw::FeatureService& {
          ++services_made;
          return *service;
        });
        EXPECT_EQ(services_made, metric_asks ? 1 : 0);
        return;
      }
      EXPECT_TRUE(torch::equal(all.samples, kDrawn));
      EXPECT_TRUE(torch::equal(all.nfe_of_batches, torch::arange(10, 15, torch::kLong)));
      ranks->offer_sample_extraction(*service, all.samples);
      if (metric_asks) {
        EXPECT_TRUE(torch::equal(service->of(all.samples).features, kDrawn));
      }
      const torch::Tensor real = torch::ones({3, 2});
      EXPECT_TRUE(torch::equal(service->of(real).features, real));  // not the drawn set: no rank is asked
      ranks->end_sample_extraction(*service);
    });
  }
}

TEST(Distributed, LaunchVariablesOfTorchrunAndSlurm) {
  auto with = [](const std::map<std::string, std::string>& variables) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                             "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE",
                             "SLURM_JOB_NODELIST", "SLURM_JOB_ID", "SLURM_TASKS_PER_NODE"}) {
      ::unsetenv(name);
    }
    for (const auto& [name, value] : variables) ::setenv(name.c_str(), value.c_str(), 1);
    return genfw::LaunchEnvironment::from_environment();
  };
  auto single = with({});
  EXPECT_EQ(single.world_size, 1);
  EXPECT_EQ(single.launcher, "none");
  auto torchrun = with(rank_environment(1, 2, 29400));
  EXPECT_EQ(torchrun.rank, 1);
  EXPECT_EQ(torchrun.world_size, 2);
  EXPECT_EQ(torchrun.master_port, 29400);
  auto slurm = with({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                     {"SLURM_NTASKS_PER_NODE", "4(x2)"}, {"SLURM_JOB_NODELIST", "gpu[07-08]"}, {"SLURM_JOB_ID", "123456"}});
  EXPECT_EQ(slurm.launcher, "slurm");
  EXPECT_EQ(slurm.rank, 5);
  EXPECT_EQ(slurm.local_world_size, 4);
  EXPECT_EQ(slurm.master_addr, "gpu07");
  EXPECT_EQ(slurm.master_port, 29500 + 456);
  EXPECT_CONTAINS(error_of([&] { with({{"RANK", "0"}, {"WORLD_SIZE", "2"}}); }), "MASTER_ADDR and MASTER_PORT");
  EXPECT_CONTAINS(error_of([&] { with({{"RANK", "2"}, {"WORLD_SIZE", "2"}}); }), "rank 2 is not in [0, world size 2)");
  EXPECT_CONTAINS(error_of([&] { with({{"RANK", "x"}, {"WORLD_SIZE", "2"}}); }), "RANK='x' is not an integer");
  with({});
}

TEST(Distributed, CollectivesAverageBroadcastAndCatchDivergedReplicas) {
  std::vector<std::string> errors(2);
  on_two_ranks([&](genfw::DataParallel& group) {
    const double r = group.rank();
    // Three gradients of 4 bytes × 3 elements in 8-byte buckets: three buckets.
    group.bucket_bytes = 8;
    std::vector<torch::Tensor> parameters;
    for (int i = 0; i < 3; ++i) {
      parameters.push_back(torch::zeros({3}, torch::requires_grad()));
      parameters.back().mutable_grad() = torch::full({3}, float(r + 1 + i));
    }
    parameters.push_back(torch::zeros({2}, torch::requires_grad()));  // no gradient: skipped on every rank
    group.average_gradients(parameters);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(parameters[size_t(i)].grad(), torch::full({3}, 1.5f + float(i))));
    EXPECT_FALSE(parameters[3].grad().defined());

    std::vector<torch::Tensor> weights{torch::full({2, 2}, r)};
    group.broadcast_from_rank0(weights);
    EXPECT_TRUE(torch::equal(weights[0], torch::zeros({2, 2})));
    group.check_replicas_agree(weights, "weights");  // equal now: no error

    EXPECT_TRUE(torch::allclose(group.mean_over_ranks(torch::tensor({r, 2 * r}, torch::kFloat64)),
                                torch::tensor({0.5, 1.0}, torch::kFloat64)));
    EXPECT_EQ(group.share_from_rank0("folder", r == 0 ? "runs/a" : "runs/b"), "runs/a");
    EXPECT_EQ(group.gather_strings("device", "cpu:" + std::to_string(int(r))), (std::vector<std::string>{"cpu:0", "cpu:1"}));

    weights[0].add_(r);  // rank 1's replica drifts
    try {
      group.check_replicas_agree(weights, "parameters at step 7");
    } catch (const genfw::Error& e) {
      errors[size_t(group.rank())] = e.what();
    }
  });
  for (const auto& message : errors) {  // both ranks stop, naming the rank that differs
    EXPECT_CONTAINS(message, "the parameters at step 7 of rank(s) 1 differ from rank 0's");
  }
}

TEST(Distributed, GatherRowsToRank0PadsAndTrims) {
  on_two_ranks([&](genfw::DataParallel& group) {
    // Rank 0 has 3 rows, rank 1 has none, then 1 and 4: the gather pads to the longest and trims back.
    const std::vector<std::vector<int64_t>> counts{{3, 0}, {1, 4}};
    for (const auto& count : counts) {
      const int64_t mine = count[size_t(group.rank())];
      torch::Tensor rows = torch::full({mine, 2, 3}, float(group.rank() + 1));
      std::vector<torch::Tensor> gathered = group.gather_rows_to_rank0(rows, "test rows");
      if (group.rank() != 0) {
        EXPECT_TRUE(gathered.empty());
        continue;
      }
      ASSERT_EQ(gathered.size(), 2u);
      for (int r = 0; r < 2; ++r) {
        EXPECT_TRUE(torch::equal(gathered[size_t(r)], torch::full({count[size_t(r)], 2, 3}, float(r + 1))));
      }
    }
  });
}

// Bit-identical is not expected: one process averages 16 per-point gradients in
// one reduction, two processes average 8 and 8 and then the two means (another
// rounding order of the same float32 sum). The difference is float32 rounding:
// below 1e-5 relative over 30 steps of this model.
TEST(Distributed, TwoProcessesGiveTheLossCurveOfOneWithTheSameGlobalBatch) {
  TempDir dir;
  const std::string toml = dir.file("fx.toml", experiment(30));
  pid_t single = start_runner({toml, "--out", dir / "one"}, {}, dir / "one.log");
  ASSERT_EQ(wait_for(single), 0) << text_of(dir / "one.log");
  pid_t launcher = start_runner({toml, "--out", dir / "two", "--nproc", "2"}, {}, dir / "two.log");
  ASSERT_EQ(wait_for(launcher), 0) << text_of(dir / "two.log");  // checkpoints checked parameter digests across ranks

  auto one = losses(dir / "one/fx.h5"), two = losses(dir / "two/fx.h5");
  ASSERT_EQ(one.size(), 30u);
  ASSERT_EQ(two.size(), one.size());
  double worst = 0;
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(two[i].step, one[i].step);
    worst = std::max(worst, std::abs(two[i].value - one[i].value) / std::abs(one[i].value));
  }
  std::cerr << "largest relative loss difference, 1 vs 2 processes: " << worst << "\n";
  EXPECT_LT(worst, 1e-5);
  auto log = genfw::RunLog::open(dir / "two/fx.h5", false);
  EXPECT_EQ(log.read_string("/env/world_size"), "2");
  EXPECT_EQ(log.read_string("/env/backend"), "gloo");
  EXPECT_EQ(log.read_string("/env/devices"), "cpu,cpu");
  EXPECT_EQ(log.attribute("/", "status"), "completed");
  EXPECT_EQ(genfw::RunLog::open(dir / "one/fx.h5", false).read_string("/env/world_size"), "1");
}

// ActNorm initialises from its first batch. Data-parallel, each rank saw only its
// slice, so the replicas differed ("the replicas diverged" at the first checkpoint);
// now every rank takes the global batch's statistics, and two processes follow one
// process's loss curve (to float32 rounding: moments averaged over ranks).
TEST(Distributed, ActNormInitialisesFromTheGlobalBatchSoTwoProcessesMatchOne) {
  TempDir dir;
  const std::string toml = std::string(GENFW_TEST_SOURCE_DIR) + "/experiments/realnvp_toy2d.toml";
  const std::vector<std::string> sets{"--set", "train.steps=20", "--set", "train.log_every=1", "--set",
                                      "train.checkpoint_every=10", "--set", "sampler.num_samples=64", "--set",
                                      "sampler.batch_size=64"};
  std::vector<std::string> one_args{toml, "--out", dir / "one"}, two_args{toml, "--out", dir / "two", "--nproc", "2"};
  one_args.insert(one_args.end(), sets.begin(), sets.end());
  two_args.insert(two_args.end(), sets.begin(), sets.end());
  pid_t single = start_runner(one_args, {}, dir / "one.log");
  ASSERT_EQ(wait_for(single), 0) << text_of(dir / "one.log");
  pid_t launcher = start_runner(two_args, {}, dir / "two.log");
  ASSERT_EQ(wait_for(launcher), 0) << text_of(dir / "two.log");  // replicas compared at both checkpoints
  auto one = losses(dir / "one/realnvp_toy2d.h5"), two = losses(dir / "two/realnvp_toy2d.h5");
  ASSERT_EQ(one.size(), 20u);
  ASSERT_EQ(two.size(), one.size());
  double worst = 0;
  for (size_t i = 0; i < one.size(); ++i) worst = std::max(worst, std::abs(two[i].value - one[i].value) / std::abs(one[i].value));
  std::cerr << "largest relative loss difference, RealNVP with ActNorm, 1 vs 2 processes: " << worst << "\n";
  EXPECT_LT(worst, 1e-4);
}

// Rank 1 is told another --out: it still uses rank 0's folder (for resume) and
// creates nothing, neither there nor in its own.
TEST(Distributed, OnlyRank0WritesTheRunFolder) {
  TempDir dir;
  const std::string toml = dir.file("fx.toml", experiment(12));
  const int port = free_port();
  auto environment = [&](int rank) {  // the run's own files only, however the test binary is started
    auto variables = rank_environment(rank, 2, port);
    variables["GENFW_PLOTS"] = "off";
    return variables;
  };
  pid_t rank0 = start_runner({toml, "--out", dir / "run"}, environment(0), dir / "rank0.log");
  pid_t rank1 = start_runner({toml, "--out", dir / "rank1_out"}, environment(1), dir / "rank1.log");
  ASSERT_EQ(wait_for(rank1), 0) << text_of(dir / "rank1.log");
  ASSERT_EQ(wait_for(rank0), 0) << text_of(dir / "rank0.log");
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir / "run")) files.insert(entry.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"checkpoint.pt", "fx.h5", "fx.png"}));
  EXPECT_FALSE(fs::exists(dir / "rank1_out"));
  EXPECT_EQ(text_of(dir / "rank1.log"), "");  // no progress, no run file path: rank 0 reports
}

// Sampling is sharded (round-robin batches) and gathered to rank 0: 2 processes
// draw exactly the samples of 1 (the same batches, the same per-sample noise),
// so the metrics of the 2-process run equal the 1-process ones too.
TEST(Distributed, TwoProcessesDrawTheSamplesAndMetricsOfOne) {
  TempDir dir;
  const std::string toml = dir.file("drawn.toml", sampled_experiment());
  auto run = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> arguments{toml, "--out", dir / name, "--cache-dir", dir / (name + "_cache")};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    pid_t runner = start_runner(arguments, {}, dir / (name + ".log"));
    EXPECT_EQ(wait_for(runner), 0) << text_of(dir / (name + ".log"));
    return genfw::RunLog::open(dir / (name + "/drawn.h5"), false);
  };
  genfw::RunLog one = run("one", {});
  genfw::RunLog two = run("two", {"--nproc", "2"});
  const torch::Tensor samples_one = one.read_tensor("/samples"), samples_two = two.read_tensor("/samples");
  ASSERT_EQ(samples_two.sizes(), samples_one.sizes());
  EXPECT_EQ(samples_one.size(0), 37);
  std::cerr << "largest sample difference, 1 vs 2 processes: "
            << (samples_two - samples_one).abs().max().item<double>() << "\n";
  EXPECT_TRUE(torch::equal(samples_two, samples_one));  // the same arithmetic on the same batches
  EXPECT_EQ(two.read_scalar("/timing/nfe"), one.read_scalar("/timing/nfe"));
  EXPECT_TRUE(torch::equal(two.read_tensor("/trajectory/x"), one.read_tensor("/trajectory/x")));
  const std::vector<std::string> metrics = one.children("/metrics");
  EXPECT_GE(metrics.size(), 2u);  // fid, kid (and what they report besides)
  EXPECT_EQ(two.children("/metrics"), metrics);
  for (const std::string& group : {std::string("/metrics/"), std::string("/floor/")}) {
    for (const auto& name : metrics) {
      const double value_one = one.read_series(group + name).at(0).value;
      const double value_two = two.read_series(group + name).at(0).value;
      std::cerr << group << name << ": 1 process " << value_one << ", 2 processes " << value_two << "\n";
      EXPECT_EQ(value_two, value_one) << group << name;
    }
  }
  // Rank 1 drew its share but reported nothing: one "sampled" line, from rank 0.
  const std::string output = text_of(dir / "two.log");
  EXPECT_EQ(output.find("sampled 37"), output.rfind("sampled 37")) << output;
  EXPECT_CONTAINS(output, "sampled 37");
}

// Feature extraction is sharded too: each rank extracts the samples it drew and
// rank 0 gathers the features. Through `runner sample --nproc 2` on a trained
// run, with an empty cache first: its rank 0 trains the classifier and caches it
// before rank 1 loads it.
TEST(Distributed, TwoProcessesExtractTheFeaturesOfOne) {
  TempDir dir;
  const std::string toml = dir.file("images.toml", image_experiment(random_cifar10(dir)));
  auto run = [&](const std::string& name, std::vector<std::string> arguments) {
    arguments.insert(arguments.end(), {"--out", dir / name, "--cache-dir", dir / (name == "trained" ? "c0" : "c1"),
                                       "--dist-timeout", "60"});
    pid_t runner = start_runner(arguments, {}, dir / (name + ".log"));
    EXPECT_EQ(wait_for(runner), 0) << text_of(dir / (name + ".log"));
    const std::string file = name == "trained" ? "/images.h5" : "/images-prior.h5";
    return genfw::RunLog::open(dir / (name + file), false);
  };
  genfw::RunLog trained = run("trained", {toml});
  auto resample = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> arguments{"sample", trained.path(), "--sampler", "prior",
                                       "--set", "sampler.num_samples=45", "--set", "sampler.batch_size=10"};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return run(name, arguments);
  };
  genfw::RunLog two = resample("two", {"--nproc", "2"});
  genfw::RunLog one = resample("one", {});
  EXPECT_CONTAINS(text_of(dir / "two.log"), "trained the in-domain classifier");
  EXPECT_TRUE(torch::equal(two.read_tensor("/samples"), one.read_tensor("/samples")));
  EXPECT_TRUE(torch::equal(one.read_tensor("/samples"), trained.read_tensor("/samples")));
  for (const std::string value : {"fid", "inception_score"}) {
    const double expected = one.read_series("/metrics/" + value).at(0).value;
    const double got = two.read_series("/metrics/" + value).at(0).value;
    std::cerr << value << ": 1 process " << expected << ", 2 processes " << got << ", difference "
              << got - expected << "\n";
    // The same rows through the same network, in other extraction batches:
    // equal up to the rounding of batched kernels.
    EXPECT_NEAR(got, expected, 1e-5 * std::abs(expected)) << value;
  }
  EXPECT_EQ(two.read_series("/floor/fid").at(0).value, one.read_series("/floor/fid").at(0).value);
}

// Sampling has no collective until its end: a rank killed mid-way is noticed by
// the others' heartbeat checks within the timeout, not after their own share.
TEST(Distributed, KilledRankMidSamplingEndsTheOtherWithinTheTimeout) {
  TempDir dir;
  std::string text = sampled_experiment();
  text.replace(text.find("num_samples = 37"), 16, "num_samples = 400000");
  text.replace(text.find("batch_size = 8"), 14, "batch_size = 1000");
  text.replace(text.find("num_train_timesteps = 50"), 24, "num_train_timesteps = 1000");
  const std::string toml = dir.file("slow.toml", text);
  const int port = free_port();
  const std::string out = dir / "slow";
  std::vector<std::string> arguments{toml, "--out", out, "--dist-timeout", "3", "--cache-dir", dir / "cache"};
  pid_t rank0 = start_runner(arguments, rank_environment(0, 2, port), dir / "rank0.log");
  pid_t rank1 = start_runner(arguments, rank_environment(1, 2, port), dir / "rank1.log");
  for (int i = 0; i < 600 && text_of(dir / "rank0.log").find("sampling") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto start = Clock::now();
  ::kill(rank1, SIGKILL);
  const int status = wait_for(rank0);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  wait_for(rank1);
  const std::string output = text_of(dir / "rank0.log");
  std::cerr << "rank 0 ended " << seconds << " s after rank 1 was killed mid-sampling\n";
  EXPECT_NE(status, 0) << output;
  EXPECT_LT(seconds, 3.0 + 5.0);  // the 3 s timeout, plus slack on a loaded machine
  EXPECT_CONTAINS(output, "rank 1 has not been heard from");
  EXPECT_EQ(genfw::RunLog::open(out + "/drawn.h5", false).attribute("/", "status").rfind("failed: ", 0), 0u);
}

// The same with a sampler that reports no steps (annealed_langevin, record_every = 0)
// in one long batch: the denoiser's evaluation hook checks the heartbeat, so the
// other rank still ends within the timeout.
TEST(Distributed, KilledRankDuringANonReportingSamplerEndsTheOtherWithinTheTimeout) {
  TempDir dir;
  const std::string toml = dir.file("quiet.toml", "name = \"quiet\"\nseed = 3\n" + two_mode_mixture_data(200) + R"(
[model]
plugin = "analytic_gmm"
means = [[-2.0, 0.0], [2.0, 0.0]]
weights = [0.5, 0.5]
stds = [0.5, 0.5]
[sampler]
plugin = "annealed_langevin"
steps_per_level = 1000000
num_samples = 100000
batch_size = 50000
[log]
progress = "plain"
)");
  const int port = free_port();
  const std::string out = dir / "quiet";
  std::vector<std::string> arguments{toml, "--out", out, "--dist-timeout", "3", "--cache-dir", dir / "cache"};
  pid_t rank0 = start_runner(arguments, rank_environment(0, 2, port), dir / "rank0.log");
  pid_t rank1 = start_runner(arguments, rank_environment(1, 2, port), dir / "rank1.log");
  for (int i = 0; i < 600 && text_of(dir / "rank0.log").find("sampling: ") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto start = Clock::now();
  ::kill(rank1, SIGKILL);
  const int status = wait_for(rank0);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  wait_for(rank1);
  const std::string output = text_of(dir / "rank0.log");
  std::cerr << "rank 0 ended " << seconds << " s after rank 1 was killed during annealed_langevin\n";
  EXPECT_NE(status, 0) << output;
  EXPECT_LT(seconds, 3.0 + 5.0) << output;  // the 3 s timeout, plus slack on a loaded machine
  EXPECT_CONTAINS(output, "rank 1 has not been heard from");
  EXPECT_EQ(genfw::RunLog::open(out + "/quiet.h5", false).attribute("/", "status").rfind("failed: ", 0), 0u);
}

// A checkpoint holds global state only: 2 processes to step 13 (checkpoint at
// 10), resumed by 1 process to 30, follow the 1-process curve.
TEST(Distributed, ResumesWithAnotherWorldSize) {
  TempDir dir;
  pid_t single = start_runner({dir.file("full.toml", experiment(30)), "--out", dir / "full"}, {}, dir / "full.log");
  ASSERT_EQ(wait_for(single), 0) << text_of(dir / "full.log");
  pid_t two = start_runner({dir.file("part.toml", experiment(13)), "--out", dir / "part", "--nproc", "2"}, {},
                           dir / "part.log");
  ASSERT_EQ(wait_for(two), 0) << text_of(dir / "part.log");
  pid_t resumed = start_runner({dir / "part.toml", "--out", dir / "part", "--resume", "--resume-set", "train.steps=30"},
                               {}, dir / "rest.log");
  ASSERT_EQ(wait_for(resumed), 0) << text_of(dir / "rest.log");
  {  // each segment's world size and launcher stay in the run file
    auto log = genfw::RunLog::open(dir / "part/fx.h5", false);
    EXPECT_EQ(log.read_string("/env/segments/0/world_size"), "2");
    EXPECT_EQ(log.read_string("/env/segments/0/launcher"), "torchrun");  // --nproc sets torchrun's variables
    EXPECT_EQ(log.read_string("/env/segments/1/world_size"), "1");
    EXPECT_EQ(log.read_string("/env/segments/1/launcher"), "none");
    EXPECT_EQ(log.read_string("/env/segments/1/from_step"), "13");
  }
  auto full = losses(dir / "full/fx.h5"), part = losses(dir / "part/fx.h5");
  ASSERT_EQ(part.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    EXPECT_EQ(part[i].step, full[i].step);
    EXPECT_NEAR(part[i].value, full[i].value, 1e-5 * std::abs(full[i].value)) << "step " << i;
  }
}

TEST(Distributed, KilledRankEndsTheOtherWithinTheTimeout) {
  TempDir dir;
  Ended ended = stop_rank1_mid_training(dir, SIGKILL);
  std::cerr << "rank 0 ended " << ended.seconds << " s after rank 1 was killed\n";
  EXPECT_NE(ended.status, 0);
  EXPECT_LT(ended.seconds, 3.0 + 5.0);  // the 3 s timeout, plus start-up slack on a loaded machine
  EXPECT_CONTAINS(ended.output, "data-parallel rank 0 of 2");
  EXPECT_CONTAINS(ended.output, "failed or timed out (--dist-timeout 3 s)");
  // The dead rank is named, and no plugin is blamed for the network.
  EXPECT_CONTAINS(ended.output, "rank 1 stopped (it died or hangs)");
  EXPECT_EQ(ended.output.find("failed in train_step()"), std::string::npos) << ended.output;
  torch::serialize::InputArchive checkpoint;  // the last checkpoint stays usable
  EXPECT_NO_THROW(checkpoint.load_from(dir / "long/checkpoint.pt"));
}

TEST(Distributed, HungRankEndsTheOtherWithinTheTimeout) {
  TempDir dir;
  Ended ended = stop_rank1_mid_training(dir, SIGSTOP);
  std::cerr << "rank 0 ended " << ended.seconds << " s after rank 1 was stopped\n";
  EXPECT_NE(ended.status, 0);
  EXPECT_GE(ended.seconds, 2.0);  // it did wait for the timeout
  EXPECT_LT(ended.seconds, 3.0 + 5.0);
  EXPECT_CONTAINS(ended.output, "data-parallel rank 0 of 2");
}

TEST(Distributed, LauncherNamesTheRankThatFailed) {
  TempDir dir;
  // A missing experiment fails both ranks before any collective: the first to exit is named.
  pid_t launcher = start_runner({dir / "missing.toml", "--nproc", "2", "--dist-timeout", "3"}, {}, dir / "l.log");
  EXPECT_NE(wait_for(launcher), 0);
  EXPECT_CONTAINS(text_of(dir / "l.log"), "runner --nproc: rank ");
  EXPECT_CONTAINS(text_of(dir / "l.log"), "exited with status 1");
}

// The pid of the --nproc launcher's worker of rank `rank` (its child whose environment says RANK=rank).
pid_t worker_of(pid_t launcher, int rank) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      const auto after_name = text.rfind(')');
      if (after_name == std::string::npos) continue;
      std::istringstream fields(text.substr(after_name + 2));
      std::string state;
      pid_t parent = 0;
      fields >> state >> parent;
      if (parent != launcher) continue;
      std::ifstream environ(entry.path() / "environ");
      for (std::string variable; std::getline(environ, variable, '\0');) {
        if (variable == "RANK=" + std::to_string(rank)) return std::stoi(name);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// A worker stopped under --nproc: the launcher names it (the rank that exits first only reports
// it), lets the stopped one act on its SIGTERM, and ends within --dist-timeout plus a few
// seconds (it named the healthy rank 0 and then waited out a 10 s grace on the stopped one).
TEST(Distributed, LauncherNamesAStoppedRankAndEndsWithinTheTimeout) {
  TempDir dir;
  const std::string toml = dir.file("long.toml", experiment(100000, "sleep_seconds = 0.01\n"));
  const std::string out = dir / "long";
  pid_t launcher = start_runner({toml, "--out", out, "--nproc", "2", "--dist-timeout", "3"}, {}, dir / "l.log");
  for (int i = 0; i < 600 && !fs::exists(out + "/checkpoint.pt"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const pid_t rank1 = worker_of(launcher, 1);
  ASSERT_GT(rank1, 0) << text_of(dir / "l.log");
  const auto start = Clock::now();
  ::kill(rank1, SIGSTOP);
  EXPECT_NE(wait_for(launcher), 0);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cerr << "the launcher ended " << seconds << " s after rank 1 was stopped\n";
  EXPECT_LT(seconds, 3.0 + 5.0);  // the timeout, plus start-up slack on a loaded machine
  const std::string log = text_of(dir / "l.log");
  EXPECT_CONTAINS(log, "rank 1 stopped (it died or hangs)");  // rank 0's own line
  EXPECT_CONTAINS(log, "and rank(s) 1 stopped by signal 19");   // the launcher's
  EXPECT_NE(genfw::RunLog::open(out + "/fx.h5", false).attribute("/", "status"), "running");
}

// SIGTERM to the --nproc launcher (before: it died, its workers were killed with it, no
// checkpoint, the run left `running`): each worker gets it once, rank 0 saves and marks the run,
// and the printed command continues it with --nproc again.
TEST(Distributed, LauncherHandsASignalOnSoTheRunIsSavedAndContinues) {
  TempDir dir;
  const std::string toml = dir.file("long.toml", experiment(100000, "sleep_seconds = 0.01\n"));
  const std::string out = dir / "long";
  pid_t launcher = start_runner({toml, "--out", out, "--nproc", "2", "--dist-timeout", "5"}, {}, dir / "l.log");
  for (int i = 0; i < 600 && !fs::exists(out + "/checkpoint.pt"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(launcher, SIGTERM);
  EXPECT_EQ(wait_for(launcher), 128 + SIGTERM) << text_of(dir / "l.log");
  const std::string log = text_of(dir / "l.log");
  EXPECT_CONTAINS(log, "interrupted by SIGTERM at training step");
  EXPECT_CONTAINS(log, "--nproc 2 --resume --out");
  EXPECT_EQ(log.find("runner: runner:"), std::string::npos) << "rank 1 says nothing of its own: " << log;
  auto run = genfw::RunLog::open(out + "/fx.h5", false);
  EXPECT_EQ(run.attribute("/", "status").rfind("interrupted", 0), 0u) << run.attribute("/", "status");
  EXPECT_FALSE(run.attribute("/", "checkpoint_step").empty());
}

// A job stopped by a signal and resumed with the same world size follows the job that was never
// stopped, bit for bit, noise included (before: rank 1 reseeded at the resume step; and a rank
// that heard the signal a step before the other left it in an all-reduce: `failed`).
TEST(Distributed, AStoppedAndResumedJobIsBitIdenticalToAnUninterruptedOne) {
  TempDir dir;
  const std::string toml = dir.file("noisy.toml", fixture_experiment(600, "", "sleep_seconds = 0.002\n"));
  pid_t whole = start_runner({toml, "--out", dir / "whole", "--nproc", "2"}, {}, dir / "whole.log");
  ASSERT_EQ(wait_for(whole), 0) << text_of(dir / "whole.log");
  pid_t part = start_runner({toml, "--out", dir / "part", "--nproc", "2"}, {}, dir / "part.log");
  for (int i = 0; i < 600 && !fs::exists(dir / "part/checkpoint.pt"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(part, SIGTERM);
  ASSERT_EQ(wait_for(part), 128 + SIGTERM) << text_of(dir / "part.log");
  EXPECT_EQ(genfw::RunLog::open(dir / "part/fx.h5", false).attribute("/", "status").rfind("interrupted", 0), 0u);
  pid_t rest = start_runner({toml, "--out", dir / "part", "--nproc", "2", "--resume"}, {}, dir / "rest.log");
  ASSERT_EQ(wait_for(rest), 0) << text_of(dir / "rest.log");
  const auto expected = losses(dir / "whole/fx.h5"), resumed = losses(dir / "part/fx.h5");
  ASSERT_EQ(resumed.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(resumed[i].step, expected[i].step);
    ASSERT_EQ(resumed[i].value, expected[i].value) << "loss at step " << expected[i].step;
  }
  EXPECT_TRUE(torch::equal(genfw::RunLog::open(dir / "part/fx.h5", false).read_tensor("/samples"),
                           genfw::RunLog::open(dir / "whole/fx.h5", false).read_tensor("/samples")));
}

// Ranks started with different plans (here another batch size on rank 1) would each train
// and sample their own experiment into one run: every rank refuses before anything is built.
TEST(Distributed, RanksWithAnotherPlanAreRefusedNamingTheDifference) {
  TempDir dir;
  const std::string toml = dir.file("plan.toml", experiment(20));
  const int port = free_port();
  const std::string out = dir / "plan";
  pid_t rank0 = start_runner({toml, "--out", out, "--dist-timeout", "10"}, rank_environment(0, 2, port), dir / "r0.log");
  pid_t rank1 = start_runner({toml, "--out", out, "--dist-timeout", "10", "--set", "train.batch_size=32"},
                             rank_environment(1, 2, port), dir / "r1.log");
  EXPECT_NE(wait_for(rank0), 0);
  EXPECT_NE(wait_for(rank1), 0);
  EXPECT_CONTAINS(text_of(dir / "r0.log"), "data-parallel: rank(s) 1 resolved another experiment than rank 0");
  EXPECT_CONTAINS(text_of(dir / "r1.log"), "in [train] rank 0 has `batch_size = 16` where this rank has `batch_size = 32`");
  EXPECT_FALSE(fs::exists(out + "/fx.h5"));
}

// Rank 0 serves the job's store: when it dies or hangs, rank 1 says so, instead of "another rank".
TEST(Distributed, ARankAbove0NamesRank0WhenItDiesOrHangs) {
  for (int signal_number : {SIGKILL, SIGSTOP}) {
    TempDir dir;
    Ended ended = stop_a_rank_mid_training(dir, signal_number, 0);
    std::cerr << "rank 1 ended " << ended.seconds << " s after rank 0 got signal " << signal_number << "\n";
    EXPECT_NE(ended.status, 0);
    EXPECT_LT(ended.seconds, 3.0 + 4.0 + 5.0);  // the timeout, the 4 s probe, start-up slack on a loaded machine
    EXPECT_CONTAINS(ended.output, "data-parallel rank 1 of 2");
    EXPECT_CONTAINS(ended.output, "rank 0 stopped (it died or hangs");
  }
}

// A rank that never comes: rank 0 waits for it once, within --dist-timeout, and says how many
// joined (it waited the timeout twice, then printed the process group's stack trace).
TEST(Distributed, ARendezvousThatIsNeverCompleteEndsWithinTheTimeout) {
  TempDir dir;
  const auto start = Clock::now();
  pid_t rank0 = start_runner({dir.file("alone.toml", experiment(5)), "--out", dir / "alone", "--dist-timeout", "3"},
                             rank_environment(0, 2, free_port()), dir / "rank0.log");
  EXPECT_NE(wait_for(rank0), 0);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::cerr << "rank 0 alone ended after " << seconds << " s\n";
  EXPECT_LT(seconds, 3.0 + 3.0);  // the timeout, plus start-up slack on a loaded machine
  EXPECT_CONTAINS(text_of(dir / "rank0.log"), "1 of 2 ranks joined the rendezvous");
  EXPECT_EQ(text_of(dir / "rank0.log").find("frame #"), std::string::npos);
}

// MASTER_PORT held by a program that accepts connections and never answers (before: rank 1
// waited forever inside the store's client): rank 1 gives up at the timeout, saying what it met.
TEST(Distributed, AForeignProgramOnMasterPortEndsRank1WithinTheTimeout) {
  TempDir dir;
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);  // the kernel accepts; nobody answers
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const auto start = Clock::now();
  pid_t rank1 = start_runner({dir.file("x.toml", experiment(5)), "--out", dir / "x", "--dist-timeout", "3"},
                             rank_environment(1, 2, ntohs(address.sin_port)), dir / "rank1.log");
  EXPECT_NE(wait_for(rank1), 0);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(listener);
  std::cerr << "rank 1 ended after " << seconds << " s\n";
  EXPECT_LT(seconds, 3.0 + 2.0 + 4.0);  // the timeout, the slack for rank 0's answer, start-up on a loaded machine
  EXPECT_CONTAINS(text_of(dir / "rank1.log"), "did not answer within 3 s (--dist-timeout): what listens there is not "
                                              "rank 0 of this job");
}

// Evaluations during training, data-parallel: every evaluation is a new sample set whose
// features the ranks extract together. The second one reused the first one's features on
// rank 0 and never told rank 1, which waited forever.
TEST(Distributed, EvaluationsDuringTrainingEachExtractTheirOwnSamples) {
  TempDir dir;
  const std::string toml = dir.file("evaluated.toml", "name = \"evaluated\"\nseed = 2\n" + two_mode_mixture_data(200) + R"(
[model]
plugin = "eps_mlp"
hidden = 16
layers = 2
num_train_timesteps = 50
[objective]
plugin = "ddpm"
[train]
steps = 30
batch_size = 16
[sampler]
plugin = "ddpm"
num_samples = 40
batch_size = 10
[features]
extractor = "identity"
[[metrics]]
plugin = "fid"
[eval]
every = 10
[log]
progress = "off"
)");
  pid_t launcher = start_runner({toml, "--nproc", "2", "--dist-timeout", "20", "--out", dir / "run"},
                                {{"GENFW_PLOTS", "off"}}, dir / "run.log");
  ASSERT_EQ(wait_for(launcher), 0) << text_of(dir / "run.log");
  const auto rows = genfw::RunLog::open(dir / "run/evaluated.h5", false).read_series("/eval/fid");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_NE(rows[0].value, rows[1].value);  // each evaluation scored its own samples
  EXPECT_NE(rows[1].value, rows[2].value);
}
