#include "genfw/run_log.hpp"

#include <H5Cpp.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <optional>
#include <sstream>
#include <variant>

#include "genfw/durable.hpp"
#include "genfw/error.hpp"
#include "genfw/options.hpp"

namespace genfw {

struct RunLog::Impl {
  enum class Access { read_only, append, in_memory };
  std::string path;
  Access access = Access::read_only;
  /// Appending: open from the first access after a flush until the next flush
  /// (see flush()). Read-only and in-memory: open for the log's lifetime.
  std::unique_ptr<H5::H5File> file;
  bool detached = false;  ///< a write failed for lack of space: see detach_from_disk()
  int writer_lock = -1;   ///< descriptor holding hold_writer_lock()'s lock

  H5::H5File& opened();
  /// Closes the file of an appending log: everything written is on disk after it.
  void close_appended();
  /// Closes the file; one whose close fails is abandoned (see the definition).
  void close_file();
  ~Impl() {
    if (writer_lock >= 0) ::close(writer_lock);
  }
};

namespace {

constexpr int64_t kRunFileVersion = 2;
constexpr const char* kColumns = "step,value,wall_seconds";
/// Version-1 files wrote /metrics rows as value, step, wall seconds (the oldest
/// of them without a `columns` attribute).
constexpr const char* kVersion1MetricColumns = "value,step,wall_seconds";

// The writer takes no HDF5 file lock: a reader (h5py, h5dump, runner compare)
// holds a shared lock while it has the file open, and a run must never fail
// because someone looks at it. hold_writer_lock() keeps two writers apart instead.
H5::FileAccPropList unlocked_access() {
  H5::FileAccPropList access;
  H5Pset_file_locking(access.getId(), /*use_file_locking=*/false, /*ignore_when_disabled=*/true);
  return access;
}

/// One writer per run file (a second `runner --resume` of a running run must
/// fail, not interleave its writes): an open-file-description lock on one byte
/// far past the data. HDF5's own locks are flock()s, which these do not meet,
/// so readers are unaffected.
int hold_writer_lock(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;  // opening the file through HDF5 reports why
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = LLONG_MAX - 1;
  lock.l_len = 1;
  if (::fcntl(fd, F_OFD_SETLK, &lock) == 0 || (errno != EAGAIN && errno != EACCES)) return fd;
  ::close(fd);
  throw Error("cannot write " + path + ": another process is writing it (a runner still running this run?)");
}

}  // namespace

H5::H5File& RunLog::Impl::opened() {
  if (!file) file = std::make_unique<H5::H5File>(path, H5F_ACC_RDWR, H5::FileCreatPropList::DEFAULT, unlocked_access());
  return *file;
}


namespace {

// Creates every missing group on the way to `path`'s parent.
void ensure_parents(H5::H5File& file, const std::string& path) {
  size_t pos = 1;
  while ((pos = path.find('/', pos)) != std::string::npos) {
    std::string group = path.substr(0, pos);
    if (!file.nameExists(group)) file.createGroup(group);
    ++pos;
  }
}

// H5Lexists fails (rather than answering false) when a parent group is missing,
// so each prefix is checked in turn.
bool path_exists(H5::H5File& file, const std::string& path) {
  size_t pos = 1;
  while ((pos = path.find('/', pos)) != std::string::npos) {
    if (!file.nameExists(path.substr(0, pos))) return false;
    ++pos;
  }
  return file.nameExists(path);
}

H5::StrType text_type() { return H5::StrType(H5::PredType::C_S1, H5T_VARIABLE); }

/// Calls `use` with the group or dataset at `path` (attributes live on either).
template <typename Use>
void with_object(H5::H5File& file, const std::string& path, Use&& use) {
  if (path == "/" || file.childObjType(path) == H5O_TYPE_GROUP) {
    H5::Group group = file.openGroup(path);
    use(group);
  } else {
    H5::DataSet dataset = file.openDataSet(path);
    use(dataset);
  }
}

/// Writes attribute `name` of `object` anew, as a scalar of `type`.
template <typename Write>
void replace_attribute(H5::H5Object& object, const std::string& name, const H5::DataType& type, Write&& write) {
  if (object.attrExists(name)) object.removeAttr(name);
  H5::Attribute attribute = object.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
  write(attribute);
}

void write_text_attribute(H5::H5Object& object, const std::string& name, const std::string& value) {
  replace_attribute(object, name, text_type(), [&](H5::Attribute& a) { a.write(text_type(), value); });
}

/// Numbers read back as text: integers in decimal, reals in their shortest
/// round-trip form, as the resolved TOML writes them.
std::optional<std::string> attribute_text(const H5::Attribute& attribute) {
  switch (attribute.getTypeClass()) {
    case H5T_STRING: {
      std::string value;
      attribute.read(text_type(), value);
      return value;
    }
    case H5T_INTEGER: {
      int64_t value = 0;
      attribute.read(H5::PredType::NATIVE_INT64, &value);
      return std::to_string(value);
    }
    case H5T_FLOAT: {
      double value = 0;
      attribute.read(H5::PredType::NATIVE_DOUBLE, &value);
      return format_value(OptionValue(value));
    }
    default:
      return std::nullopt;
  }
}

/// Provenance comes from plugins as text; a value that is exactly a number's
/// own text ("10000", "0.25", not "0.250" or "10000 of 10000") is stored as
/// that number, so attribute() returns the same text.
std::optional<OptionValue> exact_number(const std::string& text) {
  const char* end = text.data() + text.size();
  int64_t integer = 0;
  if (auto r = std::from_chars(text.data(), end, integer); r.ec == std::errc() && r.ptr == end &&
                                                               std::to_string(integer) == text) {
    return OptionValue(integer);
  }
  double real = 0;
  if (auto r = std::from_chars(text.data(), end, real); r.ec == std::errc() && r.ptr == end &&
                                                            format_value(OptionValue(real)) == text) {
    return OptionValue(real);
  }
  return std::nullopt;
}

/// Errors of the file system under HDF5 (its own messages do not say which).
bool is_storage_error(int error_number) {
  return error_number == ENOSPC || error_number == EDQUOT || error_number == EFBIG || error_number == EIO ||
         error_number == EROFS;
}

// The descriptor under an open HDF5 file on disk (the sec2 driver), or -1.
int descriptor_of(H5::H5File& file) {
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file.getId(), H5P_DEFAULT, &handle) < 0 || handle == nullptr) return -1;
  return *static_cast<int*>(handle);
}

