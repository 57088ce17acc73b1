#pragma once
/// One exception type for every user-facing failure, and one check macro.
#include <sstream>
#include <stdexcept>
#include <string>

#include "genfw/export.hpp"

namespace genfw {

/// A failure the user can act on: the message names the file, key or plugin
/// involved and what was expected. Key function in the host library so the
/// type is the same on both sides of the plugin boundary.
class GENFW_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
  ~Error() override;
};

/// An exception's message for people: a LibTorch error (c10::Error) without the
/// C++ backtrace its what() carries, anything else as what() says.
GENFW_API std::string message_of(const std::exception& error);

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace genfw

/// GENFW_CHECK(cond, "model 'ncsn': option 'width' must be ", ">= 1, got ", w);
#define GENFW_CHECK(condition, ...)                                 \
  do {                                                              \
    if (!(condition)) {                                             \
      throw ::genfw::Error(::genfw::detail::concat(__VA_ARGS__));   \
    }                                                               \
  } while (false)
