// The safetensors reader and writer (genfw/safetensors.hpp).
#include "genfw/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include "genfw/error.hpp"
#include "genfw/json.hpp"

namespace genfw {

namespace {

struct DtypeCode {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

const std::vector<DtypeCode>& dtype_codes() {
  static const std::vector<DtypeCode> codes{
      {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
      {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
      {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
      {"BOOL", torch::kBool, 1}};
  return codes;
}

bool little_endian_host() {
  const uint16_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

struct Entry {
  std::string name;
  const DtypeCode* dtype = nullptr;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// One tensor's header entry, every field checked against the data's size.
Entry read_entry(const std::string& name, const Json& value, uint64_t data_size, const std::string& origin) {
  auto fail = [&](const std::string& what) -> Error {
    return Error(detail::concat(origin, ": tensor '", name, "': ", what));
  };
  if (value.type != Json::Type::object) throw fail("its header entry is not an object");
  Entry entry;
  entry.name = name;
  const Json* dtype = value.find("dtype");
  if (!dtype || dtype->type != Json::Type::string) throw fail("no \"dtype\" string");
  for (const auto& code : dtype_codes()) {
    if (dtype->string == code.name) entry.dtype = &code;
  }
  if (!entry.dtype) {
    throw fail("dtype \"" + dtype->string + "\" is not read (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
  }
  const Json* shape = value.find("shape");
  if (!shape || shape->type != Json::Type::array) throw fail("no \"shape\" array");
  // The product of the non-zero sizes must fit int64 too: torch refuses (with its own
  // exception type) a shape like [2^62, 2^62, 0] even though it holds no element.
  uint64_t elements = 1, nonzero = 1;
  const uint64_t limit = uint64_t(std::numeric_limits<int64_t>::max());
  for (const auto& d : shape->array) {
    if (d.type != Json::Type::number || !d.integral || d.integer < 0) throw fail("shape " + shape->brief() + " holds a non-integer or negative size");
    const uint64_t size = uint64_t(d.integer);
    if (size != 0 && nonzero > limit / size) throw fail("shape " + shape->brief() + " overflows");
    if (size != 0) nonzero *= size;
    elements *= size;
    entry.shape.push_back(d.integer);
  }
  const Json* offsets = value.find("data_offsets");
  if (!offsets || offsets->type != Json::Type::array || offsets->array.size() != 2) throw fail("no \"data_offsets\" [begin, end]");
  for (const auto& o : offsets->array) {
    if (o.type != Json::Type::number || !o.integral || o.integer < 0) throw fail("data_offsets " + offsets->brief() + " are not non-negative integers");
  }
  entry.begin = uint64_t(offsets->array[0].integer);
  entry.end = uint64_t(offsets->array[1].integer);
  if (entry.begin > entry.end || entry.end > data_size) {
    throw fail(detail::concat("data_offsets ", offsets->brief(), " lie outside the file's ", data_size, " data bytes"));
  }
  if (elements > std::numeric_limits<uint64_t>::max() / entry.dtype->size ||
      elements * entry.dtype->size != entry.end - entry.begin) {
    throw fail(detail::concat("shape ", shape->brief(), " of ", dtype->string, " needs ", elements, " × ",
                              entry.dtype->size, " bytes, but data_offsets ", offsets->brief(), " hold ",
                              entry.end - entry.begin));
  }
  return entry;
}

std::map<std::string, std::string> read_metadata(const Json& value, const std::string& origin) {
  GENFW_CHECK(value.type == Json::Type::object, origin, ": \"__metadata__\" is not an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, text] : value.object) {
    GENFW_CHECK(text.type == Json::Type::string, origin, ": \"__metadata__\" entry '", key, "' is not a string");
    metadata[key] = text.string;
  }
  return metadata;
}

// The ranges must tile the data exactly, as the safetensors library requires: no
// overlap (two tensors aliasing one range) and no hole (bytes of nothing).
void check_tiling(std::vector<Entry>& entries, uint64_t data_size, const std::string& origin) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& entry : entries) {
    GENFW_CHECK(entry.begin == expected, origin, ": tensor '", entry.name, "' starts at data byte ", entry.begin,
                expected > entry.begin ? ", overlapping the tensor before it" : ", leaving a hole", " (expected ",
                expected, ")");
    expected = entry.end;
  }
  GENFW_CHECK(expected == data_size, origin, ": the tensors end at data byte ", expected, " but the file holds ",
              data_size, " data bytes");
}

}  // namespace

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& origin) {
  GENFW_CHECK(little_endian_host(), origin, ": safetensors data is little-endian; this host is not");
  GENFW_CHECK(bytes.size() >= 8, origin, ": not a safetensors file: ", bytes.size(),
              " bytes, fewer than the 8-byte header length");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | uint64_t(static_cast<unsigned char>(bytes[size_t(i)]));
  GENFW_CHECK(header_size <= kMaxSafetensorsHeader && header_size <= bytes.size() - 8, origin,
              ": damaged safetensors file: its header length ", header_size, " exceeds the ", bytes.size() - 8,
              " bytes after it", header_size > kMaxSafetensorsHeader ? " (and the 100 MB limit)" : "");
  const Json header = parse_json(bytes.substr(8, size_t(header_size)), origin + " (safetensors header)");
  GENFW_CHECK(header.type == Json::Type::object, origin, ": the safetensors header is not a JSON object");
  const uint64_t data_start = 8 + header_size, data_size = bytes.size() - data_start;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.object) {
    if (name == "__metadata__") {
      file.metadata = read_metadata(value, origin);
      continue;
    }
    GENFW_CHECK(std::none_of(entries.begin(), entries.end(), [&](const Entry& e) { return e.name == name; }),
                origin, ": tensor '", name, "' appears twice in the header");
    entries.push_back(read_entry(name, value, data_size, origin));
  }
  check_tiling(entries, data_size, origin);
  for (const auto& entry : entries) {
    auto tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype->type));
    if (entry.end > entry.begin) std::memcpy(tensor.data_ptr(), bytes.data() + data_start + entry.begin, entry.end - entry.begin);
    file.tensors.emplace(entry.name, std::move(tensor));
  }
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  GENFW_CHECK(in.good(), "cannot read safetensors file ", path, " (missing or unreadable)");
  // Read once into a buffer of the file's size: a 143 MB file costs 143 MB here, not two copies.
  const std::streamoff size = in.tellg();
  GENFW_CHECK(size >= 0, "cannot read safetensors file ", path, " (not a regular file?)");
  std::string bytes(size_t(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  GENFW_CHECK(in.gcount() == size, "cannot read safetensors file ", path, ": it changed size while being read");
  return parse_safetensors(bytes, path);
}

std::string safetensors_bytes(const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  GENFW_CHECK(little_endian_host(), "safetensors data is little-endian; this host is not");
  std::string header = "{", data;
  auto quoted = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  };
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      header += (first ? "" : ",") + quoted(key) + ":" + quoted(value);
      first = false;
    }
    header += "}";
  }
  for (const auto& [name, tensor] : tensors) {
    const auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const DtypeCode* code = nullptr;
    for (const auto& c : dtype_codes()) {
      if (c.type == cpu.scalar_type()) code = &c;
    }
    GENFW_CHECK(code != nullptr, "safetensors: tensor '", name, "' has dtype ", cpu.scalar_type(), ", which is not written");
    const size_t begin = data.size();
    data.append(static_cast<const char*>(cpu.data_ptr()), cpu.numel() * cpu.element_size());
    std::string shape;
    for (int64_t d : cpu.sizes()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    header += std::string(header.size() > 1 ? "," : "") + quoted(name) + ":{\"dtype\":\"" + code->name +
              "\",\"shape\":[" + shape + "],\"data_offsets\":[" + std::to_string(begin) + "," +
              std::to_string(data.size()) + "]}";
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

}  // namespace genfw
