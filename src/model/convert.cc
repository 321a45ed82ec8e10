#include "model/convert.h"

#include <list>

#include "format/gguf.h"
#include "format/tensor_types.h"

namespace edgeq {

void AddTokenizerMetadata(const TokenizerData& td, GgufWriter* w) {
  w->SetString("tokenizer.ggml.model", td.model);
  if (!td.pre.empty()) w->SetString("tokenizer.ggml.pre", td.pre);
  w->SetStringArray("tokenizer.ggml.tokens", td.tokens);
  if (!td.scores.empty()) w->SetF32Array("tokenizer.ggml.scores", td.scores);
  if (!td.token_types.empty()) w->SetI32Array("tokenizer.ggml.token_type", td.token_types);
  if (!td.merges.empty() || td.model == "gpt2") w->SetStringArray("tokenizer.ggml.merges", td.merges);
  if (td.bos_id >= 0) w->SetU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(td.bos_id));
  if (td.eos_id >= 0) w->SetU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(td.eos_id));
  if (td.unk_id >= 0) w->SetU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(td.unk_id));
  if (td.pad_id >= 0) w->SetU32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(td.pad_id));
  if (td.eot_id >= 0) w->SetU32("tokenizer.ggml.eot_token_id", static_cast<uint32_t>(td.eot_id));
  w->SetBool("tokenizer.ggml.add_bos_token", td.add_bos);
  w->SetBool("tokenizer.ggml.add_eos_token", td.add_eos);
  if (td.model == "llama") w->SetBool("tokenizer.ggml.add_space_prefix", td.add_space_prefix);
  if (!td.chat_template.empty()) w->SetString("tokenizer.chat_template", td.chat_template);
}

namespace {

// GGUF "llama" expects q/k rows ordered for adjacent-pair RoPE; HF checkpoints are
// ordered for half-split RoPE. Row h*hd + 2i + j of the output is row
// h*hd + j*(hd/2) + i of the input.
int64_t UnpermuteRow(int64_t r, int32_t head_dim) {
  const int64_t h = r / head_dim, within = r % head_dim;
  const int64_t i = within / 2, j = within % 2;
  return h * head_dim + j * (head_dim / 2) + i;
}

}  // namespace

