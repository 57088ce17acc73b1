#include "genfw/out_of_memory.hpp"

#include <unistd.h>

#include <cstdio>
#include <regex>

namespace genfw {

namespace {

bool is_allocation_failure(const std::string& message) {
  for (const char* sign : {"can't allocate memory", "out of memory", "std::bad_alloc", "size calculation overflowed",
                           "Cannot allocate memory"}) {
    if (message.find(sign) != std::string::npos) return true;
  }
  return false;
}

std::string gibibytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g GiB", bytes / double(1ull << 30));
  return text;
}

// "you tried to allocate N bytes" (LibTorch's CPU allocator) as "N GiB requested, ", else "".
std::string requested(const std::string& message) {
  static const std::regex bytes(R"(allocate (\d+) bytes)");
  std::smatch match;
  if (!std::regex_search(message, match, bytes)) return "";
  return gibibytes(std::stod(match[1].str())) + " requested, ";
}

std::string machine_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? gibibytes(double(pages) * double(page)) : std::string("unknown");
}

const char* what_to_lower(Kind kind) {
  switch (kind) {
    case Kind::model: return "the [model] sizes (hidden, ngf, ch, num_levels, …) or the batch sizes ([train] and [sampler] batch_size)";
    case Kind::sampler: return "[sampler] batch_size (or its steps, when they are stored per step)";
    case Kind::objective: return "[train] batch_size (or the [model] sizes)";
    case Kind::dataset: return "the [data] sizes (size, resolution)";
    case Kind::metric: return "[sampler] num_samples or the metric's own sizes";
  }
  return "the sizes in the experiment";
}

}  // namespace

std::string out_of_memory_remedy(const std::string& message, Kind kind) {
  if (!is_allocation_failure(message)) return "";
  return std::string(" — out of memory (") + requested(message) + "this machine has " + machine_memory() +
         "; a GPU has its own): lower " + what_to_lower(kind);
}

}  // namespace genfw
