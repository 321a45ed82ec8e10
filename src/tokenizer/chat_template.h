// Chat templates. A full Jinja engine is not needed for the model families we run:
// the template text is recognized as one of a few well-known styles (as llama.cpp
// does) and the conversation is rendered exactly as that style's Jinja template
// would render it. An unrecognized template is an error, never silently replaced.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace edgeq {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatStyle {
  kChatML,  // <|im_start|>role\n...<|im_end|>\n             (Qwen2/2.5/3, SmolLM)
  kLlama2,  // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  kZephyr,  // <|role|>\n...</s>\n
  kPhi3,    // <|role|>\n...<|end|>\n
  kGemma,   // <start_of_turn>role\n...<end_of_turn>\n  (assistant is "model")
  // Fallback for models that ship no template (e.g. stories260K): the system text
  // then each message's content, each followed by "\n"; the assistant's turn is left
  // open. Chosen only when the model has no template at all (or by name).
  kPlain,
};

// Recognizes the style from template text. Empty text: NotFound ("no chat template");
// unknown text: Unimplemented quoting its beginning.
Result<ChatStyle> DetectChatStyle(const std::string& template_text);
const char* ChatStyleName(ChatStyle s);
Result<ChatStyle> ChatStyleFromName(const std::string& name);

// Options a template text may carry (e.g. Qwen2.5's default system message).
struct ChatTemplateExtras {
  std::string default_system;  // used when the conversation has no system message
};
ChatTemplateExtras DetectChatExtras(const std::string& template_text);

std::string ApplyChatTemplate(ChatStyle style, const std::vector<ChatMessage>& msgs, bool add_generation_prompt,
                              const std::string& bos_text, const std::string& eos_text,
                              const ChatTemplateExtras& extras = {});

}  // namespace edgeq
