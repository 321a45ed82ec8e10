// GGUF v2/v3 reader and v3 writer. Every count, length, size and offset is checked
// against the bytes left in the file before it is used (no allocation from an
// unchecked count), and every error names the file, the field and the offset.
#include "format/gguf.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/byte_reader.h"
#include "format/tensor_types.h"

namespace edgeq {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDepth = 4;              // arrays of arrays

// Smallest encoded size of one element of a type (used to bound counts).
uint64_t MinEncodedSize(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    case GgufType::kString: return 8;   // length prefix
    case GgufType::kArray: return 12;   // type + count
  }
  return 1;
}

bool ValidType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& what) : r_(data, size, what), what_(what) {}

  Status ReadString(std::string* out, const char* field) {
    uint64_t len = 0;
    RETURN_IF_ERROR(r_.Read(&len, field));
    if (len > r_.remaining()) {
      return DataLoss(what_ + ": " + field + " length " + std::to_string(len) + " at offset " +
                      std::to_string(r_.offset() - 8) + " exceeds the " + std::to_string(r_.remaining()) +
                      " bytes left in the file");
    }
    return r_.ReadString(static_cast<size_t>(len), out, field);
  }

  Status ReadValue(GgufType type, GgufValue* v, int depth, const std::string& key) {
    v->type = type;
    switch (type) {
      case GgufType::kUint8: { uint8_t x{}; RETURN_IF_ERROR(r_.Read(&x, "uint8 value")); v->u = x; return Status::Ok(); }
      case GgufType::kInt8: { int8_t x{}; RETURN_IF_ERROR(r_.Read(&x, "int8 value")); v->i = x; return Status::Ok(); }
      case GgufType::kUint16: { uint16_t x{}; RETURN_IF_ERROR(r_.Read(&x, "uint16 value")); v->u = x; return Status::Ok(); }
      case GgufType::kInt16: { int16_t x{}; RETURN_IF_ERROR(r_.Read(&x, "int16 value")); v->i = x; return Status::Ok(); }
      case GgufType::kUint32: { uint32_t x{}; RETURN_IF_ERROR(r_.Read(&x, "uint32 value")); v->u = x; return Status::Ok(); }
      case GgufType::kInt32: { int32_t x{}; RETURN_IF_ERROR(r_.Read(&x, "int32 value")); v->i = x; return Status::Ok(); }
      case GgufType::kUint64: { uint64_t x{}; RETURN_IF_ERROR(r_.Read(&x, "uint64 value")); v->u = x; return Status::Ok(); }
      case GgufType::kInt64: { int64_t x{}; RETURN_IF_ERROR(r_.Read(&x, "int64 value")); v->i = x; return Status::Ok(); }
      case GgufType::kFloat32: { float x{}; RETURN_IF_ERROR(r_.Read(&x, "float32 value")); v->f = x; return Status::Ok(); }
      case GgufType::kFloat64: { double x{}; RETURN_IF_ERROR(r_.Read(&x, "float64 value")); v->f = x; return Status::Ok(); }
      case GgufType::kBool: {
        uint8_t x = 0;
        RETURN_IF_ERROR(r_.Read(&x, "bool value"));
        if (x > 1) return DataLoss(what_ + ": metadata '" + key + "': bool value " + std::to_string(x) + " at offset " + std::to_string(r_.offset() - 1));
        v->u = x;
        return Status::Ok();
      }
      case GgufType::kString: return ReadString(&v->str, "string value");
      case GgufType::kArray: {
        if (depth >= kMaxDepth) return DataLoss(what_ + ": metadata '" + key + "': arrays nested too deeply");
        uint32_t et = 0;
        uint64_t n = 0;
        RETURN_IF_ERROR(r_.Read(&et, "array element type"));
        if (!ValidType(et)) return DataLoss(what_ + ": metadata '" + key + "': unknown array element type " + std::to_string(et) + " at offset " + std::to_string(r_.offset() - 4));
        RETURN_IF_ERROR(r_.Read(&n, "array length"));
        const GgufType etype = static_cast<GgufType>(et);
        uint64_t min_bytes = 0;
        if (!CheckedMul(n, MinEncodedSize(etype), &min_bytes) || min_bytes > r_.remaining()) {
          return DataLoss(what_ + ": metadata '" + key + "': array length " + std::to_string(n) + " at offset " +
                          std::to_string(r_.offset() - 8) + " cannot fit in the " + std::to_string(r_.remaining()) + " bytes left");
        }
        v->elem_type = etype;
        v->arr.resize(static_cast<size_t>(n));
        for (uint64_t i = 0; i < n; ++i) RETURN_IF_ERROR(ReadValue(etype, &v->arr[i], depth + 1, key));
        return Status::Ok();
      }
    }
    return DataLoss(what_ + ": bad value type");
  }

  ByteReader r_;
  std::string what_;
};

}  // namespace

