// GGUF v2/v3 reader and writer.
//
// The reader maps the file, parses header, metadata (every value type, nested
// arrays) and the tensor table, and validates every count, size and offset against
// the file length before anything touches tensor data. Tensor data pointers point
// into the map (no copy).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "format/ggml_types.h"

namespace edgeq {

enum class GgufType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* GgufTypeName(GgufType t);

// One metadata value. Scalars live in the union-like fields; arrays hold their
// element type and elements (arrays of arrays are allowed by the spec).
struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u = 0;   // all unsigned ints and bool
  int64_t i = 0;    // all signed ints
  double f = 0;     // float32 / float64
  std::string str;  // kString
  GgufType elem_type = GgufType::kUint8;  // kArray
  std::vector<GgufValue> arr;             // kArray

  // Numeric accessors that convert between integer widths; false if not numeric.
  bool AsInt(int64_t* out) const;
  bool AsFloat(double* out) const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] (fastest, row length) first, as in GGUF
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;  // validated: fits in the file
  const uint8_t* data = nullptr;  // into the map
  uint64_t n_elements() const;
};

class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses an in-memory image (used by fuzzers and tests); `data` must outlive the object.
  static Result<std::unique_ptr<GgufFile>> Parse(const uint8_t* data, size_t size,
                                                 const std::string& what);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const std::string& path() const { return what_; }
  // See MappedFile::ReleasePages (no effect on a parsed in-memory image).
  void ReleasePages(const void* p, size_t n) const { file_.ReleasePages(p, n); }

  const GgufValue* Find(const std::string& key) const;
  const GgufTensorInfo* FindTensor(const std::string& name) const;

  // Typed getters. A key of the wrong type is an error naming the key and both types.
  // `Get*Or` return the default when the key is absent (but still error on wrong type).
  Result<std::string> GetString(const std::string& key) const;
  Result<int64_t> GetInt(const std::string& key) const;
  Result<double> GetFloat(const std::string& key) const;
  Result<int64_t> GetIntOr(const std::string& key, int64_t def) const;
  Result<double> GetFloatOr(const std::string& key, double def) const;
  Result<bool> GetBoolOr(const std::string& key, bool def) const;
  Result<std::vector<std::string>> GetStringArray(const std::string& key) const;
  Result<std::vector<double>> GetFloatArray(const std::string& key) const;
  Result<std::vector<int64_t>> GetIntArray(const std::string& key) const;

 private:
  MappedFile file_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string what_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Writes a GGUF v3 file: metadata in insertion order, then tensors aligned.
class GgufWriter {
 public:
  void SetString(const std::string& key, const std::string& v);
  void SetU32(const std::string& key, uint32_t v);
  void SetI32(const std::string& key, int32_t v);
  void SetF32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetF32Array(const std::string& key, const std::vector<float>& v);
  void SetI32Array(const std::string& key, const std::vector<int32_t>& v);
  // Copies any metadata value (used to carry metadata over on convert/quantize).
  void SetValue(const std::string& key, const GgufValue& v);

  // `data` must hold exactly GgmlRowBytes(type, dims[0]) * prod(dims[1..]) bytes;
  // it is copied when Write() runs, so it must stay valid until then.
  Status AddTensor(const std::string& name, GgmlType type, const std::vector<uint64_t>& dims,
                   const void* data, size_t nbytes);

  Status Write(const std::string& path) const;

 private:
  struct Kv {
    std::string key;
    GgufValue value;
  };
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> dims;
    const void* data;
    size_t nbytes;
  };
  std::vector<Kv> kvs_;
  std::vector<Tensor> tensors_;
  uint64_t alignment_ = 32;
};

}  // namespace edgeq
