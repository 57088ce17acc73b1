// Data-parallel training and sampling on c10d: launch variables, rendezvous,
// process group, the collectives the trainer and sampling need, and `runner
// --nproc`'s local launcher.
#include "genfw/distributed.hpp"
#include "genfw/replicas.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <future>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL  // defined by LibTorch's CMake target when it was built with NCCL (CUDA)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "genfw/digest.hpp"
#include "genfw/version.hpp"
#include "genfw/error.hpp"
#include "genfw/registry.hpp"
#include "genfw/run_log.hpp"
#include "torch_compat.hpp"

namespace genfw {

// ---- launch variables -------------------------------------------------------

namespace {

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

int integer_variable(const char* name, int fallback) {
  auto text = environment(name);
  if (!text) return fallback;
  char* end = nullptr;
  long value = std::strtol(text->c_str(), &end, 10);
  // SLURM writes per-node counts as "2(x3)": the leading number is this node's.
  GENFW_CHECK(end != text->c_str() && (*end == '\0' || *end == '('), "environment variable ", name, "='", *text,
              "' is not an integer");
  return int(value);
}

// The first host of a SLURM node list: "gpu[03-04,07]" → "gpu03", "a,b" → "a".
std::string first_slurm_host(const std::string& nodes) {
  const auto bracket = nodes.find('[');
  if (bracket == std::string::npos) return nodes.substr(0, nodes.find(','));
  const auto first_end = nodes.find_first_of("-,]", bracket + 1);
  return nodes.substr(0, bracket) + nodes.substr(bracket + 1, first_end - bracket - 1);
}

}  // namespace

LaunchEnvironment LaunchEnvironment::from_environment() {
  LaunchEnvironment launch;
  if (environment("RANK") || environment("WORLD_SIZE")) {
    GENFW_CHECK(environment("RANK") && environment("WORLD_SIZE"),
                "data-parallel launch: RANK and WORLD_SIZE must be set together (torchrun sets both)");
    launch.launcher = "torchrun";
    launch.rank = integer_variable("RANK", 0);
    launch.world_size = integer_variable("WORLD_SIZE", 1);
    launch.local_rank = integer_variable("LOCAL_RANK", launch.rank);
    launch.local_world_size = integer_variable("LOCAL_WORLD_SIZE", launch.world_size);
  } else if (environment("SLURM_PROCID") && environment("SLURM_NTASKS")) {
    launch.launcher = "slurm";
    launch.rank = integer_variable("SLURM_PROCID", 0);
    launch.world_size = integer_variable("SLURM_NTASKS", 1);
    launch.local_rank = integer_variable("SLURM_LOCALID", 0);
    launch.local_world_size = integer_variable("SLURM_NTASKS_PER_NODE", integer_variable("SLURM_TASKS_PER_NODE", 1));
  }
  launch.master_addr = environment("MASTER_ADDR").value_or("");
  launch.master_port = integer_variable("MASTER_PORT", 0);
  if (launch.launcher == "slurm") {
    if (launch.master_addr.empty() && environment("SLURM_JOB_NODELIST")) {
      launch.master_addr = first_slurm_host(*environment("SLURM_JOB_NODELIST"));
    }
    if (launch.master_port == 0) launch.master_port = 29500 + integer_variable("SLURM_JOB_ID", 0) % 1000;
  }
  GENFW_CHECK(launch.world_size >= 1 && launch.rank >= 0 && launch.rank < launch.world_size,
              "data-parallel launch (", launch.launcher, "): rank ", launch.rank, " is not in [0, world size ",
              launch.world_size, ")");
  GENFW_CHECK(launch.local_world_size >= 1 && launch.local_rank >= 0 && launch.local_rank < launch.local_world_size,
              "data-parallel launch (", launch.launcher, "): local rank ", launch.local_rank,
              " is not in [0, local world size ", launch.local_world_size, ")");
  if (launch.world_size > 1) {
    GENFW_CHECK(!launch.master_addr.empty() && launch.master_port > 0 && launch.master_port < 65536,
                "data-parallel launch (", launch.launcher, ", world size ", launch.world_size,
                "): MASTER_ADDR and MASTER_PORT must name rank 0's host and a free TCP port (got '",
                launch.master_addr, "' and ", launch.master_port, ")");
  }
  return launch;
}

void check_global_batch(int64_t batch_size, int world_size) {
  GENFW_CHECK(batch_size % world_size == 0, "[train] batch_size = ", batch_size, " is the global batch: it must be ",
              "divisible by the world size ", world_size, " so that every rank takes an equal share");
}

torch::Tensor rank_shard(const torch::Tensor& global_indices, int rank, int world_size) {
  check_global_batch(global_indices.size(0), world_size);
  const int64_t share = global_indices.size(0) / world_size;
  return global_indices.slice(0, rank * share, (rank + 1) * share);
}

std::vector<int64_t> sampling_batches_of_rank(int64_t total, int64_t batch_size, int rank, int world_size) {
  GENFW_CHECK(batch_size >= 1, "[sampler] batch_size = ", batch_size, ": must be at least 1");
  std::vector<int64_t> firsts;
  for (int64_t first = int64_t(rank) * batch_size; first < total; first += int64_t(world_size) * batch_size) {
    firsts.push_back(first);
  }
  return firsts;
}

torch::Tensor rows_in_global_order(const std::vector<torch::Tensor>& rows_of_ranks, int64_t batch_size) {
  // Batch k sits on rank k mod W as that rank's (k / W)-th batch; only the global
  // last batch may be short, and it is its rank's last, so earlier ones are full.
  GENFW_CHECK(!rows_of_ranks.empty(), "rows_in_global_order: no ranks");
  const int64_t world_size = int64_t(rows_of_ranks.size());
  int64_t total = 0;
  for (const auto& rows : rows_of_ranks) total += rows.size(0);
  std::vector<torch::Tensor> batches;
  for (int64_t k = 0, placed = 0; placed < total; ++k) {
    const torch::Tensor& rows = rows_of_ranks[size_t(k % world_size)];
    const int64_t first = (k / world_size) * batch_size;
    batches.push_back(rows.slice(0, first, std::min(first + batch_size, rows.size(0))));
    GENFW_CHECK(batches.back().size(0) > 0, "rows_in_global_order: the ranks' rows are not a round-robin deal of ",
                "batches of ", batch_size, " (batch ", k, " is missing)");
    placed += batches.back().size(0);
  }
  return batches.empty() ? rows_of_ranks.front().slice(0, 0, 0) : torch::cat(batches);
}

// ---- process group ----------------------------------------------------------

struct DataParallel::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<torch_compat::CollectiveBackend> group;
  torch::Device collective_device = torch::kCPU;  // gloo: CPU buffers; nccl: this rank's GPU
  std::map<std::string, int> store_uses;          // a fresh store key for every exchange
  // This rank's heartbeat thread, and when each other rank's counter last moved.
  struct Heartbeat {
    std::mutex mutex;
    std::condition_variable stop;
    bool stopping = false;
    std::promise<void> ended;
  };
  std::thread heartbeat;
  std::shared_ptr<Heartbeat> beat = std::make_shared<Heartbeat>();  // shared with the thread
  std::vector<int64_t> beats_seen;
  std::vector<std::chrono::steady_clock::time_point> heard_at;
  std::chrono::steady_clock::time_point last_check;

