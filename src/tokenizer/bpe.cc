// Byte-level BPE (GGUF "gpt2"; Hugging Face tokenizer.json with a ByteLevel
// pre-tokenizer): optional NFC, split the text with the model's pre-tokenizer regexes
// (PCRE2 with Unicode properties), show each byte of a piece as its GPT-2 printable
// character, then apply merges lowest rank first (ties: leftmost first).
// EDGEQ_NO_PCRE2 (the EDGEQ_MINIMAL cross build): byte-level BPE tokenizers are an error.
#if !defined(EDGEQ_NO_PCRE2)
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

#include <queue>

#include "tokenizer/tokenizer_impl.h"

namespace edgeq::tok_internal {
namespace {

// The GPT-2 pattern as Hugging Face's ByteLevel pre-tokenizer runs it.
const char* const kGpt2 = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";
const char* const kLlama3 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kQwen2 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
const char* const kGpt2NoTail = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";

struct PreEntry {
  std::vector<const char*> names;
  std::vector<std::string> regexes;
};

const std::vector<PreEntry>& PreTable() {
  static const std::vector<PreEntry> kTable = {
      {{"gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "trillion"}, {kGpt2}},
      // llama.cpp's "default" list, for GGUFs that name no pre-tokenizer.
      {{"default", ""}, {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2NoTail, R"re(\p{N}+)re", R"re([0-9][0-9][0-9])re"}},
      {{"llama-bpe", "llama3", "llama4", "dbrx", "smaug-bpe", "chatglm-bpe", "falcon3"}, {kLlama3}},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan", "grok-2"}, {kQwen2}},
      {{"starcoder", "smollm", "refact", "command-r", "codeshell", "exaone", "minerva-7b"},
       {R"re(\p{N})re", kGpt2NoTail}},
      {{"falcon"}, {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2NoTail, R"re([0-9][0-9][0-9])re"}},
      {{"deepseek-coder"},
       {"[\r\n]", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", "[一-龥ࠀ-一가-퟿]+", R"re(\p{N})re"}},
      {{"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-"
        "ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-"
        "ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"}},
      {{"deepseek-v3"},
       {R"re(\p{N}{1,3})re", "[一-龥぀-ゟ゠-ヿ]+",
        R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      {{"tekken", "pixtral"},
       {R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      {{"gpt-4o", "minimax-m2"},
       {R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      {{"seed-coder"},
       {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re"}},
      {{"bloom", "poro-chat", "gpt3-finnish"}, {R"re( ?[^(\s|.,!?…。，、।۔،)]+)re"}},
      {{"viking"}, {R"re( ?[^(\s|.,!?…。，、।۔،)]+)re", R"re(\p{N})re"}},
  };
  return kTable;
}

#if !defined(EDGEQ_NO_PCRE2)
struct CodeDeleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
using CodePtr = std::unique_ptr<pcre2_code, CodeDeleter>;
using MatchDataPtr = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;
#else
using CodePtr = std::unique_ptr<int>;
#endif

class BpeTokenizer final : public VocabTokenizer {
 public:
  explicit BpeTokenizer(TokenizerData data) : VocabTokenizer(std::move(data)) {}

  Status Init();

  std::string TokenToBytes(int32_t id, bool special) const override {
    if (id < 0 || id >= vocab_size()) return "";
    const std::string& piece = data_.tokens[id];
    switch (Type(id)) {
      case TokenType::kControl:
      case TokenType::kUnused:
      case TokenType::kUnknown:
        return special ? piece : "";
      case TokenType::kUserDefined:
        return piece;  // added tokens are stored as plain text, not byte-mapped
      default:
        break;
    }
    const ByteLevelMap& map = GetByteLevelMap();
    std::string out;
    out.reserve(piece.size());
    for (size_t pos = 0; pos < piece.size();) {
      const size_t start = pos;
      const uint32_t cp = NextCodepoint(piece, &pos);
      auto it = map.cp_to_byte.find(cp);
      if (it != map.cp_to_byte.end()) {
        out.push_back(static_cast<char>(it->second));
      } else {
        out.append(piece, start, pos - start);  // not a byte-level character: keep as is
      }
    }
    return out;
  }

 protected:
  void EncodeText(std::string_view text, bool after_special, std::vector<int32_t>* out) const override;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // Splits `text` into pre-tokens: (offset, length) pairs covering all of it.
  std::vector<std::pair<size_t, size_t>> Split(std::string_view text) const;
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  std::vector<CodePtr> regexes_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank, merged id
  std::array<int32_t, 256> byte_ids_{};          // token of each byte's printable character
};

Status BpeTokenizer::Init() {
  RETURN_IF_ERROR(InitCommon());
  const ByteLevelMap& map = GetByteLevelMap();
  for (int b = 0; b < 256; ++b) byte_ids_[b] = Find(map.byte_to_utf8[b]);

  std::vector<std::string> patterns = data_.pre_regexes;
  if (patterns.empty()) {
    const std::vector<std::string>* known = PreRegexesFor(data_.pre);
    if (known == nullptr) {
      return Unimplemented("tokenizer: pre-tokenizer '" + data_.pre +
                           "' (tokenizer.ggml.pre) is not known; known: gpt-2, default, llama-bpe, qwen2, "
                           "starcoder, smollm, deepseek-llm, deepseek-coder, deepseek-v3, falcon, tekken, "
                           "gpt-4o and their aliases");
    }
    patterns = *known;
    // Llama 3's tokenizer.json sets ignore_merges; its GGUF only says "llama-bpe".
    if (known == PreRegexesFor("llama-bpe")) data_.ignore_merges = true;
  }
#if defined(EDGEQ_NO_PCRE2)
  return Unimplemented("tokenizer: byte-level BPE needs PCRE2, which this build (EDGEQ_MINIMAL) leaves out");
#endif
#if !defined(EDGEQ_NO_PCRE2)
  for (const std::string& p : patterns) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      return InvalidArgument("tokenizer: pre-tokenizer regex '" + p + "' does not compile at offset " +
                             std::to_string(err_off) + ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: the interpreter is used if this fails
    regexes_.emplace_back(code);
  }
#endif

  // Merges "a b" in rank order. A token may itself hold a space (non-byte-level vocabularies),
  // so the split point is the first space that leaves two vocabulary entries.
  merges_.reserve(data_.merges.size());
  for (size_t r = 0; r < data_.merges.size(); ++r) {
    const std::string& m = data_.merges[r];
    for (size_t sp = m.find(' ', 1); sp != std::string::npos && sp + 1 < m.size(); sp = m.find(' ', sp + 1)) {
      const int32_t a = Find(std::string_view(m).substr(0, sp));
      const int32_t b = Find(std::string_view(m).substr(sp + 1));
      if (a < 0 || b < 0) continue;
      std::string joined = m.substr(0, sp) + m.substr(sp + 1);
      const int32_t res = Find(joined);
      // A merge whose result is not in the vocabulary can never produce a token: skipped.
      if (res >= 0) merges_.emplace(PairKey(a, b), Merge{static_cast<int32_t>(r), res});
      break;
    }
  }
  return Status::Ok();
}

std::vector<std::pair<size_t, size_t>> BpeTokenizer::Split(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> segs = {{0, text.size()}};
  std::vector<std::pair<size_t, size_t>> next;
#if !defined(EDGEQ_NO_PCRE2)
  for (const CodePtr& code : regexes_) {
    MatchDataPtr md(pcre2_match_data_create_from_pattern(code.get(), nullptr));
    if (!md) break;
    next.clear();
    for (const auto& [seg_off, seg_len] : segs) {
      // Each segment is matched on its own, so lookarounds and $ see its ends.
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + seg_off);
      size_t pos = 0, last = 0;
      while (pos < seg_len) {
        int rc = pcre2_match(code.get(), subject, seg_len, pos, 0, md.get(), nullptr);
        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
          // JIT stack or match limits: retry with the interpreter, else leave the rest whole.
          rc = pcre2_match(code.get(), subject, seg_len, pos, PCRE2_NO_JIT, md.get(), nullptr);
        }
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t ms = ov[0], me = ov[1];
        if (ms < pos || me < ms || me > seg_len) break;  // cannot happen; never loop on it
        if (me == ms) {  // an empty match splits nothing: step over one character
          pos = ms + Utf8Len(static_cast<uint8_t>(text[seg_off + ms]));
          continue;
        }
        if (ms > last) next.emplace_back(seg_off + last, ms - last);
        next.emplace_back(seg_off + ms, me - ms);
        last = pos = me;
      }
      if (last < seg_len) next.emplace_back(seg_off + last, seg_len - last);
    }
    segs.swap(next);
  }
#endif
  return segs;
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (data_.ignore_merges) {
    std::string mapped;
    for (char c : word) mapped += GetByteLevelMap().byte_to_utf8[static_cast<uint8_t>(c)];
    const int32_t id = Find(mapped);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  struct Sym {
    int32_t id;  // -1: byte without a token; -2: merged away
    int32_t prev, next;
  };
  struct Cand {
    int32_t rank, left, left_id, right_id;
  };
  struct CandGreater {
    bool operator()(const Cand& a, const Cand& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<Sym> syms(n);
  for (int32_t i = 0; i < n; ++i) syms[i] = {byte_ids_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  std::priority_queue<Cand, std::vector<Cand>, CandGreater> queue;
  auto try_add = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = syms[left].next;
    if (right < 0 || syms[left].id < 0 || syms[right].id < 0) return;
    auto it = merges_.find(PairKey(syms[left].id, syms[right].id));
    if (it != merges_.end()) queue.push({it->second.rank, left, syms[left].id, syms[right].id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_add(i);
  while (!queue.empty()) {
    const Cand c = queue.top();
    queue.pop();
    Sym& left = syms[c.left];
    // Stale if either side changed since the candidate was queued (merged ids are always
    // new, longer tokens, so equal ids mean the same pair).
    if (left.id != c.left_id || left.next < 0 || syms[left.next].id != c.right_id) continue;
    Sym& right = syms[left.next];
    left.id = merges_.at(PairKey(c.left_id, c.right_id)).result;
    right.id = -2;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = c.left;
    try_add(left.prev);
    try_add(c.left);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = syms[i].next) {
    if (syms[i].id >= 0) {
      out->push_back(syms[i].id);
    } else if (data_.unk_id >= 0) {
      out->push_back(data_.unk_id);
    }
  }
}

void BpeTokenizer::EncodeText(std::string_view text, bool /*after_special*/, std::vector<int32_t>* out) const {
  std::string normalized;
  if (data_.normalize_nfc && NormalizeNfc(text, &normalized)) text = normalized;
  for (const auto& [off, len] : Split(text)) EncodeWord(text.substr(off, len), out);
}

}  // namespace

const std::vector<std::string>* PreRegexesFor(const std::string& pre) {
  for (const PreEntry& e : PreTable()) {
    for (const char* name : e.names) {
      if (pre == name) return &e.regexes;
    }
  }
  return nullptr;
}

std::string PreNameForRegexes(const std::vector<std::string>& regexes) {
  for (const PreEntry& e : PreTable()) {
    if (e.regexes == regexes && e.names[0][0] != '\0') return e.names[0];
  }
  return "";
}

Result<std::unique_ptr<Tokenizer>> CreateBpe(TokenizerData data) {
  auto t = std::make_unique<BpeTokenizer>(std::move(data));
  RETURN_IF_ERROR(t->Init());
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace edgeq::tok_internal
