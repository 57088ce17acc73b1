// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28×28 grey-scale images of 10
// clothing classes, 60000 train / 10000 test, in the gzip-compressed IDX format
// of MNIST (LeCun et al.). Debian ships it as package dataset-fashion-mnist.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "genfw/sdk.hpp"

namespace genfw_fashion_mnist {
namespace {

using genfw::detail::concat;
namespace fs = std::filesystem;

constexpr uint32_t kImageMagic = 2051;  // 0x00000803: unsigned byte, 3 dimensions
constexpr uint32_t kLabelMagic = 2049;  // 0x00000801: unsigned byte, 1 dimension
constexpr int64_t kSide = 28;
constexpr const char* kDefaultPath = "/usr/share/datasets/fashion-mnist";
constexpr const char* kHowToGet =
    "install Debian's package with `apt-get install dataset-fashion-mnist` (it puts the files in "
    "/usr/share/datasets/fashion-mnist), or download them from "
    "https://github.com/zalandoresearch/fashion-mnist and set option 'path' to their folder";

/// A gzip (or plain: zlib reads both) IDX file, read front to back.
class IdxReader {
 public:
  explicit IdxReader(std::string path) : path_(std::move(path)) {
    // O_NONBLOCK and fstat: a FIFO or folder in the data folder is refused, not waited on.
    int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    GENFW_CHECK(fd >= 0, path_, ": cannot open for reading: ", std::strerror(errno));
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd);
      GENFW_CHECK(false, path_, ": not a regular file");
    }
    file_size_ = int64_t(info.st_size);
    gzip_trailer_ = gzip_trailer_of(fd, file_size_);
    file_ = gzdopen(fd, "rb");
    if (file_ == nullptr) ::close(fd);
    GENFW_CHECK(file_ != nullptr, path_, ": cannot open for reading");
  }
  ~IdxReader() { gzclose(file_); }
  IdxReader(const IdxReader&) = delete;
  IdxReader& operator=(const IdxReader&) = delete;

  /// Reads up to `n` bytes into `out`; returns how many were read (fewer at
  /// the end of the data). A damaged gzip stream throws: cut short anywhere up
  /// to its 8-byte trailer, or a wrong CRC-32 or length in that trailer.
  int64_t read(uint8_t* out, int64_t n) {
    int64_t total = 0;
    while (total < n) {
      // gzread takes an unsigned count; read in chunks well below INT_MAX.
      unsigned chunk = unsigned(std::min<int64_t>(n - total, int64_t(1) << 24));
      int got = gzread(file_, out + total, chunk);
      check_stream();
      if (got <= 0) break;
      crc_ = crc32(crc_, out + total, unsigned(got));
      read_bytes_ += uint64_t(got);
      total += got;
    }
    return total;
  }

  uint32_t read_be32(const char* what) {
    uint8_t b[4];
    int64_t got = read(b, 4);
    GENFW_CHECK(got == 4, path_, ": truncated: the IDX header ends before its ", what);
    return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
  }

  /// Throws unless the file ends right after `payload`. Asking for one more
  /// byte also makes zlib read and check the gzip trailer, which it does only
  /// once it is asked for data past the end of the deflate stream.
  void expect_end(const std::string& payload) {
    uint8_t b;
    GENFW_CHECK(read(&b, 1) == 0, path_, ": header says ", payload, ", but more bytes follow them");
    check_trailer();
  }

  const std::string& path() const { return path_; }

  /// Refuses a header that promises more bytes than this file can hold, before
  /// anything is allocated for them: deflate expands at most 1032:1.
  void check_payload_fits(int64_t bytes, const std::string& payload) const {
    const int64_t most = file_size_ * kMaxDeflateRatio + 1024;
    GENFW_CHECK(bytes <= most, path_, ": corrupt header: it says ", payload, " (", bytes, " bytes), more than a ",
                file_size_, "-byte file can hold even compressed");
  }

 private:
  // zlib keeps its first error: Z_BUF_ERROR means the input ended inside the
  // stream (deflate data or trailer); anything else is corrupt data.
  void check_stream() const {
    int errnum = Z_OK;
    const char* message = gzerror(file_, &errnum);
    if (errnum == Z_OK) return;
    std::string reason = message ? message : "error";
    if (reason.rfind("<fd:", 0) == 0 && reason.find(": ") != std::string::npos) {
      reason = reason.substr(reason.find(": ") + 2);  // gzdopen names the descriptor, not the file
    }
    GENFW_CHECK(errnum != Z_BUF_ERROR, path_, ": truncated: the gzip stream ends before its trailer (zlib: ", reason,
                ")");
    GENFW_CHECK(false, path_, ": corrupt gzip stream (zlib: ", reason, "); the file is damaged, download or reinstall it");
  }