  ~Impl() {
    std::future<void> ended = beat->ended.get_future();
    {
      std::lock_guard<std::mutex> lock(beat->mutex);
      beat->stopping = true;
    }
    beat->stop.notify_all();
    if (!heartbeat.joinable()) return;
    // A beat blocked on a store whose server (rank 0) hangs would never return: the thread holds
    // what it uses, so it is left to end with the process instead of hanging the exit.
    if (ended.wait_for(std::chrono::seconds(2)) == std::future_status::ready) {
      heartbeat.join();
    } else {
      heartbeat.detach();
    }
  }
};

namespace {

std::chrono::milliseconds milliseconds(double seconds) {
  return std::chrono::milliseconds(int64_t(seconds * 1000));
}

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0; }

// GLOO_SOCKET_IFNAME picks the interface, as in torch.distributed; a local job stays on loopback.
std::shared_ptr<::gloo::transport::Device> gloo_device(const LaunchEnvironment& launch) {
  if (auto interface = environment("GLOO_SOCKET_IFNAME")) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(*interface);
  }
  if (is_loopback(launch.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

c10::intrusive_ptr<torch_compat::CollectiveBackend> gloo_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                  const LaunchEnvironment& launch, double timeout_seconds) {
  auto options = c10d::ProcessGroupGloo::Options::create(milliseconds(timeout_seconds));
  options->devices.push_back(gloo_device(launch));
  options->threads = 2;  // torch.distributed's default for gloo
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, launch.rank, launch.world_size, options);
}

