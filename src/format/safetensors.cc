#include "format/safetensors.h"

#include <cstring>
#include <fstream>
#include <set>

#include "core/byte_reader.h"
#include "core/fp16.h"
#include "nlohmann/json.hpp"

namespace edgeq {
namespace {

using Json = nlohmann::json;
constexpr uint64_t kMaxHeader = 100ull << 20;

int ElemSize(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

}  // namespace

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
  const uint8_t* data = f.data();
  const size_t size = f.size();
  auto s = Parse(data, size, path);
  if (!s.ok()) return s.status();
  (*s)->file_ = std::move(f);
  return s;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(const uint8_t* data, size_t size, const std::string& what) {
  try {
    return ParseImpl(data, size, what);
  } catch (const nlohmann::json::exception& e) {
    return DataLoss(what + ": malformed header field: " + e.what());
  }
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::ParseImpl(const uint8_t* data, size_t size, const std::string& what) {
  ByteReader r(data, size, what);
  uint64_t n = 0;
  RETURN_IF_ERROR(r.Read(&n, "header length"));
  if (n > r.remaining() || n > kMaxHeader) {
    return DataLoss(what + ": header length " + std::to_string(n) + " exceeds the file (" + std::to_string(size) + " bytes)");
  }
  const char* h = reinterpret_cast<const char*>(data + 8);
  Json j = Json::parse(h, h + n, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return DataLoss(what + ": header is not a JSON object");
  const uint8_t* base = data + 8 + n;
  const uint64_t data_size = size - 8 - n;
  auto out = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = what + ": tensor '" + it.key() + "'";
    const Json& t = it.value();
    if (!t.is_object()) return DataLoss(where + " is not an object");
    SafeTensor st;
    st.name = it.key();
    if (!t.contains("dtype") || !t["dtype"].is_string()) return DataLoss(where + ": missing dtype");
    st.dtype = t["dtype"].get<std::string>();
    const int es = ElemSize(st.dtype);
    if (es == 0) return Unimplemented(where + " has dtype " + st.dtype + " (F32, F16, BF16 are supported)");
    if (!t.contains("shape") || !t["shape"].is_array() || t["shape"].size() > 8) return DataLoss(where + ": bad shape");
    uint64_t count = 1;
    for (const auto& d : t["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) return DataLoss(where + ": shape entries must be non-negative integers");
      const uint64_t v = d.get<uint64_t>();
      if (!CheckedMul(count, v, &count)) return DataLoss(where + ": shape overflows");
      st.shape.push_back(v);
    }
    if (!t.contains("data_offsets") || !t["data_offsets"].is_array() || t["data_offsets"].size() != 2 ||
        !t["data_offsets"][0].is_number_unsigned() || !t["data_offsets"][1].is_number_unsigned()) {
      return DataLoss(where + ": data_offsets must be [begin, end]");
    }
    const uint64_t b = t["data_offsets"][0].get<uint64_t>(), e = t["data_offsets"][1].get<uint64_t>();
    if (e < b || e > data_size) {
      return DataLoss(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] are outside the data section (" +
                      std::to_string(data_size) + " bytes)");
    }
    uint64_t need = 0;
    if (!CheckedMul(count, static_cast<uint64_t>(es), &need) || need != e - b) {
      return DataLoss(where + ": " + std::to_string(e - b) + " bytes do not match shape x " + st.dtype);
    }
    st.data = base + b;
    st.nbytes = e - b;
    out->index_[st.name] = out->tensors_.size();
    out->tensors_.push_back(std::move(st));
  }
  return out;
}

const SafeTensor* SafetensorsFile::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<SafetensorsSet> SafetensorsSet::OpenDir(const std::string& dir) {
  try {
    return OpenDirImpl(dir);
  } catch (const nlohmann::json::exception& e) {
    return DataLoss(dir + "/model.safetensors.index.json: malformed field: " + e.what());
  }
}

Result<SafetensorsSet> SafetensorsSet::OpenDirImpl(const std::string& dir) {
  SafetensorsSet set;
  std::vector<std::string> files;
  auto index_text = ReadFileToString(dir + "/model.safetensors.index.json");
  if (index_text.ok()) {
    Json j = Json::parse(*index_text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      return DataLoss(dir + "/model.safetensors.index.json: no weight_map object");
    }
    std::set<std::string> uniq;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) return DataLoss(dir + "/model.safetensors.index.json: weight_map values must be file names");
      const std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
        return DataLoss(dir + "/model.safetensors.index.json: shard name '" + f + "' is not a plain file name");
      }
      uniq.insert(f);
    }
    files.assign(uniq.begin(), uniq.end());
  } else {
    files.push_back("model.safetensors");
  }
  for (const std::string& f : files) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> sf, SafetensorsFile::Open(dir + "/" + f));
    set.files_.push_back(std::shared_ptr<SafetensorsFile>(std::move(sf)));
    for (const SafeTensor& t : set.files_.back()->tensors()) {
      if (!set.index_.emplace(t.name, &t).second) return DataLoss(dir + ": tensor '" + t.name + "' appears in two shards");
    }
  }
  return set;
}

const SafeTensor* SafetensorsSet::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> v;
  for (const auto& [k, t] : index_) v.push_back(k);
  return v;
}

Status SafeTensorToFloat(const SafeTensor& t, float* dst) {
  const uint64_t n = t.nbytes / std::max(1, ElemSize(t.dtype));
  if (t.dtype == "F32") {
    std::memcpy(dst, t.data, n * 4);
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    for (uint64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      dst[i] = t.dtype == "F16" ? Fp16ToFp32(h) : Bf16ToFp32(h);
    }
  } else {
    return Unimplemented("dtype " + t.dtype);
  }
  return Status::Ok();
}

Status WriteSafetensors(const std::string& path, const std::vector<SafeTensorOut>& tensors) {
  Json h = Json::object();
  uint64_t off = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string hs = h.dump();
  while ((hs.size() + 8) % 8 != 0) hs += ' ';
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return IoError(path + ": cannot open for writing");
  const uint64_t n = hs.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(hs.data(), hs.size());
  for (const auto& t : tensors) f.write(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  if (!f) return IoError(path + ": write failed");
  return Status::Ok();
}

}  // namespace edgeq
