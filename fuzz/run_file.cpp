// Fuzz target: the run-file reader behind `runner compare`: HDF5 file bytes →
// write_comparison (attributes, timing scalars, metric series, the parent chain).
#include <sstream>

#include "fuzz_support.hpp"
#include "genfw/run.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = genfw_fuzz::scratch_dir() / "run.h5";
  genfw_fuzz::write_bytes(file, data, size);
  genfw_fuzz::expect_clean([&] {
    std::ostringstream table;
    genfw::write_comparison({file.string()}, {}, table, table);
  });
  return 0;
}