  /// zlib's gzread reports a clean end when its input is used up after the last data
  /// byte, even inside the 8-byte trailer (a file cut there read as complete). So the
  /// trailer is checked here: the CRC-32 and length (mod 2^32) of everything read must
  /// be the file's last 8 bytes. IDX distributions are one gzip member each.
  void check_trailer() const {
    if (!gzip_trailer_) return;  // an uncompressed file has no trailer
    const uint32_t crc = uint32_t((*gzip_trailer_)[0]), length = uint32_t((*gzip_trailer_)[1]);
    GENFW_CHECK(crc == uint32_t(crc_) && length == uint32_t(read_bytes_), path_,
                ": truncated or damaged: its gzip trailer (the last 8 bytes) does not match the data read (CRC-32 ",
                crc, " vs ", uint32_t(crc_), ", length ", length, " vs ", uint32_t(read_bytes_),
                "); the file is cut short or corrupt, download or reinstall it");
  }

  /// The last 8 bytes (CRC-32, length) of a gzip file, little-endian; none for another file.
  static std::optional<std::array<uint32_t, 2>> gzip_trailer_of(int fd, int64_t size) {
    uint8_t magic[2] = {0, 0};
    uint8_t tail[8];
    if (size < 18 || ::pread(fd, magic, 2, 0) != 2 || magic[0] != 0x1f || magic[1] != 0x8b) return std::nullopt;
    if (::pread(fd, tail, 8, off_t(size - 8)) != 8) return std::nullopt;
    auto little_endian = [&](int at) {
      return uint32_t(tail[at]) | uint32_t(tail[at + 1]) << 8 | uint32_t(tail[at + 2]) << 16 | uint32_t(tail[at + 3]) << 24;
    };
    return std::array<uint32_t, 2>{little_endian(0), little_endian(4)};
  }

  static constexpr int64_t kMaxDeflateRatio = 1032;
  std::string path_;
  int64_t file_size_ = 0;
  gzFile file_ = nullptr;
  std::optional<std::array<uint32_t, 2>> gzip_trailer_;
  uLong crc_ = crc32(0L, Z_NULL, 0);
  uint64_t read_bytes_ = 0;
};

std::string find_file(const std::string& folder, const std::string& name, const std::string& owner) {
  fs::path gz = fs::path(folder) / (name + ".gz");
  if (fs::exists(gz)) return gz.string();
  fs::path plain = fs::path(folder) / name;  // an already-gunzipped copy works too
  if (fs::exists(plain)) return plain.string();
  GENFW_CHECK(false, owner, ": ", gz.string(), " is missing (nor is there an uncompressed ", name,
              "); ", kHowToGet);
  return {};
}

torch::Tensor read_images(const std::string& path) {
  IdxReader in(path);
  uint32_t magic = in.read_be32("magic number");
  GENFW_CHECK(magic == kImageMagic, path, ": wrong magic number ", magic, ", expected ", kImageMagic,
              " (an IDX file of unsigned-byte images)", magic == kLabelMagic ? "; this is a label file" : "");
  int64_t n = in.read_be32("image count");
  int64_t rows = in.read_be32("row count");
  int64_t cols = in.read_be32("column count");
  GENFW_CHECK(rows == kSide && cols == kSide, path, ": images are ", rows, "×", cols, ", expected ",
              kSide, "×", kSide);
  GENFW_CHECK(n > 0, path, ": header says the file holds no images");
  int64_t expected = n * rows * cols;
  in.check_payload_fits(expected, concat(n, " images of ", rows, "×", cols));
  auto images = torch::empty({n, rows, cols}, torch::kUInt8);
  int64_t got = in.read(images.data_ptr<uint8_t>(), expected);
  GENFW_CHECK(got == expected, path, ": truncated: header says ", n, " images of ", rows, "×", cols,
              " (", expected, " bytes), file holds ", got);
  in.expect_end(concat(n, " images of ", rows, "×", cols, " (", expected, " bytes)"));
  return images;
}

torch::Tensor read_labels(const std::string& path) {
  IdxReader in(path);
  uint32_t magic = in.read_be32("magic number");
  GENFW_CHECK(magic == kLabelMagic, path, ": wrong magic number ", magic, ", expected ", kLabelMagic,
              " (an IDX file of unsigned-byte labels)", magic == kImageMagic ? "; this is an image file" : "");
  int64_t n = in.read_be32("label count");
  in.check_payload_fits(n, concat(n, " labels"));
  auto labels = torch::empty({n}, torch::kUInt8);
  int64_t got = in.read(labels.data_ptr<uint8_t>(), n);
  GENFW_CHECK(got == n, path, ": truncated: header says ", n, " labels (", n, " bytes), file holds ", got);
  in.expect_end(concat(n, " labels"));
  if (n > 0) {
    auto max = labels.max();
    int64_t bad = max.item<int64_t>();
    if (bad > 9) {
      int64_t at = (labels > 9).nonzero()[0][0].item<int64_t>();
      GENFW_CHECK(false, path, ": corrupt label ", int64_t(labels[at].item<uint8_t>()), " at index ", at,
                  " (Fashion-MNIST labels are 0..9)");
    }
  }
  return labels.to(torch::kInt64);
}