// Points descriptor `fd`, if still open, at an anonymous memory file.
void move_to_memory(int fd) {
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) return;
  const int memory = ::memfd_create("genfw-detached-run-file", MFD_CLOEXEC);
  if (memory < 0) return;
  ::dup2(memory, fd);
  ::close(memory);
}

/// After a write failed for lack of space, HDF5 (1.10) cannot close the file:
/// its close flushes again, fails halfway and leaves state that the next close
/// (H5File's destructor, or the library's at exit) crashes on; and any further
/// flush could write metadata that points past the end of what reached the
/// disk. So the file descriptor under HDF5 is swapped for an anonymous memory
/// file: HDF5 finishes and closes cleanly there, and the run file on disk
/// keeps its last flushed, consistent state.
void detach_from_disk(RunLog::Impl& impl) {
  impl.detached = true;
  if (impl.file && impl.access != RunLog::Impl::Access::in_memory) move_to_memory(descriptor_of(*impl.file));
}

}  // namespace

void RunLog::Impl::close_file() {
  if (!file) return;
  // Asked before the close: after a close that failed, the file's state must not be touched.
  const int fd = access == Access::in_memory ? -1 : descriptor_of(*file);
  try {
    file->close();
  } catch (...) {
    // A close that failed halfway (a full disk) leaves an id that must never be
    // closed again: H5File's destructor would, and HDF5 1.10 crashes on it (the
    // double close of H5File::close <- ~RunLog). So the object is abandoned, and
    // its descriptor moved to memory, so that HDF5's clean-up at exit writes nothing.
    detached = true;
    move_to_memory(fd);
    (void)file.release();
    throw;
  }
  file.reset();
}

