#pragma once
// Test-only: files in torch.save()'s zip format written from C++, as PyTorch
// lays them out (protocol-2 pickle in ARCHIVE/data.pkl, storages in
// ARCHIVE/data/KEY), so tests can damage a checkpoint in a chosen way. The
// Python-written fixtures (plugins/model/ncsn/ncsn_fixtures) are the
// independent check of the layout; this writer follows them.
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace test_support {

class PickleWriter {
 public:
  PickleWriter() { bytes_ = "\x80\x02"; }
  PickleWriter& op(char opcode) { bytes_ += opcode; return *this; }
  PickleWriter& raw(const std::string& text) { bytes_ += text; return *this; }
  PickleWriter& global(const std::string& module, const std::string& name) {
    return op('c').raw(module + "\n" + name + "\n");
  }
  PickleWriter& string(const std::string& text) {
    op('X');
    const uint32_t n = uint32_t(text.size());
    bytes_.append(reinterpret_cast<const char*>(&n), 4);
    return raw(text);
  }
  PickleWriter& integer(int32_t value) {
    op('J');
    bytes_.append(reinterpret_cast<const char*>(&value), 4);
    return *this;
  }
  PickleWriter& tuple_of(const std::vector<int64_t>& values) {
    op('(');
    for (auto v : values) integer(int32_t(v));
    return op('t');
  }
  PickleWriter& empty_ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
  /// _rebuild_tensor_v2 over storage `key` of `numel` floats.
  PickleWriter& tensor(const std::string& key, int64_t numel, int64_t offset, const std::vector<int64_t>& sizes,
                       const std::vector<int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').string("storage").global("torch", "FloatStorage").string(key).string("cpu").integer(int32_t(numel));
    op('t').op('Q');
    integer(int32_t(offset)).tuple_of(sizes).tuple_of(strides).op('\x89').empty_ordered_dict();
    return op('t').op('R');
  }
  std::string finish() { return bytes_ + "."; }

 private:
  std::string bytes_;
};

/// The zip: data.pkl, the storages and the byte order, as torch.save writes them.
inline std::string torch_save_zip(const std::string& pickle, const std::map<std::string, torch::Tensor>& storages) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeRecord("byteorder", "little", 6);
  for (const auto& [key, tensor] : storages) {
    auto contiguous = tensor.contiguous();
    writer.writeRecord("data/" + key, contiguous.data_ptr(), contiguous.numel() * contiguous.element_size());
  }
  writer.writeEndOfFile();
  return out;
}

/// torch.save([state_dict, {}]) as anneal_runner.py saves NCSN: an OrderedDict of float tensors.
inline std::string torch_save_state_dict(const std::map<std::string, torch::Tensor>& tensors,
                                         bool as_list = true) {
  PickleWriter pickle;
  if (as_list) pickle.op(']').op('(');
  pickle.empty_ordered_dict().op('(');
  std::map<std::string, torch::Tensor> storages;
  for (const auto& [key, tensor] : tensors) {
    const std::string storage = std::to_string(storages.size());
    auto t = tensor.to(torch::kFloat).contiguous();
    pickle.string(key).tensor(storage, t.numel(), 0, t.sizes().vec(), t.strides().vec());
    storages[storage] = t;
  }
  pickle.op('u');
  if (as_list) pickle.op('}').op('e');
  return torch_save_zip(pickle.finish(), storages);
}

}  // namespace test_support
