#include "resume_plan.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

namespace genfw {

namespace {

bool changeable_on_resume(const std::string& key) {
  const std::string groups = "train.groups.", lr = ".lr";
  return key == "train.steps" || key == "train.lr" ||
         (key.rfind(groups, 0) == 0 && key.size() > groups.size() + lr.size() &&
          key.compare(key.size() - lr.size(), lr.size(), lr) == 0);
}

// "train.groups.g.lr=0.1" → "[train.groups.g] lr", as config_changes names keys.
std::string change_key(const std::string& assignment) {
  const std::string path = assignment.substr(0, assignment.find('='));
  const auto dot = path.rfind('.');
  return "[" + path.substr(0, dot) + "] " + path.substr(dot + 1);
}

// Where the run goes on and how its progress shows are no part of the plan; nor
// is which file holds a component run (the stored config names the run file that
// trained it and its digest where the experiment names the experiment that trains
// it), nor the latent scale computed from that run.
bool outside_the_plan(const std::string& key) {
  if (key == "device" || key == "[log] progress" || key == "[latent] scale") return true;
  for (const auto& use : component_run_tables()) {
    for (const char* located : {"run", "experiment", "sha256"}) {
      if (key == "[" + use.table + "] " + located) return true;
    }
  }
  return false;
}

}  // namespace

void check_resume_changes(const std::vector<std::string>& resume_changes) {
  for (const auto& assignment : resume_changes) {
    const std::string key = assignment.substr(0, assignment.find('='));
    GENFW_CHECK(changeable_on_resume(key), "--resume-set ", assignment,
                ": only train.steps, train.lr and train.groups.NAME.lr can change when a run resumes (the "
                "checkpoint depends on everything else); start a new run to change ", key);
  }
}

void check_same_plan(const ExperimentConfig& stored, const ExperimentConfig& requested,
                     const std::vector<std::string>& resume_changes, const std::string& run_file) {
  std::set<std::string> changed_on_purpose;
  for (const auto& assignment : resume_changes) changed_on_purpose.insert(change_key(assignment));
  std::string changed;
  for (const ConfigChange& c : config_changes(stored, requested)) {
    if (outside_the_plan(c.key) || changed_on_purpose.count(c.key)) continue;
    changed += "\n  " + c.key + " was " + c.before + ", now " + c.after;
  }
  GENFW_CHECK(changed.empty(), "cannot resume ", run_file,
              ": this command line asks for another plan than the one the run stored:", changed,
              "\nresume with the command that started the run (its --set options included); change the step count "
              "or a learning rate with --resume-set train.steps=N or --resume-set train.lr=X; or start a new run "
              "(without --resume, or with another --out)");
}

bool same_plan(const ExperimentConfig& stored, const ExperimentConfig& requested) {
  for (const ConfigChange& c : config_changes(stored, requested)) {
    if (!outside_the_plan(c.key)) return false;
  }
  return true;
}

std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./=:,+-@%", c) != nullptr;
  });
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace genfw
