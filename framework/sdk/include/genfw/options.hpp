#pragma once
/// Option schemas and resolved option values.
///
/// A plugin declares its schema once (name, type, default, range, doc); the
/// same declaration validates the TOML table, fills defaults, drives
/// `runner describe`, and is what the resolved config logs. OptionBinding
/// binds each declaration to the settings member it fills, so the key is not
/// written again where the value is read.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "genfw/export.hpp"

namespace genfw {

enum class OptionType { integer, real, boolean, string, integers, reals, strings, matrix };

/// TOML spelling of a type, for messages: "integer", "float", "array of floats", ...
GENFW_API const char* option_type_name(OptionType type);

using Matrix = std::vector<std::vector<double>>;
using OptionValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>,
                                 std::vector<double>, std::vector<std::string>, Matrix>;

/// The shortest text that reads back as the same double: 0.9, 3e-4, 1e+20 as
/// "1e20", 52183.4, -0, inf, nan (what people and TOML both read).
GENFW_API std::string shortest_number(double value);

/// The TOML literal of a value: 3, 0.5, true, "linear", [1, 2, 2], [[-5.0, -5.0]].
GENFW_API std::string format_value(const OptionValue& value);

struct OptionSpec {
  std::string name;
  OptionType type = OptionType::real;
  OptionValue default_value;
  std::string doc;
  std::optional<double> min;            ///< inclusive; applies to numbers and list elements
  std::optional<double> max;            ///< inclusive
  std::vector<std::string> choices;     ///< allowed strings, empty = any
  bool required = false;                ///< no default: the TOML table must set it
};

struct Range {
  std::optional<double> min;
  std::optional<double> max;
};
inline Range at_least(double v) { return {v, std::nullopt}; }
inline Range between(double lo, double hi) { return {lo, hi}; }

/// A plugin's option declarations, built fluently:
///   Schema().integer("width", 64, "channels of the first block", at_least(1))
///           .choice("init", "uniform", {"uniform", "gaussian"}, "initial noise")
class GENFW_API Schema {
 public:
  Schema& integer(const std::string& name, int64_t def, const std::string& doc, Range r = {});
  Schema& real(const std::string& name, double def, const std::string& doc, Range r = {});
  Schema& boolean(const std::string& name, bool def, const std::string& doc);
  Schema& string(const std::string& name, const std::string& def, const std::string& doc);
  Schema& choice(const std::string& name, const std::string& def,
                 const std::vector<std::string>& choices, const std::string& doc);
  Schema& integers(const std::string& name, const std::vector<int64_t>& def, const std::string& doc,
                   Range r = {});
  Schema& reals(const std::string& name, const std::vector<double>& def, const std::string& doc,
                Range r = {});
  Schema& strings(const std::string& name, const std::vector<std::string>& def,
                  const std::string& doc);
  Schema& matrix(const std::string& name, const Matrix& def, const std::string& doc);
  /// An option without default that the table must set (e.g. a path).
  Schema& required(const std::string& name, OptionType type, const std::string& doc);
  /// Appends another schema's options (shared options of a kind, a base class's options).
  Schema& merge(const Schema& other);

  const std::vector<OptionSpec>& specs() const { return specs_; }
  const OptionSpec* find(const std::string& name) const;

 private:
  Schema& add(OptionSpec spec);
  std::vector<OptionSpec> specs_;
};

/// Resolved, validated values of one component's table (defaults filled in).
/// Accessors throw genfw::Error naming the owner and key on a missing key or a
/// type the schema did not declare.
class GENFW_API Options {
 public:
  Options() = default;
  explicit Options(std::string owner) : owner_(std::move(owner)) {}

  int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;  ///< integers are widened
  bool flag(const std::string& key) const;
  const std::string& string(const std::string& key) const;
  std::vector<int64_t> integers(const std::string& key) const;
  std::vector<double> reals(const std::string& key) const;
  const std::vector<std::string>& strings(const std::string& key) const;
  const Matrix& matrix(const std::string& key) const;
  bool has(const std::string& key) const { return values_.count(key) > 0; }

  void set(const std::string& key, OptionValue value) { values_[key] = std::move(value); }
  const std::map<std::string, OptionValue>& values() const { return values_; }
  /// Who these options belong to, e.g. "sampler 'langevin'" (used in messages).
  const std::string& owner() const { return owner_; }

  /// Fills every default of `schema`; for tests and programmatic use. Keys in
  /// `overrides` are checked against the schema like TOML keys are.
  static Options with_defaults(const Schema& schema, const std::string& owner,
                               const std::map<std::string, OptionValue>& overrides = {});