void RunLog::Impl::close_appended() {
  if (access == Access::append) close_file();
}

namespace {

template <typename Body>
auto hdf5(RunLog::Impl* impl, const std::string& file, const std::string& what, Body&& body) -> decltype(body()) {
  if (impl != nullptr && impl->detached) throw Error("cannot write " + file + ": an earlier write to it failed");
  errno = 0;
  try {
    return body();
  } catch (const H5::Exception& e) {
    if (is_storage_error(errno)) {
      const std::string reason = write_error(file, errno);
      if (impl != nullptr) detach_from_disk(*impl);
      throw Error(reason + " (" + what + ")");
    }
    throw Error("HDF5 run file " + file + ": " + what + ": " + e.getDetailMsg());
  }
}

/// A read from an appending log between flushes opens the file for itself
/// only: no handle stays open between flushes.
template <typename Body>
auto hdf5_read(RunLog::Impl& impl, const std::string& what, Body&& body) -> decltype(body(impl.opened())) {
  struct CloseIfItOpened {
    RunLog::Impl& impl;
    bool was_open;
    ~CloseIfItOpened() {
      try {
        if (!was_open && !impl.detached) impl.close_appended();
      } catch (const H5::Exception&) {
      }
    }
  } scope{impl, impl.file != nullptr};
  return hdf5(&impl, impl.path, what, [&] { return body(impl.opened()); });
}

}  // namespace

RunLog::RunLog(std::unique_ptr<Impl> impl, std::string path) : impl_(std::move(impl)), path_(std::move(path)) {}
RunLog::RunLog(RunLog&&) noexcept = default;
RunLog& RunLog::operator=(RunLog&&) noexcept = default;
RunLog::~RunLog() {
  if (!impl_) return;
  try {
    // A full disk shows here, where the file can still be detached (detach_from_disk).
    if (impl_->access != Impl::Access::read_only && !impl_->detached) flush();
  } catch (...) {
  }
  try {
    impl_->close_file();  // after a failed flush: closes the detached file, or abandons it
  } catch (...) {
  }
}

RunLog RunLog::create(const std::string& path) {
  H5::Exception::dontPrint();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->access = Impl::Access::append;
  hdf5(nullptr, path, "cannot create (it must not exist yet)", [&] {
    // H5F_ACC_EXCL: never overwrites a file
    H5::H5File file(path, H5F_ACC_EXCL, H5::FileCreatPropList::DEFAULT, unlocked_access());
    H5::Group root = file.openGroup("/");
    replace_attribute(root, "run_file_version", H5::PredType::NATIVE_INT64,
                      [](H5::Attribute& a) { a.write(H5::PredType::NATIVE_INT64, &kRunFileVersion); });
  });
  impl->writer_lock = hold_writer_lock(path);
  return RunLog(std::move(impl), path);
}

RunLog RunLog::create_in_memory(const std::string& name) {
  H5::Exception::dontPrint();
  return hdf5(nullptr, name, "cannot create in memory", [&] {
    H5::FileAccPropList access;
    access.setCore(1 << 20, /*backing_store=*/false);
    auto impl = std::make_unique<Impl>();
    impl->path = name;
    impl->access = Impl::Access::in_memory;
    impl->file = std::make_unique<H5::H5File>(name, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, access);
    RunLog log(std::move(impl), name);
    log.set_attribute("/", "run_file_version", kRunFileVersion);
    return log;
  });
}

