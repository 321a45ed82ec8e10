// The OpenAI API mapping: request JSON -> TaskParams (with OpenAI's validation rules
// and error shapes), and results -> response / stream-chunk JSON. No I/O and no
// threads here, so every request body can be unit-tested and fuzzed directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "runtime/scheduler.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace edgeq::server {

// An OpenAI-shaped error: {"error":{"message","type","param","code"}} with an HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
nlohmann::json ErrorJson(const ApiError& e);

// What the mapping needs to know about the served model.
struct ApiContext {
  const Tokenizer* tok = nullptr;
  std::string model_id;              // the name clients use (--alias or the file name)
  ChatStyle chat_style = ChatStyle::kPlain;
  bool chat_plain_fallback = false;  // the model has no template; the plain fallback is used
  ChatTemplateExtras chat_extras;
  int32_t n_ctx = 0;                 // per request (slot)
};

enum class Endpoint { kChat, kCompletion };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kChat;
  TaskParams task;
  std::string model;          // as requested (echoed back)
  bool stream = false;
  bool include_usage = false; // stream_options.include_usage
  bool logprobs = false;      // chat: logprobs=true; completions: logprobs >= 0
  bool echo = false;          // completions: prepend the prompt text
  std::string prompt_text;    // completions with echo
};

// Parses and validates a /v1/chat/completions or /v1/completions body. On failure
// returns false and fills *err (status 400/404 with OpenAI's types and codes).
bool ParseRequest(Endpoint ep, const std::string& body, const ApiContext& ctx, ParsedRequest* out, ApiError* err);

// Full (non-streaming) responses.
nlohmann::json ChatResponse(const ParsedRequest& r, const std::string& id, int64_t created, const std::string& text,
                            const char* finish_reason, int32_t n_prompt, int32_t n_gen,
                            const std::vector<TokenOut>& tokens, const Tokenizer& tok);
nlohmann::json CompletionResponse(const ParsedRequest& r, const std::string& id, int64_t created,
                                  const std::string& text, const char* finish_reason, int32_t n_prompt, int32_t n_gen,
                                  const std::vector<TokenOut>& tokens, const Tokenizer& tok);

// Stream chunks. `first` chat chunks carry the assistant role; finish_reason null
// until the last content chunk; usage chunks have empty choices.
nlohmann::json ChatChunk(const ParsedRequest& r, const std::string& id, int64_t created, const std::string& text,
                         bool first, const char* finish_reason, const TokenOut* logprob_token, const Tokenizer& tok);
nlohmann::json CompletionChunk(const ParsedRequest& r, const std::string& id, int64_t created,
                               const std::string& text, const char* finish_reason, const TokenOut* logprob_token,
                               const Tokenizer& tok);
nlohmann::json UsageChunk(const ParsedRequest& r, const std::string& id, int64_t created, int32_t n_prompt,
                          int32_t n_gen);

nlohmann::json ModelsResponse(const ApiContext& ctx, int64_t created);
nlohmann::json ModelResponse(const ApiContext& ctx, int64_t created);

// JSON text with invalid UTF-8 (a model can emit any bytes) replaced, never thrown on.
std::string Dump(const nlohmann::json& j);

}  // namespace edgeq::server
