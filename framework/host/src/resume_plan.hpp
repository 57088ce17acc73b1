#pragma once
// --resume continues the plan a run stored: what a command line may change of
// it (--resume-set), what it may not, and the command that continues a run.
#include <string>
#include <vector>

#include "genfw/config.hpp"

namespace genfw {

/// Throws unless each --resume-set assignment ("KEY=VALUE") names train.steps,
/// train.lr or train.groups.NAME.lr: the checkpoint depends on everything else.
void check_resume_changes(const std::vector<std::string>& resume_changes);

/// Throws "cannot resume RUN_FILE: ..." naming each key in which `requested`
/// (the command line resolved) differs from `stored` (the run's /config), but
/// for keys outside the plan (device, [log] progress, the guidance classifier's
/// file) and those `resume_changes` set.
void check_same_plan(const ExperimentConfig& stored, const ExperimentConfig& requested,
                     const std::vector<std::string>& resume_changes, const std::string& run_file);

/// Whether `stored` and `requested` are one plan (check_same_plan without changes, as a test).
bool same_plan(const ExperimentConfig& stored, const ExperimentConfig& requested);

/// `word` as the shell reads it back unchanged: as it is, or in single quotes.
std::string shell_word(const std::string& word);

}  // namespace genfw
