#pragma once
// TOML text as genfw reads it: from regular files only, and never deeper than
// kMaxTomlNesting levels, checked before toml++ sees the text (its parser and
// its node destructors recurse once per level, so 50 000 levels overflow the stack).
#include <string>
#include <toml++/toml.h>

namespace genfw {

/// Table headers, dotted-key components, arrays and inline tables together.
constexpr int kMaxTomlNesting = 64;

/// Throws genfw::Error "<origin>:<line>: ..." when `text` nests deeper than kMaxTomlNesting.
void check_toml_nesting(const std::string& text, const std::string& origin);

/// check_toml_nesting, then toml::parse; a parse error becomes genfw::Error "<origin>:line:col: malformed TOML: ...".
toml::table parse_toml_text(const std::string& text, const std::string& origin);

/// The bytes of the regular file `path`. Anything else (a folder, a FIFO, a device)
/// is refused without blocking; messages start with "<role> <path>", e.g.
/// "experiment file x.toml" or "a.toml: 'extends' names b.toml".
std::string read_regular_file(const std::string& path, const std::string& role);

}  // namespace genfw
