// The run file as outside readers see it: readable while its run goes on,
// numbers stored as numbers, one column order, old files still read.
#include <hdf5.h>
#include <array>
#include <sys/wait.h>
#include <unistd.h>

#include "genfw/run_log.hpp"
#include "support.hpp"

using namespace test_support;

namespace {

/// The rows of a [rows, 3] float64 dataset, read with HDF5's C API and default file locking.
std::vector<std::array<double, 3>> raw_rows(const std::string& file, const std::string& dataset) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0) << "an outside reader cannot open " << file;
  if (f < 0) return {};
  hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  hid_t space = H5Dget_space(d);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space, dims, nullptr);
  std::vector<std::array<double, 3>> rows(dims[0]);
  if (!rows.empty()) H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return rows;
}

/// The HDF5 type class of attribute `name` of `object`, and its text if it is a string.
std::pair<H5T_class_t, std::string> raw_attribute(const std::string& file, const std::string& object,
                                                  const std::string& name) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t a = H5Aopen_by_name(f, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  hid_t type = H5Aget_type(a);
  const H5T_class_t type_class = H5Tget_class(type);
  std::string text;
  if (type_class == H5T_STRING) {
    char* value = nullptr;
    hid_t memory = H5Tcopy(H5T_C_S1);
    H5Tset_size(memory, H5T_VARIABLE);
    if (H5Aread(a, memory, &value) >= 0 && value != nullptr) text = value;
    H5free_memory(value);
    H5Tclose(memory);
  }
  H5Tclose(type);
  H5Aclose(a);
  H5Fclose(f);
  return {type_class, text};
}

/// A version-1 run file: /metrics/<name> rows of value, step, wall seconds;
/// `columns` attribute written only when given (the oldest files have none).
void write_version1_metric(const std::string& file, const std::string& name,
                           const std::vector<std::array<double, 3>>& rows, const char* columns) {
  hid_t f = H5Fcreate(file.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  hid_t group = H5Gcreate2(f, "/metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[2] = {rows.size(), 3}, max_dims[2] = {H5S_UNLIMITED, 3}, chunk[2] = {1024, 3};
  hid_t space = H5Screate_simple(2, dims, max_dims);
  hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(properties, 2, chunk);
  hid_t d = H5Dcreate2(group, name.c_str(), H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data());
  if (columns != nullptr) {
    hid_t text = H5Tcopy(H5T_C_S1);
    H5Tset_size(text, H5T_VARIABLE);
    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(d, "columns", text, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, text, &columns);
    H5Aclose(a);
    H5Sclose(scalar);
    H5Tclose(text);
  }
  H5Dclose(d);
  H5Pclose(properties);
  H5Sclose(space);
  H5Gclose(group);
  H5Fclose(f);
}

}  // namespace

TEST(RunLog, AnOutsideReaderOpensTheFileWhileItsRunLogWrites) {
  TempDir dir;
  const std::string path = dir / "live.h5";
  genfw::RunLog log = genfw::RunLog::create(path);
  log.append_series("/train/loss/model", {{0, 1.5, 0.1}, {1, 1.25, 0.2}});
  log.flush();
  auto rows = raw_rows(path, "/train/loss/model");  // the RunLog is alive
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][0], 1.0);
  EXPECT_EQ(rows[1][1], 1.25);

  // A reader in another process holds the file open (and HDF5's shared lock on
  // it) while the run goes on appending: the writer must not fail.
  int ready[2], done[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(done), 0);
  pid_t reader = ::fork();
  if (reader == 0) {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    char byte = f >= 0 ? 'y' : 'n';
    (void)!::write(ready[1], &byte, 1);
    (void)!::read(done[0], &byte, 1);
    ::_exit(f >= 0 && H5Fclose(f) >= 0 ? 0 : 1);
  }
  char opened = 0;
  ASSERT_EQ(::read(ready[0], &opened, 1), 1);
  EXPECT_EQ(opened, 'y');
  log.append_series("/train/loss/model", {{2, 1.0, 0.3}});
  log.set_attribute("/", "status", "running");
  log.flush();
  (void)!::write(done[1], "x", 1);
  int status = 0;
  ::waitpid(reader, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int fd : {ready[0], ready[1], done[0], done[1]}) ::close(fd);
  EXPECT_EQ(raw_rows(path, "/train/loss/model").size(), 3u);
  EXPECT_EQ(log.read_series("/train/loss/model").size(), 3u);
}

TEST(RunLog, OneWriterAtATime) {
  TempDir dir;
  const std::string path = dir / "one.h5";
  {
    genfw::RunLog writer = genfw::RunLog::create(path);
    EXPECT_CONTAINS(error_of([&] { genfw::RunLog::open(path, true); }), "another process is writing it");
    EXPECT_EQ(genfw::RunLog::open(path, false).attribute("/", "run_file_version"), "2");  // readers may
  }
  genfw::RunLog::open(path, true).set_attribute("/", "status", "completed");  // the first one is gone
}

