#include "genfw/pytorch_checkpoint.hpp"

#include <caffe2/serialize/inline_container.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "genfw/error.hpp"

namespace genfw {

namespace {

constexpr int kMaxDepth = 1000;  // nesting of lists/dicts: far above a state dict's, far below the stack's limit

PickleRef make(PickleValue::Type type) {
  auto value = std::make_shared<PickleValue>();
  value->type = type;
  return value;
}

PickleRef text_value(PickleValue::Type type, std::string text) {
  auto value = make(type);
  value->text = std::move(text);
  return value;
}

struct StorageType {
  const char* name;
  c10::ScalarType dtype;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", c10::kFloat},   {"torch.DoubleStorage", c10::kDouble}, {"torch.HalfStorage", c10::kHalf},
    {"torch.BFloat16Storage", c10::kBFloat16}, {"torch.LongStorage", c10::kLong}, {"torch.IntStorage", c10::kInt},
    {"torch.ShortStorage", c10::kShort},   {"torch.CharStorage", c10::kChar},     {"torch.ByteStorage", c10::kByte},
    {"torch.BoolStorage", c10::kBool},     {"torch.UntypedStorage", c10::kByte}};

// The pickle machine over data.pkl; storages come from the zip's data/ records.
class Unpickler {
 public:
  Unpickler(const std::string& pickle, caffe2::serialize::PyTorchStreamReader& zip, std::string origin)
      : data_(pickle), zip_(zip), origin_(std::move(origin)) {}

  PickleRef run() {
    while (true) {
      GENFW_CHECK(at_ < data_.size(), origin_, ": data.pkl ends without its STOP opcode (truncated)");
      const auto opcode = uint8_t(data_[at_++]);
      if (opcode == '.') break;
      step(opcode);
    }
    GENFW_CHECK(stack_.size() == 1 && marks_.empty(), origin_, ": data.pkl ends with ", stack_.size(),
                " values on its stack, expected 1 (damaged)");
    return stack_.back();
  }

 private:
  [[noreturn]] void damaged(const std::string& what) const {
    throw Error(detail::concat(origin_, ": data.pkl is damaged at byte ", at_, ": ", what));
  }

  const char* take(uint64_t n) {
    if (n > data_.size() - at_) damaged("a value runs past the end of the pickle");
    const char* p = data_.data() + at_;
    at_ += n;
    return p;
  }
  uint64_t unsigned_le(int bytes) {
    const auto* p = reinterpret_cast<const uint8_t*>(take(bytes));
    uint64_t value = 0;
    for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | p[i];
    return value;
  }
  std::string line() {
    const auto end = data_.find('\n', at_);
    if (end == std::string::npos) damaged("a GLOBAL name without its newline");
    std::string text = data_.substr(at_, end - at_);
    at_ = end + 1;
    return text;
  }

