#include "genfw/run_log.hpp"

#include <H5Cpp.h>

#include <array>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "genfw/durable.hpp"
#include "genfw/error.hpp"

namespace genfw {

struct RunLog::Impl {
  H5::H5File file;
  bool detached = false;  ///< a write failed for lack of space: see detach_from_disk()
};

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

/// Errors of the file system under HDF5 (its own messages do not say which).
bool is_storage_error(int error_number) {
  return error_number == ENOSPC || error_number == EDQUOT || error_number == EFBIG || error_number == EIO ||
         error_number == EROFS;
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
  void* handle = nullptr;
  if (H5Fget_vfd_handle(impl.file.getId(), H5P_DEFAULT, &handle) < 0 || handle == nullptr) return;
  const int fd = *static_cast<int*>(handle);
  const int memory = ::memfd_create("genfw-detached-run-file", MFD_CLOEXEC);
  if (memory < 0) return;
  ::dup2(memory, fd);
  ::close(memory);
}

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

}  // namespace

RunLog::RunLog(std::unique_ptr<Impl> impl, std::string path) : impl_(std::move(impl)), path_(std::move(path)) {}
RunLog::RunLog(RunLog&&) noexcept = default;
RunLog& RunLog::operator=(RunLog&&) noexcept = default;
RunLog::~RunLog() {
  if (!impl_) return;
  try {
    // A full disk shows here, where the file can still be detached (detach_from_disk).
    unsigned intent = 0;
    if (H5Fget_intent(impl_->file.getId(), &intent) >= 0 && (intent & H5F_ACC_RDWR)) flush();
    impl_->file.close();
  } catch (...) {
    // A close that failed halfway leaves an id nothing may touch again; leaked
    // so that H5File's destructor does not close it a second time.
    if (!impl_->detached) (void)impl_.release();
  }
}

RunLog RunLog::create(const std::string& path) {
  H5::Exception::dontPrint();
  return hdf5(nullptr, path, "cannot create (it must not exist yet)", [&] {
    auto impl = std::make_unique<Impl>();
    impl->file = H5::H5File(path, H5F_ACC_EXCL);  // never overwrites a file
    return RunLog(std::move(impl), path);
  });
}

RunLog RunLog::create_in_memory(const std::string& name) {
  H5::Exception::dontPrint();
  return hdf5(nullptr, name, "cannot create in memory", [&] {
    H5::FileAccPropList access;
    access.setCore(1 << 20, /*backing_store=*/false);
    auto impl = std::make_unique<Impl>();
    impl->file = H5::H5File(name, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, access);
    return RunLog(std::move(impl), name);
  });
}

RunLog RunLog::open(const std::string& path, bool writable) {
  H5::Exception::dontPrint();
  return hdf5(nullptr, path, "cannot open (missing or not an HDF5 run file)", [&] {
    auto impl = std::make_unique<Impl>();
    impl->file = H5::H5File(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY);
    return RunLog(std::move(impl), path);
  });
}

bool RunLog::exists(const std::string& object_path) const {
  return hdf5(impl_.get(), path_, "lookup", [&] { return path_exists(impl_->file, object_path); });
}

void RunLog::write_string(const std::string& path, const std::string& text) {
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    if (exists(path)) impl_->file.unlink(path);
    ensure_parents(impl_->file, path);
    H5::DataSet dataset = impl_->file.createDataSet(path, text_type(), H5::DataSpace(H5S_SCALAR));
    dataset.write(text, text_type());
  });
}

std::string RunLog::read_string(const std::string& path) const {
  return hdf5(impl_.get(), path_, "reading " + path, [&] {
    std::string text;
    H5::DataSet dataset = impl_->file.openDataSet(path);
    dataset.read(text, text_type());
    return text;
  });
}

void RunLog::write_scalar(const std::string& path, double value) {
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    if (exists(path)) impl_->file.unlink(path);
    ensure_parents(impl_->file, path);
    H5::DataSet dataset =
        impl_->file.createDataSet(path, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
    dataset.write(&value, H5::PredType::NATIVE_DOUBLE);
  });
}

double RunLog::read_scalar(const std::string& path) const {
  return hdf5(impl_.get(), path_, "reading " + path, [&] {
    double value = 0;
    impl_->file.openDataSet(path).read(&value, H5::PredType::NATIVE_DOUBLE);
    return value;
  });
}

void RunLog::set_attribute(const std::string& object_path, const std::string& name, const std::string& value) {
  hdf5(impl_.get(), path_, "attribute " + name, [&] {
    with_object(impl_->file, object_path, [&](H5::H5Object& object) {
      if (object.attrExists(name)) object.removeAttr(name);
      H5::Attribute attribute = object.createAttribute(name, text_type(), H5::DataSpace(H5S_SCALAR));
      attribute.write(text_type(), value);
    });
  });
}