RunLog RunLog::open(const std::string& path, bool writable) {
  H5::Exception::dontPrint();
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->access = writable ? Impl::Access::append : Impl::Access::read_only;
  if (writable) impl->writer_lock = hold_writer_lock(path);
  hdf5(nullptr, path, "cannot open (missing or not an HDF5 run file)", [&] {
    if (writable) {
      impl->opened();
      impl->close_appended();  // opened only to check that it is a run file
    } else {
      impl->file = std::make_unique<H5::H5File>(path, H5F_ACC_RDONLY);
    }
  });
  return RunLog(std::move(impl), path);
}

bool RunLog::exists(const std::string& object_path) const {
  return hdf5_read(*impl_, "lookup", [&](H5::H5File& file) { return path_exists(file, object_path); });
}

void RunLog::write_string(const std::string& path, const std::string& text) {
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    H5::H5File& file = impl_->opened();
    if (path_exists(file, path)) file.unlink(path);
    ensure_parents(file, path);
    H5::DataSet dataset = file.createDataSet(path, text_type(), H5::DataSpace(H5S_SCALAR));
    dataset.write(text, text_type());
  });
}

std::string RunLog::read_string(const std::string& path) const {
  return hdf5_read(*impl_, "reading " + path, [&](H5::H5File& file) {
    std::string text;
    file.openDataSet(path).read(text, text_type());
    return text;
  });
}

void RunLog::write_scalar(const std::string& path, double value) {
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    H5::H5File& file = impl_->opened();
    if (path_exists(file, path)) file.unlink(path);
    ensure_parents(file, path);
    H5::DataSet dataset = file.createDataSet(path, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
    dataset.write(&value, H5::PredType::NATIVE_DOUBLE);
  });
}

double RunLog::read_scalar(const std::string& path) const {
  return hdf5_read(*impl_, "reading " + path, [&](H5::H5File& file) {
    double value = 0;
    file.openDataSet(path).read(&value, H5::PredType::NATIVE_DOUBLE);
    return value;
  });
}

void RunLog::set_attribute(const std::string& object_path, const std::string& name, const std::string& value) {
  hdf5(impl_.get(), path_, "attribute " + name, [&] {
    with_object(impl_->opened(), object_path, [&](H5::H5Object& object) { write_text_attribute(object, name, value); });
  });
}

void RunLog::set_attribute(const std::string& object_path, const std::string& name, int64_t value) {
  hdf5(impl_.get(), path_, "attribute " + name, [&] {
    with_object(impl_->opened(), object_path, [&](H5::H5Object& object) {
      replace_attribute(object, name, H5::PredType::NATIVE_INT64,
                        [&](H5::Attribute& a) { a.write(H5::PredType::NATIVE_INT64, &value); });
    });
  });
}

void RunLog::set_attribute(const std::string& object_path, const std::string& name, double value) {
  hdf5(impl_.get(), path_, "attribute " + name, [&] {
    with_object(impl_->opened(), object_path, [&](H5::H5Object& object) {
      replace_attribute(object, name, H5::PredType::NATIVE_DOUBLE,
                        [&](H5::Attribute& a) { a.write(H5::PredType::NATIVE_DOUBLE, &value); });
    });
  });
}

std::map<std::string, std::string> RunLog::attributes(const std::string& object_path) const {
  return hdf5_read(*impl_, "attributes of " + object_path, [&](H5::H5File& file) {
    std::map<std::string, std::string> out;
    with_object(file, object_path, [&](H5::H5Object& object) {
      for (int i = 0; i < object.getNumAttrs(); ++i) {
        H5::Attribute attribute = object.openAttribute(static_cast<unsigned>(i));
        if (auto text = attribute_text(attribute)) out[attribute.getName()] = *text;
      }
    });
    return out;
  });
}

std::string RunLog::attribute(const std::string& object_path, const std::string& name) const {
  auto all = attributes(object_path);
  auto it = all.find(name);
  return it == all.end() ? "" : it->second;
}

