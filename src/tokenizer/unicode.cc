// UTF-8 helpers, the GPT-2 byte-level alphabet and NFC normalization.
#include <memory>

#include "tokenizer/tokenizer_impl.h"

#if defined(EDGEQ_HAVE_ICU)
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#endif

namespace edgeq::tok_internal {

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t NextCodepoint(std::string_view s, size_t* pos) {
  const uint8_t c = static_cast<uint8_t>(s[*pos]);
  const size_t len = Utf8Len(c);
  if (len == 1) {
    ++*pos;
    return c < 0x80 ? c : 0xFFFD;
  }
  if (*pos + len > s.size()) {
    ++*pos;
    return 0xFFFD;
  }
  uint32_t cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const uint8_t cc = static_cast<uint8_t>(s[*pos + k]);
    if ((cc & 0xC0) != 0x80) {
      ++*pos;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid too.
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++*pos;
    return 0xFFFD;
  }
  *pos += len;
  return cp;
}

bool IsValidUtf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t before = pos;
    const uint32_t cp = NextCodepoint(s, &pos);
    // A real U+FFFD is 3 bytes; a replacement for a bad byte advances by one.
    if (cp == 0xFFFD && pos - before != 3) return false;
  }
  return true;
}

size_t IncompleteUtf8Tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    const uint8_t c = static_cast<uint8_t>(s[n - k]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (c < 0xC0) return 0;            // ASCII
    const size_t want = Utf8Len(c);
    return want > k ? k : 0;
  }
  return 0;
}

ByteLevelMap::ByteLevelMap() {
  // Bytes that are printable Latin-1 stand for themselves; the other 68 get the code
  // points U+0100.. in byte order (GPT-2's bytes_to_unicode()).
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
    AppendUtf8(cp, &byte_to_utf8[b]);
    cp_to_byte[cp] = static_cast<uint8_t>(b);
  }
}

const ByteLevelMap& GetByteLevelMap() {
  static const ByteLevelMap kMap;
  return kMap;
}

#if defined(EDGEQ_HAVE_ICU)
bool NfcAvailable() { return true; }

bool NormalizeNfc(std::string_view in, std::string* out) {
  // Every code point below U+0300 is NFC-stable (lead bytes below 0xCC): nothing to do.
  bool all_low = true;
  for (char ch : in) {
    if (static_cast<uint8_t>(ch) >= 0xCC) {
      all_low = false;
      break;
    }
  }
  if (all_low || in.size() > (1u << 30) || !IsValidUtf8(in)) return false;
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status) || nfc == nullptr) return false;
  const icu::StringPiece sp(in.data(), static_cast<int32_t>(in.size()));
  if (nfc->isNormalizedUTF8(sp, status) && U_SUCCESS(status)) return false;
  status = U_ZERO_ERROR;
  std::string result;
  icu::StringByteSink<std::string> sink(&result);
  nfc->normalizeUTF8(0, sp, sink, nullptr, status);
  if (U_FAILURE(status)) return false;
  *out = std::move(result);
  return true;
}
#else
bool NfcAvailable() { return false; }

// Built without ICU: the text is used as is. For text already in NFC (nearly all text,
// and all text below U+0300) that is exact; decomposed input may tokenize differently
// from Hugging Face's NFC-normalizing tokenizer.
bool NormalizeNfc(std::string_view, std::string*) { return false; }
#endif

}  // namespace edgeq::tok_internal