  void push(PickleRef value) { stack_.push_back(std::move(value)); }
  PickleRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) damaged("an opcode pops an empty stack");
    auto value = std::move(stack_.back());
    stack_.pop_back();
    return value;
  }
  PickleRef& top() {
    if (stack_.empty()) damaged("an opcode needs a value on an empty stack");
    return stack_.back();
  }
  std::vector<PickleRef> pop_to_mark() {
    if (marks_.empty()) damaged("an opcode needs a MARK that was never set");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleRef> values(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return values;
  }
  PickleRef& container(PickleValue::Type type) {
    auto& value = top();
    if (value->type != type) damaged("a value is added to " + value->description());
    return value;
  }
  void nest(PickleValue& parent, const PickleValue& child) {
    if (child.depth + 1 > kMaxDepth) damaged("lists and dicts nested deeper than 1000 levels");
    parent.depth = std::max(parent.depth, child.depth + 1);
  }

  PickleRef integer(int64_t value) {
    auto out = make(PickleValue::Type::integer);
    out->integer = value;
    return out;
  }
  // LONG1/LONG4: little-endian two's complement of n bytes; more than 8 does not fit an int64.
  PickleRef long_integer(uint64_t n) {
    if (n > 8) damaged("an integer of " + std::to_string(n) + " bytes (genfw reads up to 64 bits)");
    if (n == 0) return integer(0);
    uint64_t value = unsigned_le(int(n));
    if (n < 8 && (value >> (8 * n - 1)) & 1) value |= ~uint64_t(0) << (8 * n);  // sign-extend
    return integer(int64_t(value));
  }
  PickleRef tuple(std::vector<PickleRef> items) {
    auto out = make(PickleValue::Type::tuple);
    for (const auto& item : items) nest(*out, *item);
    out->items = std::move(items);
    return out;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    auto found = memo_.find(index);
    if (found == memo_.end()) damaged("a memo reference to entry " + std::to_string(index) + ", never stored");
    push(found->second);
  }
  void set_items(std::vector<PickleRef> pairs) {
    if (pairs.size() % 2) damaged("SETITEMS with an odd number of values");
    auto& dict = container(PickleValue::Type::dict);
    for (size_t i = 0; i < pairs.size(); i += 2) {
      nest(*dict, *pairs[i + 1]);
      dict->entries.emplace_back(pairs[i], pairs[i + 1]);
    }
  }
  void append(std::vector<PickleRef> items) {
    auto& list = container(PickleValue::Type::list);
    for (auto& item : items) {
      nest(*list, *item);
      list->items.push_back(std::move(item));
    }
  }

  void step(uint8_t opcode);
  PickleRef reduce(const PickleValue& callable, const PickleValue& arguments);
  PickleRef persistent_storage(const PickleValue& id);
  PickleRef rebuild_tensor(const std::vector<PickleRef>& arguments);

  const std::string& data_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  std::string origin_;
  size_t at_ = 0;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleRef> memo_;
  std::map<std::string, torch::Tensor> storages_;  // by key: tensors may share one
};

void Unpickler::step(uint8_t opcode) {
  using T = PickleValue::Type;
  switch (opcode) {
    case 0x80: {  // PROTO
      const auto protocol = unsigned_le(1);
      if (protocol > 5) damaged("pickle protocol " + std::to_string(protocol) + " (at most 5 exists)");
      return;
    }
    case 0x95: take(8); return;  // FRAME: a length hint
    case '(': marks_.push_back(stack_.size()); return;
    case 'N': push(make(T::none)); return;
    case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
      auto value = make(T::boolean);
      value->flag = opcode == 0x88;
      push(value);
      return;
    }
    case 'J': push(integer(int32_t(uint32_t(unsigned_le(4))))); return;  // BININT
    case 'K': push(integer(int64_t(unsigned_le(1)))); return;            // BININT1
    case 'M': push(integer(int64_t(unsigned_le(2)))); return;            // BININT2
    case 0x8a: push(long_integer(unsigned_le(1))); return;               // LONG1
    case 0x8b: push(long_integer(unsigned_le(4))); return;               // LONG4
    case 'G': {                                                          // BINFLOAT: big-endian
      const auto* p = reinterpret_cast<const uint8_t*>(take(8));
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
      auto value = make(T::real);
      std::memcpy(&value->real, &bits, 8);
      push(value);
      return;
    }
    case 'X': case 'B': {  // BINUNICODE, BINBYTES
      const auto n = unsigned_le(4);
      push(text_value(T::string, std::string(take(n), n)));
      return;
    }
    case 0x8c: case 'C': case 'U': {  // SHORT_BINUNICODE, SHORT_BINBYTES, SHORT_BINSTRING
      const auto n = unsigned_le(1);
      push(text_value(T::string, std::string(take(n), n)));
      return;
    }
    case 0x8d: case 0x8e: {  // BINUNICODE8, BINBYTES8
      const auto n = unsigned_le(8);
      push(text_value(T::string, std::string(take(n), n)));
      return;
    }
    case 'T': {  // BINSTRING: signed length
      const auto n = int32_t(uint32_t(unsigned_le(4)));
      if (n < 0) damaged("a string of negative length");
      push(text_value(T::string, std::string(take(uint64_t(n)), size_t(n))));
      return;
    }
    case 'c': {  // GLOBAL module\nname\n: named, never imported
      std::string module = line();
      push(text_value(T::opaque, module + "." + line()));
      return;
    }
    case 0x93: {  // STACK_GLOBAL
      auto name = pop(), module = pop();
      if (name->type != T::string || module->type != T::string) damaged("STACK_GLOBAL of non-strings");
      push(text_value(T::opaque, module->text + "." + name->text));
      return;
    }
    case ']': push(make(T::list)); return;
    case '}': push(make(T::dict)); return;
    case 0x8f: push(make(T::list)); return;  // EMPTY_SET: a list of its items
    case ')': push(tuple({})); return;
    case 't': push(tuple(pop_to_mark())); return;
    case 0x85: { auto a = pop(); push(tuple({a})); return; }
    case 0x86: { auto b = pop(), a = pop(); push(tuple({a, b})); return; }
    case 0x87: { auto c = pop(), b = pop(), a = pop(); push(tuple({a, b, c})); return; }
    case 'l': case 0x91: {  // LIST, FROZENSET
      auto items = pop_to_mark();
      push(make(T::list));
      append(std::move(items));
      return;
    }
    case 'd': {  // DICT
      auto pairs = pop_to_mark();
      push(make(T::dict));
      set_items(std::move(pairs));
      return;
    }
    case 'a': { auto item = pop(); append({item}); return; }
    case 'e': case 0x90: append(pop_to_mark()); return;  // APPENDS, ADDITEMS
    case 's': { auto value = pop(), key = pop(); set_items({key, value}); return; }
    case 'u': set_items(pop_to_mark()); return;
    case '0': pop(); return;
    case '1': pop_to_mark(); return;
    case '2': push(top()); return;
    case 'q': memo_put(unsigned_le(1)); return;
    case 'r': memo_put(unsigned_le(4)); return;
    case 0x94: memo_put(memo_.size()); return;  // MEMOIZE
    case 'h': memo_get(unsigned_le(1)); return;
    case 'j': memo_get(unsigned_le(4)); return;
    case 'Q': { auto id = pop(); push(persistent_storage(*id)); return; }
    case 'R': { auto arguments = pop(), callable = pop(); push(reduce(*callable, *arguments)); return; }
    case 0x81: {  // NEWOBJ cls args: an instance of a class genfw does not build
      pop();
      auto cls = pop();
      push(text_value(T::opaque, cls->text));
      return;
    }
    case 'b': pop(); top(); return;  // BUILD: the state of a dict (OrderedDict's _metadata) or of an opaque object
    default: break;
  }
  std::ostringstream hex;
  hex << "0x" << std::hex << int(opcode);
  damaged("opcode " + hex.str() + ", not one torch.save writes");
}

