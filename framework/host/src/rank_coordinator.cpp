// What the ranks agree on (genfw/rank_coordinator.hpp): one process, or the
// ranks of a c10d group.
#include "genfw/rank_coordinator.hpp"

#include <sstream>

#include "genfw/sha256.hpp"

#include <optional>

#include "genfw/distributed.hpp"
#include "genfw/error.hpp"
#include "genfw/features.hpp"

namespace genfw {

RankCoordinator::~RankCoordinator() = default;

std::vector<int64_t> RankCoordinator::sampling_batches(int64_t total, int64_t batch_size) const {
  return sampling_batches_of_rank(total, batch_size, rank(), world_size());
}

namespace {

// "; rank 0 has `KEY = A` where this rank has `KEY = B`": the first line of two resolved configs that differs.
std::string first_difference(const std::string& rank0, const std::string& mine) {
  std::istringstream a(rank0), b(mine);
  std::string line_a, line_b, table;
  while (true) {
    const bool more_a = bool(std::getline(a, line_a)), more_b = bool(std::getline(b, line_b));
    if (!more_a && !more_b) return "";
    if (more_a && more_b && line_a == line_b) {
      if (!line_a.empty() && line_a[0] == '[') table = line_a;
      continue;
    }
    return detail::concat("; in ", table.empty() ? std::string("the top level") : table, " rank 0 has `",
                          more_a ? line_a : std::string("(nothing)"), "` where this rank has `",
                          more_b ? line_b : std::string("(nothing)"), "`");
  }
}

class SingleProcess final : public RankCoordinator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string share_from_rank0(const std::string&, const std::string& value) override { return value; }
  void check_same_plan(const std::string&) override {}
  void check_others_alive() override {}
  DrawnRows gather_drawn(const DrawnRows& own, int64_t) override { return own; }
  void offer_sample_extraction(FeatureService&, const torch::Tensor&) override {}
  void end_sample_extraction(FeatureService&) override {}
  void serve_sample_extraction(const std::function<FeatureService&()>&) override {}
};

class DataParallelRanks final : public RankCoordinator {
 public:
  explicit DataParallelRanks(DataParallel& group) : group_(group) {}

  int rank() const override { return group_.rank(); }
  int world_size() const override { return group_.world_size(); }
  std::string share_from_rank0(const std::string& key, const std::string& value) override {
    return group_.share_from_rank0(key, value);
  }
  void check_others_alive() override { group_.check_others_alive(); }

  void check_same_plan(const std::string& resolved_config) override {
    const auto digests = group_.gather_strings("plan", sha256_hex(resolved_config));
    std::string differing;
    for (int r = 1; r < world_size(); ++r) {
      if (digests[size_t(r)] != digests[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
    }
    if (differing.empty()) return;
    // Every rank knows now; each names the first line where its own plan differs from rank 0's.
    const std::string planned = group_.share_from_rank0("plan_text", resolved_config);
    throw Error(detail::concat("data-parallel: rank(s) ", differing, " resolved another experiment than rank 0",
                               rank() > 0 && planned != resolved_config ? first_difference(planned, resolved_config) : "",
                               " (another file, --set, or plugin folder); every rank must run the same plan"));
  }

  DrawnRows gather_drawn(const DrawnRows& own, int64_t batch_size) override {
    own_samples_ = own.samples;
    sampling_batch_ = batch_size;
    // Ranks draw up to one batch more than others: wait for the slowest without a timeout while all are alive.
    group_.wait_for_all_while_alive("sampled");
    DrawnRows all;
    all.samples = gathered_in_global_order(own.samples, batch_size, "the samples");
    all.nfe_of_batches = gathered_in_global_order(own.nfe_of_batches, 1, "the NFE of each batch");
    return all;
  }

  void offer_sample_extraction(FeatureService& service, const torch::Tensor& drawn) override {
    // Nothing drawn (a run that only trains), or not drawn through gather_drawn: no rank waits.
    if (!drawn.defined() || !own_samples_.defined()) return;
    // One exchange per sample set: evaluations during training offer a new one each time
    // (kept state made the second evaluation reuse the first one's features and never tell).
    offered_ = true;
    told_ = false;
    extracted_.reset();
    const int64_t batches = (drawn.size(0) + sampling_batch_ - 1) / sampling_batch_;
    if (batches < world_size()) return;  // some rank drew nothing: rank 0 extracts alone
    service.extract_shared_with([this, &service, drawn](const torch::Tensor& samples) {
      if (!samples.is_same(drawn)) return std::optional<metric::Extracted>();  // not the drawn set: rank 0's own
      if (!extracted_) {
        // The extractor first: a classifier trained now is cached before the other ranks load it.
        metric::FeatureExtractor& extractor = service.extractor();
        tell_ranks("extract");
        extracted_ = extracted_over_ranks(extractor, service.device(), service.settings().extractor.batch_size);
      }
      return extracted_;
    });
  }

  void end_sample_extraction(FeatureService& service) override {
    if (!offered_) return;
    offered_ = false;
    service.extract_shared_with(nullptr);
    tell_ranks("none");  // no metric asked: the ranks stop waiting
  }

  void serve_sample_extraction(const std::function<FeatureService&()>& service) override {
    // Rank 0 answers once its metrics first ask for the samples' features, or when none did.
    if (group_.share_from_rank0_when_ready("features", "") != "extract") return;
    FeatureService& features = service();
    extracted_over_ranks(features.extractor(), features.device(), features.settings().extractor.batch_size);
  }

 private:
  // Every rank's rows, dealt as sampling_batches_of_rank deals batches of
  // `batch_size`, in global order on rank 0; undefined on the others.
  torch::Tensor gathered_in_global_order(const torch::Tensor& rows, int64_t batch_size, const std::string& what) {
    const std::vector<torch::Tensor> of_ranks = group_.gather_rows_to_rank0(rows, what);
    return of_ranks.empty() ? torch::Tensor() : rows_in_global_order(of_ranks, batch_size);
  }

  // This rank's samples through the extractor, gathered on rank 0 in global
  // order (undefined on the others). Every rank must hold rows.
  metric::Extracted extracted_over_ranks(metric::FeatureExtractor& extractor, torch::Device device,
                                         int64_t extraction_batch) {
    metric::Extracted own = extractor.extract(own_samples_, device, extraction_batch);
    metric::Extracted all;
    all.features = gathered_in_global_order(own.features, sampling_batch_, "the samples' features");
    if (extractor.has_probabilities()) {
      all.probabilities =
          gathered_in_global_order(own.probabilities, sampling_batch_, "the samples' class probabilities");
    }
    return all;
  }

  // Rank 0 tells the waiting ranks once whether to extract.
  void tell_ranks(const std::string& word) {
    if (told_) return;
    told_ = true;
    group_.share_from_rank0_when_ready("features", word);
  }

  DataParallel& group_;
  torch::Tensor own_samples_;            // the samples this rank drew, its batches in order
  int64_t sampling_batch_ = 1;
  bool offered_ = false, told_ = false;  // rank 0's side of the protocol
  std::optional<metric::Extracted> extracted_;
};

}  // namespace

std::unique_ptr<RankCoordinator> single_process_coordinator() { return std::make_unique<SingleProcess>(); }

std::unique_ptr<RankCoordinator> data_parallel_coordinator(DataParallel& group) {
  return std::make_unique<DataParallelRanks>(group);
}

std::unique_ptr<RankCoordinator> coordinator_of_process() {
  DataParallel* group = data_parallel();
  return group ? data_parallel_coordinator(*group) : single_process_coordinator();
}

}  // namespace genfw
