#include "nmt/io/checkpoint.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <unordered_set>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/serialize.h>

#include "nmt/runtime.h"

namespace nmt::io {
namespace {

// Format 1 was a plain LibTorch archive (a zip file) without checksums; format 2 is the container
// described in checkpoint.h.
constexpr uint32_t kFormatVersion = 2;
constexpr char kMagic[8] = {'N', 'M', 'T', 'C', 'K', 'P', 'T', '\n'};
constexpr char kZipMagic[4] = {'P', 'K', '\x03', '\x04'};
const char* const kPartNames[] = {"config", "src_spm", "tgt_spm", "state", "model", "optimizer"};

/// A learning curve as a float64 tensor [N, 5]: step, seconds, loss, perplexity, BLEU.
torch::Tensor curve_tensor(const std::vector<CurveEntry>& curve) {
  auto t = torch::empty({static_cast<int64_t>(curve.size()), 5}, torch::kFloat64);
  auto a = t.accessor<double, 2>();
  for (size_t i = 0; i < curve.size(); ++i) {
    const auto& e = curve[i];
    const double row[5] = {static_cast<double>(e.step), e.seconds, e.loss, e.perplexity, e.bleu};
    for (int j = 0; j < 5; ++j) a[static_cast<int64_t>(i)][j] = row[j];
  }
  return t;
}

std::vector<CurveEntry> curve_of(const torch::Tensor& t) {
  if (t.dim() != 2 || t.size(1) != 5) throw std::runtime_error("a learning curve of shape " + c10::str(t.sizes()));
  const auto d = t.to(torch::kFloat64).contiguous();
  auto a = d.accessor<double, 2>();
  std::vector<CurveEntry> curve;
  for (int64_t i = 0; i < d.size(0); ++i)
    curve.push_back({static_cast<int64_t>(a[i][0]), a[i][1], a[i][2], a[i][3], a[i][4]});
  return curve;
}

void write_state(torch::serialize::OutputArchive& a, const TrainingState& s) {
  a.write("state.step", c10::IValue(s.step));
  a.write("state.epoch", c10::IValue(s.epoch));
  a.write("state.batch_in_epoch", c10::IValue(s.batch_in_epoch));
  a.write("state.best_metric", c10::IValue(s.best_metric));
  a.write("state.best_step", c10::IValue(s.best_step));
  a.write("state.bad_validations", c10::IValue(s.bad_validations));
  a.write("state.lr_base", c10::IValue(s.lr_base));
  a.write("state.lr_bad_count", c10::IValue(s.lr_bad_count));
  a.write("state.elapsed_seconds", c10::IValue(s.elapsed_seconds));
  a.write("state.validated_step", c10::IValue(s.validated_step));
  if (s.cpu_rng_state.defined()) a.write("rng_cpu", s.cpu_rng_state);
  a.write("rng_cuda_count", c10::IValue(static_cast<int64_t>(s.cuda_rng_states.size())));
  for (size_t i = 0; i < s.cuda_rng_states.size(); ++i) a.write("rng_cuda_" + std::to_string(i), s.cuda_rng_states[i]);
  a.write("curve.train", curve_tensor(s.train_curve));
  a.write("curve.valid", curve_tensor(s.valid_curve));
}

c10::IValue read_value(torch::serialize::InputArchive& a, const std::string& key) {
  c10::IValue v;
  a.read(key, v);
  return v;
}

TrainingState read_state(torch::serialize::InputArchive& a) {
  TrainingState s;
  s.step = read_value(a, "state.step").toInt();
  s.epoch = read_value(a, "state.epoch").toInt();
  s.batch_in_epoch = read_value(a, "state.batch_in_epoch").toInt();
  s.best_metric = read_value(a, "state.best_metric").toDouble();
  s.best_step = read_value(a, "state.best_step").toInt();
  s.bad_validations = read_value(a, "state.bad_validations").toInt();
  s.lr_base = read_value(a, "state.lr_base").toDouble();
  s.lr_bad_count = read_value(a, "state.lr_bad_count").toInt();
  s.elapsed_seconds = read_value(a, "state.elapsed_seconds").toDouble();
  c10::IValue v;
  s.validated_step = a.try_read("state.validated_step", v) ? v.toInt() : s.step;  // format 1: validated
  torch::Tensor t;
  if (a.try_read("rng_cpu", t)) s.cpu_rng_state = t;
  if (a.try_read("rng_cuda_count", v))
    for (int64_t i = 0; i < v.toInt(); ++i) {
      torch::Tensor g;
      a.read("rng_cuda_" + std::to_string(i), g);
      s.cuda_rng_states.push_back(g);
    }
  // Absent before the curves were kept. A fresh tensor each: reading into a defined tensor
  // overwrites it in place (and so whatever shares it).
  if (torch::Tensor curve; a.try_read("curve.train", curve)) s.train_curve = curve_of(curve);
  if (torch::Tensor curve; a.try_read("curve.valid", curve)) s.valid_curve = curve_of(curve);
  return s;
}

std::string archive_bytes(torch::serialize::OutputArchive& a) {
  std::ostringstream out;
  a.save_to(out);
  return out.str();
}

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// The format-2 container of `parts` (name, bytes), as described in checkpoint.h.
std::string encode_container(const std::vector<std::pair<std::string, std::string>>& parts) {
  std::string out(kMagic, sizeof kMagic);
  put_u32(out, kFormatVersion);
  put_u32(out, static_cast<uint32_t>(parts.size()));
  for (const auto& [name, bytes] : parts) {
    put_u32(out, static_cast<uint32_t>(name.size()));
    out += name;
    put_u64(out, bytes.size());
    put_u64(out, checksum64(bytes.data(), bytes.size()));
  }
  put_u64(out, checksum64(out.data(), out.size()));
  for (const auto& part : parts) out += part.second;
  return out;
}

/// PyTorchStreamReader's view of bytes in memory (no copy).
class MemoryReadAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  MemoryReadAdapter(const char* data, size_t size) : data_(data), size_(size) {}
  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= size_) return 0;
    n = std::min<size_t>(n, size_ - pos);
    std::memcpy(buf, data_ + pos, n);
    return n;
  }

 private:
  const char* data_;
  size_t size_;
};