PickleRef Unpickler::reduce(const PickleValue& callable, const PickleValue& arguments) {
  using T = PickleValue::Type;
  if (callable.type != T::opaque || arguments.type != T::tuple) damaged("REDUCE of " + callable.description());
  const std::string& name = callable.text;
  if (name == "collections.OrderedDict") {
    auto dict = make(T::dict);
    if (!arguments.items.empty() && arguments.items[0]->type == T::list) {  // OrderedDict([[k, v], ...])
      for (const auto& pair : arguments.items[0]->items) {
        if (pair->items.size() != 2) damaged("OrderedDict of items that are not pairs");
        nest(*dict, *pair->items[1]);
        dict->entries.emplace_back(pair->items[0], pair->items[1]);
      }
    }
    return dict;
  }
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    return rebuild_tensor(arguments.items);
  }
  if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
    if (arguments.items.empty() || arguments.items[0]->type != T::tensor) damaged("a Parameter of no tensor");
    return arguments.items[0];
  }
  return text_value(T::opaque, name);
}

// ('storage', torch.<Type>Storage, key, location, numel): the record data/<key>.
PickleRef Unpickler::persistent_storage(const PickleValue& id) {
  using T = PickleValue::Type;
  const auto& items = id.items;
  if (id.type != T::tuple || items.size() < 5 || items[0]->type != T::string || items[0]->text != "storage" ||
      items[1]->type != T::opaque || items[2]->type != T::string || items[4]->type != T::integer) {
    damaged("a persistent id that is not ('storage', type, key, location, numel)");
  }
  const StorageType* type = nullptr;
  for (const auto& candidate : kStorageTypes) {
    if (items[1]->text == candidate.name) type = &candidate;
  }
  if (!type) damaged("a storage of type " + items[1]->text + ", not one genfw reads");
  const std::string& key = items[2]->text;
  const int64_t numel = items[4]->integer;
  auto value = make(T::tensor);
  auto cached = storages_.find(key);
  if (cached != storages_.end()) {
    value->tensor = cached->second;
    return value;
  }
  const std::string record = "data/" + key;
  GENFW_CHECK(zip_.hasRecord(record), origin_, ": the pickle uses storage '", key, "' but the file has no record ",
              record, " (damaged)");
  auto [bytes, size] = zip_.getRecord(record);
  const int64_t element = int64_t(c10::elementSize(type->dtype));
  GENFW_CHECK(numel >= 0 && numel <= int64_t(size) / element && uint64_t(numel * element) == size, origin_,
              ": storage '", key, "' holds ", size, " bytes, its pickle says ", numel, " elements of ", element,
              " bytes (damaged)");
  // A tensor that is the whole storage shares it (two such share each other, as tied weights
  // do in PyTorch); any other view is a copy.
  auto storage = torch::empty({numel}, torch::TensorOptions().dtype(type->dtype));
  if (size) std::memcpy(storage.data_ptr(), bytes.get(), size);
  storages_[key] = storage;
  value->tensor = storage;
  return value;
}

// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
PickleRef Unpickler::rebuild_tensor(const std::vector<PickleRef>& arguments) {
  using T = PickleValue::Type;
  if (arguments.size() < 4 || arguments[0]->type != T::tensor || arguments[1]->type != T::integer ||
      arguments[2]->type != T::tuple || arguments[3]->type != T::tuple ||
      arguments[2]->items.size() != arguments[3]->items.size()) {
    damaged("a tensor rebuilt from other than (storage, offset, size, stride)");
  }
  const torch::Tensor& storage = arguments[0]->tensor;
  const int64_t offset = arguments[1]->integer;
  std::vector<int64_t> sizes, strides;
  bool empty = false;
  int64_t last = offset;  // the last element the tensor reads
  for (size_t i = 0; i < arguments[2]->items.size(); ++i) {
    const auto& size = arguments[2]->items[i];
    const auto& stride = arguments[3]->items[i];
    if (size->type != T::integer || stride->type != T::integer || size->integer < 0 || stride->integer < 0 ||
        size->integer > (int64_t(1) << 40) || stride->integer > (int64_t(1) << 40)) {
      damaged("a tensor's size or stride is not a small non-negative integer");
    }
    sizes.push_back(size->integer);
    strides.push_back(stride->integer);
    empty = empty || size->integer == 0;
    if (size->integer > 0) last += (size->integer - 1) * stride->integer;
  }
  if (offset < 0 || (!empty && last >= storage.numel())) {
    damaged("a tensor reads past the end of its storage of " + std::to_string(storage.numel()) + " elements");
  }
  auto value = make(T::tensor);
  if (empty) {
    value->tensor = torch::empty(sizes, storage.options());
  } else {
    auto view = storage.as_strided(sizes, strides, offset);
    // The whole storage in order (a state dict's usual tensor) needs no copy of its own.
    const bool whole = offset == 0 && view.numel() == storage.numel() && view.is_contiguous();
    value->tensor = whole ? view : view.clone(at::MemoryFormat::Contiguous);
  }
  return value;
}

bool is_legacy_format(const std::string& bytes) {
  return !bytes.empty() && uint8_t(bytes[0]) == 0x80;  // a bare pickle; a zip starts "PK"
}

}  // namespace

