// Every request body of the OpenAI API mapping (server/api.cc): the first byte picks the
// endpoint, the rest is the body. Parsed requests are also rendered into responses and
// stream chunks (with arbitrary token bytes), which must never throw.
#include <cstdint>
#include <string>

#include "server/api.h"
#include "tokenizer/tokenizer.h"

namespace {
const edgeq::Tokenizer* Tok() {
  static const edgeq::Tokenizer* tok = [] {
    auto data = edgeq::TokenizerDataFromLlama2c(std::string(EDGEQ_SOURCE_DIR) + "/models/stories260K/tok512.bin", 512);
    if (!data.ok()) __builtin_trap();
    auto t = edgeq::Tokenizer::Create(std::move(data).value());
    if (!t.ok()) __builtin_trap();
    return std::move(t).value().release();
  }();
  return tok;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using namespace edgeq::server;
  ApiContext ctx;
  ctx.tok = Tok();
  ctx.model_id = "stories260K";
  ctx.chat_style = static_cast<edgeq::ChatStyle>(data[0] % 7);
  ctx.n_ctx = 512;
  const Endpoint ep = (data[0] & 0x80) ? Endpoint::kCompletion : Endpoint::kChat;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  ParsedRequest r;
  ApiError err;
  if (!ParseRequest(ep, body, ctx, &r, &err)) {
    if (err.message.empty() || err.status < 400) __builtin_trap();  // every refusal says why
    (void)Dump(ErrorJson(err));
    return 0;
  }
  if (r.task.prompt.empty() || static_cast<int32_t>(r.task.prompt.size()) >= ctx.n_ctx) __builtin_trap();
  std::vector<edgeq::TokenOut> toks(2);
  toks[0].id = r.task.prompt.back();
  toks[0].text = body.substr(0, 8);  // arbitrary bytes, possibly invalid UTF-8
  toks[0].top = {{1, -0.5f}, {2, -1.5f}};
  toks[1].id = -1;
  (void)Dump(ChatResponse(r, "id", 0, body, "stop", 1, 2, toks, *ctx.tok));
  (void)Dump(CompletionResponse(r, "id", 0, body, "length", 1, 2, toks, *ctx.tok));
  (void)Dump(ChatChunk(r, "id", 0, body, true, nullptr, &toks[0], *ctx.tok));
  (void)Dump(CompletionChunk(r, "id", 0, body, nullptr, &toks[0], *ctx.tok));
  (void)Dump(UsageChunk(r, "id", 0, 1, 2));
  return 0;
}
