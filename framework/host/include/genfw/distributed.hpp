#pragma once
/// Data-parallel training and sampling on c10d, LibTorch's own distributed
/// engine (README.md, "Data-parallel training and sampling"): the launch
/// variables of torchrun or SLURM, a TCPStore rendezvous (rank 0 serves it)
/// and a ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA builds of LibTorch
/// only). With a world size of 1 nothing here is created and training and
/// sampling run exactly as in one process.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

class RunLog;

/// Where this process sits in the job, as its launcher describes it.
struct GENFW_API LaunchEnvironment {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;   ///< the TCPStore's host (rank 0's machine)
  int master_port = 0;
  std::string launcher = "none";  ///< "torchrun" (RANK, WORLD_SIZE, ...), "slurm" (SLURM_PROCID, ...) or "none"

  /// torchrun's RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT
  /// first, else SLURM's SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID/SLURM_NTASKS_PER_NODE
  /// (MASTER_ADDR defaults to the first host of SLURM_JOB_NODELIST when it is a
  /// plain name, MASTER_PORT to 29500 + the job id modulo 1000); else one process.
  static LaunchEnvironment from_environment();
};

struct DistributedSettings {
  std::string backend = "gloo";   ///< gloo | nccl (nccl only with a CUDA build of LibTorch)
  double timeout_seconds = 300;   ///< rendezvous and every collective; then the rank fails naming itself
};

/// Throws unless `batch_size` (the global batch) splits evenly over `world_size` ranks.
GENFW_API void check_global_batch(int64_t batch_size, int world_size);
/// This rank's slice of a global batch: `batch_size / world_size` consecutive
/// indices, so the ranks' slices, concatenated in rank order, are the batch.
GENFW_API torch::Tensor rank_shard(const torch::Tensor& global_indices, int rank, int world_size);

/// The first sample index of each sampling batch rank `rank` draws: the
/// single-process batches of `batch_size` over `total` samples (the last may be
/// short), dealt round-robin, batch k to rank k mod `world_size`. Every batch is
/// the one a single process draws, so its samples and NFE are too.
GENFW_API std::vector<int64_t> sampling_batches_of_rank(int64_t total, int64_t batch_size, int rank, int world_size);
/// The inverse of that deal: each rank's rows (its batches of `batch_size` rows,
/// concatenated in order), in rank order → the rows in global order.
GENFW_API torch::Tensor rows_in_global_order(const std::vector<torch::Tensor>& rows_of_ranks, int64_t batch_size);

/// One process group and what training and sampling need of it. Every call is
/// a collective: every rank must make the same calls in the same order.
class GENFW_API DataParallel {
 public:
  DataParallel(const LaunchEnvironment& launch, const DistributedSettings& settings);
  ~DataParallel();

  int rank() const { return launch_.rank; }
  int world_size() const { return launch_.world_size; }
  const LaunchEnvironment& launch() const { return launch_; }
  const DistributedSettings& settings() const { return settings_; }

  /// Averages the gradients over ranks, flattened into buckets of at most
  /// `bucket_bytes` (one all-reduce per bucket, all in flight together).
  /// Parameters without a gradient are skipped (the same on every rank).
  void average_gradients(const std::vector<torch::Tensor>& parameters);
  /// Overwrites `tensors` on every rank with rank 0's values.
  void broadcast_from_rank0(const std::vector<torch::Tensor>& tensors);
  /// The element-wise mean over ranks of a tensor of the same shape on every rank.
  torch::Tensor mean_over_ranks(const torch::Tensor& values, const std::string& what = "the logged losses");
  /// Throws naming every rank whose `tensors` differ from rank 0's (a 64-bit
  /// content digest of each rank's values, all-gathered).
  void check_replicas_agree(const std::vector<torch::Tensor>& tensors, const std::string& what);
  /// Rank 0's `value` on every rank (through the store), e.g. the run folder.
  std::string share_from_rank0(const std::string& key, const std::string& value);
  /// Each rank's `value`, in rank order, on every rank (through the store).
  std::vector<std::string> gather_strings(const std::string& key, const std::string& value);
  /// Each rank's `rows` [n_rank, ...] (any n_rank, 0 included; the same trailing
  /// shape and dtype on every rank), in rank order, on rank 0; empty on the others.
  std::vector<torch::Tensor> gather_rows_to_rank0(const torch::Tensor& rows, const std::string& what);

