// Read-only memory-mapped file. Weights are never copied: tensors point into the map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace edgeq {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps the whole file read-only. An empty file maps to size()==0, data()==nullptr.
  static Result<MappedFile> Open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the resident pages wholly inside [p, p + n) (a range of this map; others are
  // ignored): they are read from the file again if touched. For data that has been
  // copied elsewhere (weights repacked at load), so it is not resident twice.
  void ReleasePages(const void* p, size_t n) const;

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole (small) text file: config.json, tokenizer.json, prompts.
Result<std::string> ReadFileToString(const std::string& path);

}  // namespace edgeq
