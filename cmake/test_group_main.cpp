// main() of a test group executable (cmake/GenfwTestGroups.cmake): with
// --genfw_source=FILE it runs only the tests defined in FILE, so that CTest
// keeps one test per source file (names, labels, timing and parallelism as if
// each had an executable of its own).
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <string>

namespace {

constexpr const char* kSourceFlag = "--genfw_source=";

/// A gtest filter naming every test whose TEST() is written in `source`.
std::string filter_for_source(const std::string& source) {
  std::string filter;
  const auto& unit = *::testing::UnitTest::GetInstance();
  for (int s = 0; s < unit.total_test_suite_count(); ++s) {
    const auto& suite = *unit.GetTestSuite(s);
    for (int t = 0; t < suite.total_test_count(); ++t) {
      const auto& test = *suite.GetTestInfo(t);
      if (source != test.file()) continue;
      if (!filter.empty()) filter += ':';
      filter += std::string(suite.name()) + "." + test.name();
    }
  }
  return filter;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::testing::GTEST_FLAG(filter) != "*") return RUN_ALL_TESTS();  // the user's --gtest_filter is narrower
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kSourceFlag, std::strlen(kSourceFlag)) != 0) continue;
    const std::string source = argv[i] + std::strlen(kSourceFlag);
    const std::string filter = filter_for_source(source);
    if (filter.empty()) {
      std::cerr << "no test is defined in " << source << "\n";
      return 1;
    }
    ::testing::GTEST_FLAG(filter) = filter;
  }
  return RUN_ALL_TESTS();
}
