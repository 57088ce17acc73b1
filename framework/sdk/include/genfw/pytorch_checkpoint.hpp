#pragma once
/// Files written by PyTorch's torch.save() in its zip format (PyTorch ≥ 1.6: a
/// zip of ARCHIVE/data.pkl, the pickled object, and ARCHIVE/data/KEY, the raw
/// little-endian bytes of each storage), read without Python and without running
/// anything from the file: a pickle machine that knows the opcodes torch.save
/// uses (protocols 2–4) and builds only data — None, bools, integers, floats,
/// strings, lists, tuples, dicts (OrderedDict too) and tensors
/// (torch._utils._rebuild_tensor_v2 / _rebuild_parameter over a storage of
/// torch.*Storage). Any other class the pickle names becomes an inert `opaque`
/// value naming it, an error only where a caller needs what it stands for. Every
/// bound is checked (memo indices, stack, storage sizes against the tensors'
/// extents, byte order); damage is a genfw::Error naming the file.
///
/// The pre-1.6 format (a bare pickle followed by the storages) is refused with
/// the one line that converts it.
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "genfw/export.hpp"

namespace genfw {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

/// One value of the unpickled object. Lists and dicts are shared (pickle's memo refers to them).
struct PickleValue {
  enum class Type { none, boolean, integer, real, string, list, tuple, dict, tensor, opaque };
  Type type = Type::none;
  bool flag = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;                                    ///< string; opaque: "module.name" of the class
  std::vector<PickleRef> items;                        ///< list, tuple
  std::vector<std::pair<PickleRef, PickleRef>> entries;  ///< dict, in order
  torch::Tensor tensor;                                ///< CPU, owning its memory
  int depth = 0;                                       ///< nesting below this value (bounded by the reader)

  /// The dict's value under string key `key`, or nullptr.
  GENFW_API PickleRef find(const std::string& key) const;
  /// "a dict", "a tensor", "an object of collections.Counter", …: for messages.
  GENFW_API std::string description() const;
};

/// Parses the bytes of a torch.save() file; `origin` names it in errors.
GENFW_API PickleRef parse_pytorch_checkpoint(const std::string& bytes, const std::string& origin);
/// Reads the file `path`; genfw::Error naming it when it is missing or damaged.
GENFW_API PickleRef read_pytorch_checkpoint(const std::string& path);

/// The tensors of a state dict (string keys → tensors, as Module.state_dict()
/// returns); genfw::Error naming `origin` and `where` ("the first element") otherwise.
GENFW_API std::map<std::string, torch::Tensor> state_dict_tensors(const PickleValue& value, const std::string& origin,
                                                                  const std::string& where);

}  // namespace genfw
