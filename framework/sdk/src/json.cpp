// A recursive-descent JSON reader with a nesting limit (genfw/json.hpp).
#include "genfw/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "genfw/error.hpp"

namespace genfw {

namespace {

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& origin) : text_(text), origin_(origin) {}

  Json document() {
    Json value = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(detail::concat(origin_, ": malformed JSON at byte ", pos_, ": ", what));
  }
  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }
  bool literal(const char* word) {
    const std::string w(word);
    if (text_.compare(pos_, w.size(), w) != 0) return false;
    pos_ += w.size();
    return true;
  }

  Json parse_value(int depth) {
    if (depth > kMaxJsonNesting) fail(detail::concat("nested deeper than ", kMaxJsonNesting, " levels"));
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end of text, expected a value");
    Json value;
    const char c = text_[pos_];
    if (c == '{') {
      value.type = Json::Type::object;
      ++pos_;
      if (consume('}')) return value;
      do {
        skip_space();
        std::string key = parse_string();
        expect(':');
        value.object.emplace_back(std::move(key), parse_value(depth + 1));
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      value.type = Json::Type::array;
      ++pos_;
      if (consume(']')) return value;
      do {
        value.array.push_back(parse_value(depth + 1));
      } while (consume(','));
      expect(']');
    } else if (c == '"') {
      value.type = Json::Type::string;
      value.string = parse_string();
    } else if (literal("true")) {
      value.type = Json::Type::boolean;
      value.boolean = true;
    } else if (literal("false")) {
      value.type = Json::Type::boolean;
    } else if (literal("null")) {
      value.type = Json::Type::null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      parse_number(value);
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    return value;
  }

  void parse_number(Json& value) {
    const size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    const bool leading_zero = pos_ + 1 < text_.size() && text_[pos_] == '0' && text_[pos_ + 1] >= '0' && text_[pos_ + 1] <= '9';
    if (leading_zero) fail("a number with a leading zero");
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      if (pos_ == from) fail("expected a digit");
    };
    digits();
    bool integral = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      digits();
      integral = false;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      digits();
      integral = false;
    }
    const std::string number = text_.substr(start, pos_ - start);
    value.type = Json::Type::number;
    // strtod/strtoll read the C locale's format: JSON numbers have no locale.
    std::istringstream in(number);
    in.imbue(std::locale::classic());
    in >> value.number;
    if (integral) {
      errno = 0;
      const long long parsed = std::strtoll(number.c_str(), nullptr, 10);
      value.integral = errno != ERANGE;
      value.integer = parsed;
      if (value.integral) value.number = double(parsed);
    }
    if (!std::isfinite(value.number)) fail("number " + number + " is out of range");
  }

  unsigned hex4() {
    if (pos_ + 4 > text_.size()) fail("truncated \\u escape");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      code <<= 4;
      if (h >= '0' && h <= '9') code |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') code |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') code |= unsigned(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return code;
  }
  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xC0 | (code >> 6));
      out += char(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += char(0xE0 | (code >> 12));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    } else {
      out += char(0xF0 | (code >> 18));
      out += char(0x80 | ((code >> 12) & 0x3F));
      out += char(0x80 | ((code >> 6) & 0x3F));
      out += char(0x80 | (code & 0x3F));
    }
  }
  unsigned escaped_code_point() {
    unsigned code = hex4();
    if (code >= 0xD800 && code < 0xDC00) {  // a UTF-16 surrogate pair
      if (!(literal("\\u"))) fail("unpaired surrogate in \\u escape");
      const unsigned low = hex4();
      if (low < 0xDC00 || low >= 0xE000) fail("unpaired surrogate in \\u escape");
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    } else if (code >= 0xDC00 && code < 0xE000) {
      fail("unpaired surrogate in \\u escape");
    }
    return code;
  }

  std::string parse_string() {
    if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a string");
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) fail("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) fail("unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_utf8(out, escaped_code_point()); break;
        default: fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  const std::string& text_;
  const std::string& origin_;
  size_t pos_ = 0;
};

}  // namespace

const Json* Json::find(const std::string& key) const {
  for (const auto& [name, value] : object) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::string Json::brief() const {
  switch (type) {
    case Type::null: return "null";
    case Type::boolean: return boolean ? "true" : "false";
    case Type::number: {
      if (integral) return std::to_string(integer);
      std::ostringstream out;
      out.imbue(std::locale::classic());
      out << number;
      return out.str();
    }
    case Type::string: return "\"" + string + "\"";
    case Type::array: {
      std::string out = "[";
      for (size_t i = 0; i < array.size(); ++i) out += (i ? ", " : "") + array[i].brief();
      return out + "]";
    }
    case Type::object: return "{...}";
  }
  return "?";
}

const char* json_type_name(Json::Type type) {
  switch (type) {
    case Json::Type::null: return "null";
    case Json::Type::boolean: return "a boolean";
    case Json::Type::number: return "a number";
    case Json::Type::string: return "a string";
    case Json::Type::array: return "an array";
    case Json::Type::object: return "an object";
  }
  return "?";
}

Json parse_json(const std::string& text, const std::string& origin) { return JsonParser(text, origin).document(); }

}  // namespace genfw