const char* GgufTypeName(GgufType t) {
  static const char* kNames[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                 "bool", "string", "array", "uint64", "int64", "float64"};
  auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "unknown";
}

bool GgufValue::AsInt(int64_t* out) const {
  switch (type) {
    case GgufType::kUint8: case GgufType::kUint16: case GgufType::kUint32: case GgufType::kBool:
      *out = static_cast<int64_t>(u);
      return true;
    case GgufType::kUint64:
      if (u > static_cast<uint64_t>(INT64_MAX)) return false;
      *out = static_cast<int64_t>(u);
      return true;
    case GgufType::kInt8: case GgufType::kInt16: case GgufType::kInt32: case GgufType::kInt64:
      *out = i;
      return true;
    default:
      return false;
  }
}

bool GgufValue::AsFloat(double* out) const {
  if (type == GgufType::kFloat32 || type == GgufType::kFloat64) {
    *out = f;
    return true;
  }
  int64_t x;
  if (AsInt(&x)) {
    *out = static_cast<double>(x);
    return true;
  }
  return false;
}

uint64_t GgufTensorInfo::n_elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;  // validated at parse: no overflow
  return n;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
  const uint8_t* data = f.data();
  const size_t size = f.size();
  auto g = Parse(data, size, path);
  if (!g.ok()) return g.status();
  (*g)->file_ = std::move(f);
  return g;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Parse(const uint8_t* data, size_t size, const std::string& what) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->base_ = data;
  g->size_ = size;
  g->what_ = what;
  Parser p(data, size, what);
  ByteReader& r = p.r_;
  uint32_t magic = 0;
  RETURN_IF_ERROR(r.Read(&magic, "magic"));
  if (magic != kMagic) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "0x%08x", magic);
    return DataLoss(what + ": not a GGUF file (magic " + buf + ", expected \"GGUF\")");
  }
  RETURN_IF_ERROR(r.Read(&g->version_, "version"));
  if (g->version_ != 2 && g->version_ != 3) {
    return Unimplemented(what + ": GGUF version " + std::to_string(g->version_) + " is not supported (2 and 3 are)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  RETURN_IF_ERROR(r.Read(&n_tensors, "tensor count"));
  RETURN_IF_ERROR(r.Read(&n_kv, "metadata count"));
  // Each kv needs >= 8 (key length) + 4 (type) + 1 bytes; each tensor info >= 8+4+8+4+8.
  if (n_kv > r.remaining() / 13) {
    return DataLoss(what + ": metadata count " + std::to_string(n_kv) + " cannot fit in a file of " + std::to_string(size) + " bytes");
  }
  if (n_tensors > r.remaining() / 32) {
    return DataLoss(what + ": tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " + std::to_string(size) + " bytes");
  }
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    RETURN_IF_ERROR(p.ReadString(&key, "metadata key"));
    uint32_t t = 0;
    const size_t type_off = r.offset();
    RETURN_IF_ERROR(r.Read(&t, "metadata value type"));
    if (!ValidType(t)) {
      return DataLoss(what + ": metadata '" + key + "' has unknown value type " + std::to_string(t) + " at offset " + std::to_string(type_off));
    }
    GgufValue v;
    RETURN_IF_ERROR(p.ReadValue(static_cast<GgufType>(t), &v, 0, key));
    if (!g->kv_.emplace(key, std::move(v)).second) return DataLoss(what + ": duplicate metadata key '" + key + "'");
  }
  if (const GgufValue* a = g->Find("general.alignment")) {
    int64_t al = 0;
    if (!a->AsInt(&al) || al <= 0 || al > (1 << 20) || (al & (al - 1)) != 0) {
      return DataLoss(what + ": general.alignment must be a power of two up to 1 MiB");
    }
    g->alignment_ = static_cast<uint64_t>(al);
  }
  g->tensors_.resize(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo& t = g->tensors_[i];
    const size_t info_off = r.offset();
    RETURN_IF_ERROR(p.ReadString(&t.name, "tensor name"));
    auto where = [&] { return what + ": tensor '" + t.name + "' (info at offset " + std::to_string(info_off) + ")"; };
    uint32_t n_dims = 0;
    RETURN_IF_ERROR(r.Read(&n_dims, "tensor dimension count"));
    if (n_dims == 0 || n_dims > 4) return DataLoss(where() + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    t.dims.resize(n_dims);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      RETURN_IF_ERROR(r.Read(&t.dims[d], "tensor dimension"));
      if (t.dims[d] == 0 || !CheckedMul(n_el, t.dims[d], &n_el) || n_el > (uint64_t{1} << 48)) {
        return DataLoss(where() + " has an absurd shape (dimension " + std::to_string(d) + " = " + std::to_string(t.dims[d]) + ")");
      }
    }
    uint32_t type_id = 0;
    RETURN_IF_ERROR(r.Read(&type_id, "tensor type"));
    if (type_id == 107) {
      return DataLoss(where() + " has type 107, edgeq's retired 4-bit code book 'fp4e0m4-g32' (not E0M4): "
                      "quantize the model again (docs/formats.md)");
    }
    if (!IsKnownType(type_id)) return DataLoss(where() + " has unknown type " + std::to_string(type_id));
    t.type = static_cast<GgmlType>(type_id);
    RETURN_IF_ERROR(r.Read(&t.offset, "tensor data offset"));
    if (t.offset % g->alignment_ != 0) {
      return DataLoss(where() + " data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(g->alignment_));
    }
    auto row = RowBytes(t.type, static_cast<int64_t>(t.dims[0]));
    if (!row.ok()) return DataLoss(where() + ": " + row.status().message());
    uint64_t nbytes = *row;
    for (uint32_t d = 1; d < n_dims; ++d) {
      if (!CheckedMul(nbytes, t.dims[d], &nbytes)) return DataLoss(where() + " byte size overflows");
    }
    t.nbytes = nbytes;
    if (!g->tensor_index_.emplace(t.name, i).second) return DataLoss(what + ": duplicate tensor name '" + t.name + "'");
  }
  // Data section starts at the next multiple of the alignment.
  const uint64_t data_start = (r.offset() + g->alignment_ - 1) / g->alignment_ * g->alignment_;
  for (GgufTensorInfo& t : g->tensors_) {
    uint64_t begin = 0, end = 0;
    if (!CheckedAdd(data_start, t.offset, &begin) || !CheckedAdd(begin, t.nbytes, &end) || end > size) {
      return DataLoss(what + ": tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
                      ") past the end of the file (data section at " + std::to_string(data_start) + ", file size " + std::to_string(size) + ")");
    }
    t.data = data + begin;
  }
  // Tensor data ranges may not overlap: a type or shape that disagrees with the layout
  // the writer used (e.g. a relabelled block format) shows up here.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : g->tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo* a = by_offset[i - 1];
    if (a->offset + a->nbytes > by_offset[i]->offset) {
      return DataLoss(what + ": tensor '" + a->name + "' (" + std::to_string(a->nbytes) + " bytes at data offset " +
                      std::to_string(a->offset) + ") overlaps tensor '" + by_offset[i]->name +
                      "': its type or shape does not match the data");
    }
  }
  return g;
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Status WrongType(const std::string& what, const std::string& key, const char* want, GgufType got) {
  return DataLoss(what + ": metadata '" + key + "' has type " + GgufTypeName(got) + ", expected " + want);
}
}  // namespace