Status WriteModelGguf(const Model& m, const std::string& out_path, const ConvertOptions& opts) {
  const ModelConfig& c = m.config;
  GgufWriter w;
  const std::string a = c.arch + ".";
  w.SetString("general.architecture", c.arch);
  w.SetString("general.name", c.name);
  w.SetU32("general.file_type", opts.type == GgmlType::kF32 ? 0 : opts.type == GgmlType::kF16 ? 1 : 7);
  w.SetU32(a + "context_length", static_cast<uint32_t>(c.context_length));
  w.SetU32(a + "embedding_length", static_cast<uint32_t>(c.dim));
  w.SetU32(a + "feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
  w.SetU32(a + "block_count", static_cast<uint32_t>(c.n_layers));
  w.SetU32(a + "attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.SetU32(a + "attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  w.SetU32(a + "attention.key_length", static_cast<uint32_t>(c.head_dim));
  w.SetU32(a + "attention.value_length", static_cast<uint32_t>(c.head_dim));
  w.SetF32(a + "attention.layer_norm_rms_epsilon", c.rms_eps);
  w.SetF32(a + "rope.freq_base", c.rope_theta);
  w.SetU32(a + "rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  w.SetU32(a + "vocab_size", static_cast<uint32_t>(c.vocab_size));
  if (c.rope_scaling.linear_factor != 1.0f) {
    w.SetString(a + "rope.scaling.type", "linear");
    w.SetF32(a + "rope.scaling.factor", c.rope_scaling.linear_factor);
  }
  if (c.rotate_inputs) w.SetBool("edgeq.rotate_inputs", true);
  for (const auto& [k, v] : opts.extra_string_metadata) w.SetString(k, v);
  AddTokenizerMetadata(m.tokenizer_data, &w);

  // Does this model's q/k need reordering for the GGUF arch's RoPE convention?
  const bool arch_is_neox = c.arch != "llama";
  const bool model_is_neox = c.rope_type == RopeType::kNeox;
  if (arch_is_neox != model_is_neox && c.qk_norm) {
    return Unimplemented("cannot convert: RoPE pair order differs from the GGUF architecture's and q/k norms are present");
  }
  const bool unpermute = !arch_is_neox && model_is_neox;

  std::list<std::vector<uint8_t>> buffers;  // keep tensor bytes alive until Write()
  struct Item {
    std::string name;
    const Tensor2D* t;
    const float* vec;
    int64_t n;
    bool permute;
  };
  std::vector<Item> items;
  const ModelWeights& mw = m.weights;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  items.push_back({"token_embd.weight", &mw.token_embd, nullptr, 0, false});
  items.push_back({"output_norm.weight", nullptr, mw.output_norm, c.dim, false});
  if (!c.tied_embeddings) items.push_back({"output.weight", &mw.output, nullptr, 0, false});
  for (int32_t i = 0; i < c.n_layers; ++i) {
    const LayerWeights& l = mw.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    items.push_back({p + "attn_norm.weight", nullptr, l.attn_norm, c.dim, false});
    items.push_back({p + "attn_q.weight", &l.wq, nullptr, 0, unpermute});
    items.push_back({p + "attn_k.weight", &l.wk, nullptr, 0, unpermute});
    items.push_back({p + "attn_v.weight", &l.wv, nullptr, 0, false});
    items.push_back({p + "attn_output.weight", &l.wo, nullptr, 0, false});
    if (l.bq) {
      items.push_back({p + "attn_q.bias", nullptr, l.bq, q_dim, unpermute});
      items.push_back({p + "attn_k.bias", nullptr, l.bk, kv_dim, unpermute});
      items.push_back({p + "attn_v.bias", nullptr, l.bv, kv_dim, false});
    }
    if (l.q_norm) {
      items.push_back({p + "attn_q_norm.weight", nullptr, l.q_norm, c.head_dim, false});
      items.push_back({p + "attn_k_norm.weight", nullptr, l.k_norm, c.head_dim, false});
    }
    items.push_back({p + "ffn_norm.weight", nullptr, l.ffn_norm, c.dim, false});
    items.push_back({p + "ffn_gate.weight", &l.w_gate, nullptr, 0, false});
    items.push_back({p + "ffn_down.weight", &l.w_down, nullptr, 0, false});
    items.push_back({p + "ffn_up.weight", &l.w_up, nullptr, 0, false});
  }
  if (!m.rope_freq_factors.empty()) {
    items.push_back({"rope_freqs.weight", nullptr, m.rope_freq_factors.data(),
                     static_cast<int64_t>(m.rope_freq_factors.size()), false});
  }

  const int total = static_cast<int>(items.size());
  std::vector<float> row;
  for (int idx = 0; idx < total; ++idx) {
    const Item& it = items[idx];
    std::string note;
    if (it.vec != nullptr) {
      std::vector<uint8_t>& buf = buffers.emplace_back(static_cast<size_t>(it.n) * 4);
      float* dst = reinterpret_cast<float*>(buf.data());
      for (int64_t r = 0; r < it.n; ++r) dst[r] = it.vec[it.permute ? UnpermuteRow(r, c.head_dim) : r];
      RETURN_IF_ERROR(w.AddTensor(it.name, GgmlType::kF32, {static_cast<uint64_t>(it.n)}, buf.data(), buf.size()));
    } else {
      const Tensor2D& t = *it.t;
      if (opts.keep_types && !it.permute) {  // already in its final type: copy the bytes
        RETURN_IF_ERROR(w.AddTensor(it.name, t.type, {static_cast<uint64_t>(t.cols), static_cast<uint64_t>(t.rows)},
                                    t.data, t.row_bytes * t.rows));
        if (opts.progress) opts.progress(idx + 1, total, it.name, note);
        continue;
      }
      GgmlType type = opts.type;
      const GgmlTypeTraits& tr = GgmlTraits(type);
      if (t.cols % tr.block_size != 0) {
        note = "row length " + std::to_string(t.cols) + " is not a multiple of " + std::to_string(tr.block_size) +
               ": stored as f16";
        type = GgmlType::kF16;
      }
      ASSIGN_OR_RETURN(uint64_t rb, RowBytes(type, t.cols));
      std::vector<uint8_t>& buf = buffers.emplace_back(rb * t.rows);
      row.resize(t.cols);
      for (int64_t r = 0; r < t.rows; ++r) {
        GetRowF32(t, it.permute ? UnpermuteRow(r, c.head_dim) : r, row.data());
        RETURN_IF_ERROR(EncodeRow(type, row.data(), buf.data() + r * rb, t.cols));
      }
      RETURN_IF_ERROR(w.AddTensor(it.name, type, {static_cast<uint64_t>(t.cols), static_cast<uint64_t>(t.rows)},
                                  buf.data(), buf.size()));
    }
    if (opts.progress) opts.progress(idx + 1, total, it.name, note);
  }
  return w.Write(out_path);
}

}  // namespace edgeq
