#include "genfw/replicas.hpp"

#include <mutex>

namespace genfw {

namespace {
using ReplicaMean = std::function<torch::Tensor(const torch::Tensor&)>;
// Set and read under a lock: tests run two ranks as two threads of one process.
std::mutex replica_mean_lock;
ReplicaMean& replica_mean() {
  static ReplicaMean mean;
  return mean;
}
ReplicaMean current_replica_mean() {
  std::lock_guard<std::mutex> lock(replica_mean_lock);
  return replica_mean();
}
}  // namespace

torch::Tensor mean_over_replicas(const torch::Tensor& values) {
  const ReplicaMean mean = current_replica_mean();
  return mean ? mean(values) : values;
}

bool replicated() { return static_cast<bool>(current_replica_mean()); }

void set_replica_mean(ReplicaMean mean) {
  std::lock_guard<std::mutex> lock(replica_mean_lock);
  replica_mean() = std::move(mean);
}

}  // namespace genfw
