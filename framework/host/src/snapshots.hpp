#pragma once
// The weights [eval] keeps beside a run's checkpoint, as the run file's root
// attributes record them:
//   snapshots      "STEP:SHA256 STEP:SHA256 ...": the last K evaluations', snapshots/step_S.pt
//   best_step, best_sha256, best_metric, best_value: the best evaluation's, snapshots/best_step_S.pt
// Each file has its own name, written before the attributes name it and removed after
// they stop naming it: a kill at any point leaves every recorded snapshot whole.
#include <cstdint>
#include <string>
#include <vector>

namespace genfw {

class RunLog;

struct KeptSnapshot {
  int64_t step = 0;
  std::string sha256;
};

/// The file of a snapshot, relative to the run folder.
std::string snapshot_file(int64_t step, bool best);
std::vector<KeptSnapshot> last_snapshots(const RunLog& log);
void set_last_snapshots(RunLog& log, const std::vector<KeptSnapshot>& snapshots);

}  // namespace genfw