/// An exception's message; for LibTorch's c10::Error without the C++ backtrace it appends.
std::string message_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

bool is_name_char(char c, bool first) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

/// `s` is a name ([A-Za-z_][A-Za-z0-9_]*), or with `dotted` names joined by dots.
bool is_name(std::string_view s, bool dotted = false) {
  if (s.empty() || !is_name_char(s[0], true)) return false;
  for (char c : s.substr(1))
    if (!is_name_char(c, false) && !(dotted && c == '.')) return false;
  return true;
}

/// Reads a type as LibTorch prints one from the front of `s`: a dotted name, optionally with
/// [T, T, ...] arguments, nested at most `depth` deep (LibTorch's type parser recurses, so a
/// deeply nested type overflows its stack).
bool read_type(std::string_view& s, int depth) {
  size_t n = 0;
  while (n < s.size() && (is_name_char(s[n], n == 0) || (n > 0 && s[n] == '.'))) ++n;
  if (n == 0) return false;
  s.remove_prefix(n);
  if (s.empty() || s[0] != '[') return true;
  if (depth == 0) return false;
  s.remove_prefix(1);
  for (;;) {
    if (!read_type(s, depth - 1)) return false;
    if (starts_with(s, ", ")) {
      s.remove_prefix(2);
    } else if (starts_with(s, "]")) {
      s.remove_prefix(1);
      return true;
    } else {
      return false;
    }
  }
}

bool is_type(std::string_view s) { return read_type(s, 4) && s.empty(); }

/// A string literal without quotes or backslashes inside: "..." .
bool is_plain_string(std::string_view s) {
  return s.size() >= 2 && s.front() == '"' && s.back() == '"' &&
         s.substr(1, s.size() - 2).find_first_of("\"\\") == std::string_view::npos;
}

/// A list of plain strings as LibTorch prints one: [] or ["a", "b", ].
bool is_string_list(std::string_view s) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
  s = s.substr(1, s.size() - 2);
  while (!s.empty()) {
    const size_t end = s.find("\", ");
    if (end == std::string_view::npos || !is_plain_string(s.substr(0, end + 1))) return false;
    s.remove_prefix(end + 3);
  }
  return true;
}

/// One line of the TorchScript an OutputArchive of tensors and values writes: `class N(M):`,
/// `  __parameters__ = [...]`, `  __buffers__ = [...]`, `  __annotations__ = []`,
/// `  __annotations__["key"] = TYPE`, `  name : TYPE`, or an empty line.
bool is_attribute_declaration(std::string_view line) {
  if (line.empty()) return true;
  if (starts_with(line, "class ")) {
    const size_t open = line.find('(');
    return open != std::string_view::npos && is_name(line.substr(6, open - 6)) && line.size() >= open + 3 &&
           line.substr(line.size() - 2) == "):" && is_name(line.substr(open + 1, line.size() - open - 3), true);
  }
  if (!starts_with(line, "  ")) return false;
  line.remove_prefix(2);
  for (std::string_view list : {"__parameters__ = ", "__buffers__ = "})
    if (starts_with(line, list)) return is_string_list(line.substr(list.size()));
  if (line == "__annotations__ = []") return true;
  if (starts_with(line, "__annotations__[")) {
    const size_t close = line.find("] = ");
    return close != std::string_view::npos && is_plain_string(line.substr(16, close - 16)) &&
           is_type(line.substr(close + 4));
  }
  const size_t colon = line.find(" : ");
  return colon != std::string_view::npos && is_name(line.substr(0, colon)) && is_type(line.substr(colon + 3));
}

/// The `bytes`-byte little-endian unsigned integer at `p` (the container's and pickle's layout).
uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// Checks the TorchScript class definitions `text` of the archive record `name` (code/*.py):
/// an OutputArchive of tensors and values declares only attributes there
/// (is_attribute_declaration); anything else is refused, because LibTorch 1.13's importer crashes
/// (SIGSEGV in ScriptTypeParser::parseClassConstant) on some of it, e.g. a class constant without
/// a type (`name = int`), which a crafted or corrupt archive with recomputed checksums can hold.
/// (A hand-written check: std::regex recurses per character and overflows the stack on a long
/// line.) Throws std::runtime_error naming the record and line.
void check_code(const std::string& name, std::string_view text) {
  size_t at = 0;
  for (int number = 1; at < text.size(); ++number) {
    const size_t end = std::min(text.find('\n', at), text.size());
    const std::string_view line = text.substr(at, end - at);
    at = end + 1;
    if (is_attribute_declaration(line)) continue;
    std::string shown(line.substr(0, 60));
    for (char& c : shown)
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    throw std::runtime_error("unexpected TorchScript in the archive's " + name + ", line " + std::to_string(number) +
                             " ('" + shown + "'): nmt stores only attribute declarations there (a corrupt or " +
                             "crafted file?)");
  }
}

/// The size in bytes of one element of a storage class of a pickle ("FloatStorage", ...), or 0.
size_t storage_itemsize(std::string_view storage_class) {
  static const std::map<std::string_view, size_t> sizes = {
      {"DoubleStorage", 8}, {"FloatStorage", 4}, {"HalfStorage", 2}, {"BFloat16Storage", 2},
      {"LongStorage", 8},   {"IntStorage", 4},   {"ShortStorage", 2}, {"CharStorage", 1},
      {"ByteStorage", 1},   {"BoolStorage", 1},  {"ComplexFloatStorage", 8}, {"ComplexDoubleStorage", 16}};
  const auto it = sizes.find(storage_class);
  return it == sizes.end() ? 0 : it->second;
}

