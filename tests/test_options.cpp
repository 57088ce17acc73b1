// Options declared once (genfw/options.hpp, OptionBinding): the schema a
// binding gives has the members' defaults, its keys, docs and ranges, and
// reading validated options fills exactly the bound members.
#include <gtest/gtest.h>

#include "genfw/features.hpp"
#include "genfw/options.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

struct Inner {
  int64_t steps = 7;
};

struct Settings {
  int64_t width = 64;
  double rate = 0.5;
  bool enabled = true;
  std::string mode = "fast";
  std::vector<double> range{-1.0, 1.0};
  Inner inner;
};

using Binding = genfw::OptionBinding<Settings>;

const Binding& binding() {
  static const Binding b = Binding()
                               .integer("width", &Settings::width, "channels", genfw::at_least(1))
                               .real("rate", &Settings::rate, "a rate", genfw::between(0.0, 1.0))
                               .boolean("enabled", &Settings::enabled, "on or off")
                               .choice("mode", &Settings::mode, {"fast", "exact"}, "how")
                               .reals("range", &Settings::range, "bounds")
                               .integer("steps", Binding::nested(&Settings::inner, &Inner::steps), "inner steps");
  return b;
}

}  // namespace

TEST(Options, ABindingsSchemaHasTheMembersDefaultsKeysDocsAndRanges) {
  const genfw::Schema& schema = binding().schema();
  ASSERT_EQ(schema.specs().size(), 6u);
  EXPECT_EQ(std::get<int64_t>(schema.find("width")->default_value), 64);
  EXPECT_EQ(schema.find("width")->doc, "channels");
  EXPECT_EQ(schema.find("width")->min, 1.0);
  EXPECT_EQ(std::get<double>(schema.find("rate")->default_value), 0.5);
  EXPECT_EQ(schema.find("rate")->max, 1.0);
  EXPECT_EQ(std::get<bool>(schema.find("enabled")->default_value), true);
  EXPECT_EQ(schema.find("mode")->choices, (std::vector<std::string>{"fast", "exact"}));
  EXPECT_EQ(std::get<std::vector<double>>(schema.find("range")->default_value), (std::vector<double>{-1.0, 1.0}));
  EXPECT_EQ(std::get<int64_t>(schema.find("steps")->default_value), 7);
  // Validation is the schema's: out of range is refused, naming the key.
  EXPECT_CONTAINS(error_of([&] { genfw::Options::with_defaults(schema, "sampler 'x'", {{"rate", 2.0}}); }),
                  "'rate'");
}

TEST(Options, ReadingFillsEveryBoundMemberNestedOnesToo) {
  const genfw::Options options = genfw::Options::with_defaults(
      binding().schema(), "sampler 'x'",
      {{"width", int64_t(3)}, {"mode", std::string("exact")}, {"steps", int64_t(11)}, {"enabled", false}});
  const Settings s = binding().read(options);
  EXPECT_EQ(s.width, 3);
  EXPECT_EQ(s.rate, 0.5);
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.mode, "exact");
  EXPECT_EQ(s.range, (std::vector<double>{-1.0, 1.0}));
  EXPECT_EQ(s.inner.steps, 11);
}

// The [features] table is declared so: its schema's defaults are the structs' own.
TEST(Options, TheFeaturesTablesDefaultsAreItsMembersInitialisers) {
  const genfw::Schema& schema = genfw::metric::FeatureSettings::schema();
  const genfw::metric::FeatureSettings defaults;
  EXPECT_EQ(std::get<int64_t>(schema.find("batch_size")->default_value), defaults.extractor.batch_size);
  EXPECT_EQ(std::get<int64_t>(schema.find("max_reference")->default_value), defaults.max_reference);
  EXPECT_EQ(std::get<std::string>(schema.find("extractor")->default_value), defaults.extractor.kind);
  const auto read = genfw::metric::FeatureSettings::from_options(
      genfw::Options::with_defaults(schema, "[features]", {{"batch_size", int64_t(7)}, {"floor", false}}));
  EXPECT_EQ(read.extractor.batch_size, 7);
  EXPECT_FALSE(read.floor);
  EXPECT_EQ(read.extractor.classifier_width, defaults.extractor.classifier_width);
  EXPECT_CONTAINS(error_of([&] {
                    genfw::metric::FeatureSettings::from_options(genfw::Options::with_defaults(
                        schema, "[features]", {{"input_range", std::vector<double>{1.0, 0.0}}}));
                  }),
                  "input_range");
}
