// TokenizerData loaders: GGUF metadata, llama2.c tokenizer.bin, Hugging Face tokenizer.json.
// Every value read from a file is checked; errors name the file and the field.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/byte_reader.h"
#include "core/mapped_file.h"
#include "format/gguf.h"
#include "tokenizer/tokenizer_impl.h"

namespace edgeq {

using tok_internal::TokenMap;

namespace {

constexpr int32_t kMaxVocab = 1 << 24;

bool IsByteTokenText(const std::string& s) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return s.size() == 6 && s.compare(0, 3, "<0x") == 0 && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

int32_t FindToken(const std::vector<std::string>& tokens, const std::string& text) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == text) return static_cast<int32_t>(i);
  }
  return -1;
}

// Per-model defaults for what a GGUF may leave out (llama.cpp's choices).
void ApplyModelDefaults(TokenizerData* d) {
  const int32_t n = static_cast<int32_t>(d->tokens.size());
  if (d->model == "llama") {
    d->unk_id = n > 0 ? 0 : -1;
    d->bos_id = n > 1 ? 1 : -1;
    d->eos_id = n > 2 ? 2 : -1;
    d->add_bos = true;
    d->add_space_prefix = true;
  } else {
    const int32_t eot = FindToken(d->tokens, "<|endoftext|>");
    d->bos_id = d->eos_id = eot;
    d->add_bos = false;
    d->add_space_prefix = false;
  }
}

}  // namespace

// ---- GGUF ------------------------------------------------------------------------------

Result<TokenizerData> TokenizerDataFromGguf(const GgufFile& g) {
  const std::string& what = g.path();
  TokenizerData d;
  ASSIGN_OR_RETURN(d.model, g.GetString("tokenizer.ggml.model"));
  if (g.Find("tokenizer.ggml.pre") != nullptr) {
    ASSIGN_OR_RETURN(d.pre, g.GetString("tokenizer.ggml.pre"));
  }
  ASSIGN_OR_RETURN(d.tokens, g.GetStringArray("tokenizer.ggml.tokens"));
  const size_t n = d.tokens.size();
  if (n == 0) return DataLoss(what + ": tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(kMaxVocab)) {
    return DataLoss(what + ": tokenizer.ggml.tokens has " + std::to_string(n) + " entries (limit " +
                    std::to_string(kMaxVocab) + ")");
  }
  if (g.Find("tokenizer.ggml.scores") != nullptr) {
    ASSIGN_OR_RETURN(std::vector<double> scores, g.GetFloatArray("tokenizer.ggml.scores"));
    if (scores.size() != n) {
      return DataLoss(what + ": tokenizer.ggml.scores has " + std::to_string(scores.size()) +
                      " entries but tokenizer.ggml.tokens has " + std::to_string(n));
    }
    d.scores.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(scores[i])) {
        return DataLoss(what + ": tokenizer.ggml.scores[" + std::to_string(i) + "] is not finite");
      }
      d.scores[i] = static_cast<float>(scores[i]);
    }
  }
  if (g.Find("tokenizer.ggml.token_type") != nullptr) {
    ASSIGN_OR_RETURN(std::vector<int64_t> types, g.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != n) {
      return DataLoss(what + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                      " entries but tokenizer.ggml.tokens has " + std::to_string(n));
    }
    d.token_types.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::kByte)) {
        return DataLoss(what + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] = " +
                        std::to_string(types[i]) + " is not a token type (0..6)");
      }
      d.token_types[i] = static_cast<int32_t>(types[i]);
    }
  }
  if (g.Find("tokenizer.ggml.merges") != nullptr) {
    ASSIGN_OR_RETURN(d.merges, g.GetStringArray("tokenizer.ggml.merges"));
  } else if (d.model == "gpt2") {
    return DataLoss(what + ": tokenizer.ggml.model is gpt2 but tokenizer.ggml.merges is missing");
  }

  ApplyModelDefaults(&d);
  const std::pair<const char*, int32_t*> ids[] = {
      {"tokenizer.ggml.bos_token_id", &d.bos_id},     {"tokenizer.ggml.eos_token_id", &d.eos_id},
      {"tokenizer.ggml.unknown_token_id", &d.unk_id}, {"tokenizer.ggml.padding_token_id", &d.pad_id},
      {"tokenizer.ggml.eot_token_id", &d.eot_id},
  };
  for (const auto& [key, out] : ids) {
    if (g.Find(key) == nullptr) continue;
    ASSIGN_OR_RETURN(int64_t v, g.GetInt(key));
    if (v == -1 || v == 0xFFFFFFFFll) {  // "none", as some converters write it
      *out = -1;
      continue;
    }
    if (v < 0 || v >= static_cast<int64_t>(n)) {
      return DataLoss(what + ": " + key + " = " + std::to_string(v) + " is outside the vocabulary of " +
                      std::to_string(n) + " tokens");
    }
    *out = static_cast<int32_t>(v);
  }
  if (d.token_types.empty() && d.model == "llama") {
    // No token_type array: recover what decoding needs (byte tokens, control BOS/EOS).
    d.token_types.assign(n, static_cast<int32_t>(TokenType::kNormal));
    for (size_t i = 0; i < n; ++i) {
      if (IsByteTokenText(d.tokens[i])) d.token_types[i] = static_cast<int32_t>(TokenType::kByte);
    }
    if (d.unk_id >= 0) d.token_types[d.unk_id] = static_cast<int32_t>(TokenType::kUnknown);
    for (int32_t id : {d.bos_id, d.eos_id}) {
      if (id >= 0) d.token_types[id] = static_cast<int32_t>(TokenType::kControl);
    }
  }
  ASSIGN_OR_RETURN(d.add_bos, g.GetBoolOr("tokenizer.ggml.add_bos_token", d.add_bos));
  ASSIGN_OR_RETURN(d.add_eos, g.GetBoolOr("tokenizer.ggml.add_eos_token", d.add_eos));
  ASSIGN_OR_RETURN(d.add_space_prefix, g.GetBoolOr("tokenizer.ggml.add_space_prefix", d.add_space_prefix));
  if (g.Find("tokenizer.chat_template") != nullptr) {
    ASSIGN_OR_RETURN(d.chat_template, g.GetString("tokenizer.chat_template"));
  }
  return d;
}

