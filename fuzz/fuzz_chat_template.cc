// Chat template detection and rendering on arbitrary template text and messages.
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  size_t cut = s.find('\n');
  std::string tmpl = s.substr(0, cut);
  std::string content = cut == std::string::npos ? "" : s.substr(cut + 1);
  auto style = edgeq::DetectChatStyle(tmpl);
  std::vector<edgeq::ChatMessage> msgs = {{"system", content}, {"user", content}, {"assistant", content}, {"user", tmpl}};
  for (auto st : {edgeq::ChatStyle::kChatML, edgeq::ChatStyle::kLlama2, edgeq::ChatStyle::kLlama3, edgeq::ChatStyle::kZephyr,
                  edgeq::ChatStyle::kPhi3, edgeq::ChatStyle::kGemma, edgeq::ChatStyle::kPlain}) {
    (void)edgeq::ApplyChatTemplate(st, msgs, true, "<s>", "</s>", edgeq::DetectChatExtras(tmpl));
  }
  if (style.ok()) (void)edgeq::ApplyChatTemplate(*style, msgs, false, "", "");
  return 0;
}