/// Walks the pickle program `p` of the archive record `name` (data.pkl, constants.pkl) opcode by
/// opcode as LibTorch 1.13's Unpickler reads it (torch/csrc/jit/serialization/unpickler.cpp;
/// opcodes as in Python's pickletools), with the same stack, marks and memo, holding the values
/// that tensor storages are made of (strings, integers, globals, tuples) and a placeholder for
/// the rest. It refuses, before LibTorch reads the record:
///  - an argument that runs past the record's end: the Unpickler allocates a string's stated
///    length before it reads the bytes, so a corrupt 32-bit length made it reserve up to 4 GiB
///    (a tests/fuzz/fuzz_checkpoint finding);
///  - an opcode that pops more than the stack or the marks hold (undefined behaviour there);
///  - a memo index (BINPUT) as large as the pickle: the Unpickler grows its memo to the index;
///  - a storage (BINPERSID of ('storage', type, key, location, numel)) whose numel elements do
///    not fit in its record `<pickle name>/<key>`: the Unpickler sizes the storage by numel and
///    fills it from the record without comparing the two, so every read of such a tensor overruns
///    the record's buffer (a fuzz_checkpoint finding). `record_size(record)` gives a record's size
///    in bytes, or -1 when the archive has no such record.
/// Stops at STOP, and at an opcode or memo entry the Unpickler does not read either (it then
/// reports that itself). Throws std::runtime_error naming the record and the byte offset.
void check_pickle(const std::string& name, std::string_view p,
                  const std::function<int64_t(const std::string&)>& record_size) {
  struct Value {
    enum Kind { kOther, kString, kInt, kGlobal, kTuple } kind = kOther;
    std::string text;  ///< a string, or a global's class name
    int64_t number = 0;
    std::shared_ptr<const std::vector<Value>> items;  ///< a tuple's elements (shared: BINGET copies are cheap)
  };
  auto tuple = [](std::vector<Value> items) {
    return Value{Value::kTuple, {}, 0, std::make_shared<const std::vector<Value>>(std::move(items))};
  };
  std::vector<Value> stack, memo;
  std::vector<size_t> marks;
  size_t at = 0, op_at = 0;
  auto fail = [&](const std::string& what) {
    return std::runtime_error("corrupt " + name + ": " + what + " at byte " + std::to_string(op_at) + " (" +
                              std::to_string(p.size()) + " bytes; a corrupt or crafted file?)");
  };
  auto need = [&](uint64_t n, const char* what) {
    if (n > p.size() - at)
      throw std::runtime_error("corrupt " + name + ": " + what + " of " + std::to_string(n) + " bytes at byte " +
                               std::to_string(at) + " runs past its end (" + std::to_string(p.size()) +
                               " bytes; a corrupt or crafted file?)");
  };
  auto length = [&](int bytes) {  // a little-endian length argument, consumed
    need(bytes, "a length");
    const uint64_t v = get_le(p.data() + at, bytes);
    at += bytes;
    return v;
  };
  auto pop = [&](size_t n) {  // the top n values, bottom first
    if (n > stack.size() || (!marks.empty() && stack.size() - n < marks.back()))
      throw fail("an opcode that pops " + std::to_string(n) + " of " + std::to_string(stack.size()) + " values");
    std::vector<Value> top(std::make_move_iterator(stack.end() - static_cast<std::ptrdiff_t>(n)),
                           std::make_move_iterator(stack.end()));
    stack.resize(stack.size() - n);
    return top;
  };
  auto pop_mark = [&](size_t below) {  // the values above the last mark; `below` must stay under it
    if (marks.empty()) throw fail("an opcode that needs a MARK without one");
    const size_t mark = marks.back();
    marks.pop_back();
    if (mark > stack.size() || mark < below)
      throw fail("a MARK at stack depth " + std::to_string(mark) + " with " + std::to_string(stack.size()) + " values");
    std::vector<Value> top(std::make_move_iterator(stack.begin() + static_cast<std::ptrdiff_t>(mark)),
                           std::make_move_iterator(stack.end()));
    stack.resize(mark);
    return top;
  };
  auto push_int = [&](int64_t v) { stack.push_back({Value::kInt, {}, v, nullptr}); };
  auto check_storage = [&](const Value& id) {
    if (id.kind != Value::kTuple || id.items->size() < 5) return;  // not a storage: the Unpickler refuses it
    const auto& item = *id.items;
    if (item[0].kind != Value::kString || item[0].text != "storage" || item[2].kind != Value::kString ||
        item[4].kind != Value::kInt)
      return;
    size_t itemsize = 0;
    if (item[1].kind == Value::kGlobal) itemsize = storage_itemsize(item[1].text);
    if (item[1].kind == Value::kInt && item[1].number >= 0 &&
        item[1].number < static_cast<int64_t>(c10::ScalarType::NumOptions))
      itemsize = c10::elementSize(static_cast<c10::ScalarType>(item[1].number));
    if (itemsize == 0) throw fail("a storage of an unknown element type");
    const int64_t numel = item[4].number;
    // A negative count would become a huge byte size of a storage without data.
    if (numel < 0) throw fail("a storage of " + std::to_string(numel) + " elements");
    if (numel == 0) return;  // no elements: the Unpickler reads no record
    const std::string record = name.substr(0, name.size() - 4) + "/" + item[2].text;  // data.pkl → data/KEY
    const int64_t size = record_size(record);
    if (size < 0) throw fail("a storage in record " + record + ", which the archive does not have");
    if (static_cast<uint64_t>(numel) > static_cast<uint64_t>(size) / itemsize)
      throw fail("a storage of " + std::to_string(numel) + " elements of " + std::to_string(itemsize) +
                 " bytes in record " + record + " of " + std::to_string(size) + " bytes");
  };
  while (at < p.size()) {
    op_at = at;
    const auto op = static_cast<unsigned char>(p[at++]);
    switch (op) {
      case '.':  // STOP
        return;
      case '(':  // MARK
        marks.push_back(stack.size());
        break;
      case ']': case '}': case 'N': case 0x88: case 0x89:  // EMPTY_LIST, EMPTY_DICT, NONE, NEWTRUE, NEWFALSE
        stack.emplace_back();
        break;
      case ')':  // EMPTY_TUPLE
        stack.push_back(tuple({}));
        break;
      case 't':  // TUPLE
        stack.push_back(tuple(pop_mark(0)));
        break;
      case 0x85: case 0x86: case 0x87:  // TUPLE1, TUPLE2, TUPLE3
        stack.push_back(tuple(pop(op - 0x84)));
        break;
      case 'l': case 'd':  // LIST, DICT
        pop_mark(0);
        stack.emplace_back();
        break;
      case 'e': case 'u':  // APPENDS, SETITEMS: the list or dict under the mark stays
        pop_mark(1);
        break;
      case 'a': case 'b':  // APPEND, BUILD: the list or object under the value stays
        pop(1);
        if (stack.empty()) throw fail("an APPEND or BUILD without a target");
        break;
      case 's':  // SETITEM
        pop(2);
        if (stack.empty()) throw fail("a SETITEM without a dict");
        break;
      case 'R': case 0x81:  // REDUCE (callable, arguments), NEWOBJ (class, arguments) → one value
        pop(2);
        stack.emplace_back();
        break;
      case 'Q':  // BINPERSID: a persistent id (a storage) → the storage
        check_storage(pop(1)[0]);
        stack.emplace_back();
        break;
      case 0x80:  // PROTO
        need(1, "an argument");
        at += 1;
        break;
      case 'q': case 'r': {  // BINPUT, LONG_BINPUT
        const uint64_t index = length(op == 'q' ? 1 : 4);
        if (stack.empty()) throw fail("a BINPUT of an empty stack");
        // The Unpickler grows its memo to the index (16 bytes an entry) without a bound: a changed
        // index made it allocate 10 GB (a fuzz_checkpoint finding). Picklers number the memo
        // 0, 1, 2, ..., one BINPUT (2 bytes or more) each, so no index reaches the pickle's size.
        if (index >= p.size())
          throw fail("a memo index of " + std::to_string(index) + " in a pickle of " + std::to_string(p.size()) + " bytes");
        if (index >= memo.size()) memo.resize(index + 1);
        memo[index] = stack.back();
        break;
      }
      case 'h': case 'j': {  // BINGET, LONG_BINGET
        const uint64_t index = length(op == 'h' ? 1 : 4);
        if (index >= memo.size()) return;  // the Unpickler throws out_of_range
        stack.push_back(memo[index]);
        break;
      }
      case 'K': case 'M':  // BININT1, BININT2 (unsigned)
        push_int(static_cast<int64_t>(length(op == 'K' ? 1 : 2)));
        break;
      case 'J':  // BININT (signed 32 bits)
        push_int(static_cast<int32_t>(static_cast<uint32_t>(length(4))));
        break;
      case 'G':  // BINFLOAT
        need(8, "an argument");
        at += 8;
        stack.emplace_back();
        break;
      case 0x8a: {  // LONG1: n little-endian two's-complement bytes
        const uint64_t n = length(1);
        need(n, "an integer");
        int64_t v = 0;
        if (n > 0 && n <= 8) {
          v = static_cast<int64_t>(get_le(p.data() + at, static_cast<int>(n)));
          if (n < 8 && (static_cast<unsigned char>(p[at + n - 1]) & 0x80)) v -= int64_t{1} << (8 * n);
        }
        at += n;
        push_int(v);
        break;
      }
      case 'U': case 'X': case 0x8d: {  // SHORT_BINSTRING, BINUNICODE, BINUNICODE8
        const uint64_t n = length(op == 'X' ? 4 : op == 0x8d ? 8 : 1);
        need(n, "a string");
        stack.push_back({Value::kString, std::string(p.substr(at, n)), 0, nullptr});
        at += n;
        break;
      }
      case 'c': {  // GLOBAL: module and class name, each ending in a newline
        std::string parts[2];
        for (auto& part : parts) {
          const size_t end = p.find('\n', at);
          if (end == std::string_view::npos) need(p.size() - at + 1, "a global name");
          part = std::string(p.substr(at, end - at));
          at = end + 1;
        }
        stack.push_back({Value::kGlobal, parts[0] == "torch" ? parts[1] : parts[0] + "." + parts[1], 0, nullptr});
        break;
      }
      default:
        return;
    }
  }
}