namespace {
using Row = std::array<double, 3>;

/// Where step, value and wall seconds sit in the rows of a [rows, 3] dataset,
/// as its `columns` attribute says (version-1 /metrics: see kVersion1MetricColumns).
struct ColumnOrder {
  size_t step = 0, value = 1, wall_seconds = 2;

  static ColumnOrder of(H5::DataSet& dataset, const std::string& path) {
    std::string names = path.rfind("/metrics/", 0) == 0 ? kVersion1MetricColumns : kColumns;
    if (dataset.attrExists("columns")) dataset.openAttribute("columns").read(text_type(), names);
    std::vector<std::string> columns;
    std::istringstream list(names);
    for (std::string name; std::getline(list, name, ',');) columns.push_back(name);
    auto index_of = [&](const char* name) {
      return size_t(std::find(columns.begin(), columns.end(), name) - columns.begin());
    };
    ColumnOrder order{index_of("step"), index_of("value"), index_of("wall_seconds")};
    GENFW_CHECK(columns.size() == 3 && order.step < 3 && order.value < 3 && order.wall_seconds < 3, path,
                ": attribute columns = \"", names, "\": expected step, value and wall_seconds in some order");
    return order;
  }
  Row row(const ScalarRow& r) const {
    Row out{};
    out[step] = double(r.step);
    out[value] = r.value;
    out[wall_seconds] = r.wall_seconds;
    return out;
  }
  ScalarRow scalar_row(const Row& r) const { return {int64_t(r[step]), r[value], r[wall_seconds]}; }
};

void append_rows(H5::H5File& file, const std::string& path, const std::vector<ScalarRow>& rows) {
  if (!path_exists(file, path)) {
    ensure_parents(file, path);
    hsize_t dims[2] = {0, 3}, max_dims[2] = {H5S_UNLIMITED, 3}, chunk[2] = {1024, 3};
    H5::DSetCreatPropList properties;
    properties.setChunk(2, chunk);
    H5::DataSet created =
        file.createDataSet(path, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(2, dims, max_dims), properties);
    write_text_attribute(created, "columns", kColumns);
  }
  H5::DataSet dataset = file.openDataSet(path);
  const ColumnOrder order = ColumnOrder::of(dataset, path);  // a resumed old file keeps its order
  std::vector<Row> raw;
  for (const auto& r : rows) raw.push_back(order.row(r));
  hsize_t current[2];
  dataset.getSpace().getSimpleExtentDims(current);
  hsize_t extent[2] = {current[0] + raw.size(), 3};
  dataset.extend(extent);
  H5::DataSpace file_space = dataset.getSpace();
  hsize_t offset[2] = {current[0], 0}, count[2] = {raw.size(), 3};
  file_space.selectHyperslab(H5S_SELECT_SET, count, offset);
  dataset.write(raw.data(), H5::PredType::NATIVE_DOUBLE, H5::DataSpace(2, count), file_space);
}

std::vector<ScalarRow> read_rows(H5::H5File& file, const std::string& path) {
  H5::DataSet dataset = file.openDataSet(path);
  hsize_t dims[2];
  dataset.getSpace().getSimpleExtentDims(dims);
  std::vector<Row> raw(dims[0]);
  if (!raw.empty()) dataset.read(raw.data(), H5::PredType::NATIVE_DOUBLE);
  const ColumnOrder order = ColumnOrder::of(dataset, path);
  std::vector<ScalarRow> rows;
  for (const auto& r : raw) rows.push_back(order.scalar_row(r));
  return rows;
}
}  // namespace

void RunLog::append_series(const std::string& path, const std::vector<ScalarRow>& rows) {
  if (rows.empty()) return;
  hdf5(impl_.get(), path_, "appending to " + path, [&] { append_rows(impl_->opened(), path, rows); });
}

std::vector<ScalarRow> RunLog::read_series(const std::string& path) const {
  return hdf5_read(*impl_, "reading " + path, [&](H5::H5File& file) { return read_rows(file, path); });
}