std::map<std::string, std::string> RunLog::attributes(const std::string& object_path) const {
  return hdf5(impl_.get(), path_, "attributes of " + object_path, [&] {
    std::map<std::string, std::string> out;
    with_object(impl_->file, object_path, [&](H5::H5Object& object) {
      for (int i = 0; i < object.getNumAttrs(); ++i) {
        H5::Attribute attribute = object.openAttribute(static_cast<unsigned>(i));
        if (attribute.getTypeClass() != H5T_STRING) continue;
        std::string value;
        attribute.read(text_type(), value);
        out[attribute.getName()] = value;
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

void append_rows(H5::H5File& file, const std::string& path, const std::vector<Row>& rows,
                 const std::string& columns) {
  if (!path_exists(file, path)) {
    ensure_parents(file, path);
    hsize_t dims[2] = {0, 3}, max_dims[2] = {H5S_UNLIMITED, 3}, chunk[2] = {1024, 3};
    H5::DSetCreatPropList properties;
    properties.setChunk(2, chunk);
    H5::DataSet created =
        file.createDataSet(path, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(2, dims, max_dims), properties);
    H5::Attribute attribute = created.createAttribute("columns", text_type(), H5::DataSpace(H5S_SCALAR));
    attribute.write(text_type(), columns);
  }
  H5::DataSet dataset = file.openDataSet(path);
  hsize_t current[2];
  dataset.getSpace().getSimpleExtentDims(current);
  hsize_t extent[2] = {current[0] + rows.size(), 3};
  dataset.extend(extent);
  H5::DataSpace file_space = dataset.getSpace();
  hsize_t offset[2] = {current[0], 0}, count[2] = {rows.size(), 3};
  file_space.selectHyperslab(H5S_SELECT_SET, count, offset);
  dataset.write(rows.data(), H5::PredType::NATIVE_DOUBLE, H5::DataSpace(2, count), file_space);
}

std::vector<Row> read_rows(H5::H5File& file, const std::string& path) {
  H5::DataSet dataset = file.openDataSet(path);
  hsize_t dims[2];
  dataset.getSpace().getSimpleExtentDims(dims);
  std::vector<Row> rows(dims[0]);
  if (!rows.empty()) dataset.read(rows.data(), H5::PredType::NATIVE_DOUBLE);
  return rows;
}
}  // namespace

void RunLog::append_series(const std::string& path, const std::vector<ScalarRow>& rows) {
  if (rows.empty()) return;
  std::vector<Row> raw;
  for (const auto& r : rows) raw.push_back({double(r.step), r.value, r.wall_seconds});
  hdf5(impl_.get(), path_, "appending to " + path, [&] { append_rows(impl_->file, path, raw, "step,value,wall_seconds"); });
}

std::vector<ScalarRow> RunLog::read_series(const std::string& path) const {
  return hdf5(impl_.get(), path_, "reading " + path, [&] {
    std::vector<ScalarRow> rows;
    for (const auto& r : read_rows(impl_->file, path)) rows.push_back({int64_t(r[0]), r[1], r[2]});
    return rows;
  });
}

void RunLog::truncate_rows(const std::string& group_path, size_t step_column, int64_t step) {
  if (!exists(group_path)) return;
  for (const auto& name : children(group_path)) {
    std::string path = group_path + "/" + name;
    hdf5(impl_.get(), path_, "truncating " + path, [&] {
      auto rows = read_rows(impl_->file, path);  // appended in step order
      size_t keep = 0;
      while (keep < rows.size() && rows[keep][step_column] < double(step)) ++keep;
      H5::DataSet dataset = impl_->file.openDataSet(path);
      hsize_t extent[2] = {keep, 3};
      dataset.extend(extent);  // H5Dset_extent semantics: shrinking is allowed
    });
  }
}

void RunLog::truncate_series(const std::string& group_path, int64_t step) { truncate_rows(group_path, 0, step); }

void RunLog::truncate_metrics(int64_t step) { truncate_rows("/metrics", 1, step); }

void RunLog::append_metric(const std::string& name, const MetricRow& row, const std::string& metric,
                           const std::map<std::string, std::string>& provenance) {
  std::string path = "/metrics/" + name;
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    append_rows(impl_->file, path, {{row.value, double(row.step), row.wall_seconds}}, "value,step,wall_seconds");
  });
  set_attribute(path, "metric", metric);
  for (const auto& [key, value] : provenance) set_attribute(path, "provenance." + key, value);
}

std::vector<MetricRow> RunLog::read_metric(const std::string& name) const {
  return hdf5(impl_.get(), path_, "reading metric " + name, [&] {
    std::vector<MetricRow> rows;
    for (const auto& r : read_rows(impl_->file, "/metrics/" + name)) rows.push_back({r[0], int64_t(r[1]), r[2]});
    return rows;
  });
}

void RunLog::write_tensor(const std::string& path, const torch::Tensor& tensor) {
  auto data = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  hdf5(impl_.get(), path_, "writing " + path, [&] {
    if (exists(path)) impl_->file.unlink(path);
    ensure_parents(impl_->file, path);
    std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
    H5::DataSpace space(int(dims.size()), dims.data());
    H5::DataSet dataset = impl_->file.createDataSet(path, H5::PredType::NATIVE_FLOAT, space);
    dataset.write(data.data_ptr<float>(), H5::PredType::NATIVE_FLOAT);
  });
}

torch::Tensor RunLog::read_tensor(const std::string& path) const {
  return hdf5(impl_.get(), path_, "reading " + path, [&] {
    H5::DataSet dataset = impl_->file.openDataSet(path);
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
  return hdf5(impl_.get(), path_, "listing " + group_path, [&] {
    std::vector<std::string> names;
    H5::Group group = impl_->file.openGroup(group_path);
    for (hsize_t i = 0; i < group.getNumObjs(); ++i) names.push_back(group.getObjnameByIdx(i));
    return names;
  });
}

void RunLog::flush() {
  hdf5(impl_.get(), path_, "flush", [&] { impl_->file.flush(H5F_SCOPE_GLOBAL); });
}

}  // namespace genfw