/// The uncompressed size of every record of the zip archive [data, data + size), named as
/// PyTorchStreamReader names them (without the archive's top folder), from the zip's central
/// directory (APPNOTE.TXT 4.3.12-4.3.16, with the zip64 records LibTorch writes). LibTorch's
/// reader allocates a record's stated size before it reads it, so a changed size of 4 GiB was an
/// allocation of 4 GiB (a fuzz_checkpoint finding); the sizes are checked against the archive
/// first. Throws std::runtime_error when the directory does not parse.
std::map<std::string, uint64_t> zip_record_sizes(const char* data, size_t size) {
  auto corrupt = [](const std::string& what) { return std::runtime_error("corrupt zip directory: " + what); };
  auto at = [&](uint64_t pos, int bytes) {
    if (pos > size || static_cast<uint64_t>(bytes) > size - pos) throw corrupt("a field past the end");
    return get_le(data + pos, bytes);
  };
  if (size < 22) throw corrupt("no end record");
  size_t eocd = size - 22;  // the end record: 22 bytes and a comment of at most 65,535
  while (get_le(data + eocd, 4) != 0x06054b50) {
    if (eocd == 0 || size - eocd > 22 + 65535) throw corrupt("no end record");
    --eocd;
  }
  uint64_t count = at(eocd + 10, 2), dir = at(eocd + 16, 4);
  if (count == 0xffff || dir == 0xffffffff) {  // zip64: the locator just before the end record
    if (eocd < 20 || at(eocd - 20, 4) != 0x07064b50) throw corrupt("no zip64 locator");
    const uint64_t end64 = at(eocd - 20 + 8, 8);
    if (at(end64, 4) != 0x06064b50) throw corrupt("no zip64 end record");
    count = at(end64 + 32, 8);
    dir = at(end64 + 48, 8);
  }
  std::map<std::string, uint64_t> sizes;
  uint64_t pos = dir;
  for (uint64_t i = 0; i < count; ++i) {
    if (at(pos, 4) != 0x02014b50) throw corrupt("entry " + std::to_string(i) + " has no signature");
    uint64_t uncompressed = at(pos + 24, 4);
    const uint64_t name_len = at(pos + 28, 2), extra_len = at(pos + 30, 2), comment_len = at(pos + 32, 2);
    if (pos + 46 > size || name_len > size - pos - 46) throw corrupt("a name past the end");
    std::string name(data + pos + 46, name_len);
    if (uncompressed == 0xffffffff) {  // the zip64 extra field (id 1) holds it, first
      bool found = false;
      for (uint64_t e = pos + 46 + name_len, end = e + extra_len; e + 4 <= end;) {
        const uint64_t id = at(e, 2), len = at(e + 2, 2);
        if (id == 1 && len >= 8) {
          uncompressed = at(e + 4, 8);
          found = true;
          break;
        }
        e += 4 + len;
      }
      if (!found) throw corrupt("record " + name + " has no zip64 size");
    }
    const size_t slash = name.find('/');
    sizes[slash == std::string::npos ? name : name.substr(slash + 1)] = uncompressed;
    pos += 46 + name_len + extra_len + comment_len;
  }
  return sizes;
}

