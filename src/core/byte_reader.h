// Bounds-checked little-endian reader over a byte span. Every read checks the
// remaining length first and reports the failing offset, so parsers of untrusted
// files (GGUF, llama2.c checkpoints, tokenizer.bin) can never over-read.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/status.h"

namespace edgeq {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  size_t size() const { return size_; }
  const uint8_t* cursor() const { return data_ + pos_; }

  template <typename T>
  Status Read(T* out, const char* field) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return Truncated(field, sizeof(T));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadBytes(size_t n, const uint8_t** out, const char* field) {
    if (remaining() < n) return Truncated(field, n);
    *out = data_ + pos_;
    pos_ += n;
    return Status::Ok();
  }

  Status ReadString(size_t n, std::string* out, const char* field) {
    const uint8_t* p = nullptr;
    RETURN_IF_ERROR(ReadBytes(n, &p, field));
    out->assign(reinterpret_cast<const char*>(p), n);
    return Status::Ok();
  }

  Status Skip(size_t n, const char* field) {
    if (remaining() < n) return Truncated(field, n);
    pos_ += n;
    return Status::Ok();
  }

  Status Seek(size_t off, const char* field) {
    if (off > size_) return DataLoss(what_ + ": " + field + " offset " + std::to_string(off) +
                                     " is past end of file (size " + std::to_string(size_) + ")");
    pos_ = off;
    return Status::Ok();
  }

  Status Truncated(const char* field, size_t need) const {
    return DataLoss(what_ + ": truncated while reading " + field + " at offset " +
                    std::to_string(pos_) + " (need " + std::to_string(need) + " bytes, " +
                    std::to_string(remaining()) + " left)");
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string what_;
};

// a*b without overflow; false if it would overflow.
inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

}  // namespace edgeq
