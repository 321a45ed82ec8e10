#include "tokenizer/chat_template.h"

namespace edgeq {
namespace {

bool Has(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

std::string Strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<ChatStyle> DetectChatStyle(const std::string& t) {
  if (t.empty()) return NotFound("the model has no chat template");
  if (Has(t, "<|im_start|>")) return ChatStyle::kChatML;
  if (Has(t, "<|start_header_id|>")) return ChatStyle::kLlama3;
  if (Has(t, "<start_of_turn>")) return ChatStyle::kGemma;
  if (Has(t, "[INST]")) return ChatStyle::kLlama2;
  if (Has(t, "<|user|>") && Has(t, "<|end|>")) return ChatStyle::kPhi3;
  if (Has(t, "<|user|>")) return ChatStyle::kZephyr;
  std::string head = t.substr(0, 80);
  for (char& c : head) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return Unimplemented("unrecognized chat template (starts with \"" + head +
                       "\"); pass --chat-template chatml|llama2|llama3|zephyr|phi3|gemma|plain");
}

const char* ChatStyleName(ChatStyle s) {
  switch (s) {
    case ChatStyle::kChatML: return "chatml";
    case ChatStyle::kLlama2: return "llama2";
    case ChatStyle::kLlama3: return "llama3";
    case ChatStyle::kZephyr: return "zephyr";
    case ChatStyle::kPhi3: return "phi3";
    case ChatStyle::kGemma: return "gemma";
    case ChatStyle::kPlain: return "plain";
  }
  return "?";
}

Result<ChatStyle> ChatStyleFromName(const std::string& name) {
  for (ChatStyle s : {ChatStyle::kChatML, ChatStyle::kLlama2, ChatStyle::kLlama3, ChatStyle::kZephyr, ChatStyle::kPhi3,
                      ChatStyle::kGemma, ChatStyle::kPlain}) {
    if (name == ChatStyleName(s)) return s;
  }
  return InvalidArgument("unknown chat template name '" + name + "' (chatml, llama2, llama3, zephyr, phi3, gemma, plain)");
}

ChatTemplateExtras DetectChatExtras(const std::string& t) {
  ChatTemplateExtras e;
  static const char* kDefaults[] = {
      "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
      "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
  };
  for (const char* d : kDefaults) {
    if (Has(t, d)) e.default_system = d;
  }
  return e;
}

std::string ApplyChatTemplate(ChatStyle style, const std::vector<ChatMessage>& in, bool gen, const std::string& bos,
                              const std::string& eos, const ChatTemplateExtras& extras) {
  std::vector<ChatMessage> msgs = in;
  std::string out;
  switch (style) {
    case ChatStyle::kChatML:
      if (!extras.default_system.empty() && (msgs.empty() || msgs[0].role != "system")) {
        msgs.insert(msgs.begin(), {"system", extras.default_system});
      }
      for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (gen) out += "<|im_start|>assistant\n";
      break;
    case ChatStyle::kLlama2: {
      std::string system;
      size_t first = 0;
      if (!msgs.empty() && msgs[0].role == "system") {
        system = msgs[0].content;
        first = 1;
      }
      for (size_t i = first; i < msgs.size(); ++i) {
        std::string content = msgs[i].content;
        if (i == first && !system.empty()) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
        if (msgs[i].role == "user") out += bos + "[INST] " + Strip(content) + " [/INST]";
        else if (msgs[i].role == "assistant") out += " " + Strip(content) + " " + eos;
      }
      break;
    }
    case ChatStyle::kLlama3:
      out += bos;
      for (const auto& m : msgs) out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + Strip(m.content) + "<|eot_id|>";
      if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatStyle::kZephyr:
      for (const auto& m : msgs) out += "<|" + m.role + "|>\n" + m.content + eos + "\n";
      if (gen) out += "<|assistant|>\n";
      break;
    case ChatStyle::kPhi3:
      for (const auto& m : msgs) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      if (gen) out += "<|assistant|>\n";
      break;
    case ChatStyle::kGemma: {
      out += bos;
      std::string system;
      size_t first = 0;
      if (!msgs.empty() && msgs[0].role == "system") {
        system = msgs[0].content;
        first = 1;
      }
      for (size_t i = first; i < msgs.size(); ++i) {
        const std::string role = msgs[i].role == "assistant" ? "model" : msgs[i].role;
        std::string content = msgs[i].content;
        if (i == first && !system.empty()) content = system + "\n\n" + content;
        out += "<start_of_turn>" + role + "\n" + Strip(content) + "<end_of_turn>\n";
      }
      if (gen) out += "<start_of_turn>model\n";
      break;
    }
    case ChatStyle::kPlain:
      for (const auto& m : msgs) out += m.content + "\n";
      break;
  }
  return out;
}

}  // namespace edgeq