/// Checks the records of the LibTorch archive in [data, data + size) before LibTorch reads them:
/// its TorchScript class definitions (check_code) and its pickles (check_pickle). Throws
/// std::runtime_error naming the record.
void check_archive(const char* data, size_t size) {
  caffe2::serialize::PyTorchStreamReader reader(std::make_unique<MemoryReadAdapter>(data, size));
  auto ends_with = [](const std::string& s, std::string_view end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
  };
  const auto records = reader.getAllRecords();
  const auto sizes = zip_record_sizes(data, size);
  for (const auto& name : records) {
    const auto it = sizes.find(name);
    if (it == sizes.end()) throw std::runtime_error("corrupt zip directory: no entry for record " + name);
    // LibTorch writes records uncompressed: none can be larger than the archive.
    if (it->second > size)
      throw std::runtime_error("record " + name + " claims " + std::to_string(it->second) + " bytes in an archive of " +
                               std::to_string(size) + " bytes (a corrupt or crafted file?)");
  }
  auto record_size = [&](const std::string& record) -> int64_t {
    const auto it = sizes.find(record);
    return it == sizes.end() ? -1 : static_cast<int64_t>(it->second);
  };
  for (const auto& name : records) {
    const bool code = (name.rfind("code/", 0) == 0 || name.find("/code/") != std::string::npos) && ends_with(name, ".py");
    const bool pickle = ends_with(name, ".pkl");
    if (!code && !pickle) continue;
    auto [bytes, n] = reader.getRecord(name);
    const std::string_view text(static_cast<const char*>(bytes.get()), n);
    if (code)
      check_code(name, text);
    else
      check_pickle(name, text, record_size);
  }
}

/// Throws std::runtime_error naming `name` unless every element of `t` lies inside its storage.
/// LibTorch 1.13's unpickler takes a tensor's storage offset, sizes and strides from the pickle
/// as they come, without comparing them with the storage record it reads the elements from, and
/// every later read of such a tensor overruns the storage (found by fuzz_checkpoint).
void check_tensor_extent(const at::Tensor& t, const std::string& name) {
  if (t.layout() != at::kStrided || t.is_quantized())
    throw std::runtime_error("tensor '" + name + "' is not a dense tensor");
  if (t.numel() == 0) return;
  const auto bad = [&](const std::string& what) {
    std::ostringstream sizes;
    sizes << t.sizes() << " strides " << t.strides() << " at offset " << t.storage_offset();
    return std::runtime_error("tensor '" + name + "' (" + sizes.str() + ") " + what);
  };
  if (t.storage_offset() < 0) throw bad("has a negative offset");
  unsigned __int128 last = static_cast<uint64_t>(t.storage_offset());  // index of its last element
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.stride(d) < 0) throw bad("has a negative stride");
    last += static_cast<unsigned __int128>(t.size(d) - 1) * static_cast<uint64_t>(t.stride(d));
  }
  const auto itemsize = static_cast<uint64_t>(t.element_size());
  const uint64_t capacity = t.storage().nbytes() / itemsize;
  if (last >= capacity)
    throw bad("reaches past the end of its storage of " + std::to_string(capacity) + " elements");
}

/// check_tensor_extent() for every tensor reachable from `v` (objects' attributes, lists, tuples,
/// dicts), named by its path from `name`.
void check_tensor_extents(const c10::IValue& v, const std::string& name, int depth,
                          std::unordered_set<const void*>& seen) {
  if (v.isTensor()) return check_tensor_extent(v.toTensor(), name);
  if (depth > 64) throw std::runtime_error("values nested more than 64 deep at '" + name + "'");
  if (v.isPtrType() && !seen.insert(v.internalToPointer()).second) return;  // shared (memo), or a cycle
  if (v.isObject()) {
    const auto object = v.toObject();
    const auto type = object->type();
    for (size_t i = 0; i < object->slots().size(); ++i) {
      const std::string attribute = i < type->numAttributes() ? type->getAttributeName(i) : std::to_string(i);
      check_tensor_extents(object->getSlot(i), name + "." + attribute, depth + 1, seen);
    }
  } else if (v.isList()) {
    const auto list = v.toListRef();
    for (size_t i = 0; i < list.size(); ++i)
      check_tensor_extents(list[i], name + "[" + std::to_string(i) + "]", depth + 1, seen);
  } else if (v.isTuple()) {
    const auto& elements = v.toTupleRef().elements();
    for (size_t i = 0; i < elements.size(); ++i)
      check_tensor_extents(elements[i], name + "[" + std::to_string(i) + "]", depth + 1, seen);
  } else if (v.isGenericDict()) {
    for (const auto& entry : v.toGenericDict()) {
      check_tensor_extents(entry.key(), name + "{key}", depth + 1, seen);
      check_tensor_extents(entry.value(), name + "{value}", depth + 1, seen);
    }
  }
}

/// check_tensor_extent() for every tensor of a loaded archive (weights, optimizer moments,
/// generator states, curves, nested archives), before anything reads them.
void check_tensor_extents(torch::serialize::InputArchive& archive) {
  std::unordered_set<const void*> seen;
  for (const auto& key : archive.keys()) {
    c10::IValue v;
    archive.read(key, v);
    check_tensor_extents(v, key, 0, seen);
  }
}

