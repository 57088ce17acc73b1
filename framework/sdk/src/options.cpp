#include "genfw/options.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "genfw/error.hpp"

namespace genfw {

const char* option_type_name(OptionType type) {
  switch (type) {
    case OptionType::integer: return "integer";
    case OptionType::real: return "float";
    case OptionType::boolean: return "boolean";
    case OptionType::string: return "string";
    case OptionType::integers: return "array of integers";
    case OptionType::reals: return "array of floats";
    case OptionType::strings: return "array of strings";
    case OptionType::matrix: return "array of arrays of floats";
  }
  return "?";
}

std::string shortest_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char text[64];
  auto [end, error] = std::to_chars(text, text + sizeof text, v);
  std::string out(text, end);
  // to_chars writes "3e-04"; people and TOML both read "3e-4".
  if (auto e = out.find('e'); e != std::string::npos) {
    size_t digits = e + 1 + (out[e + 1] == '-' || out[e + 1] == '+');
    size_t first_nonzero = out.find_first_not_of('0', digits);
    out.erase(digits, std::min(first_nonzero, out.size() - 1) - digits);
    if (out[e + 1] == '+') out.erase(e + 1, 1);
  }
  return out;
}

namespace {

// The TOML literal of a double: shortest_number, with ".0" where it would read back as an integer.
std::string format_real(double v) {
  std::string out = shortest_number(v);
  if (out.find_first_of(".ein") == std::string::npos) out += ".0";
  return out;
}

// A TOML basic string: quotes, backslashes and control characters escaped,
// other UTF-8 kept as it is.
std::string format_string(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04X", unsigned(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + '"';
}

template <typename T, typename Format>
std::string join(const std::vector<T>& items, Format format) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + format(items[i]);
  return out + ']';
}

}  // namespace

std::string format_value(const OptionValue& value) {
  struct Visitor {
    std::string operator()(int64_t v) { return std::to_string(v); }
    std::string operator()(double v) { return format_real(v); }
    std::string operator()(bool v) { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) { return format_string(v); }
    std::string operator()(const std::vector<int64_t>& v) { return join(v, [](int64_t x) { return std::to_string(x); }); }
    std::string operator()(const std::vector<double>& v) { return join(v, format_real); }
    std::string operator()(const std::vector<std::string>& v) { return join(v, format_string); }
    std::string operator()(const Matrix& m) {
      return join(m, [](const std::vector<double>& row) { return join(row, format_real); });
    }
  };
  return std::visit(Visitor{}, value);
}

Schema& Schema::add(OptionSpec spec) {
  for (auto& existing : specs_) {
    if (existing.name == spec.name) {  // a later declaration refines an earlier one
      existing = std::move(spec);
      return *this;
    }
  }
  specs_.push_back(std::move(spec));
  return *this;
}

Schema& Schema::integer(const std::string& name, int64_t def, const std::string& doc, Range r) {
  return add({name, OptionType::integer, def, doc, r.min, r.max, {}, false});
}
Schema& Schema::real(const std::string& name, double def, const std::string& doc, Range r) {
  return add({name, OptionType::real, def, doc, r.min, r.max, {}, false});
}
Schema& Schema::boolean(const std::string& name, bool def, const std::string& doc) {
  return add({name, OptionType::boolean, def, doc, {}, {}, {}, false});
}
Schema& Schema::string(const std::string& name, const std::string& def, const std::string& doc) {
  return add({name, OptionType::string, def, doc, {}, {}, {}, false});
}
Schema& Schema::choice(const std::string& name, const std::string& def,
                       const std::vector<std::string>& choices, const std::string& doc) {
  return add({name, OptionType::string, def, doc, {}, {}, choices, false});
}
Schema& Schema::integers(const std::string& name, const std::vector<int64_t>& def,
                         const std::string& doc, Range r) {
  return add({name, OptionType::integers, def, doc, r.min, r.max, {}, false});
}
Schema& Schema::reals(const std::string& name, const std::vector<double>& def,
                      const std::string& doc, Range r) {
  return add({name, OptionType::reals, def, doc, r.min, r.max, {}, false});
}
Schema& Schema::strings(const std::string& name, const std::vector<std::string>& def,
                        const std::string& doc) {
  return add({name, OptionType::strings, def, doc, {}, {}, {}, false});
}
Schema& Schema::matrix(const std::string& name, const Matrix& def, const std::string& doc) {
  return add({name, OptionType::matrix, def, doc, {}, {}, {}, false});
}
Schema& Schema::required(const std::string& name, OptionType type, const std::string& doc) {
  OptionSpec spec{name, type, {}, doc, {}, {}, {}, true};
  return add(spec);
}
Schema& Schema::merge(const Schema& other) {
  for (const auto& spec : other.specs_) add(spec);
  return *this;
}

