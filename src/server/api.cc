#include "server/api.h"

#include <cmath>
#include <limits>
#include <random>

namespace edgeq::server {

using nlohmann::json;

json ErrorJson(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

// Field readers: absent or null leaves *out unchanged; a wrong type or range is an
// error naming the field.
struct Reader {
  const json& body;
  ApiError* err;

  bool Fail(const std::string& field, const std::string& msg) {
    err->status = 400;
    err->param = field;
    err->message = msg;
    return false;
  }
  const json* Get(const char* field) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool Number(const char* field, double lo, double hi, float* out) {
    const json* v = Get(field);
    if (v == nullptr) return true;
    if (!v->is_number()) return Fail(field, std::string("'") + field + "' must be a number");
    const double d = v->get<double>();
    if (!(d >= lo && d <= hi)) {
      return Fail(field, std::string("'") + field + "' must be between " + Fmt(lo) + " and " + Fmt(hi) +
                             ", got " + Fmt(d));
    }
    *out = static_cast<float>(d);
    return true;
  }
  bool Int(const char* field, int64_t lo, int64_t hi, int64_t* out) {
    const json* v = Get(field);
    if (v == nullptr) return true;
    if (!v->is_number_integer()) return Fail(field, std::string("'") + field + "' must be an integer");
    const int64_t i = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : v->get<int64_t>();
    if (i < lo || i > hi) {
      return Fail(field, std::string("'") + field + "' must be between " + std::to_string(lo) + " and " +
                             std::to_string(hi) + ", got " + std::to_string(i));
    }
    *out = i;
    return true;
  }
  bool Bool(const char* field, bool* out) {
    const json* v = Get(field);
    if (v == nullptr) return true;
    if (!v->is_boolean()) return Fail(field, std::string("'") + field + "' must be a boolean");
    *out = v->get<bool>();
    return true;
  }
  static std::string Fmt(double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return buf;
  }
};

// Text of a message's content: a string, or an array of {"type":"text","text":...} parts.
bool ContentText(const json& c, size_t index, std::string* out, ApiError* err) {
  const std::string field = "messages[" + std::to_string(index) + "].content";
  if (c.is_string()) {
    *out = c.get<std::string>();
    return true;
  }
  if (c.is_array()) {
    out->clear();
    for (const json& part : c) {
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
        *err = {400, "each part of '" + field + "' must be an object with a 'type'", "invalid_request_error", field, ""};
        return false;
      }
      if (part["type"] != "text" || !part.contains("text") || !part["text"].is_string()) {
        *err = {400, "only text content parts are supported (got type '" + part["type"].get<std::string>() + "')",
                "invalid_request_error", field, ""};
        return false;
      }
      *out += part["text"].get<std::string>();
    }
    return true;
  }
  *err = {400, "'" + field + "' must be a string or an array of text parts", "invalid_request_error", field, ""};
  return false;
}

bool ParseStop(Reader& rd, std::vector<std::string>* stop) {
  const json* v = rd.Get("stop");
  if (v == nullptr) return true;
  if (v->is_string()) {
    if (!v->get<std::string>().empty()) stop->push_back(v->get<std::string>());
    return true;
  }
  if (!v->is_array() || v->size() > 4) return rd.Fail("stop", "'stop' must be a string or an array of up to 4 strings");
  for (const json& s : *v) {
    if (!s.is_string()) return rd.Fail("stop", "'stop' must contain only strings");
    if (!s.get<std::string>().empty()) stop->push_back(s.get<std::string>());
  }
  return true;
}

}  // namespace