/// checksum64() of `size` bytes fed in pieces of any length.
class Checksum64 {
 public:
  explicit Checksum64(uint64_t size) : h_(0xcbf29ce484222325ULL ^ size) {}
  void update(const unsigned char* p, size_t n) {
    for (; n > 0 && pending_size_ > 0; --n) add_byte(*p++);
    for (; n >= 8; n -= 8, p += 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      mix(w);
    }
    for (; n > 0; --n) add_byte(*p++);
  }
  uint64_t value() {
    for (size_t i = 0; i < pending_size_; ++i) mix(pending_[i]);
    pending_size_ = 0;
    return h_ * kPrime;
  }

 private:
  static constexpr uint64_t kPrime = 0x100000001b3ULL;  // FNV-1a's 64-bit prime (odd: multiplying is a bijection)
  void mix(uint64_t w) {
    h_ = (h_ ^ w) * kPrime;
    h_ = (h_ << 29) | (h_ >> 35);  // rotation spreads the high bits back down; also a bijection
  }
  void add_byte(unsigned char b) {
    pending_[pending_size_++] = b;
    if (pending_size_ == 8) {
      uint64_t w;
      std::memcpy(&w, pending_, 8);
      mix(w);
      pending_size_ = 0;
    }
  }
  uint64_t h_;
  unsigned char pending_[8] = {};
  size_t pending_size_ = 0;
};

/// Reads a format-2 container of `file_size` bytes from `in` (positioned after the magic),
/// verifying every checksum, and keeps the parts `keep` names in memory; the others are checked
/// in 1 MiB pieces and dropped (translate never holds the optimizer state, nor a resumed run the
/// weights twice). Throws (without the file name, added by the caller) naming what is wrong.
class ContainerReader {
 public:
  ContainerReader(std::istream& in, uint64_t file_size) : in_(in), file_size_(file_size) {
    header_.assign(kMagic, sizeof kMagic);
  }

  std::map<std::string, std::string> parts(const std::function<bool(const std::string&)>& keep) {
    const uint32_t version = u32();
    if (version != kFormatVersion)
      throw std::runtime_error("checkpoint format version " + std::to_string(version) + ", but this nmt reads " +
                               std::to_string(kFormatVersion) + " (and 1); written by another nmt version?");
    const uint32_t count = u32();
    if (count > 64) throw std::runtime_error("corrupt part table (" + std::to_string(count) + " parts)");
    struct Entry { std::string name; uint64_t size, sum; };
    std::vector<Entry> entries;
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t len = u32();
      if (len > 64) throw std::runtime_error("corrupt part table (a name of " + std::to_string(len) + " bytes)");
      std::string name = take(len);
      const uint64_t size = u64();
      entries.push_back({std::move(name), size, u64()});
    }
    const size_t table_end = header_.size();
    if (u64() != checksum64(header_.data(), table_end))
      throw std::runtime_error("checksum mismatch in the part table (the file is corrupt)");
    uint64_t pos = header_.size();
    std::map<std::string, std::string> parts;
    std::vector<unsigned char> piece;
    for (const auto& e : entries) {
      if (e.size > file_size_ - pos)
        throw std::runtime_error("part '" + e.name + "' is truncated (" + std::to_string(file_size_ - pos) +
                                 " of " + std::to_string(e.size) + " bytes)");
      Checksum64 sum(e.size);
      if (keep(e.name)) {
        std::string bytes(e.size, '\0');
        read(bytes.data(), e.size);
        sum.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
        parts[e.name] = std::move(bytes);
      } else {
        piece.resize(std::min<uint64_t>(e.size, 1 << 20));
        for (uint64_t left = e.size; left > 0;) {
          const auto n = static_cast<size_t>(std::min<uint64_t>(left, piece.size()));
          read(piece.data(), n);
          sum.update(piece.data(), n);
          left -= n;
        }
      }
      if (sum.value() != e.sum) throw std::runtime_error("checksum mismatch in part '" + e.name + "' (the file is corrupt)");
      pos += e.size;
    }
    if (pos != file_size_)
      throw std::runtime_error(std::to_string(file_size_ - pos) + " unexpected bytes after the last part");
    return parts;
  }

 private:
  void read(void* out, size_t n) {
    in_.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
    if (static_cast<size_t>(in_.gcount()) != n) throw std::runtime_error("read error (the file changed while read?)");
  }
  /// n bytes of the part table (kept for its checksum).
  std::string take(uint64_t n) {
    if (n > file_size_ - header_.size()) throw std::runtime_error("truncated file (the part table is incomplete)");
    std::string s(n, '\0');
    read(s.data(), n);
    header_ += s;
    return s;
  }
  uint64_t le(int bytes) { return get_le(take(bytes).data(), bytes); }
  uint32_t u32() { return static_cast<uint32_t>(le(4)); }
  uint64_t u64() { return le(8); }

  std::istream& in_;
  uint64_t file_size_;
  std::string header_;  ///< the bytes read so far: magic and part table
};

/// The whole file behind `in` (a format-1 checkpoint: one LibTorch archive).
std::string read_file_bytes(std::ifstream& in, const std::string& path, uint64_t size) {
  std::string bytes(size, '\0');
  in.clear();
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) throw std::runtime_error(path + ": cannot read checkpoint");
  return bytes;
}

