// Internal pieces shared by the tokenizer implementations (not part of the public API).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace edgeq::tok_internal {

// ---- UTF-8 helpers (unicode.cc) -------------------------------------------------------

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII, continuation bytes and
// invalid leads, so that a scan always makes progress on malformed input).
inline size_t Utf8Len(uint8_t lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 1;
}
void AppendUtf8(uint32_t cp, std::string* out);
// Decodes one code point at s[*pos] and advances; invalid sequences give U+FFFD and
// advance by one byte.
uint32_t NextCodepoint(std::string_view s, size_t* pos);
// Number of trailing bytes of `s` that form an incomplete (but so far valid) UTF-8
// sequence: the bytes a streaming decoder must hold back. 0..3.
size_t IncompleteUtf8Tail(std::string_view s);
bool IsValidUtf8(std::string_view s);

// GPT-2 byte-level mapping: every byte is shown as a printable code point
// (printable Latin-1 bytes as themselves, the rest as U+0100 + n in byte order).
struct ByteLevelMap {
  ByteLevelMap();
  std::array<std::string, 256> byte_to_utf8;  // byte -> UTF-8 of its code point
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
};
const ByteLevelMap& GetByteLevelMap();

// Unicode NFC. Returns false (and leaves *out untouched) when normalization is not
// available in this build or the text is not valid UTF-8; callers then use the text as
// is. Text whose code points are all below U+0300 is NFC already (fast path).
bool NormalizeNfc(std::string_view in, std::string* out);
bool NfcAvailable();

// ---- shared vocabulary machinery (tokenizer.cc) ----------------------------------------

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Base of the concrete tokenizers: vocab lookup, special-token partition, Encode driver.
class VocabTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special) const override;
  TokenType Type(int32_t id) const {
    if (data_.token_types.empty() || id < 0 || id >= vocab_size()) return TokenType::kNormal;
    return static_cast<TokenType>(data_.token_types[id]);
  }
  int32_t Find(std::string_view text) const {
    auto it = token_to_id_.find(text);
    return it == token_to_id_.end() ? -1 : it->second;
  }

 protected:
  explicit VocabTokenizer(TokenizerData data) : Tokenizer(std::move(data)) {}
  // Builds token_to_id_, the special-token index and eog_ids_.
  Status InitCommon();
  // Tokenizes one run of plain text (no special tokens in it). `after_special` is true
  // for the first run of the input and for a run right after a special token.
  virtual void EncodeText(std::string_view text, bool after_special,
                          std::vector<int32_t>* out) const = 0;

  TokenMap token_to_id_;
  // Control and user-defined tokens, by first byte, longest first.
  std::array<std::vector<int32_t>, 256> specials_by_byte_;
};

Result<std::unique_ptr<Tokenizer>> CreateSpm(TokenizerData data);
Result<std::unique_ptr<Tokenizer>> CreateBpe(TokenizerData data);

// Known pre-tokenizer regex sets, by tokenizer.ggml.pre name; nullptr if unknown.
const std::vector<std::string>* PreRegexesFor(const std::string& pre);
// The `pre` name whose regex set equals `regexes` (used by the tokenizer.json loader),
// or "" if none does.
std::string PreNameForRegexes(const std::vector<std::string>& regexes);

}  // namespace edgeq::tok_internal