// Every rank counts itself in; rank 0 waits for all of them within the timeout, so the
// process groups are built only by a complete job. (TCPStore's own wait gives up at the
// timeout without a word, and the group's connection then waited a second timeout.)
void join_rendezvous(c10d::Store& store, const LaunchEnvironment& launch, double timeout_seconds) {
  const std::string key = "genfw/joined";
  store.add(key, 1);
  if (launch.rank != 0) return;
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(timeout_seconds);
  for (;;) {
    const int64_t joined = store.add(key, 0);
    if (joined >= launch.world_size) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error(detail::concat("rank 0 of ", launch.world_size, ": ", joined, " of ", launch.world_size,
                                 " ranks joined the rendezvous at ", launch.master_addr, ":", launch.master_port,
                                 " within ", timeout_seconds, " s (--dist-timeout); the others did not start, or "
                                 "cannot reach it (MASTER_ADDR, MASTER_PORT, a firewall)"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The store's client waits without limit for a server that accepts but never answers (another
// program on MASTER_PORT): the connection and the rendezvous run on a thread of their own, given
// up at the deadline. A thread still blocked is left to the process's end; it holds what it uses.
c10::intrusive_ptr<c10d::TCPStore> join_job_store(const LaunchEnvironment& launch,
                                                   const c10d::TCPStoreOptions& options, double timeout_seconds) {
  struct Attempt {
    std::mutex mutex;
    std::condition_variable ended;
    bool done = false;
    c10::intrusive_ptr<c10d::TCPStore> store;
    std::exception_ptr error;
  };
  auto attempt = std::make_shared<Attempt>();
  std::thread([attempt, launch, options, timeout_seconds] {
    c10::intrusive_ptr<c10d::TCPStore> store;
    std::exception_ptr error;
    try {
      store = c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options);
      join_rendezvous(*store, launch, timeout_seconds);
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(attempt->mutex);
    attempt->store = std::move(store);
    attempt->error = error;
    attempt->done = true;
    attempt->ended.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(attempt->mutex);
  // Rank 0 gives up by itself at the timeout (join_rendezvous); the slack is for its answer.
  const auto limit = milliseconds(timeout_seconds) + std::chrono::seconds(2);
  if (!attempt->ended.wait_for(lock, limit, [&] { return attempt->done; })) {
    throw Error(detail::concat("rank ", launch.rank, " of ", launch.world_size, ": the job's store at ",
                               launch.master_addr, ":", launch.master_port, " did not answer within ", timeout_seconds,
                               " s (--dist-timeout): what listens there is not rank 0 of this job (MASTER_PORT taken "
                               "by another program?), or rank 0 hangs"));
  }
  if (attempt->error) std::rethrow_exception(attempt->error);
  return attempt->store;
}

c10::intrusive_ptr<torch_compat::CollectiveBackend> nccl_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                  const LaunchEnvironment& launch, double timeout_seconds) {
#ifdef USE_C10D_NCCL
  ::setenv("NCCL_BLOCKING_WAIT", "1", 0);  // makes the timeout apply to every collective
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = milliseconds(timeout_seconds);
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, launch.rank, launch.world_size, options);
#else
  (void)store, (void)launch, (void)timeout_seconds;
  throw Error("--dist-backend nccl: this LibTorch (" + std::string(GENFW_TORCH_VERSION_STRING) +
              ") was built without CUDA/NCCL; use --dist-backend gloo");
#endif
}

}  // namespace

DataParallel::DataParallel(const LaunchEnvironment& launch, const DistributedSettings& settings)
    : launch_(launch), settings_(settings), impl_(std::make_unique<Impl>()) {
  GENFW_CHECK(settings.backend == "gloo" || settings.backend == "nccl", "--dist-backend '", settings.backend,
              "': expected gloo or nccl");
  GENFW_CHECK(settings.timeout_seconds > 0, "--dist-timeout ", settings.timeout_seconds, ": must be > 0 seconds");
  c10d::TCPStoreOptions store_options;
  store_options.port = uint16_t(launch.master_port);
  store_options.isServer = launch.rank == 0;
  store_options.numWorkers = size_t(launch.world_size);
  store_options.waitWorkers = false;  // join_rendezvous waits, once, within the timeout
  store_options.timeout = milliseconds(settings.timeout_seconds);
  try {
    impl_->store = join_job_store(launch, store_options, settings.timeout_seconds);
    if (settings.backend == "nccl") {
      impl_->group = nccl_group(impl_->store, launch, settings.timeout_seconds);
      impl_->collective_device = torch::Device(torch::kCUDA, int8_t(launch.local_rank));
    } else {
      impl_->group = gloo_group(impl_->store, launch, settings.timeout_seconds);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(detail::concat("rank ", launch.rank, " of ", launch.world_size, ": rendezvous at ", launch.master_addr,
                               ":", launch.master_port, " (", settings.backend, ") failed within ",
                               settings.timeout_seconds, " s (--dist-timeout): ", message_of(e)));
  }
  start_heartbeat();
  // Initialisation from data (ActNorm) reads the global batch through the SDK.
  set_replica_mean([this](const torch::Tensor& values) { return mean_over_ranks(values, "data-dependent initialisation"); });
}

namespace {
std::string heartbeat_key(int rank) { return "genfw/alive/" + std::to_string(rank); }
}  // namespace

void DataParallel::start_heartbeat() {
  const auto now = std::chrono::steady_clock::now();
  impl_->beats_seen.assign(size_t(world_size()), -1);
  impl_->heard_at.assign(size_t(world_size()), now);
  impl_->last_check = now;
  // A connection of its own: the main one may be held for a whole timeout by a blocking get.
  c10d::TCPStoreOptions options;
  options.port = uint16_t(launch_.master_port);
  options.waitWorkers = false;
  options.timeout = milliseconds(settings_.timeout_seconds);
  auto store = c10::make_intrusive<c10d::TCPStore>(launch_.master_addr, options);
  impl_->heartbeat = std::thread([beat = impl_->beat, store, key = heartbeat_key(rank())] {
    struct Ended {
      Impl::Heartbeat& beat;
      ~Ended() { beat.ended.set_value(); }
    } ended{*beat};
    for (;;) {
      try {
        store->add(key, 1);
      } catch (const std::exception&) {
        return;  // the store (rank 0) is gone: the main thread learns it at its next exchange
      }
      std::unique_lock<std::mutex> lock(beat->mutex);
      if (beat->stop.wait_for(lock, std::chrono::seconds(1), [&] { return beat->stopping; })) return;
    }
  });
}

void DataParallel::check_others_alive() {
  const auto now = std::chrono::steady_clock::now();
  if (now - impl_->last_check < std::chrono::seconds(1)) return;
  impl_->last_check = now;
  std::vector<std::string> silent;
  wait("checking that the other ranks are alive", [&] {
    for (int r = 0; r < world_size(); ++r) {
      if (r == rank()) continue;
      const int64_t beats = impl_->store->add(heartbeat_key(r), 0);
      if (beats != impl_->beats_seen[size_t(r)]) {
        impl_->beats_seen[size_t(r)] = beats;
        impl_->heard_at[size_t(r)] = now;
      } else if (std::chrono::duration<double>(now - impl_->heard_at[size_t(r)]).count() > settings_.timeout_seconds) {
        silent.push_back(std::to_string(r));
      }
    }
  });
  if (silent.empty()) return;
  std::string ranks;
  for (const auto& r : silent) ranks += (ranks.empty() ? "" : ", ") + r;
  throw Error(detail::concat("data-parallel rank ", rank(), " of ", world_size(), ": rank ", ranks,
                             " has not been heard from for more than ", settings_.timeout_seconds,
                             " s (--dist-timeout): it died or hangs"));
}

std::string DataParallel::fresh_slot(const std::string& key) {
  return "genfw/" + key + "/" + std::to_string(impl_->store_uses[key]++);
}

void DataParallel::wait_for_keys_while_alive(const std::vector<std::string>& keys, const std::string& what) {
  for (;;) {
    bool ready = false;
    wait(what, [&] { ready = impl_->store->check(keys); });
    if (ready) return;
    check_others_alive();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void DataParallel::wait_for_all_while_alive(const std::string& key) {
  const std::string slot = fresh_slot(key) + "/";
  std::vector<std::string> keys;
  for (int r = 0; r < world_size(); ++r) keys.push_back(slot + std::to_string(r));
  wait("telling the other ranks '" + key + "'", [&] { impl_->store->set(keys[size_t(rank())], std::vector<uint8_t>{1}); });
  wait_for_keys_while_alive(keys, "waiting for every rank to reach '" + key + "'");
}

std::string DataParallel::share_from_rank0_when_ready(const std::string& key, const std::string& value) {
  const std::string slot = fresh_slot(key);
  auto read_by = [&](int r) { return slot + "/read/" + std::to_string(r); };
  if (rank() == 0) {
    wait("sharing '" + key + "' from rank 0 through the store",
         [&] { impl_->store->set(slot, std::vector<uint8_t>(value.begin(), value.end())); });
    // Rank 0 serves the store: it must not exit before every rank has read the value.
    std::vector<std::string> reads;
    for (int r = 1; r < world_size(); ++r) reads.push_back(read_by(r));
    wait_for_keys_while_alive(reads, "waiting for every rank to read '" + key + "'");
    return value;
  }
  wait_for_keys_while_alive({slot}, "waiting for rank 0's '" + key + "'");
  std::string shared;
  wait("reading rank 0's '" + key + "' from the store", [&] {
    auto bytes = impl_->store->get(slot);
    shared.assign(bytes.begin(), bytes.end());
    impl_->store->set(read_by(rank()), std::vector<uint8_t>{1});
  });
  return shared;
}

DataParallel::~DataParallel() { set_replica_mean(nullptr); }

void DataParallel::wait(const std::string& collective, std::function<void()> body) {
  try {
    body();
  } catch (const std::exception& e) {
    throw FrameworkFailure(detail::concat("data-parallel rank ", rank(), " of ", world_size(), ": ", collective,
                                          " failed or timed out (--dist-timeout ", settings_.timeout_seconds,
                                          " s): ", ranks_that_stopped(), "; ", message_of(e)));
  }
}

namespace {

// Which ranks other than `self` stopped beating (every rank beats once a second: a count that
// does not move in 2.5 s has stopped).
std::string ranks_not_beating(const c10::intrusive_ptr<c10d::Store>& store, int world_size, int self) {
  std::vector<int64_t> before(size_t(world_size), 0);
  for (int r = 0; r < world_size; ++r) {
    if (r != self) before[size_t(r)] = store->add(heartbeat_key(r), 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  std::string stopped;
  for (int r = 0; r < world_size; ++r) {
    if (r != self && store->add(heartbeat_key(r), 0) == before[size_t(r)]) {
      stopped += (stopped.empty() ? "" : ", ") + std::to_string(r);
    }
  }
  return stopped.empty() ? "every rank still beats: the network between them failed"
                         : "rank " + stopped + " stopped (it died or hangs)";
}

}  // namespace

std::string DataParallel::ranks_that_stopped() {
  // Rank 0 serves the store. Elsewhere a store request waits as long as rank 0 hangs, so the
  // probe runs on a thread of its own (holding the store, not this object) and is given 4 s.
  auto answer = std::make_shared<std::promise<std::string>>();
  std::future<std::string> probed = answer->get_future();
  std::thread([answer, store = impl_->store, world = world_size(), self = rank()] {
    try {
      answer->set_value(ranks_not_beating(store, world, self));
    } catch (...) {
      answer->set_exception(std::current_exception());
    }
  }).detach();
  const std::string rank0_stopped = "rank 0 stopped (it died or hangs: the job's store it serves does not answer)";
  if (probed.wait_for(std::chrono::seconds(4)) != std::future_status::ready) return rank0_stopped;
  try {
    return probed.get();
  } catch (const std::exception&) {
    return rank() == 0 ? "another rank died, hangs or left the job" : rank0_stopped;
  }
}

void DataParallel::average_gradients(const std::vector<torch::Tensor>& parameters) {
  torch::NoGradGuard no_grad;
  // Buckets of same-dtype gradients, each flattened into one buffer: one all-reduce per
  // bucket instead of one per tensor. All are issued before the first wait, so the
  // transfers of different buckets overlap (not with backward, which has finished).
  std::vector<std::vector<torch::Tensor>> buckets;
  int64_t bytes_in_last = 0;
  for (const auto& parameter : parameters) {
    const torch::Tensor& grad = parameter.grad();
    if (!grad.defined()) continue;
    const int64_t bytes = grad.numel() * int64_t(grad.element_size());
    if (buckets.empty() || bytes_in_last + bytes > bucket_bytes ||
        buckets.back().front().scalar_type() != grad.scalar_type()) {
      buckets.emplace_back();
      bytes_in_last = 0;
    }
    buckets.back().push_back(grad);
    bytes_in_last += bytes;
  }
  std::vector<torch::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  wait("all-reduce of the gradients", [&] {
    for (const auto& bucket : buckets) {
      std::vector<torch::Tensor> pieces;
      for (const auto& grad : bucket) pieces.push_back(grad.reshape({-1}));
      std::vector<torch::Tensor> flat{torch::cat(pieces).to(impl_->collective_device)};
      works.push_back(impl_->group->allreduce(flat));
      flats.push_back(flat[0]);
    }
    for (auto& work : works) work->wait(milliseconds(settings_.timeout_seconds));
  });
  for (size_t b = 0; b < buckets.size(); ++b) {
    flats[b].div_(world_size());
    int64_t offset = 0;
    for (auto& grad : buckets[b]) {
      grad.copy_(flats[b].slice(0, offset, offset + grad.numel()).view_as(grad));
      offset += grad.numel();
    }
  }
}

void DataParallel::broadcast_from_rank0(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  wait("broadcast from rank 0", [&] {
    for (const auto& tensor : tensors) {
      std::vector<torch::Tensor> buffer{tensor.detach().to(impl_->collective_device).contiguous()};
      impl_->group->broadcast(buffer)->wait(milliseconds(settings_.timeout_seconds));
      tensor.detach().copy_(buffer[0]);  // in place, so the model and its optimizer keep their tensors
    }
  });
}

torch::Tensor DataParallel::mean_over_ranks(const torch::Tensor& values, const std::string& what) {
  std::vector<torch::Tensor> buffer{values.detach().to(impl_->collective_device).contiguous().clone()};
  wait("all-reduce of " + what,
       [&] { impl_->group->allreduce(buffer)->wait(milliseconds(settings_.timeout_seconds)); });
  return buffer[0].div_(world_size()).to(values.device());
}

void DataParallel::check_replicas_agree(const std::vector<torch::Tensor>& tensors, const std::string& what) {
  metric::ContentDigest digest;
  for (const auto& tensor : tensors) digest.tensor(tensor.detach());
  // The first 64 bits of the SHA-256 travel in one int64 collective.
  const uint64_t mine = std::stoull(digest.hex().substr(0, 16), nullptr, 16);
  const std::vector<int64_t> digests = all_gather_integer(int64_t(mine), "the parameter digests (" + what + ")");
  std::string differing;
  for (int r = 1; r < world_size(); ++r) {
    if (digests[size_t(r)] != digests[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  }
  GENFW_CHECK(differing.empty(), "data-parallel: the ", what, " of rank(s) ", differing,
              " differ from rank 0's (digest mismatch): the replicas diverged (a plugin that is not deterministic "
              "across processes, or ranks built differently); stopping before the checkpoint");
}

std::vector<int64_t> DataParallel::all_gather_integer(int64_t value, const std::string& what) {
  std::vector<torch::Tensor> input{torch::tensor({value}, torch::kLong).to(impl_->collective_device)};
  std::vector<std::vector<torch::Tensor>> gathered(1);
  for (int r = 0; r < world_size(); ++r) gathered[0].push_back(torch::empty_like(input[0]));
  wait("all-gather of " + what,
       [&] { impl_->group->allgather(gathered, input)->wait(milliseconds(settings_.timeout_seconds)); });
  std::vector<int64_t> values;
  for (const auto& tensor : gathered[0]) values.push_back(tensor.cpu().item<int64_t>());
  return values;
}

std::vector<torch::Tensor> DataParallel::gather_rows_to_rank0(const torch::Tensor& rows, const std::string& what) {
  // A gather moves equal shapes: every rank pads its rows to the longest, rank 0 trims them back.
  const std::vector<int64_t> counts = all_gather_integer(rows.size(0), "the row counts of " + what);
  std::vector<int64_t> padded_shape = rows.sizes().vec();
  padded_shape[0] = *std::max_element(counts.begin(), counts.end());
  std::vector<torch::Tensor> input{torch::zeros(padded_shape, rows.options().device(impl_->collective_device))};
  input[0].slice(0, 0, rows.size(0)).copy_(rows.detach());
  std::vector<std::vector<torch::Tensor>> gathered;  // rank 0 receives; the others must pass none
  if (rank() == 0) {
    gathered.emplace_back();
    for (int r = 0; r < world_size(); ++r) gathered[0].push_back(torch::empty_like(input[0]));
  }
  c10d::GatherOptions options;
  options.rootRank = 0;
  options.timeout = milliseconds(settings_.timeout_seconds);
  wait("gather of " + what + " to rank 0",
       [&] { impl_->group->gather(gathered, input, options)->wait(options.timeout); });
  std::vector<torch::Tensor> per_rank;
  for (int r = 0; r < world_size() && rank() == 0; ++r) {
    per_rank.push_back(gathered[0][size_t(r)].slice(0, 0, counts[size_t(r)]).to(rows.device()));
  }
  return per_rank;
}

std::string DataParallel::share_from_rank0(const std::string& key, const std::string& value) {
  const std::string slot = fresh_slot(key);
  std::string shared;
  wait("sharing '" + key + "' from rank 0 through the store", [&] {
    if (rank() == 0) impl_->store->set(slot, std::vector<uint8_t>(value.begin(), value.end()));
    auto bytes = impl_->store->get(slot);  // waits for rank 0, at most the store's timeout
    shared.assign(bytes.begin(), bytes.end());
  });
  return shared;
}

std::vector<std::string> DataParallel::gather_strings(const std::string& key, const std::string& value) {
  const std::string slot = fresh_slot(key) + "/";
  std::vector<std::string> values;
  wait("gathering '" + key + "' through the store", [&] {
    impl_->store->set(slot + std::to_string(rank()), std::vector<uint8_t>(value.begin(), value.end()));
    for (int r = 0; r < world_size(); ++r) {
      auto bytes = impl_->store->get(slot + std::to_string(r));
      values.emplace_back(bytes.begin(), bytes.end());
    }
  });
  return values;
}

// ---- the process's group ----------------------------------------------------

namespace {
std::unique_ptr<DataParallel>& current_group() {
  static std::unique_ptr<DataParallel> group;
  return group;
}
}  // namespace

DataParallel* data_parallel() { return current_group().get(); }

bool is_rank0() { return data_parallel() == nullptr || data_parallel()->rank() == 0; }

torch::Device device_of_rank(torch::Device device) {
  DataParallel* group = data_parallel();
  if (group == nullptr || !device.is_cuda()) return device;
  return torch::Device(torch::kCUDA, int8_t(group->launch().local_rank));
}

RunLog open_run_log_of_rank(const std::string& path, bool resume) {
  if (!is_rank0()) return RunLog::create_in_memory(path + ".rank" + std::to_string(data_parallel()->rank()));
  return resume ? RunLog::open(path, true) : RunLog::create(path);
}

void write_distributed_environment(RunLog& log, torch::Device device) {
  DataParallel* group = data_parallel();
  std::string devices = device.str();
  if (group != nullptr) {
    devices.clear();
    for (const auto& d : group->gather_strings("device", device.str())) devices += (devices.empty() ? "" : ",") + d;
  }
  log.write_string("/env/world_size", std::to_string(group ? group->world_size() : 1));
  log.write_string("/env/backend", group ? group->settings().backend : "none");
  log.write_string("/env/launcher", group ? group->launch().launcher : "none");
  log.write_string("/env/devices", devices);
}

DataParallelScope::DataParallelScope(const DistributedSettings& settings) {
  LaunchEnvironment launch = LaunchEnvironment::from_environment();
  if (launch.world_size > 1) current_group() = std::make_unique<DataParallel>(launch, settings);
}

DataParallelScope::~DataParallelScope() { current_group().reset(); }

}  // namespace genfw