/// A checkpoint file read into memory and verified: format 2's parts, or a format-1 archive.
class StoredCheckpoint {
 public:
  /// Reads and verifies `path`, keeping the parts `keep` names (format 2; format 1 is one archive).
  StoredCheckpoint(const std::string& path, c10::Device device, const std::function<bool(const std::string&)>& keep)
      : path_(path), device_(device) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error(path + ": checkpoint file not found");
    const uint64_t size = std::filesystem::file_size(path, ec);
    std::ifstream in(path, std::ios::binary);
    if (ec || !in) throw std::runtime_error(path + ": cannot read checkpoint");
    char magic[sizeof kMagic] = {};
    in.read(magic, sizeof magic);
    if (static_cast<size_t>(in.gcount()) == sizeof kMagic && std::memcmp(magic, kMagic, sizeof kMagic) == 0) {
      std::set<std::string> present;
      try {
        parts_ = ContainerReader(in, size).parts([&](const std::string& name) {
          present.insert(name);
          return keep(name);
        });
      } catch (const std::exception& e) {
        throw std::runtime_error(path + ": invalid nmt checkpoint: " + e.what());
      }
      for (const char* name : kPartNames)
        if (name != std::string("optimizer") && !present.count(name))
          throw std::runtime_error(path + ": invalid nmt checkpoint: no part '" + name + "'");
      return;
    }
    const std::string data = read_file_bytes(in, path, size);
    const bool zip = data.size() >= sizeof kZipMagic && std::memcmp(data.data(), kZipMagic, sizeof kZipMagic) == 0;
    if (!zip) throw std::runtime_error(path + ": not an nmt checkpoint (corrupt, truncated, or another file)");
    try {
      check_archive(data.data(), data.size());
      legacy_.load_from(data.data(), data.size(), device);
      check_tensor_extents(legacy_);
      if (read_value(legacy_, "nmt_format").toInt() != 1) throw std::runtime_error("unsupported checkpoint format version");
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": not a readable nmt checkpoint (corrupt or truncated?): " +
                               message_of(e).substr(0, 200));
    }
    is_legacy_ = true;
    spdlog::warn("{}: written by an older nmt (checkpoint format 1, without checksums): its integrity cannot "
                 "be checked; checkpoints written from now on carry checksums", path);
  }

  /// A text or byte part: config, src_spm, tgt_spm.
  std::string bytes(const std::string& name) {
    if (!is_legacy_) return parts_.at(name);
    return read_value(legacy_, name).toStringRef();
  }

  /// A SentencePiece model part (src_spm, tgt_spm); its errors name the part.
  data::Vocab vocab(const std::string& name) {
    try {
      return data::Vocab::from_bytes(bytes(name));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("part '" + name + "': " + e.what());
    }
  }

  /// A LibTorch archive part (state, model, optimizer) into `out`; false when absent.
  bool archive(const std::string& name, torch::serialize::InputArchive& out) {
    if (is_legacy_ && name == "state") throw std::logic_error("format 1 keeps the state at the top level");
    try {
      if (is_legacy_) return legacy_.try_read(name, out);
      auto it = parts_.find(name);
      if (it == parts_.end()) return false;
      check_archive(it->second.data(), it->second.size());
      out.load_from(it->second.data(), it->second.size(), device_);
      parts_.erase(it);  // LibTorch holds its own copy of the records now
      check_tensor_extents(out);
      return true;
    } catch (const std::exception& e) {
      throw std::runtime_error("part '" + name + "': " + message_of(e));
    }
  }

  TrainingState state() {
    if (is_legacy_) return read_state(legacy_);
    torch::serialize::InputArchive a;
    archive("state", a);
    return read_state(a);
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  c10::Device device_;
  std::map<std::string, std::string> parts_;
  bool is_legacy_ = false;
  torch::serialize::InputArchive legacy_;
};

}  // namespace

Checkpoint average_checkpoints(const std::vector<std::string>& paths, bool trained_weights) {
  if (paths.empty()) throw std::runtime_error("no checkpoint to average");
  torch::NoGradGuard no_grad;
  // The weights averaged (those a checkpoint translates with, or the trained ones): parameters
  // and floating-point buffers.
  auto averaged = [trained_weights](const Checkpoint& ck) -> const models::Seq2Seq& {
    return trained_weights ? ck.model : ck.inference_model();
  };
  auto weights_of = [&](const Checkpoint& ck) {
    std::vector<std::pair<std::string, at::Tensor>> weights;
    const auto& model = averaged(ck);
    for (const auto& p : model->named_parameters()) weights.emplace_back(p.key(), p.value());
    for (const auto& b : model->named_buffers())
      if (b.value().is_floating_point()) weights.emplace_back(b.key(), b.value());
    return weights;
  };
  std::vector<std::string> names;
  std::vector<at::Tensor> sums;
  Checkpoint first, last;
  for (size_t i = 0; i < paths.size(); ++i) {  // one checkpoint in memory at a time (and the sums)
    auto ck = load_checkpoint(paths[i], c10::Device(c10::kCPU));
    const auto weights = weights_of(ck);
    if (i == 0) {
      for (const auto& [name, w] : weights) {
        names.push_back(name);
        sums.push_back(w.to(at::kDouble));
      }
      first = ck;
    } else {
      auto differs = [&](const std::string& what) {
        return std::runtime_error(paths[i] + ": cannot be averaged with " + paths[0] + ": " + what + " differ");
      };
      if (ck.config.model.type != first.config.model.type) throw differs("the model types");
      if (ck.src_vocab.size() != first.src_vocab.size() || ck.tgt_vocab.size() != first.tgt_vocab.size())
        throw differs("the vocabulary sizes");
      if (!trained_weights && (ck.ema != nullptr) != (first.ema != nullptr))
        throw differs("the weights kept (a moving average in one, not in the other)");
      if (weights.size() != names.size()) throw differs("the parameter sets");
      for (size_t k = 0; k < weights.size(); ++k) {
        if (weights[k].first != names[k] || !weights[k].second.sizes().equals(sums[k].sizes()))
          throw differs("the parameters (" + names[k] + ")");
        sums[k] += weights[k].second.to(at::kDouble);
      }
    }
    last = std::move(ck);
  }
  std::map<std::string, at::Tensor> mean;
  for (size_t k = 0; k < names.size(); ++k) mean[names[k]] = sums[k] / static_cast<double>(paths.size());
  auto& target = averaged(last);
  for (auto& p : target->named_parameters()) p.value().copy_(mean.at(p.key()));
  for (auto& b : target->named_buffers())
    if (b.value().is_floating_point()) b.value().copy_(mean.at(b.key()));
  if (trained_weights) {
    last.ema = nullptr;
    last.config.train.ema_decay = 0;
  }
  return last;
}

std::vector<std::string> numbered_checkpoints(const std::string& model_dir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(model_dir, ec)) {
    const auto name = f.path().filename().string();
    if (name.size() <= 8 || name.rfind("step-", 0) != 0 || f.path().extension() != ".pt") continue;
    const auto digits = name.substr(5, name.size() - 8);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    found.emplace_back(std::stoll(digits), f.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [step, path] : found) out.push_back(std::move(path));
  return out;
}

