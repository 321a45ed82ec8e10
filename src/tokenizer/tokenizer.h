// Tokenizers built from a model's own vocabulary data.
//
// TokenizerData is the format-neutral description that every loader fills
// (GGUF metadata, llama2.c tokenizer.bin, Hugging Face tokenizer.json) and that the
// GGUF writer stores back (tokenizer.ggml.* keys). Tokenizer is built from it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace edgeq {

class GgufFile;

// Token attributes, numbering as GGUF tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
  kByte = 6,
};

struct TokenizerData {
  std::string model;  // "llama" (SentencePiece-style) or "gpt2" (byte-level BPE)
  std::string pre;    // pre-tokenizer name for gpt2: "default"/"gpt-2", "llama-bpe", "qwen2", "smollm", "starcoder", ...
  std::vector<std::string> tokens;
  std::vector<float> scores;        // may be empty for BPE
  std::vector<int32_t> token_types;  // may be empty: all normal
  std::vector<std::string> merges;   // "a b" pairs, BPE only, in rank order
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1, eot_id = -1;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = true;  // SentencePiece dummy prefix (llama models)
  std::string chat_template;     // raw template text, may be empty

  // Filled only by the tokenizer.json loader (GGUF has no keys for them; `pre` names the
  // known regex set when the json's regex is a known one, so a converted GGUF behaves
  // the same). Pre-tokenizer regexes applied in order: each splits the pieces left by the
  // previous one, keeping both the matches and the text between them. Empty: use the
  // built-in table entry for `pre`.
  std::vector<std::string> pre_regexes;
  bool normalize_nfc = false;  // tokenizer.json normalizer {"type":"NFC"}
  bool ignore_merges = false;  // BPE: a pre-token that is itself a vocab entry is kept whole
};

// Loaders. Errors name the file and the field.
Result<TokenizerData> TokenizerDataFromGguf(const GgufFile& gguf);
// llama2.c tokenizer.bin: int32 max_token_length, then per token: f32 score, i32 len, bytes.
// BOS=1, EOS=2, UNK=0 (llama2.c's convention); add_bos true.
Result<TokenizerData> TokenizerDataFromLlama2c(const std::string& path, int32_t expected_vocab);
// Hugging Face tokenizer.json (+ optional tokenizer_config.json beside it for the chat
// template and bos/eos); `dir_or_file` may be the directory or the tokenizer.json path.
Result<TokenizerData> TokenizerDataFromHfJson(const std::string& dir_or_file);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  static Result<std::unique_ptr<Tokenizer>> Create(TokenizerData data);

  // add_special: prepend BOS / append EOS as the model's data says.
  // parse_special: text of control/user-defined tokens ("<|im_start|>") is matched as
  // those tokens; otherwise it is tokenized as plain text.
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;
  // Raw bytes of one token as it appears in decoded text (byte tokens -> their byte,
  // SentencePiece U+2581 -> space, GPT-2 byte mapping undone). Control tokens decode to
  // "" unless `special` is true. Leading-space stripping is the caller's business.
  virtual std::string TokenToBytes(int32_t id, bool special = false) const = 0;
  // Whole-sequence decode (applies SentencePiece's leading-space removal after BOS).
  std::string Decode(const std::vector<int32_t>& ids, bool special = false) const;

  const TokenizerData& data() const { return data_; }
  int32_t vocab_size() const { return static_cast<int32_t>(data_.tokens.size()); }
  int32_t bos() const { return data_.bos_id; }
  int32_t eos() const { return data_.eos_id; }
  // True for EOS and any end-of-generation token (eot, <|im_end|>, <|eot_id|>, ...).
  bool IsEog(int32_t id) const;
  const std::string& Piece(int32_t id) const { return data_.tokens[id]; }

 protected:
  explicit Tokenizer(TokenizerData data) : data_(std::move(data)) {}
  TokenizerData data_;
  std::vector<int32_t> eog_ids_;
};

// Streaming decoder: feeds token ids, returns only complete UTF-8 (holds back a
// partial multi-byte sequence until the next token completes it), and strips the
// SentencePiece leading space of the first piece after BOS like llama2.c does.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string Push(int32_t id);
  std::string Flush();  // whatever is held back (invalid UTF-8 comes out as is)

 private:
  const Tokenizer& tok_;
  std::string pending_;
  int32_t prev_ = -1;
};

}  // namespace edgeq
