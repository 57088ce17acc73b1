#include "genfw/images.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "genfw/durable.hpp"
#include "genfw/error.hpp"

namespace genfw {

namespace {

void append_to_string(png_structp png, png_bytep data, png_size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), length);
}

}  // namespace

// Encoded in memory, then written by write_file_durably: a temporary renamed over
// `path`, so a symbolic link planted at `path` is replaced, never followed out of
// the run folder, and a reader never sees half an image.
void write_png(const std::string& path, const torch::Tensor& rgb_in) {
  auto rgb = rgb_in.to(torch::kCPU, torch::kUInt8).contiguous();
  GENFW_CHECK(rgb.dim() == 3 && rgb.size(2) == 3, "write_png expects [H, W, 3] uint8, got ", rgb.sizes());
  std::string bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error("libpng failed encoding " + path);
  }
  png_set_write_fn(png, &bytes, append_to_string, nullptr);
  auto height = png_uint_32(rgb.size(0)), width = png_uint_32(rgb.size(1));
  png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  auto* data = rgb.data_ptr<uint8_t>();
  for (png_uint_32 y = 0; y < height; ++y) png_write_row(png, data + size_t(y) * width * 3);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  write_file_durably(path, bytes);
}

void write_image_grid(const std::string& path, const torch::Tensor& samples, double low, double high,
                      int64_t count) {
  GENFW_CHECK(samples.dim() == 4 && (samples.size(1) == 1 || samples.size(1) == 3),
              "image grid expects [N, 1 or 3, H, W], got ", samples.sizes());
  int64_t n = std::min<int64_t>(count, samples.size(0));
  GENFW_CHECK(n > 0, "image grid needs at least one sample");
  auto x = samples.slice(0, 0, n).detach().to(torch::kCPU, torch::kFloat32);
  x = to_8bit(x, low, high);
  if (x.size(1) == 1) x = x.expand({n, 3, x.size(2), x.size(3)});
  int64_t columns = int64_t(std::ceil(std::sqrt(double(n)))), rows = (n + columns - 1) / columns;
  int64_t h = x.size(2), w = x.size(3), pad = 2;
  auto grid = torch::full({rows * (h + pad) + pad, columns * (w + pad) + pad, 3}, 255, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = i / columns, c = i % columns;
    grid.slice(0, pad + r * (h + pad), pad + r * (h + pad) + h)
        .slice(1, pad + c * (w + pad), pad + c * (w + pad) + w)
        .copy_(x[i].permute({1, 2, 0}));
  }
  write_png(path, grid);
}

void write_histogram_2d(const std::string& path, const torch::Tensor& points, double low, double high,
                        int64_t size) {
  GENFW_CHECK(points.dim() == 2 && points.size(1) == 2, "2-D histogram expects [N, 2], got ", points.sizes());
  auto p = points.detach().to(torch::kCPU, torch::kFloat64);
  auto bins = ((p - low) / (high - low) * size).floor().to(torch::kLong);
  auto inside = ((bins >= 0) & (bins < size)).all(1);
  bins = bins.index({inside});
  auto counts = torch::zeros({size * size}, torch::kFloat64);
  // Row 0 is the top of the image: flip y so that up is +y.
  auto flat = (size - 1 - bins.select(1, 1)) * size + bins.select(1, 0);
  counts.index_add_(0, flat, torch::ones({flat.size(0)}, torch::kFloat64));
  auto intensity = torch::log1p(counts) / std::max(1e-12, torch::log1p(counts).max().item<double>());
  auto gray = (255.0 * (1.0 - intensity)).round().to(torch::kUInt8).reshape({size, size, 1});
  write_png(path, gray.expand({size, size, 3}).contiguous());
}

void write_sample_picture(const torch::Tensor& samples, const DataInfo& data, const std::string& png, int64_t count) {
  if (count <= 0) return;
  if (data.is_image()) {
    write_image_grid(png, samples, data.low, data.high, count);
  } else if (data.shape.size() == 1 && data.shape[0] == 2) {
    double extent = std::max(std::abs(data.low), std::abs(data.high));
    write_histogram_2d(png, samples, -extent, extent);
  }
}

}  // namespace genfw
