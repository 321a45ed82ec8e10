// safetensors reader (mmap, validated) and a small writer.
// Layout: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {...}}, then the data section; offsets are relative to it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"

namespace edgeq {

struct SafeTensor {
  std::string name;
  std::string dtype;             // "F32", "F16", "BF16" (others are rejected)
  std::vector<uint64_t> shape;   // row-major, shape[0] slowest (PyTorch order)
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
};

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // `data` must outlive the object.
  static Result<std::unique_ptr<SafetensorsFile>> Parse(const uint8_t* data, size_t size, const std::string& what);
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const SafeTensor* Find(const std::string& name) const;

 private:
  static Result<std::unique_ptr<SafetensorsFile>> ParseImpl(const uint8_t* data, size_t size, const std::string& what);
  MappedFile file_;
  std::vector<SafeTensor> tensors_;
  std::map<std::string, size_t> index_;
};

// A checkpoint directory: model.safetensors, or shards listed in
// model.safetensors.index.json ("weight_map": name -> file).
class SafetensorsSet {
 public:
  static Result<SafetensorsSet> OpenDir(const std::string& dir);
  const SafeTensor* Find(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  static Result<SafetensorsSet> OpenDirImpl(const std::string& dir);
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafeTensor*> index_;
};

// Converts a tensor's elements to fp32 (F32/F16/BF16).
Status SafeTensorToFloat(const SafeTensor& t, float* dst);

struct SafeTensorOut {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
};
Status WriteSafetensors(const std::string& path, const std::vector<SafeTensorOut>& tensors);

}  // namespace edgeq
