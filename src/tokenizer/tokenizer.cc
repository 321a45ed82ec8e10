// Tokenizer base: validation and construction, the special-token partition that drives
// Encode, whole-sequence and streaming decode, end-of-generation ids.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "tokenizer/tokenizer_impl.h"

namespace edgeq {

using tok_internal::VocabTokenizer;

Result<std::unique_ptr<Tokenizer>> Tokenizer::Create(TokenizerData data) {
  const size_t n = data.tokens.size();
  if (n == 0) return DataLoss("tokenizer: the vocabulary is empty");
  if (n > (1u << 30)) return DataLoss("tokenizer: vocabulary of " + std::to_string(n) + " tokens is too large");
  if (!data.scores.empty() && data.scores.size() != n) {
    return DataLoss("tokenizer: " + std::to_string(n) + " tokens but " + std::to_string(data.scores.size()) +
                    " scores");
  }
  if (!data.token_types.empty() && data.token_types.size() != n) {
    return DataLoss("tokenizer: " + std::to_string(n) + " tokens but " + std::to_string(data.token_types.size()) +
                    " token types");
  }
  for (size_t i = 0; i < data.token_types.size(); ++i) {
    if (data.token_types[i] < 0 || data.token_types[i] > static_cast<int32_t>(TokenType::kByte)) {
      return DataLoss("tokenizer: token " + std::to_string(i) + " has invalid type " +
                      std::to_string(data.token_types[i]));
    }
  }
  const std::pair<const char*, int32_t> ids[] = {{"bos", data.bos_id}, {"eos", data.eos_id}, {"unk", data.unk_id},
                                                 {"pad", data.pad_id}, {"eot", data.eot_id}};
  for (const auto& [name, id] : ids) {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      return DataLoss(std::string("tokenizer: ") + name + " token id " + std::to_string(id) +
                      " is outside the vocabulary of " + std::to_string(n));
    }
  }
  if (data.model == "llama") return tok_internal::CreateSpm(std::move(data));
  if (data.model == "gpt2") return tok_internal::CreateBpe(std::move(data));
  return Unimplemented("tokenizer model '" + data.model +
                       "' is not supported (supported: 'llama' SentencePiece-style, 'gpt2' byte-level BPE)");
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids, bool special) const {
  std::string out;
  int32_t prev = -1;
  for (int32_t id : ids) {
    std::string piece = TokenToBytes(id, special);
    // SentencePiece's dummy-prefix space is dropped from the first piece after BOS
    // (llama2.c's decode()).
    if (data_.model == "llama" && prev >= 0 && prev == data_.bos_id && !piece.empty() && piece[0] == ' ') {
      piece.erase(0, 1);
    }
    out += piece;
    prev = id;
  }
  return out;
}

bool Tokenizer::IsEog(int32_t id) const {
  return id >= 0 && std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end();
}

std::string StreamDecoder::Push(int32_t id) {
  std::string piece = tok_.TokenToBytes(id);
  if (tok_.data().model == "llama" && prev_ >= 0 && prev_ == tok_.bos() && !piece.empty() && piece[0] == ' ') {
    piece.erase(0, 1);
  }
  prev_ = id;
  pending_ += piece;
  const size_t keep = tok_internal::IncompleteUtf8Tail(pending_);
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

namespace tok_internal {

Status VocabTokenizer::InitCommon() {
  const int32_t n = vocab_size();
  token_to_id_.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) token_to_id_.emplace(data_.tokens[i], i);  // first id wins

  // Texts matched as whole tokens when parse_special is on.
  for (int32_t i = 0; i < n; ++i) {
    const TokenType t = Type(i);
    if (t != TokenType::kControl && t != TokenType::kUserDefined && t != TokenType::kUnknown) continue;
    const std::string& s = data_.tokens[i];
    if (s.empty()) continue;
    specials_by_byte_[static_cast<uint8_t>(s[0])].push_back(i);
  }
  for (auto& v : specials_by_byte_) {
    std::stable_sort(v.begin(), v.end(), [&](int32_t a, int32_t b) {
      return data_.tokens[a].size() > data_.tokens[b].size();
    });
  }

  // End of generation: EOS, EOT and the end-of-turn tokens of common chat formats.
  auto add = [&](int32_t id) {
    if (id >= 0 && std::find(eog_ids_.begin(), eog_ids_.end(), id) == eog_ids_.end()) eog_ids_.push_back(id);
  };
  add(data_.eos_id);
  add(data_.eot_id);
  static const char* const kEndTexts[] = {"<|im_end|>", "<|eot_id|>",   "<|endoftext|>", "<end_of_turn>",
                                          "<|end|>",    "<|eom_id|>",   "<|return|>",    "<|end_of_text|>"};
  for (const char* text : kEndTexts) {
    const int32_t id = Find(text);
    if (id >= 0 && (Type(id) == TokenType::kControl || Type(id) == TokenType::kUserDefined)) add(id);
  }
  return Status::Ok();
}

std::vector<int32_t> VocabTokenizer::Encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && data_.add_bos && data_.bos_id >= 0) out.push_back(data_.bos_id);
  bool after_special = true;  // the start of the text counts as "after a special token"
  size_t run_start = 0;
  if (parse_special) {
    size_t pos = 0;
    while (pos < text.size()) {
      int32_t hit = -1;
      for (int32_t id : specials_by_byte_[static_cast<uint8_t>(text[pos])]) {
        const std::string& s = data_.tokens[id];
        if (text.compare(pos, s.size(), s) == 0) {  // longest first: the first hit wins
          hit = id;
          break;
        }
      }
      if (hit < 0) {
        ++pos;
        continue;
      }
      if (pos > run_start) EncodeText(text.substr(run_start, pos - run_start), after_special, &out);
      out.push_back(hit);
      after_special = true;
      pos += data_.tokens[hit].size();
      run_start = pos;
    }
  }
  if (run_start < text.size()) EncodeText(text.substr(run_start), after_special, &out);
  if (add_special && data_.add_eos && data_.eos_id >= 0) out.push_back(data_.eos_id);
  return out;
}

}  // namespace tok_internal
}  // namespace edgeq