void keep_numbered_checkpoint(const std::string& last_pt, int64_t step, int keep) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(last_pt).parent_path();
  const fs::path numbered = dir / ("step-" + std::to_string(step) + ".pt");
  std::error_code ec;
  fs::remove(numbered, ec);
  fs::create_hard_link(last_pt, numbered, ec);
  if (ec) throw std::runtime_error(numbered.string() + ": cannot keep the checkpoint (" + ec.message() + ")");
  auto all = numbered_checkpoints(dir.string());
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove(all[i], ec);
}

uint64_t weights_digest(models::Seq2SeqImpl& model) {
  uint64_t digest = 0;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    const auto c = t.detach().to(at::kCPU).contiguous();
    const uint64_t parts[3] = {digest, checksum64(name.data(), name.size()),
                               checksum64(c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size())};
    digest = checksum64(parts, sizeof parts);
    for (int64_t d : c.sizes()) digest = checksum64(std::array<uint64_t, 2>{digest, static_cast<uint64_t>(d)}.data(), 16);
  };
  for (const auto& p : model.named_parameters()) add(p.key(), p.value());
  for (const auto& b : model.named_buffers()) add(b.key(), b.value());
  return digest;
}

uint64_t checksum64(const void* data, size_t size) {
  Checksum64 sum(size);
  sum.update(static_cast<const unsigned char*>(data), size);
  return sum.value();
}

void capture_generators(TrainingState& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state.cpu_rng_state = gen.get_state();
  }
  state.cuda_rng_states.clear();
  if (!at::hasCUDA()) return;
  for (size_t i = 0; i < torch::cuda::device_count(); ++i) {
    auto g = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
    std::lock_guard<std::mutex> lock(g.mutex());
    state.cuda_rng_states.push_back(g.get_state());
  }
}

bool restore_generators(const TrainingState& state) {
  if (!state.cpu_rng_state.defined()) return false;
  const size_t cuda = at::hasCUDA() ? torch::cuda::device_count() : 0;
  if (!state.cuda_rng_states.empty() && state.cuda_rng_states.size() != cuda)
    throw std::runtime_error("the checkpoint holds the random state of " + std::to_string(state.cuda_rng_states.size()) +
                             " CUDA devices, but " + std::to_string(cuda) + " are present: resume cannot be exact");
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state.cpu_rng_state);
  }
  for (size_t i = 0; i < state.cuda_rng_states.size(); ++i) {
    auto g = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(state.cuda_rng_states[i]);
  }
  return true;
}

void save_checkpoint(const std::string& path, const Checkpoint& ck, torch::optim::Optimizer* optimizer) {
  std::vector<std::pair<std::string, std::string>> parts;
  parts.emplace_back("config", to_yaml(ck.config));
  parts.emplace_back("src_spm", ck.src_vocab.bytes());
  parts.emplace_back("tgt_spm", ck.tgt_vocab.bytes());
  torch::serialize::OutputArchive state, model;
  write_state(state, ck.state);
  parts.emplace_back("state", archive_bytes(state));
  ck.model->save(model);
  parts.emplace_back("model", archive_bytes(model));
  if (ck.ema) {
    torch::serialize::OutputArchive ema;
    ck.ema->save(ema);
    parts.emplace_back("ema", archive_bytes(ema));
  }
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    parts.emplace_back("optimizer", archive_bytes(opt));
  }
  // Serialised in memory first: no stream destructor can throw on a full disk, and
  // write_file_atomic reports any write error naming the file and keeps the previous one.
  write_file_atomic(path, encode_container(parts));
}

Checkpoint load_checkpoint(const std::string& path, c10::Device device) {
  // Every checksum verified before any part is parsed; the optimizer state is not kept.
  StoredCheckpoint stored(path, device, [](const std::string& part) { return part != "optimizer"; });
  Checkpoint ck;
  try {
    ck.config = parse_config(stored.bytes("config"), path + " (stored config)");
    ck.src_vocab = stored.vocab("src_spm");
    ck.tgt_vocab = stored.vocab("tgt_spm");
    ck.state = stored.state();
    ck.model = models::make_model(ck.config.model, ck.src_vocab.size(), ck.tgt_vocab.size());
    torch::serialize::InputArchive model_archive;
    if (!stored.archive("model", model_archive)) throw std::runtime_error("no model weights");
    ck.model->load(model_archive);
    ck.model->to(device);
    torch::serialize::InputArchive ema_archive;
    if (stored.archive("ema", ema_archive)) {
      ck.ema = models::make_model(ck.config.model, ck.src_vocab.size(), ck.tgt_vocab.size());
      ck.ema->load(ema_archive);
      ck.ema->to(device);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": invalid nmt checkpoint: " + message_of(e).substr(0, 300));
  }
  return ck;
}

void load_optimizer_state(const std::string& path, torch::optim::Optimizer& optimizer, c10::Device device) {
  StoredCheckpoint stored(path, device, [](const std::string& part) { return part == "optimizer"; });
  torch::serialize::InputArchive opt_archive;
  bool present = false;
  try {
    present = stored.archive("optimizer", opt_archive);  // its errors name the part
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": invalid nmt checkpoint: " + message_of(e).substr(0, 300));
  }
  if (!present) throw std::runtime_error(path + ": checkpoint holds no optimizer state");
  try {
    optimizer.load(opt_archive);
  } catch (const std::exception& e) {  // LibTorch's errors (c10::Error, torch::jit::ErrorReport) too
    throw std::runtime_error(path + ": invalid nmt checkpoint: part 'optimizer': " + message_of(e).substr(0, 300));
  }
}

std::string find_checkpoint(const std::string& model_dir) {
  for (const char* name : {"best.pt", "last.pt"}) {
    auto p = std::filesystem::path(model_dir) / name;
    if (std::filesystem::is_regular_file(p)) return p.string();
  }
  throw std::runtime_error(model_dir + ": no checkpoint (best.pt or last.pt) in this model directory");
}

}  // namespace nmt::io
