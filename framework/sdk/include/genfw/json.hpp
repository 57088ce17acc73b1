#pragma once
/// A small JSON reader (RFC 8259) for the files genfw imports: safetensors
/// headers and diffusers' config.json. Nesting is limited (kMaxJsonNesting), so
/// a hostile file cannot overflow the stack; every error names the origin and
/// the byte offset.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "genfw/export.hpp"

namespace genfw {

constexpr int kMaxJsonNesting = 64;

struct GENFW_API Json {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool boolean = false;
  double number = 0;
  /// The number was written as an integer (no fraction or exponent) that fits int64.
  bool integral = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;  ///< members in file order

  bool is_null() const { return type == Type::null; }
  /// The member `key` of an object, or nullptr (also when this is not an object).
  const Json* find(const std::string& key) const;
  /// "null", "true", "3", "\"silu\"", "[...]" or "{...}": for messages.
  std::string brief() const;
};

GENFW_API const char* json_type_name(Json::Type type);

/// Parses `text` (all of it); genfw::Error "<origin>: malformed JSON at byte N: ..." otherwise.
GENFW_API Json parse_json(const std::string& text, const std::string& origin);

}  // namespace genfw