 private:
  const OptionValue& at(const std::string& key) const;
  std::string owner_;
  std::map<std::string, OptionValue> values_;
};

}  // namespace genfw

namespace genfw {
/// Checks a value against its declaration: type (an integer is accepted for a
/// float and widened), range of numbers and list elements, choices. Returns
/// the value as the declared type; throws genfw::Error whose message starts
/// with "<owner>: option '<name>' ..." and says what was expected.
GENFW_API OptionValue check_option(const OptionSpec& spec, const OptionValue& value,
                                   const std::string& owner);
/// The known name closest to `name` by edit distance, or "" when none is close.
GENFW_API std::string closest_name(const std::string& name, const std::vector<std::string>& known);
/// ", did you mean 'x'?" or "; known options: a, b, c".
GENFW_API std::string unknown_name_hint(const std::string& name, const std::vector<std::string>& known);
}  // namespace genfw

namespace genfw {

/// Options declared once, each bound to the member it fills (the PyTorch C++
/// frontend's XOptions with the schema attached): the default is the member's
/// in-class initialiser, the key, doc and range are the binding's one line, and
/// the same declaration gives the Schema (validation, `runner describe`, the
/// logged config) and fills a Settings from validated Options.
///   struct Settings { int64_t width = 64; double lr = 1e-3; };
///   static const OptionBinding<Settings> binding = OptionBinding<Settings>()
///       .integer("width", &Settings::width, "channels of the first block", at_least(1))
///       .real("lr", &Settings::lr, "learning rate", at_least(0.0));
///   Settings s = binding.read(options);   // binding.schema() is the plugin's schema
template <typename Settings>
class OptionBinding {
 public:
  /// Where an option's value lives in a Settings: a member pointer, or nested().
  template <typename T>
  using Field = std::function<T&(Settings&)>;
  /// A member of a member, e.g. nested(&FeatureSettings::extractor, &ExtractorConfig::batch_size).
  template <typename Part, typename T>
  static Field<T> nested(Part Settings::*part, T Part::*member) {
    return [part, member](Settings& s) -> T& { return (s.*part).*member; };
  }

  OptionBinding& integer(const std::string& key, Field<int64_t> field, const std::string& doc, Range range = {}) {
    schema_.integer(key, default_of(field), doc, range);
    return bind(key, field, [](const Options& o, const std::string& k) { return o.integer(k); });
  }
  OptionBinding& real(const std::string& key, Field<double> field, const std::string& doc, Range range = {}) {
    schema_.real(key, default_of(field), doc, range);
    return bind(key, field, [](const Options& o, const std::string& k) { return o.real(k); });
  }
  OptionBinding& boolean(const std::string& key, Field<bool> field, const std::string& doc) {
    schema_.boolean(key, default_of(field), doc);
    return bind(key, field, [](const Options& o, const std::string& k) { return o.flag(k); });
  }
  OptionBinding& string(const std::string& key, Field<std::string> field, const std::string& doc) {
    schema_.string(key, default_of(field), doc);
    return bind(key, field, [](const Options& o, const std::string& k) { return o.string(k); });
  }
  OptionBinding& choice(const std::string& key, Field<std::string> field, const std::vector<std::string>& choices,
                        const std::string& doc) {
    schema_.choice(key, default_of(field), choices, doc);
    return bind(key, field, [](const Options& o, const std::string& k) { return o.string(k); });
  }
  OptionBinding& reals(const std::string& key, Field<std::vector<double>> field, const std::string& doc,
                       Range range = {}) {
    schema_.reals(key, default_of(field), doc, range);
    return bind(key, field, [](const Options& o, const std::string& k) { return o.reals(k); });
  }

  const Schema& schema() const { return schema_; }
  /// A Settings with every bound member read from `options` (validated against schema()).
  Settings read(const Options& options) const {
    Settings settings{};
    for (const auto& fill : fills_) fill(settings, options);
    return settings;
  }

 private:
  template <typename T>
  static T default_of(const Field<T>& field) {
    Settings defaults{};
    return field(defaults);
  }
  template <typename T, typename Get>
  OptionBinding& bind(const std::string& key, Field<T> field, Get get) {
    fills_.push_back([key, field, get](Settings& s, const Options& o) { field(s) = get(o, key); });
    return *this;
  }

  Schema schema_;
  std::vector<std::function<void(Settings&, const Options&)>> fills_;
};

}  // namespace genfw