Result<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(what_ + ": missing metadata '" + key + "'");
  if (v->type != GgufType::kString) return WrongType(what_, key, "string", v->type);
  return v->str;
}

Result<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(what_ + ": missing metadata '" + key + "'");
  int64_t x;
  if (!v->AsInt(&x)) return WrongType(what_, key, "integer", v->type);
  return x;
}

Result<double> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(what_ + ": missing metadata '" + key + "'");
  double x;
  if (!v->AsFloat(&x)) return WrongType(what_, key, "number", v->type);
  return x;
}

Result<int64_t> GgufFile::GetIntOr(const std::string& key, int64_t def) const {
  return Find(key) == nullptr ? Result<int64_t>(def) : GetInt(key);
}

Result<double> GgufFile::GetFloatOr(const std::string& key, double def) const {
  return Find(key) == nullptr ? Result<double>(def) : GetFloat(key);
}

Result<bool> GgufFile::GetBoolOr(const std::string& key, bool def) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return def;
  if (v->type != GgufType::kBool) return WrongType(what_, key, "bool", v->type);
  return v->u != 0;
}

Result<std::vector<std::string>> GgufFile::GetStringArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(what_ + ": missing metadata '" + key + "'");
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) return WrongType(what_, key, "array of string", v->type);
  std::vector<std::string> out;
  out.reserve(v->arr.size());
  for (const auto& e : v->arr) out.push_back(e.str);
  return out;
}