TEST(RunLog, NumbersAreStoredAsNumbersAndReadBackAsText) {
  TempDir dir;
  const std::string path = dir / "numbers.h5";
  {
    genfw::RunLog log = genfw::RunLog::create(path);
    log.set_attribute("/", "checkpoint_step", int64_t(1200));
    log.set_attribute("/", "low", -1.0);
    log.set_attribute("/", "ratio", 0.1);
    log.set_attribute("/", "experiment", "fx");
    log.append_metric("fid", {12.5, 1200, 3.0}, "fid",
                      {{"samples", "10000"}, {"accuracy", "0.95"}, {"padded", "0.950000"}, {"count", "10 of 20"}});
    EXPECT_EQ(log.attribute("/", "checkpoint_step"), "1200");
    EXPECT_EQ(log.attribute("/", "low"), "-1.0");
    EXPECT_EQ(log.attribute("/", "ratio"), "0.1");
    EXPECT_EQ(log.attribute("/metrics/fid", "provenance.samples"), "10000");
    EXPECT_EQ(log.attribute("/metrics/fid", "provenance.accuracy"), "0.95");
    EXPECT_EQ(log.attribute("/metrics/fid", "provenance.padded"), "0.950000");  // its text kept as it is
    EXPECT_EQ(log.attribute("/metrics/fid", "provenance.count"), "10 of 20");
  }
  EXPECT_EQ(raw_attribute(path, "/", "run_file_version").first, H5T_INTEGER);
  EXPECT_EQ(raw_attribute(path, "/", "checkpoint_step").first, H5T_INTEGER);
  EXPECT_EQ(raw_attribute(path, "/", "low").first, H5T_FLOAT);
  EXPECT_EQ(raw_attribute(path, "/", "experiment"), std::make_pair(H5T_STRING, std::string("fx")));
  EXPECT_EQ(raw_attribute(path, "/metrics/fid", "provenance.samples").first, H5T_INTEGER);
  EXPECT_EQ(raw_attribute(path, "/metrics/fid", "provenance.accuracy").first, H5T_FLOAT);
  EXPECT_EQ(raw_attribute(path, "/metrics/fid", "provenance.padded").first, H5T_STRING);
}

TEST(RunLog, MetricsRowsAreStepValueWallAndSayTheirColumns) {
  TempDir dir;
  const std::string path = dir / "new.h5";
  {
    genfw::RunLog log = genfw::RunLog::create(path);
    log.append_metric("fid", {12.5, 1200, 3.0}, "fid", {});
    log.append_series("/train/loss/model", {{7, 0.5, 1.0}});
  }
  EXPECT_EQ(raw_rows(path, "/metrics/fid")[0], (std::array<double, 3>{1200, 12.5, 3.0}));
  for (const char* dataset : {"/metrics/fid", "/train/loss/model"}) {
    EXPECT_EQ(raw_attribute(path, dataset, "columns"), std::make_pair(H5T_STRING, std::string("step,value,wall_seconds")));
  }
  auto rows = genfw::RunLog::open(path, false).read_metric("fid");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].value, 12.5);
  EXPECT_EQ(rows[0].step, 1200);
}

// Version-1 files: /metrics rows of value, step, wall seconds, with or without a
// `columns` attribute; read, appended to (resume) and truncated in their own order.
TEST(RunLog, Version1MetricsAreReadAppendedAndTruncatedInTheirOrder) {
  for (const char* columns : {static_cast<const char*>(nullptr), "value,step,wall_seconds"}) {
    TempDir dir;
    const std::string path = dir / "old.h5";
    write_version1_metric(path, "fid", {{30.0, 100, 1.0}, {20.0, 200, 2.0}}, columns);
    auto rows = genfw::RunLog::open(path, false).read_metric("fid");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1].value, 20.0);
    EXPECT_EQ(rows[1].step, 200);
    EXPECT_EQ(rows[1].wall_seconds, 2.0);
    {
      genfw::RunLog resumed = genfw::RunLog::open(path, true);
      resumed.truncate_metrics(200);
      resumed.append_metric("fid", {15.0, 300, 4.0}, "fid", {});
    }
    EXPECT_EQ(raw_rows(path, "/metrics/fid").back(), (std::array<double, 3>{15.0, 300, 4.0}));
    rows = genfw::RunLog::open(path, false).read_metric("fid");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].step, 100);
    EXPECT_EQ(rows[1].step, 300);
    EXPECT_EQ(rows[1].value, 15.0);
  }
}
