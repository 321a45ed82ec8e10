// SentencePiece-style tokenizer (GGUF "llama", llama2.c tokenizer.bin).
//
// Encoding is SentencePiece's BPE as llama.cpp and llama2.c run it from the vocabulary
// alone: spaces become U+2581 ("▁"), a dummy "▁" is prepended, the text is split into
// UTF-8 characters, and the adjacent pair whose concatenation is the highest-scoring
// vocabulary entry is merged until no pair is in the vocabulary (ties: leftmost first).
// Characters that are not in the vocabulary come out as byte tokens <0xXX>.
#include <cstdio>
#include <queue>

#include "tokenizer/tokenizer_impl.h"

namespace edgeq::tok_internal {
namespace {

constexpr std::string_view kSpaceMark = "\xe2\x96\x81";  // U+2581

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(TokenizerData data) : VocabTokenizer(std::move(data)) {}

  Status Init() {
    RETURN_IF_ERROR(InitCommon());
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      byte_ids_[b] = Find(name);
    }
    return Status::Ok();
  }

  std::string TokenToBytes(int32_t id, bool special) const override {
    if (id < 0 || id >= vocab_size()) return "";
    const std::string& piece = data_.tokens[id];
    switch (Type(id)) {
      case TokenType::kByte: {
        unsigned v = 0;
        char tail = 0;
        if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%2X%c", &v, &tail) == 2 && tail == '>') {
          return std::string(1, static_cast<char>(v));
        }
        return piece;
      }
      case TokenType::kControl:
      case TokenType::kUnused:
        return special ? piece : "";
      case TokenType::kUnknown:
        return special ? piece : "\xe2\x96\x85";  // a visible block, as llama.cpp prints <unk>
      case TokenType::kUserDefined:
        return piece;
      default:
        break;
    }
    std::string out;
    out.reserve(piece.size());
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
        out.push_back(' ');
        i += kSpaceMark.size();
      } else {
        out.push_back(piece[i++]);
      }
    }
    return out;
  }

 protected:
  void EncodeText(std::string_view text, bool after_special, std::vector<int32_t>* out) const override;

 private:
  float Score(int32_t id) const { return data_.scores.empty() ? 0.0f : data_.scores[id]; }

  std::array<int32_t, 256> byte_ids_{};
};

// A run of the text being merged: [start, start+len) of the escaped string, in a
// doubly linked list; len 0 marks a symbol merged into its left neighbour.
struct Symbol {
  uint32_t start;
  uint32_t len;
  int32_t prev;
  int32_t next;
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // bytes of the merged text: detects entries made stale by other merges
};

struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

void SpmTokenizer::EncodeText(std::string_view text, bool after_special, std::vector<int32_t>* out) const {
  std::string s;
  s.reserve(text.size() + text.size() / 2 + kSpaceMark.size());
  if (data_.add_space_prefix && after_special) s += kSpaceMark;
  for (char c : text) {
    if (c == ' ') {
      s += kSpaceMark;
    } else {
      s.push_back(c);
    }
  }
  if (s.empty() || s.size() > UINT32_MAX / 2) return;

  std::vector<Symbol> syms;
  syms.reserve(s.size());
  for (size_t off = 0; off < s.size();) {
    const size_t len = std::min(Utf8Len(static_cast<uint8_t>(s[off])), s.size() - off);
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), idx - 1, -1});
    if (idx > 0) syms[idx - 1].next = idx;
    off += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t size = syms[left].len + syms[right].len;
    const int32_t id = Find(std::string_view(s.data() + syms[left].start, size));
    if (id < 0) return;
    queue.push({Score(id), left, right, size});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = syms[b.left];
    Symbol& right = syms[b.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != b.size) continue;  // stale
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    const std::string_view piece(s.data() + syms[i].start, syms[i].len);
    const int32_t id = Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // Byte fallback: every byte of a character missing from the vocabulary; a
    // vocabulary without byte tokens gives one <unk> for the character instead.
    bool have_bytes = true;
    for (char c : piece) have_bytes = have_bytes && byte_ids_[static_cast<uint8_t>(c)] >= 0;
    if (have_bytes) {
      for (char c : piece) out->push_back(byte_ids_[static_cast<uint8_t>(c)]);
    } else if (data_.unk_id >= 0) {
      out->push_back(data_.unk_id);
    }
  }
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> CreateSpm(TokenizerData data) {
  auto t = std::make_unique<SpmTokenizer>(std::move(data));
  RETURN_IF_ERROR(t->Init());
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace edgeq::tok_internal