bool ParseRequest(Endpoint ep, const std::string& body_text, const ApiContext& ctx, ParsedRequest* out,
                  ApiError* err) {
  *out = ParsedRequest{};
  out->endpoint = ep;
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::exception& e) {
    *err = {400, std::string("the request body is not valid JSON: ") + e.what(), "invalid_request_error", "", ""};
    return false;
  }
  if (!body.is_object()) {
    *err = {400, "the request body must be a JSON object", "invalid_request_error", "", ""};
    return false;
  }
  Reader rd{body, err};
  TaskParams& t = out->task;
  // OpenAI's sampling defaults (temperature 1, top_p 1, no top-k/min-p), not the CLI's.
  t.sampler = SamplerParams{};
  t.sampler.temperature = 1.0f;
  t.sampler.top_p = 1.0f;
  t.sampler.top_k = 0;
  t.sampler.min_p = 0.0f;
  t.sampler.repeat_last_n = -1;

  if (const json* m = rd.Get("model")) {
    if (!m->is_string()) return rd.Fail("model", "'model' must be a string");
    out->model = m->get<std::string>();
    if (out->model != ctx.model_id) {
      *err = {404, "The model '" + out->model + "' does not exist (this server serves '" + ctx.model_id + "')",
              "invalid_request_error", "model", "model_not_found"};
      return false;
    }
  } else {
    out->model = ctx.model_id;
  }
  if (!rd.Bool("stream", &out->stream)) return false;
  if (const json* so = rd.Get("stream_options")) {
    if (!so->is_object()) return rd.Fail("stream_options", "'stream_options' must be an object");
    if (!out->stream) return rd.Fail("stream_options", "'stream_options' is only allowed when 'stream' is true");
    Reader sr{*so, err};
    if (!sr.Bool("include_usage", &out->include_usage)) return false;
  }
  int64_t n = 1;
  if (!rd.Int("n", 1, 128, &n)) return false;
  if (n != 1) return rd.Fail("n", "only n=1 is supported");
  if (!rd.Number("temperature", 0.0, 2.0, &t.sampler.temperature)) return false;
  if (!rd.Number("top_p", 0.0, 1.0, &t.sampler.top_p)) return false;
  if (!rd.Number("presence_penalty", -2.0, 2.0, &t.sampler.presence_penalty)) return false;
  if (!rd.Number("frequency_penalty", -2.0, 2.0, &t.sampler.frequency_penalty)) return false;
  // Extensions many local servers accept (llama.cpp's names).
  int64_t top_k = 0;
  if (!rd.Int("top_k", 0, 1 << 20, &top_k)) return false;
  t.sampler.top_k = static_cast<int32_t>(top_k);
  if (!rd.Number("min_p", 0.0, 1.0, &t.sampler.min_p)) return false;
  if (!rd.Number("repeat_penalty", 0.0, 10.0, &t.sampler.repeat_penalty)) return false;
  if (!rd.Bool("ignore_eos", &t.ignore_eos)) return false;  // benchmarks: always max_tokens
  int64_t seed = -1;
  if (!rd.Int("seed", INT64_MIN, INT64_MAX, &seed)) return false;
  // No seed (or a negative one): a fresh random seed per request.
  t.sampler.seed = seed >= 0 ? static_cast<uint64_t>(seed) : std::random_device{}();
  if (!ParseStop(rd, &t.stop)) return false;

  // max_completion_tokens (new name) wins over max_tokens.
  int64_t max_tokens = -1;
  if (!rd.Int("max_tokens", 0, INT64_MAX, &max_tokens)) return false;
  if (ep == Endpoint::kChat && !rd.Int("max_completion_tokens", 0, INT64_MAX, &max_tokens)) return false;
  if (max_tokens == 0) return rd.Fail(ep == Endpoint::kChat && rd.Get("max_completion_tokens") ? "max_completion_tokens" : "max_tokens",
                                      "max_tokens must be at least 1");

  if (const json* rf = rd.Get("response_format")) {
    if (!rf->is_object() || !rf->contains("type") || !(*rf)["type"].is_string()) {
      return rd.Fail("response_format", "'response_format' must be an object with a 'type'");
    }
    const std::string type = (*rf)["type"];
    if (type != "text") {
      return rd.Fail("response_format", "response_format type '" + type +
                                            "' is not supported by this server (only 'text'); constrained JSON "
                                            "output is not implemented");
    }
  }
  for (const char* unsupported : {"tools", "functions", "tool_choice", "function_call", "suffix", "best_of"}) {
    if (rd.Get(unsupported) != nullptr) {
      return rd.Fail(unsupported, std::string("'") + unsupported + "' is not supported by this server");
    }
  }

  // Logprobs: chat uses logprobs (bool) + top_logprobs (0..20); completions logprobs (0..5).
  if (ep == Endpoint::kChat) {
    if (!rd.Bool("logprobs", &out->logprobs)) return false;
    int64_t top = 0;
    if (!rd.Int("top_logprobs", 0, 20, &top)) return false;
    if (rd.Get("top_logprobs") != nullptr && !out->logprobs) {
      return rd.Fail("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    }
    t.n_logprobs = out->logprobs ? static_cast<int32_t>(top) : -1;
  } else {
    int64_t lp = -1;
    if (!rd.Int("logprobs", 0, 5, &lp)) return false;
    out->logprobs = lp >= 0;
    t.n_logprobs = static_cast<int32_t>(lp);
    if (!rd.Bool("echo", &out->echo)) return false;
  }

  const Tokenizer& tok = *ctx.tok;
  if (ep == Endpoint::kChat) {
    const json* msgs = rd.Get("messages");
    if (msgs == nullptr) return rd.Fail("messages", "'messages' is required");
    if (!msgs->is_array() || msgs->empty()) return rd.Fail("messages", "'messages' must be a non-empty array");
    std::vector<ChatMessage> conv;
    for (size_t i = 0; i < msgs->size(); ++i) {
      const json& m = (*msgs)[i];
      const std::string field = "messages[" + std::to_string(i) + "]";
      if (!m.is_object()) return rd.Fail(field, "'" + field + "' must be an object");
      if (!m.contains("role") || !m["role"].is_string()) return rd.Fail(field + ".role", "'" + field + ".role' must be a string");
      std::string role = m["role"];
      if (role == "developer") role = "system";
      if (role != "system" && role != "user" && role != "assistant") {
        return rd.Fail(field + ".role", "unsupported role '" + role + "' (system, developer, user, assistant)");
      }
      std::string text;
      if (!m.contains("content") || m["content"].is_null()) {
        if (role != "assistant") return rd.Fail(field + ".content", "'" + field + ".content' is required");
      } else if (!ContentText(m["content"], i, &text, err)) {
        return false;
      }
      conv.push_back({role, text});
    }
    const std::string bos_text = tok.bos() >= 0 ? tok.Piece(tok.bos()) : "";
    const std::string eos_text = tok.eos() >= 0 ? tok.Piece(tok.eos()) : "";
    const std::string rendered = ApplyChatTemplate(ctx.chat_style, conv, true, bos_text, eos_text, ctx.chat_extras);
    t.prompt = tok.Encode(rendered, /*add_special=*/true, /*parse_special=*/true);
    // Templates that spell out BOS themselves would get it twice.
    if (t.prompt.size() >= 2 && t.prompt[0] == tok.bos() && t.prompt[1] == tok.bos()) t.prompt.erase(t.prompt.begin());
  } else {
    const json* p = rd.Get("prompt");
    if (p == nullptr) return rd.Fail("prompt", "'prompt' is required");
    auto tokens_of = [&](const json& arr, std::vector<int32_t>* ids) {
      for (const json& x : arr) {
        if (!x.is_number_integer()) return false;
        const int64_t v = x.get<int64_t>();
        if (v < 0 || v >= tok.vocab_size()) return false;
        ids->push_back(static_cast<int32_t>(v));
      }
      return true;
    };
    const json* one = p;
    if (p->is_array() && !p->empty() && (p->front().is_string() || p->front().is_array())) {
      if (p->size() != 1) return rd.Fail("prompt", "only one prompt per request is supported");
      one = &p->front();
    }
    if (one->is_string()) {
      out->prompt_text = one->get<std::string>();
      if (out->prompt_text.empty()) return rd.Fail("prompt", "'prompt' must not be empty");
      t.prompt = tok.Encode(out->prompt_text, /*add_special=*/true, /*parse_special=*/true);
    } else if (one->is_array()) {
      if (one->empty()) return rd.Fail("prompt", "'prompt' must not be empty");
      if (!tokens_of(*one, &t.prompt)) {
        return rd.Fail("prompt", "token arrays must hold integers in [0, " + std::to_string(tok.vocab_size()) + ")");
      }
      out->prompt_text = tok.Decode(t.prompt);
    } else {
      return rd.Fail("prompt", "'prompt' must be a string, an array of token ids, or an array of one of those");
    }
  }
  if (t.prompt.empty()) return rd.Fail(ep == Endpoint::kChat ? "messages" : "prompt", "the prompt is empty");

  const int64_t n_prompt = static_cast<int64_t>(t.prompt.size());
  if (n_prompt >= ctx.n_ctx || (max_tokens > 0 && n_prompt + max_tokens > ctx.n_ctx)) {
    *err = {400,
            "This model's maximum context length is " + std::to_string(ctx.n_ctx) + " tokens. However, you requested " +
                std::to_string(n_prompt + std::max<int64_t>(max_tokens, 0)) + " tokens (" + std::to_string(n_prompt) +
                " in the " + (ep == Endpoint::kChat ? "messages" : "prompt") + ", " +
                std::to_string(std::max<int64_t>(max_tokens, 0)) +
                " in the completion). Please reduce the length of the prompt or max_tokens.",
            "invalid_request_error", ep == Endpoint::kChat ? "messages" : "prompt", "context_length_exceeded"};
    return false;
  }
  t.max_tokens = max_tokens > 0 ? static_cast<int32_t>(max_tokens) : -1;
  return true;
}

namespace {

json TokenBytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(c);
  return b;
}

json ChatLogprobs(const std::vector<TokenOut>& tokens, const Tokenizer& tok) {
  json content = json::array();
  for (const TokenOut& t : tokens) {
    if (t.id < 0) continue;
    const std::string s = tok.TokenToBytes(t.id);
    json top = json::array();
    for (const auto& [id, lp] : t.top) {
      const std::string ts = tok.TokenToBytes(id);
      top.push_back({{"token", ts}, {"logprob", lp}, {"bytes", TokenBytes(ts)}});
    }
    content.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", TokenBytes(s)}, {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json CompletionLogprobs(const std::vector<TokenOut>& tokens, const Tokenizer& tok, size_t text_offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const TokenOut& t : tokens) {
    if (t.id < 0) continue;
    const std::string s = tok.TokenToBytes(t.id);
    toks.push_back(s);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [id, lp] : t.top) top[tok.TokenToBytes(id)] = lp;
    tops.push_back(top);
    offs.push_back(text_offset);
    text_offset += s.size();
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

json Usage(int32_t n_prompt, int32_t n_gen) {
  return {{"prompt_tokens", n_prompt}, {"completion_tokens", n_gen}, {"total_tokens", n_prompt + n_gen}};
}

json Finish(const char* r) { return r != nullptr ? json(r) : json(nullptr); }

}  // namespace

json ChatResponse(const ParsedRequest& r, const std::string& id, int64_t created, const std::string& text,
                  const char* finish_reason, int32_t n_prompt, int32_t n_gen, const std::vector<TokenOut>& tokens,
                  const Tokenizer& tok) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}}},
                 {"logprobs", r.logprobs ? ChatLogprobs(tokens, tok) : json(nullptr)},
                 {"finish_reason", Finish(finish_reason)}};
  return {{"id", id},         {"object", "chat.completion"},     {"created", created},
          {"model", r.model}, {"choices", json::array({choice})}, {"usage", Usage(n_prompt, n_gen)},
          {"system_fingerprint", "edgeq"}};
}