// ---- llama2.c tokenizer.bin ----------------------------------------------------------------

Result<TokenizerData> TokenizerDataFromLlama2c(const std::string& path, int32_t expected_vocab) {
  ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
  ByteReader r(f.data(), f.size(), path);
  int32_t max_len = 0;
  RETURN_IF_ERROR(r.Read(&max_len, "max_token_length"));
  if (max_len < 0 || max_len > (1 << 20)) {
    return DataLoss(path + ": max_token_length " + std::to_string(max_len) + " is not plausible");
  }
  if (expected_vocab > kMaxVocab) {
    return InvalidArgument(path + ": vocabulary size " + std::to_string(expected_vocab) + " is too large");
  }
  TokenizerData d;
  d.model = "llama";
  // expected_vocab <= 0: read tokens up to the end of the file.
  for (int32_t i = 0; expected_vocab > 0 ? i < expected_vocab : r.remaining() > 0; ++i) {
    if (i >= kMaxVocab) return DataLoss(path + ": more than " + std::to_string(kMaxVocab) + " tokens");
    const std::string where = path + ": token " + std::to_string(i) + " (offset " + std::to_string(r.offset()) + ")";
    float score = 0;
    int32_t len = 0;
    RETURN_IF_ERROR(r.Read(&score, "token score"));
    RETURN_IF_ERROR(r.Read(&len, "token length"));
    if (len < 0) return DataLoss(where + ": negative length " + std::to_string(len));
    if (!std::isfinite(score)) return DataLoss(where + ": score is not finite");
    std::string piece;
    RETURN_IF_ERROR(r.ReadString(static_cast<size_t>(len), &piece, "token bytes"));
    // llama2.c's export writes SentencePiece's U+2581 as a plain space; store the
    // SentencePiece form so the same vocabulary from GGUF and from here agree.
    std::string spm;
    spm.reserve(piece.size() + 8);
    for (char c : piece) {
      if (c == ' ') {
        spm += "\xe2\x96\x81";
      } else {
        spm.push_back(c);
      }
    }
    d.tokens.push_back(std::move(spm));
    d.scores.push_back(score);
  }
  const int32_t n = static_cast<int32_t>(d.tokens.size());
  if (n < 3) return DataLoss(path + ": only " + std::to_string(n) + " tokens (need at least unk, bos, eos)");
  d.token_types.assign(n, static_cast<int32_t>(TokenType::kNormal));
  for (int32_t i = 0; i < n; ++i) {
    if (IsByteTokenText(d.tokens[i])) d.token_types[i] = static_cast<int32_t>(TokenType::kByte);
  }
  // llama2.c convention: 0 <unk>, 1 <s>, 2 </s>; its export wraps BOS/EOS in newlines.
  d.token_types[0] = static_cast<int32_t>(TokenType::kUnknown);
  d.token_types[1] = static_cast<int32_t>(TokenType::kControl);
  d.token_types[2] = static_cast<int32_t>(TokenType::kControl);
  if (d.tokens[1] == "\n<s>\n") d.tokens[1] = "<s>";
  if (d.tokens[2] == "\n</s>\n") d.tokens[2] = "</s>";
  d.unk_id = 0;
  d.bos_id = 1;
  d.eos_id = 2;
  d.add_bos = true;
  d.add_eos = false;
  d.add_space_prefix = true;
  return d;
}