Result<std::vector<double>> GgufFile::GetFloatArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(what_ + ": missing metadata '" + key + "'");
  if (v->type != GgufType::kArray) return WrongType(what_, key, "array", v->type);
  std::vector<double> out(v->arr.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!v->arr[i].AsFloat(&out[i])) return WrongType(what_, key, "array of numbers", v->elem_type);
  }
  return out;
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFound(what_ + ": missing metadata '" + key + "'");
  if (v->type != GgufType::kArray) return WrongType(what_, key, "array", v->type);
  std::vector<int64_t> out(v->arr.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!v->arr[i].AsInt(&out[i])) return WrongType(what_, key, "array of integers", v->elem_type);
  }
  return out;
}

// ---- writer -----------------------------------------------------------------------

void GgufWriter::SetValue(const std::string& key, const GgufValue& v) {
  for (auto& kv : kvs_) {
    if (kv.key == key) {
      kv.value = v;
      return;
    }
  }
  kvs_.push_back({key, v});
}

void GgufWriter::SetString(const std::string& key, const std::string& s) {
  GgufValue v;
  v.type = GgufType::kString;
  v.str = s;
  SetValue(key, v);
}
void GgufWriter::SetU32(const std::string& key, uint32_t x) {
  GgufValue v;
  v.type = GgufType::kUint32;
  v.u = x;
  SetValue(key, v);
}
void GgufWriter::SetI32(const std::string& key, int32_t x) {
  GgufValue v;
  v.type = GgufType::kInt32;
  v.i = x;
  SetValue(key, v);
}
void GgufWriter::SetF32(const std::string& key, float x) {
  GgufValue v;
  v.type = GgufType::kFloat32;
  v.f = x;
  SetValue(key, v);
}
void GgufWriter::SetBool(const std::string& key, bool x) {
  GgufValue v;
  v.type = GgufType::kBool;
  v.u = x ? 1 : 0;
  SetValue(key, v);
}
void GgufWriter::SetStringArray(const std::string& key, const std::vector<std::string>& a) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kString;
  v.arr.resize(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    v.arr[i].type = GgufType::kString;
    v.arr[i].str = a[i];
  }
  SetValue(key, v);
}
void GgufWriter::SetF32Array(const std::string& key, const std::vector<float>& a) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kFloat32;
  v.arr.resize(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    v.arr[i].type = GgufType::kFloat32;
    v.arr[i].f = a[i];
  }
  SetValue(key, v);
}
void GgufWriter::SetI32Array(const std::string& key, const std::vector<int32_t>& a) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = GgufType::kInt32;
  v.arr.resize(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    v.arr[i].type = GgufType::kInt32;
    v.arr[i].i = a[i];
  }
  SetValue(key, v);
}

