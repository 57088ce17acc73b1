#pragma once
/// Progress on stderr, shown the same way for training and sampling.
#include <chrono>
#include <string>

#include "genfw/export.hpp"

namespace genfw {

/// "0m05s", "2h03m"; "?" when unknown (not finite or negative), ">100y" beyond.
GENFW_API std::string format_duration(double seconds);

/// One stage's progress display, as [log] progress says: "bar" redraws one line
/// in place ("auto" does on a terminal), "plain" writes lines, "off" (and every
/// data-parallel rank but 0) nothing. Callers may offer updates as often as they
/// like: at most one per interval is shown, so a log file is never flooded.
class GENFW_API ProgressDisplay {
 public:
  using Seconds = std::chrono::duration<double>;
  ProgressDisplay(const std::string& setting, Seconds plain_interval, Seconds bar_interval);

  bool off() const { return off_; }
  /// Whether an update offered now would be shown (a final one always is).
  bool due(bool final) const;
  /// Shows `text`, led by a bar filled to `fraction` (0..1) on a terminal; a final
  /// update ends the bar's line.
  void show(double fraction, const std::string& text, bool final);

 private:
  bool off_ = false, bar_ = false;
  Seconds plain_interval_, bar_interval_;
  std::chrono::steady_clock::time_point last_shown_;
};

}  // namespace genfw