class FashionMnist : public genfw::Dataset {
 public:
  struct Settings {
    std::string path = kDefaultPath;
    std::string range = "minus_one_one";
    int64_t subset = 0;
    bool pad_to_32 = false;
    int64_t resolution = kSide;
    bool hflip = false;
  };
  static const genfw::OptionBinding<Settings>& bound_options() {
    static const auto binding =
        genfw::OptionBinding<Settings>()
            .string("path", &Settings::path,
                    "folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "
                    "(Debian: apt-get install dataset-fashion-mnist)")
            .choice("range", &Settings::range, {"minus_one_one", "zero_one"},
                    "pixel range: byte 0 → low, 255 → high; [-1, 1] or [0, 1]")
            .integer("subset", &Settings::subset,
                     "use only the first N images of the split (0 = all; more than the split "
                     "holds = all)",
                     genfw::at_least(0))
            .boolean("pad_to_32", &Settings::pad_to_32,
                     "pad each side with 2 pixels of value `low` to 32×32 (as in DDPM/NCSN)")
            .integer("resolution", &Settings::resolution,
                     "side of the images: 28, or a divisor of it (14, 7, 4) for the images averaged over "
                     "(28/resolution)² blocks (a cascade's base stage; the averages are no longer 8-bit levels)",
                     genfw::at_least(1))
            .boolean("hflip", &Settings::hflip,
                     "random horizontal flip of training batches, each image with probability 1/2 (applied by the "
                     "trainer: metrics and their references see the images as they are)");
    return binding;
  }
  static genfw::Schema schema() { return bound_options().schema(); }

  FashionMnist(const genfw::Options& options, const genfw::BuildContext& context)
      : settings_(bound_options().read(options)) {
    const std::string& owner = options.owner();
    const std::string& folder = settings_.path;
    GENFW_CHECK(fs::is_directory(folder), owner, ": option 'path': folder '", folder,
                "' does not exist; ", kHowToGet);
    const bool train = context.split == "train";
    const std::string prefix = train ? "train" : "t10k";
    const std::string images_path = find_file(folder, prefix + "-images-idx3-ubyte", owner);
    const std::string labels_path = find_file(folder, prefix + "-labels-idx1-ubyte", owner);
    images_ = read_images(images_path);
    labels_ = read_labels(labels_path);
    GENFW_CHECK(images_.size(0) == labels_.size(0), owner, ": ", images_path, " holds ", images_.size(0),
                " images but ", labels_path, " holds ", labels_.size(0), " labels");
    const int64_t subset = settings_.subset;
    if (subset > 0 && subset < images_.size(0)) {
      images_ = images_.narrow(0, 0, subset).clone();
      labels_ = labels_.narrow(0, 0, subset).clone();
    }

    const bool zero_one = settings_.range == "zero_one";
    const bool pad = settings_.pad_to_32;
    const int64_t resolution = settings_.resolution;
    GENFW_CHECK(kSide % resolution == 0, owner, ": option 'resolution' must divide 28 (28, 14, 7, 4, 2, 1), got ",
                resolution);
    GENFW_CHECK(!pad || resolution == kSide, owner, ": options 'pad_to_32' and 'resolution' exclude each other");
    info_.name = "fashion_mnist";
    const int64_t side = pad ? 32 : resolution;
    info_.shape = {1, side, side};
    info_.low = zero_one ? 0.0 : -1.0;
    info_.high = 1.0;
    info_.num_classes = 10;
    info_.discrete_levels = resolution == kSide;
    info_.levels = 256;
    info_.horizontal_flip = settings_.hflip;
  }

  genfw::DataInfo info() const override { return info_; }
  int64_t size() const override { return images_.size(0); }

  genfw::Batch get(const torch::Tensor& indices) override {
    GENFW_CHECK(indices.dim() == 1, "dataset 'fashion_mnist': indices must be 1-D, got ", indices.dim(), "-D");
    auto index = indices.to(torch::kCPU, torch::kInt64);
    if (index.numel() > 0) {
      int64_t lo = index.min().item<int64_t>(), hi = index.max().item<int64_t>();
      GENFW_CHECK(lo >= 0 && hi < size(), "dataset 'fashion_mnist': index out of range [0, ", size(),
                  "): got ", lo < 0 ? lo : hi);
    }
    // byte b → low + b/255 · (high − low): 0 → low, 255 → high exactly.
    auto x = images_.index_select(0, index).to(torch::kFloat32).unsqueeze(1);
    x = x.div(255.0f).mul(float(info_.high - info_.low)).add(float(info_.low));
    if (settings_.pad_to_32) x = torch::constant_pad_nd(x, {2, 2, 2, 2}, info_.low);
    if (settings_.resolution != kSide) x = torch::avg_pool2d(x, kSide / settings_.resolution);
    return {x.contiguous(), labels_.index_select(0, index)};
  }

 private:
  torch::Tensor images_;  // uint8 [N, 28, 28]; converted per batch to keep memory at 1 byte/pixel
  torch::Tensor labels_;  // int64 [N]
  Settings settings_;
  genfw::DataInfo info_;
};

}  // namespace
}  // namespace genfw_fashion_mnist

GENFW_PLUGIN(manifest) {
  manifest.add<genfw_fashion_mnist::FashionMnist>(
      "fashion_mnist", genfw::Kind::dataset,
      "Fashion-MNIST 28×28 grey-scale clothing images, IDX files (Xiao et al. 2017)");
}