Status GgufWriter::AddTensor(const std::string& name, GgmlType type, const std::vector<uint64_t>& dims,
                             const void* data, size_t nbytes) {
  if (dims.empty() || dims.size() > 4) return InvalidArgument("tensor '" + name + "': 1 to 4 dimensions");
  ASSIGN_OR_RETURN(uint64_t expect, RowBytes(type, static_cast<int64_t>(dims[0])));
  for (size_t d = 1; d < dims.size(); ++d) expect *= dims[d];
  if (expect != nbytes) {
    return InvalidArgument("tensor '" + name + "': " + std::to_string(nbytes) + " bytes given, shape needs " + std::to_string(expect));
  }
  for (const auto& t : tensors_) {
    if (t.name == name) return InvalidArgument("duplicate tensor '" + name + "'");
  }
  tensors_.push_back({name, type, dims, data, nbytes});
  return Status::Ok();
}

namespace {

class Out {
 public:
  explicit Out(std::ofstream& f) : f_(f) {}
  template <typename T>
  void Put(const T& x) { f_.write(reinterpret_cast<const char*>(&x), sizeof x); pos_ += sizeof x; }
  void PutStr(const std::string& s) { Put<uint64_t>(s.size()); f_.write(s.data(), s.size()); pos_ += s.size(); }
  void PutBytes(const void* p, size_t n) { f_.write(static_cast<const char*>(p), n); pos_ += n; }
  void Pad(uint64_t align) {
    static const char zeros[64] = {};
    while (pos_ % align != 0) {
      size_t n = std::min<uint64_t>(align - pos_ % align, sizeof zeros);
      PutBytes(zeros, n);
    }
  }
  void PutValue(const GgufValue& v) {
    switch (v.type) {
      case GgufType::kUint8: Put<uint8_t>(v.u); break;
      case GgufType::kInt8: Put<int8_t>(v.i); break;
      case GgufType::kUint16: Put<uint16_t>(v.u); break;
      case GgufType::kInt16: Put<int16_t>(v.i); break;
      case GgufType::kUint32: Put<uint32_t>(v.u); break;
      case GgufType::kInt32: Put<int32_t>(v.i); break;
      case GgufType::kUint64: Put<uint64_t>(v.u); break;
      case GgufType::kInt64: Put<int64_t>(v.i); break;
      case GgufType::kFloat32: Put<float>(static_cast<float>(v.f)); break;
      case GgufType::kFloat64: Put<double>(v.f); break;
      case GgufType::kBool: Put<uint8_t>(v.u ? 1 : 0); break;
      case GgufType::kString: PutStr(v.str); break;
      case GgufType::kArray:
        Put<uint32_t>(static_cast<uint32_t>(v.elem_type));
        Put<uint64_t>(v.arr.size());
        for (const auto& e : v.arr) PutValue(e);
        break;
    }
  }
  uint64_t pos() const { return pos_; }

 private:
  std::ofstream& f_;
  uint64_t pos_ = 0;
};

}  // namespace

Status GgufWriter::Write(const std::string& path) const {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError(path + ": cannot open for writing");
  Out o(f);
  o.Put<uint32_t>(kMagic);
  o.Put<uint32_t>(3);
  o.Put<uint64_t>(tensors_.size());
  uint64_t n_kv = 1;  // general.alignment, always written first
  for (const auto& kv : kvs_) n_kv += kv.key != "general.alignment";
  o.Put<uint64_t>(n_kv);
  GgufValue al;
  al.type = GgufType::kUint32;
  al.u = alignment_;
  o.PutStr("general.alignment");
  o.Put<uint32_t>(static_cast<uint32_t>(al.type));
  o.PutValue(al);
  for (const auto& kv : kvs_) {
    if (kv.key == "general.alignment") continue;
    o.PutStr(kv.key);
    o.Put<uint32_t>(static_cast<uint32_t>(kv.value.type));
    o.PutValue(kv.value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    o.PutStr(t.name);
    o.Put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) o.Put<uint64_t>(d);
    o.Put<uint32_t>(static_cast<uint32_t>(t.type));
    o.Put<uint64_t>(offset);
    offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  o.Pad(alignment_);
  for (const auto& t : tensors_) {
    o.PutBytes(t.data, t.nbytes);
    o.Pad(alignment_);
  }
  f.flush();
  if (!f) return IoError(path + ": write failed (disk full?)");
  return Status::Ok();
}

}  // namespace edgeq