  /// Phases without collectives (sampling, rank 0's metrics) would notice a
  /// dead or hung rank only at their end, however long they run. So a thread of
  /// every rank beats a counter in the store each second, on a connection of
  /// its own; this throws naming each other rank whose counter has not moved
  /// for the timeout. It reads the store at most once a second: call it often.
  void check_others_alive();
  /// Returns once every rank has called it, however long the slowest takes,
  /// as long as all are alive (unlike a collective, which fails at the timeout):
  /// for ranks whose shares of the work differ, e.g. before gathering samples.
  void wait_for_all_while_alive(const std::string& key);
  /// share_from_rank0, but the others wait as long as rank 0 takes to send it
  /// (its own metrics first), as long as it is alive.
  std::string share_from_rank0_when_ready(const std::string& key, const std::string& value);

  int64_t bucket_bytes = 25 << 20;  ///< as torch's DistributedDataParallel

 private:
  struct Impl;
  void wait(const std::string& collective, std::function<void()> body);
  /// Which ranks stopped, for wait()'s message: those whose heartbeat no longer
  /// moves ("rank 2 stopped (it died or hangs)"), on any rank; on the others, rank 0
  /// when the store it serves is gone or does not answer.
  std::string ranks_that_stopped();
  /// Each rank's `value`, in rank order, on every rank (one int64 all-gather).
  std::vector<int64_t> all_gather_integer(int64_t value, const std::string& what);
  /// A store key not used before for `key` (every exchange through the store gets its own).
  std::string fresh_slot(const std::string& key);
  /// Polls until every key in `keys` is in the store, checking the other ranks are alive meanwhile.
  void wait_for_keys_while_alive(const std::vector<std::string>& keys, const std::string& what);
  void start_heartbeat();
  LaunchEnvironment launch_;
  DistributedSettings settings_;
  std::unique_ptr<Impl> impl_;
};

/// The process's data-parallel group, or nullptr with a world size of 1.
GENFW_API DataParallel* data_parallel();
/// Rank 0, or a process that is not data-parallel, writes the run folder; the others write nothing there.
GENFW_API bool is_rank0();
/// `device` for this rank: cuda:LOCAL_RANK for CUDA when data-parallel, else unchanged.
GENFW_API torch::Device device_of_rank(torch::Device device);
/// A run file for this rank: `path` itself on rank 0 (created, or opened for
/// resume), an in-memory HDF5 file that never touches the disk on the others.
GENFW_API RunLog open_run_log_of_rank(const std::string& path, bool resume);
/// /env/world_size, /env/backend, /env/launcher and /env/devices (each rank's, comma-separated).
GENFW_API void write_distributed_environment(RunLog& log, torch::Device device);

/// Joins the job the environment describes (a collective with a world size
/// above 1) for the lifetime of this object; the runner holds one per run.
class GENFW_API DataParallelScope {
 public:
  explicit DataParallelScope(const DistributedSettings& settings);
  ~DataParallelScope();
  DataParallelScope(const DataParallelScope&) = delete;
  DataParallelScope& operator=(const DataParallelScope&) = delete;
};

/// `runner --nproc N`: runs `arguments` (argv[0] is ignored; /proc/self/exe
/// runs) as N local worker processes with RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT; when one
/// fails, stops the others and reports which rank failed first. Returns the exit status.
GENFW_API int run_local_workers(int nproc, const std::vector<std::string>& arguments);

/// Runs each command (arguments for /proc/self/exe, argv[0] included) as a
/// child process with `environment` added, at most `at_once` at a time, in
/// order; returns each exit status (128 + the signal when one killed it).
GENFW_API std::vector<int> run_at_most(int at_once, const std::vector<std::vector<std::string>>& commands,
                                       const std::map<std::string, std::string>& environment,
                                       const std::string& who);

}  // namespace genfw
