#pragma once
/// What the ranks of a data-parallel run must agree on, behind one interface
/// (docs/design.md, "The pipeline in parts"): which sampling batches each rank
/// draws, gathering them on rank 0, the heartbeat checked while sampling, the
/// values rank 0 decides, and the feature-sharing protocol of rank 0's metrics.
/// The pipeline is single-process logic that calls it at those points; in a
/// world of one process every call is a plain local step.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "genfw/export.hpp"

namespace genfw {

class DataParallel;
class FeatureService;

/// Sampled rows and the NFE of each batch that drew them.
struct DrawnRows {
  torch::Tensor samples;         ///< float32 [n, shape...]: batches in order
  torch::Tensor nfe_of_batches;  ///< int64 [batches]
};

class GENFW_API RankCoordinator {
 public:
  virtual ~RankCoordinator();

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  bool is_rank0() const { return rank() == 0; }

  /// The first sample index of each batch of `batch_size` this rank draws of
  /// `total` (sampling_batches_of_rank: batch k to rank k mod world size).
  std::vector<int64_t> sampling_batches(int64_t total, int64_t batch_size) const;
  /// Rank 0's `value` on every rank: the run folder, the stored plan, the guidance run.
  virtual std::string share_from_rank0(const std::string& key, const std::string& value) = 0;
  /// Throws on every rank when some rank resolved another plan than rank 0's (a
  /// digest of each rank's resolved config, compared before anything is built):
  /// ranks with another batch size, seed or model would otherwise mix their work.
  virtual void check_same_plan(const std::string& resolved_config) = 0;
  /// Throws naming a rank that stopped (dead or hung). Cheap enough to call at
  /// every network evaluation, so a dead rank is noticed within one.
  virtual void check_others_alive() = 0;
  /// After sampling, this rank's rows (its batches of `batch_size`, in order):
  /// on rank 0 every rank's, in global order; on the others undefined tensors.
  /// Keeps this rank's samples for the feature extraction that may follow.
  virtual DrawnRows gather_drawn(const DrawnRows& own, int64_t batch_size) = 0;

  // Rank 0 alone computes the metrics, but when one first asks for the drawn
  // samples' features every rank extracts its own share, gathered on rank 0.
  // Rank 0: offer → (its metrics) → end_sample_extraction; the others: serve.

  /// Rank 0, before its metrics: `service` hands `drawn` (gather_drawn's
  /// samples) to every rank's extraction when a metric first asks for them.
  virtual void offer_sample_extraction(FeatureService& service, const torch::Tensor& drawn) = 0;
  /// Rank 0, after its metrics: releases the ranks when no metric asked, and
  /// withdraws the offer (later extractions, e.g. the floor's, are rank 0's own).
  virtual void end_sample_extraction(FeatureService& service) = 0;
  /// Ranks above 0, after gather_drawn: waits for rank 0's word and extracts
  /// this rank's share with `service()` (called only then) when it says so.
  virtual void serve_sample_extraction(const std::function<FeatureService&()>& service) = 0;
};

/// One process: nothing to agree on.
GENFW_API std::unique_ptr<RankCoordinator> single_process_coordinator();
/// The ranks of `group`, which must outlive the coordinator.
GENFW_API std::unique_ptr<RankCoordinator> data_parallel_coordinator(DataParallel& group);
/// The process's own world: its data-parallel group (DataParallelScope) if it joined one, else one process.
GENFW_API std::unique_ptr<RankCoordinator> coordinator_of_process();

}  // namespace genfw