// ---- Hugging Face tokenizer.json -----------------------------------------------------------

namespace {

using nlohmann::json;

// The type names of a component and, for a Sequence, of its members (recursively).
void CollectComponents(const json& c, const char* list_key, std::vector<const json*>* out) {
  if (!c.is_object()) return;
  auto t = c.find("type");
  if (t != c.end() && t->is_string() && *t == "Sequence") {
    auto items = c.find(list_key);
    if (items != c.end() && items->is_array()) {
      for (const json& x : *items) CollectComponents(x, list_key, out);
    }
    return;
  }
  out->push_back(&c);
}

std::string TypeOf(const json& c) {
  auto t = c.find("type");
  return t != c.end() && t->is_string() ? t->get<std::string>() : std::string();
}

// A config token: "text" or {"content": "text", ...}; "" if absent or null.
std::string ConfigTokenText(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return "";
}

// Escapes a literal for use inside a PCRE2 pattern.
std::string QuoteRegex(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

Result<TokenizerData> ParseHfJson(const json& j, const json* cfg, const std::string& path, const std::string& dir) {
  TokenizerData d;
  if (!j.is_object()) return DataLoss(path + ": top level is not an object");
  auto model_it = j.find("model");
  if (model_it == j.end() || !model_it->is_object()) return DataLoss(path + ": missing object 'model'");
  const json& model = *model_it;
  std::string mtype = TypeOf(model);
  if (mtype.empty() && model.contains("merges")) mtype = "BPE";  // older files omit it
  if (mtype != "BPE") {
    return Unimplemented(path + ": model.type '" + mtype + "' is not supported (only BPE)");
  }
  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object()) return DataLoss(path + ": missing object 'model.vocab'");

  // id -> text, from model.vocab and added_tokens.
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<bool> present;
  auto place = [&](int64_t id, const std::string& text, TokenType type, bool added) -> Status {
    if (id < 0 || id >= kMaxVocab) {
      return DataLoss(path + ": token '" + text + "' has id " + std::to_string(id) + " outside 0.." +
                      std::to_string(kMaxVocab - 1));
    }
    const size_t i = static_cast<size_t>(id);
    if (i >= tokens.size()) {
      tokens.resize(i + 1);
      types.resize(i + 1, static_cast<int32_t>(TokenType::kUnused));
      present.resize(i + 1, false);
    }
    if (present[i] && tokens[i] != text && !added) {
      return DataLoss(path + ": id " + std::to_string(id) + " is used by both '" + tokens[i] + "' and '" + text + "'");
    }
    tokens[i] = text;
    types[i] = static_cast<int32_t>(type);
    present[i] = true;
    return Status::Ok();
  };
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer()) return DataLoss(path + ": model.vocab['" + it.key() + "'] is not an integer");
    RETURN_IF_ERROR(place(it.value().get<int64_t>(), it.key(), TokenType::kNormal, false));
  }
  auto added_it = j.find("added_tokens");
  if (added_it != j.end() && added_it->is_array()) {
    for (size_t k = 0; k < added_it->size(); ++k) {
      const json& a = (*added_it)[k];
      const std::string where = path + ": added_tokens[" + std::to_string(k) + "]";
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string()) {
        return DataLoss(where + " needs an integer 'id' and a string 'content'");
      }
      const bool special = a.value("special", false);
      RETURN_IF_ERROR(place(a["id"].get<int64_t>(), a["content"].get<std::string>(),
                            special ? TokenType::kControl : TokenType::kUserDefined, true));
    }
  }
  if (tokens.empty()) return DataLoss(path + ": model.vocab is empty");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!present[i]) tokens[i] = "[PAD" + std::to_string(i) + "]";  // a hole in the id space
  }

  // Merges: "a b" strings or ["a", "b"] pairs.
  std::vector<std::pair<std::string, std::string>> merges;
  auto merges_it = model.find("merges");
  if (merges_it != model.end() && merges_it->is_array()) {
    merges.reserve(merges_it->size());
    for (size_t k = 0; k < merges_it->size(); ++k) {
      const json& m = (*merges_it)[k];
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) return DataLoss(path + ": model.merges[" + std::to_string(k) + "] '" + s + "' is not 'a b'");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      } else {
        return DataLoss(path + ": model.merges[" + std::to_string(k) + "] is neither 'a b' nor [a, b]");
      }
    }
  }

  std::vector<const json*> pres, decs, norms;
  if (j.contains("pre_tokenizer")) CollectComponents(j["pre_tokenizer"], "pretokenizers", &pres);
  if (j.contains("decoder")) CollectComponents(j["decoder"], "decoders", &decs);
  if (j.contains("normalizer")) CollectComponents(j["normalizer"], "normalizers", &norms);
  auto has_type = [](const std::vector<const json*>& v, const char* t) {
    for (const json* c : v) {
      if (TypeOf(*c) == t) return true;
    }
    return false;
  };
  const bool byte_level = has_type(pres, "ByteLevel") || has_type(decs, "ByteLevel");
  const bool byte_fallback = model.contains("byte_fallback") && model["byte_fallback"].is_boolean() &&
                             model["byte_fallback"].get<bool>();
  const bool metaspace = has_type(pres, "Metaspace") || has_type(decs, "Metaspace") || has_type(decs, "ByteFallback");

  d.tokens = std::move(tokens);
  d.token_types = std::move(types);
  const int32_t n = static_cast<int32_t>(d.tokens.size());
  TokenMap index;
  for (int32_t i = 0; i < n; ++i) index.emplace(d.tokens[i], i);
  auto id_of = [&](const std::string& s) {
    auto it = index.find(s);
    return it == index.end() ? -1 : it->second;
  };

  if (byte_level) {
    d.model = "gpt2";
    for (const json* c : pres) {
      const std::string t = TypeOf(*c);
      if (t == "Split") {
        const json& pat = c->value("pattern", json::object());
        std::string re;
        if (pat.contains("Regex") && pat["Regex"].is_string()) {
          re = pat["Regex"].get<std::string>();
        } else if (pat.contains("String") && pat["String"].is_string()) {
          re = QuoteRegex(pat["String"].get<std::string>());
        } else {
          return DataLoss(path + ": pre_tokenizer Split has no pattern");
        }
        const std::string behavior = c->value("behavior", std::string("Isolated"));
        if (behavior != "Isolated" || c->value("invert", false)) {
          return Unimplemented(path + ": pre_tokenizer Split with behavior '" + behavior + "'" +
                               (c->value("invert", false) ? " (inverted)" : "") + " is not supported (only Isolated)");
        }
        d.pre_regexes.push_back(re);
      } else if (t == "ByteLevel") {
        if (c->value("add_prefix_space", false)) {
          return Unimplemented(path + ": ByteLevel pre_tokenizer with add_prefix_space is not supported");
        }
        if (c->value("use_regex", true)) {
          d.pre_regexes.push_back(
              R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re");
        }
      } else if (t == "Digits") {
        d.pre_regexes.push_back(c->value("individual_digits", false) ? R"re(\p{N})re" : R"re(\p{N}+)re");
      } else {
        return Unimplemented(path + ": pre_tokenizer type '" + t + "' is not supported");
      }
    }
    d.pre = tok_internal::PreNameForRegexes(d.pre_regexes);
    for (const json* c : norms) {
      const std::string t = TypeOf(*c);
      if (t == "NFC") {
        d.normalize_nfc = true;
      } else {
        return Unimplemented(path + ": normalizer '" + t + "' is not supported for byte-level BPE");
      }
    }
    d.ignore_merges = model.value("ignore_merges", false);
    d.merges.reserve(merges.size());
    for (auto& [a, b] : merges) {
      if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos) {
        return DataLoss(path + ": merge '" + a + "' + '" + b + "' holds a space, impossible in byte-level BPE");
      }
      d.merges.push_back(a + " " + b);
    }
    d.add_space_prefix = false;
    d.eos_id = id_of("<|endoftext|>");
  } else if (byte_fallback || metaspace) {
    // SentencePiece exported as BPE: pieces use U+2581 for spaces, <0xXX> byte tokens.
    // The merge order is SentencePiece's score order, so -rank serves as the score.
    d.model = "llama";
    d.scores.assign(n, -1e9f);
    for (size_t r = 0; r < merges.size(); ++r) {
      const int32_t res = id_of(merges[r].first + merges[r].second);
      if (res >= 0 && d.scores[res] == -1e9f) d.scores[res] = -static_cast<float>(r);
    }
    for (int32_t i = 0; i < n; ++i) {
      if (d.token_types[i] == static_cast<int32_t>(TokenType::kNormal) && IsByteTokenText(d.tokens[i])) {
        d.token_types[i] = static_cast<int32_t>(TokenType::kByte);
      }
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      d.unk_id = id_of(model["unk_token"].get<std::string>());
      if (d.unk_id >= 0) d.token_types[d.unk_id] = static_cast<int32_t>(TokenType::kUnknown);
    }
    // Dummy prefix: normalizer Prepend("▁") or Metaspace with a prepend scheme.
    d.add_space_prefix = false;
    for (const json* c : norms) {
      const std::string t = TypeOf(*c);
      if (t == "Prepend" && c->value("prepend", std::string()) == "\xe2\x96\x81") d.add_space_prefix = true;
      if (t != "Prepend" && t != "Replace") {
        return Unimplemented(path + ": normalizer '" + t + "' is not supported for SentencePiece-style BPE");
      }
    }
    for (const json* c : pres) {
      if (TypeOf(*c) != "Metaspace") {
        return Unimplemented(path + ": pre_tokenizer '" + TypeOf(*c) + "' is not supported for SentencePiece-style BPE");
      }
      const std::string scheme = c->value("prepend_scheme", std::string(c->value("add_prefix_space", true) ? "always" : "never"));
      if (scheme != "never") d.add_space_prefix = true;
    }
    d.bos_id = id_of("<s>");
    d.eos_id = id_of("</s>");
  } else {
    return Unimplemented(path + ": BPE without a ByteLevel pre-tokenizer or SentencePiece byte fallback is not supported");
  }

  // tokenizer_config.json: special tokens, BOS/EOS policy, chat template.
  bool add_bos_set = false;
  if (cfg != nullptr) {
    const std::pair<const char*, int32_t*> named[] = {
        {"bos_token", &d.bos_id}, {"eos_token", &d.eos_id}, {"unk_token", &d.unk_id}, {"pad_token", &d.pad_id}};
    for (const auto& [key, out] : named) {
      if (!cfg->contains(key)) continue;
      const std::string text = ConfigTokenText(*cfg, key);
      if (text.empty()) {
        if ((*cfg)[key].is_null()) *out = -1;
        continue;
      }
      const int32_t id = id_of(text);
      if (id < 0) return DataLoss(dir + "/tokenizer_config.json: " + key + " '" + text + "' is not in the vocabulary");
      *out = id;
    }
    if (cfg->contains("add_bos_token") && (*cfg)["add_bos_token"].is_boolean()) {
      d.add_bos = (*cfg)["add_bos_token"].get<bool>();
      add_bos_set = true;
    }
    if (cfg->contains("add_eos_token") && (*cfg)["add_eos_token"].is_boolean()) {
      d.add_eos = (*cfg)["add_eos_token"].get<bool>();
    }
    if (cfg->contains("chat_template")) {
      const json& t = (*cfg)["chat_template"];
      if (t.is_string()) {
        d.chat_template = t.get<std::string>();
      } else if (t.is_array()) {  // [{"name": ..., "template": ...}]: take "default", else the first
        for (const json& e : t) {
          if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
          if (d.chat_template.empty() || e.value("name", std::string()) == "default") {
            d.chat_template = e["template"].get<std::string>();
          }
        }
      }
    }
  }
  if (d.chat_template.empty()) {
    auto t = ReadFileToString(dir + "/chat_template.jinja");
    if (t.ok()) d.chat_template = std::move(t.value());
  }
  if (!add_bos_set) {
    // The post-processor's template says whether BOS is prepended.
    d.add_bos = false;
    if (d.bos_id >= 0 && j.contains("post_processor") && j["post_processor"].is_object()) {
      const json& pp = j["post_processor"];
      if (TypeOf(pp) == "TemplateProcessing" && pp.contains("single") && pp["single"].is_array()) {
        for (const json& piece : pp["single"]) {
          if (piece.is_object() && piece.contains("SpecialToken") && piece["SpecialToken"].is_object() &&
              piece["SpecialToken"].value("id", std::string()) == d.tokens[d.bos_id]) {
            d.add_bos = true;
          }
        }
      }
    } else if (d.model == "llama" && d.bos_id >= 0 && !j.contains("post_processor")) {
      d.add_bos = true;
    }
  }
  return d;
}

}  // namespace

