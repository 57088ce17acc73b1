#include "toml_text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "genfw/error.hpp"

namespace genfw {

namespace {

// Index just past the string literal that starts at `i` (any of the four TOML
// kinds), counting the newlines it spans. An unterminated string ends the text
// or, for one-line strings, the line: the parser reports it.
size_t skip_string(const std::string& text, size_t i, int& line) {
  const char quote = text[i];
  const bool multiline = text.compare(i, 3, std::string(3, quote)) == 0;
  const bool escapes = quote == '"';
  i += multiline ? 3 : 1;
  while (i < text.size()) {
    char c = text[i];
    if (c == '\n') {
      if (!multiline) return i;
      ++line;
    } else if (c == '\\' && escapes) {
      if (i + 1 < text.size() && text[i + 1] == '\n') ++line;
      i += 2;
      continue;
    } else if (c == quote) {
      if (!multiline) return i + 1;
      if (text.compare(i, 3, std::string(3, quote)) == 0) {
        i += 3;
        while (i < text.size() && text[i] == quote) ++i;  // """a"""" ends with a quote inside
        return i;
      }
    }
    ++i;
  }
  return i;
}

}  // namespace

void check_toml_nesting(const std::string& text, const std::string& origin) {
  struct Open {
    char close;  // ']' or '}'
    int depth;   // depth of the value that holds it
  };
  std::vector<Open> open;  // arrays and inline tables around the current position
  int line = 1;
  int table_depth = 0;     // components of the last [table] or [[array]] header
  int depth = 0;           // nesting at the current position
  bool in_key = true;      // reading a key (before '='), not a value
  bool key_counted = false;  // the current key component has been counted
  bool in_header = false;
  auto deeper = [&] {
    if (++depth > kMaxTomlNesting) {
      throw Error(origin + ":" + std::to_string(line) + ": TOML nested more than " +
                  std::to_string(kMaxTomlNesting) +
                  " levels deep (table headers, dotted keys, arrays and inline tables together); "
                  "genfw refuses it before parsing (the parser recurses once per level)");
    }
  };
  auto start_key = [&] {
    in_key = true;
    key_counted = false;
  };
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
      if (open.empty() && !in_header) {  // a statement ends with its line
        start_key();
        depth = table_depth;
      }
      continue;
    }
    if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      if (in_key && !key_counted) {  // a quoted key component
        key_counted = true;
        deeper();
      }
      i = skip_string(text, i, line);
      continue;
    }
    if (c == '[' && in_key && open.empty() && !key_counted && !in_header) {  // [table] or [[array]]
      in_header = true;
      depth = 0;
      i += text.compare(i, 2, "[[") == 0 ? 2 : 1;
      continue;
    }
    if (c == ']' && in_header) {
      in_header = false;
      in_key = false;  // only a comment may follow on this line
      table_depth = depth;
      i += text.compare(i, 2, "]]") == 0 ? 2 : 1;
      continue;
    }
    if (c == '[' || c == '{') {
      open.push_back({c == '[' ? ']' : '}', depth});
      deeper();
      if (c == '{') start_key();
      else in_key = false;
    } else if (c == ']' || c == '}') {
      if (!open.empty()) {
        depth = open.back().depth;
        open.pop_back();
      }
      in_key = false;
    } else if (c == ',' && !open.empty()) {
      depth = open.back().depth + 1;
      if (open.back().close == '}') start_key();
      else in_key = false;
    } else if (in_key) {
      if (c == '.') key_counted = false;  // the next component counts
      else if (c == '=') in_key = false;
      else if (c != ' ' && c != '\t' && c != '\r' && !key_counted) {
        key_counted = true;
        deeper();
      }
    }
    ++i;
  }
}

toml::table parse_toml_text(const std::string& text, const std::string& origin) {
  check_toml_nesting(text, origin);
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::string where = origin;
    if (e.source().begin.line > 0) {
      where += ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column);
    }
    throw Error(where + ": malformed TOML: " + std::string(e.description()));
  }
}

std::string read_regular_file(const std::string& path, const std::string& role) {
  // O_NONBLOCK: opening a FIFO without a writer must not hang before fstat refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    GENFW_CHECK(error != ENOENT, role, " ", path, " does not exist");
    throw Error(role + " " + path + ": cannot open it: " + std::strerror(error));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  GENFW_CHECK(::fstat(fd, &info) == 0, role, " ", path, ": cannot stat it: ", std::strerror(errno));
  const char* kind = S_ISDIR(info.st_mode)    ? "a directory"
                     : S_ISFIFO(info.st_mode) ? "a FIFO (named pipe)"
                     : S_ISSOCK(info.st_mode) ? "a socket"
                     : S_ISCHR(info.st_mode) || S_ISBLK(info.st_mode) ? "a device"
                                                                       : nullptr;
  GENFW_CHECK(S_ISREG(info.st_mode), role, " ", path, " is ", kind ? kind : "a special file",
              ", not a regular file holding TOML");
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    GENFW_CHECK(got >= 0, role, " ", path, ": read failed: ", std::strerror(errno));
    if (got == 0) break;
    text.append(buffer, size_t(got));
  }
  return text;
}

}  // namespace genfw
