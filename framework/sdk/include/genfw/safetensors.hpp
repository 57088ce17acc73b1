#pragma once
/// safetensors files (huggingface/safetensors): 8 bytes of little-endian header
/// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
/// "__metadata__": {string: string}}, then the tensors' raw little-endian bytes,
/// offsets relative to the end of the header. The reader checks every bound
/// before touching data — header length, offsets inside the data, contiguous
/// non-overlapping ranges covering it, shape × dtype size = range — and names the
/// file and the tensor of any damage; it never reads outside the bytes it was given.
#include <torch/torch.h>

#include <map>
#include <string>

#include "genfw/export.hpp"

namespace genfw {

/// The safetensors library's own limit on the header (100 MB): a larger one is damage.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;  ///< CPU tensors, owning their memory
  std::map<std::string, std::string> metadata;   ///< "__metadata__"
};

/// dtypes read: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
GENFW_API SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& origin);
/// Reads the file `path`; genfw::Error naming it when it is missing or damaged.
GENFW_API SafetensorsFile read_safetensors(const std::string& path);
/// The file's bytes as the safetensors library writes them (names sorted, header
/// padded with spaces to a multiple of 8). Tensors are made contiguous CPU copies.
GENFW_API std::string safetensors_bytes(const std::map<std::string, torch::Tensor>& tensors,
                                        const std::map<std::string, std::string>& metadata = {});

}  // namespace genfw