json CompletionResponse(const ParsedRequest& r, const std::string& id, int64_t created, const std::string& text,
                        const char* finish_reason, int32_t n_prompt, int32_t n_gen, const std::vector<TokenOut>& tokens,
                        const Tokenizer& tok) {
  const std::string full = r.echo ? r.prompt_text + text : text;
  json choice = {{"index", 0},
                 {"text", full},
                 {"logprobs", r.logprobs ? CompletionLogprobs(tokens, tok, r.echo ? r.prompt_text.size() : 0)
                                         : json(nullptr)},
                 {"finish_reason", Finish(finish_reason)}};
  return {{"id", id},         {"object", "text_completion"},     {"created", created},
          {"model", r.model}, {"choices", json::array({choice})}, {"usage", Usage(n_prompt, n_gen)},
          {"system_fingerprint", "edgeq"}};
}

json ChatChunk(const ParsedRequest& r, const std::string& id, int64_t created, const std::string& text, bool first,
               const char* finish_reason, const TokenOut* logprob_token, const Tokenizer& tok) {
  json delta = json::object();
  if (first) delta["role"] = "assistant";
  if (finish_reason == nullptr || !text.empty()) delta["content"] = text;
  json lp = nullptr;
  if (r.logprobs && logprob_token != nullptr) lp = ChatLogprobs({*logprob_token}, tok);
  json choice = {{"index", 0}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", Finish(finish_reason)}};
  json j = {{"id", id},         {"object", "chat.completion.chunk"}, {"created", created},
            {"model", r.model}, {"choices", json::array({choice})},  {"system_fingerprint", "edgeq"}};
  if (r.include_usage) j["usage"] = nullptr;
  return j;
}

json CompletionChunk(const ParsedRequest& r, const std::string& id, int64_t created, const std::string& text,
                     const char* finish_reason, const TokenOut* logprob_token, const Tokenizer& tok) {
  json lp = nullptr;
  if (r.logprobs && logprob_token != nullptr) lp = CompletionLogprobs({*logprob_token}, tok, 0);
  json choice = {{"index", 0}, {"text", text}, {"logprobs", lp}, {"finish_reason", Finish(finish_reason)}};
  json j = {{"id", id},         {"object", "text_completion"},     {"created", created},
            {"model", r.model}, {"choices", json::array({choice})}, {"system_fingerprint", "edgeq"}};
  if (r.include_usage) j["usage"] = nullptr;
  return j;
}

json UsageChunk(const ParsedRequest& r, const std::string& id, int64_t created, int32_t n_prompt, int32_t n_gen) {
  return {{"id", id},
          {"object", r.endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", r.model},
          {"choices", json::array()},
          {"usage", Usage(n_prompt, n_gen)},
          {"system_fingerprint", "edgeq"}};
}

json ModelResponse(const ApiContext& ctx, int64_t created) {
  return {{"id", ctx.model_id}, {"object", "model"}, {"created", created}, {"owned_by", "edgeq"}};
}

json ModelsResponse(const ApiContext& ctx, int64_t created) {
  return {{"object", "list"}, {"data", json::array({ModelResponse(ctx, created)})}};
}

}  // namespace edgeq::server