void RunLog::truncate_rows(const std::string& group_path, int64_t step) {
  if (!exists(group_path)) return;
  for (const auto& name : children(group_path)) {
    std::string path = group_path + "/" + name;
    hdf5(impl_.get(), path_, "truncating " + path, [&] {
      H5::H5File& file = impl_->opened();
      auto rows = read_rows(file, path);  // appended in step order
      size_t keep = 0;
      while (keep < rows.size() && rows[keep].step < step) ++keep;
      if (keep == rows.size()) return;
      hsize_t extent[2] = {keep, 3};
      file.openDataSet(path).extend(extent);  // H5Dset_extent semantics: shrinking is allowed
    });
  }
}

void RunLog::truncate_series(const std::string& group_path, int64_t step) { truncate_rows(group_path, step); }

void RunLog::truncate_metrics(int64_t step) { truncate_rows("/metrics", step); }

void RunLog::append_metric(const std::string& name, const MetricRow& row, const std::string& metric,
                           const std::map<std::string, std::string>& provenance, const std::string& group) {
  std::string path = group + "/" + name;
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    append_rows(impl_->opened(), path, {{row.step, row.value, row.wall_seconds}});
  });
  set_attribute(path, "metric", metric);
  for (const auto& [key, value] : provenance) {
    const std::string attribute = "provenance." + key;
    if (auto number = exact_number(value)) {
      if (auto* integer = std::get_if<int64_t>(&*number)) set_attribute(path, attribute, *integer);
      else set_attribute(path, attribute, std::get<double>(*number));
    } else {
      set_attribute(path, attribute, value);
    }
  }
}

std::vector<MetricRow> RunLog::read_metric(const std::string& name) const {
  return hdf5_read(*impl_, "reading metric " + name, [&](H5::H5File& file) {
    std::vector<MetricRow> rows;
    for (const auto& r : read_rows(file, "/metrics/" + name)) rows.push_back({r.value, r.step, r.wall_seconds});
    return rows;
  });
}

void RunLog::write_tensor(const std::string& path, const torch::Tensor& tensor) {
  auto data = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    H5::H5File& file = impl_->opened();
    if (path_exists(file, path)) file.unlink(path);
    ensure_parents(file, path);
    std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
    H5::DataSpace space(int(dims.size()), dims.data());
    H5::DataSet dataset = file.createDataSet(path, H5::PredType::NATIVE_FLOAT, space);
    dataset.write(data.data_ptr<float>(), H5::PredType::NATIVE_FLOAT);
  });
}

torch::Tensor RunLog::read_tensor(const std::string& path) const {
  return hdf5_read(*impl_, "reading " + path, [&](H5::H5File& file) {
    H5::DataSet dataset = file.openDataSet(path);
    H5::DataSpace space = dataset.getSpace();
    std::vector<hsize_t> dims(space.getSimpleExtentNdims());
    space.getSimpleExtentDims(dims.data());
    std::vector<int64_t> shape(dims.begin(), dims.end());
    auto tensor = torch::empty(shape, torch::kFloat32);
    dataset.read(tensor.data_ptr<float>(), H5::PredType::NATIVE_FLOAT);
    return tensor;
  });
}

std::vector<std::string> RunLog::children(const std::string& group_path) const {
  return hdf5_read(*impl_, "listing " + group_path, [&](H5::H5File& file) {
    std::vector<std::string> names;
    H5::Group group = file.openGroup(group_path);
    for (hsize_t i = 0; i < group.getNumObjs(); ++i) names.push_back(group.getObjnameByIdx(i));
    return names;
  });
}

void RunLog::flush() {
  hdf5(impl_.get(), path_, "flush", [&] {
    if (!impl_->file) return;  // nothing written since the last flush
    impl_->file->flush(H5F_SCOPE_GLOBAL);
    impl_->close_appended();  // readers may open it now, and see all of it
  });
}

}  // namespace genfw