const OptionSpec* Schema::find(const std::string& name) const {
  for (const auto& spec : specs_) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const OptionValue& Options::at(const std::string& key) const {
  auto it = values_.find(key);
  GENFW_CHECK(it != values_.end(), owner_, ": option '", key,
              "' is not in its schema (a plugin asked for an undeclared option)");
  return it->second;
}

namespace {
template <typename T>
const T& get_as(const OptionValue& value, const std::string& owner, const std::string& key,
                const char* expected) {
  const T* typed = std::get_if<T>(&value);
  GENFW_CHECK(typed != nullptr, owner, ": option '", key, "' read as ", expected,
              " but holds ", format_value(value));
  return *typed;
}
}  // namespace

int64_t Options::integer(const std::string& key) const {
  return get_as<int64_t>(at(key), owner_, key, "an integer");
}
double Options::real(const std::string& key) const {
  const OptionValue& v = at(key);
  if (const auto* i = std::get_if<int64_t>(&v)) return double(*i);
  return get_as<double>(v, owner_, key, "a float");
}
bool Options::flag(const std::string& key) const {
  return get_as<bool>(at(key), owner_, key, "a boolean");
}
const std::string& Options::string(const std::string& key) const {
  return get_as<std::string>(at(key), owner_, key, "a string");
}
std::vector<int64_t> Options::integers(const std::string& key) const {
  return get_as<std::vector<int64_t>>(at(key), owner_, key, "an array of integers");
}
std::vector<double> Options::reals(const std::string& key) const {
  const OptionValue& v = at(key);
  if (const auto* ints = std::get_if<std::vector<int64_t>>(&v)) {
    return std::vector<double>(ints->begin(), ints->end());
  }
  return get_as<std::vector<double>>(v, owner_, key, "an array of floats");
}
const std::vector<std::string>& Options::strings(const std::string& key) const {
  return get_as<std::vector<std::string>>(at(key), owner_, key, "an array of strings");
}
const Matrix& Options::matrix(const std::string& key) const {
  return get_as<Matrix>(at(key), owner_, key, "an array of arrays of floats");
}

}  // namespace genfw