static Result<TokenizerData> TokenizerDataFromHfJsonImpl(const std::string& dir_or_file) {
  std::string path = dir_or_file, dir;
  struct stat st {};
  if (stat(dir_or_file.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    dir = dir_or_file;
    path = dir + "/tokenizer.json";
  } else {
    const size_t slash = dir_or_file.rfind('/');
    dir = slash == std::string::npos ? "." : dir_or_file.substr(0, slash);
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  // nlohmann::json reports errors by exception; none leaves this function.
  try {
    const json j = json::parse(text);
    json cfg;
    bool have_cfg = false;
    auto cfg_text = ReadFileToString(dir + "/tokenizer_config.json");
    if (cfg_text.ok()) {
      try {
        cfg = json::parse(cfg_text.value());
      } catch (const json::exception& e) {
        return DataLoss(dir + "/tokenizer_config.json: invalid JSON: " + e.what());
      }
      if (!cfg.is_object()) return DataLoss(dir + "/tokenizer_config.json: top level is not an object");
      have_cfg = true;
    }
    return ParseHfJson(j, have_cfg ? &cfg : nullptr, path, dir);
  } catch (const json::parse_error& e) {
    return DataLoss(path + ": invalid JSON: " + e.what());
  } catch (const std::exception& e) {
    return DataLoss(path + ": unexpected content: " + e.what());
  }
}

// nlohmann::json throws on a value of the wrong type; no exception may leave the library.
Result<TokenizerData> TokenizerDataFromHfJson(const std::string& dir_or_file) {
  try {
    return TokenizerDataFromHfJsonImpl(dir_or_file);
  } catch (const nlohmann::json::exception& e) {
    return DataLoss(dir_or_file + ": malformed JSON field: " + e.what());
  }
}

}  // namespace edgeq
