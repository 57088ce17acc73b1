#include "genfw/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "genfw/distributed.hpp"

namespace genfw {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds > 100.0 * 365 * 24 * 3600) return ">100y";  // also keeps the integer below in range
  char text[32];
  const int64_t s = int64_t(seconds);
  if (s >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
  else std::snprintf(text, sizeof text, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  return text;
}

ProgressDisplay::ProgressDisplay(const std::string& setting, Seconds plain_interval, Seconds bar_interval)
    : off_(setting == "off" || !is_rank0()),
      bar_(setting == "bar" || (setting == "auto" && ::isatty(STDERR_FILENO))),
      plain_interval_(plain_interval),
      bar_interval_(bar_interval),
      last_shown_(std::chrono::steady_clock::now()) {}

bool ProgressDisplay::due(bool final) const {
  if (off_) return false;
  return final || std::chrono::steady_clock::now() - last_shown_ >= (bar_ ? bar_interval_ : plain_interval_);
}

void ProgressDisplay::show(double fraction, const std::string& text, bool final) {
  if (!due(final)) return;
  last_shown_ = std::chrono::steady_clock::now();
  if (!bar_) {
    std::cerr << text << std::endl;
    return;
  }
  const int width = 30;
  std::string bar(size_t(std::clamp(fraction, 0.0, 1.0) * width), '#');
  bar.resize(size_t(width), '.');
  // "\x1b[K" clears what a longer earlier line left to the right.
  std::cerr << "\r[" << bar << "] " << text << "\x1b[K" << (final ? "\n" : "") << std::flush;
}

}  // namespace genfw