namespace genfw {

namespace {
std::string describe_expected(const OptionSpec& spec) {
  std::ostringstream out;
  out << option_type_name(spec.type);
  if (spec.min && spec.max) out << " in [" << *spec.min << ", " << *spec.max << "]";
  else if (spec.min) out << " >= " << *spec.min;
  else if (spec.max) out << " <= " << *spec.max;
  if (!spec.choices.empty()) {
    out << ", one of";
    for (const auto& c : spec.choices) out << " \"" << c << '"';
  }
  return out.str();
}

void check_range(const OptionSpec& spec, double v, const std::string& owner) {
  GENFW_CHECK((!spec.min || v >= *spec.min) && (!spec.max || v <= *spec.max), owner, ": option '",
              spec.name, "' = ", v, " is out of range; expected ", describe_expected(spec));
}
}  // namespace

OptionValue check_option(const OptionSpec& spec, const OptionValue& value, const std::string& owner) {
  auto mismatch = [&]() {
    return Error(detail::concat(owner, ": option '", spec.name, "' = ", format_value(value),
                                " has the wrong type; expected ", describe_expected(spec)));
  };
  switch (spec.type) {
    case OptionType::integer: {
      const auto* v = std::get_if<int64_t>(&value);
      if (!v) throw mismatch();
      check_range(spec, double(*v), owner);
      return *v;
    }
    case OptionType::real: {
      double v;
      if (const auto* i = std::get_if<int64_t>(&value)) v = double(*i);
      else if (const auto* d = std::get_if<double>(&value)) v = *d;
      else throw mismatch();
      check_range(spec, v, owner);
      return v;
    }
    case OptionType::boolean:
      if (!std::holds_alternative<bool>(value)) throw mismatch();
      return value;
    case OptionType::string: {
      const auto* s = std::get_if<std::string>(&value);
      if (!s) throw mismatch();
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), *s) == spec.choices.end()) {
        throw Error(detail::concat(owner, ": option '", spec.name, "' = \"", *s,
                                   "\" is not allowed; expected ", describe_expected(spec),
                                   unknown_name_hint(*s, spec.choices)));
      }
      return value;
    }
    case OptionType::integers: {
      const auto* v = std::get_if<std::vector<int64_t>>(&value);
      if (!v) {
        // An empty TOML array has no element type: accept it as an empty list.
        if (const auto* d = std::get_if<std::vector<double>>(&value); d && d->empty()) {
          return std::vector<int64_t>{};
        }
        throw mismatch();
      }
      for (int64_t x : *v) check_range(spec, double(x), owner);
      return *v;
    }
    case OptionType::reals: {
      std::vector<double> out;
      if (const auto* i = std::get_if<std::vector<int64_t>>(&value)) out.assign(i->begin(), i->end());
      else if (const auto* d = std::get_if<std::vector<double>>(&value)) out = *d;
      else throw mismatch();
      for (double x : out) check_range(spec, x, owner);
      return out;
    }
    case OptionType::strings: {
      if (const auto* d = std::get_if<std::vector<double>>(&value); d && d->empty()) {
        return std::vector<std::string>{};
      }
      if (!std::holds_alternative<std::vector<std::string>>(value)) throw mismatch();
      return value;
    }
    case OptionType::matrix: {
      if (const auto* d = std::get_if<std::vector<double>>(&value); d && d->empty()) return Matrix{};
      if (!std::holds_alternative<Matrix>(value)) throw mismatch();
      return value;
    }
  }
  throw mismatch();
}

std::string closest_name(const std::string& name, const std::vector<std::string>& known) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
        diagonal = above;
      }
    }
    return row[b.size()];
  };
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& candidate : known) {
    size_t d = distance(name, candidate);
    // A mistyped beginning of a long name ("anneald" for "annealed_langevin") is close to its prefix.
    if (candidate.size() > name.size() + 2) d = std::min(d, distance(name, candidate.substr(0, name.size())) + 1);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string unknown_name_hint(const std::string& name, const std::vector<std::string>& known) {
  std::string close = closest_name(name, known);
  if (!close.empty()) return "; did you mean '" + close + "'?";
  std::string list;
  for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
  return "; known: " + (list.empty() ? std::string("(none)") : list);
}

Options Options::with_defaults(const Schema& schema, const std::string& owner,
                               const std::map<std::string, OptionValue>& overrides) {
  Options options(owner);
  std::vector<std::string> names;
  for (const auto& spec : schema.specs()) names.push_back(spec.name);
  for (const auto& [key, value] : overrides) {
    const OptionSpec* spec = schema.find(key);
    GENFW_CHECK(spec != nullptr, owner, ": unknown option '", key, "'", unknown_name_hint(key, names));
    options.set(key, check_option(*spec, value, owner));
  }
  for (const auto& spec : schema.specs()) {
    if (options.has(spec.name)) continue;
    GENFW_CHECK(!spec.required, owner, ": option '", spec.name, "' is required (",
                option_type_name(spec.type), "): ", spec.doc);
    options.set(spec.name, spec.default_value);
  }
  return options;
}

}  // namespace genfw