PickleRef PickleValue::find(const std::string& key) const {
  for (const auto& [k, v] : entries) {
    if (k->type == Type::string && k->text == key) return v;
  }
  return nullptr;
}

std::string PickleValue::description() const {
  switch (type) {
    case Type::none: return "None";
    case Type::boolean: return "a bool";
    case Type::integer: return "an integer";
    case Type::real: return "a float";
    case Type::string: return "a string";
    case Type::list: return "a list";
    case Type::tuple: return "a tuple";
    case Type::dict: return "a dict";
    case Type::tensor: return "a tensor";
    case Type::opaque: return "an object of " + text;
  }
  return "a value";
}

namespace {

void refuse_legacy_format(bool legacy, const std::string& origin) {
  GENFW_CHECK(!legacy, origin,
              ": a checkpoint in PyTorch's pre-1.6 format, which genfw does not read; convert it with any PyTorch "
              "≥ 1.6 (weights_only loads no code): python -c \"import torch, sys; torch.save(torch.load(sys.argv[1], "
              "map_location='cpu', weights_only=True), sys.argv[2])\" ",
              origin, " converted.pth");
}

// `open` makes the zip reader (over bytes or a file); its errors become genfw::Errors naming `origin`.
template <typename Open>
PickleRef parse_zip(const Open& open, const std::string& origin) {
  try {
    auto zip = open();
    GENFW_CHECK(zip->hasRecord("data.pkl"), origin, ": a zip without data.pkl: not a torch.save() file");
    if (zip->hasRecord("byteorder")) {
      auto [order, size] = zip->getRecord("byteorder");
      const std::string text(static_cast<const char*>(order.get()), size);
      GENFW_CHECK(text == "little", origin, ": storages in byte order '", text, "', genfw reads 'little'");
    }
    auto [pickle_bytes, pickle_size] = zip->getRecord("data.pkl");
    const std::string pickle(static_cast<const char*>(pickle_bytes.get()), pickle_size);
    return Unpickler(pickle, *zip, origin).run();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(detail::concat(origin, ": not a readable torch.save() zip file (", e.what_without_backtrace(), ")"));
  }
}

}  // namespace

PickleRef parse_pytorch_checkpoint(const std::string& bytes, const std::string& origin) {
  refuse_legacy_format(is_legacy_format(bytes), origin);
  std::istringstream stream(bytes);
  return parse_zip([&] { return std::make_unique<caffe2::serialize::PyTorchStreamReader>(&stream); }, origin);
}

// From the file itself: the zip reader reads only the records, not a copy of the whole file.
PickleRef read_pytorch_checkpoint(const std::string& path) {
  GENFW_CHECK(!std::filesystem::is_directory(path), path, ": a folder, expected a checkpoint file written by torch.save()");
  std::ifstream in(path, std::ios::binary);
  GENFW_CHECK(in.good(), path, ": cannot open the checkpoint (", std::strerror(errno), ")");
  std::string first(1, '\0');
  in.read(first.data(), 1);
  refuse_legacy_format(in.gcount() == 1 && is_legacy_format(first), path);
  in.close();
  return parse_zip([&] { return std::make_unique<caffe2::serialize::PyTorchStreamReader>(path); }, path);
}

std::map<std::string, torch::Tensor> state_dict_tensors(const PickleValue& value, const std::string& origin,
                                                        const std::string& where) {
  GENFW_CHECK(value.type == PickleValue::Type::dict, origin, ": ", where, " is ", value.description(),
              ", expected a state dict (names → tensors)");
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [key, entry] : value.entries) {
    GENFW_CHECK(key->type == PickleValue::Type::string, origin, ": ", where, " has a key that is ",
                key->description(), ", expected names of tensors");
    GENFW_CHECK(entry->type == PickleValue::Type::tensor, origin, ": ", where, "['", key->text, "'] is ",
                entry->description(), ", expected a tensor");
    tensors[key->text] = entry->tensor;
  }
  return tensors;
}

}  // namespace genfw
