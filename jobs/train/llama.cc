#include "jobs/train/llama.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/model_folder.h"
#include "jobs/train/attention.h"
#include "jobs/train/lora.h"
#include "jobs/train/safetensors.h"
#include "jobs/train/weight_files.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

struct NamedShape {
  std::string name;
  std::vector<int64_t> shape;
};

// A decoder layer's tensors, written once: HF's name after "model.layers.N.", the member, the
// shape, and whether the config has it. Loading, saving, device moves and weight() read it.
struct LayerTensor {
  const char* suffix;
  at::Tensor LlamaLayer::*member;
  std::vector<int64_t> (*shape)(const LlamaConfig&);
  bool (*present)(const LlamaConfig&);
};

bool always(const LlamaConfig&) { return true; }
bool has_qkv_bias(const LlamaConfig& c) { return c.qkv_bias; }
bool has_o_bias(const LlamaConfig& c) { return c.o_bias; }
bool has_mlp_bias(const LlamaConfig& c) { return c.mlp_bias; }

const LayerTensor kLayerTensors[] = {
    {"input_layernorm.weight", &LlamaLayer::input_norm,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.hidden_size}; }, always},
    {"self_attn.q_proj.weight", &LlamaLayer::q_proj,
     [](const LlamaConfig& c) {
       return std::vector<int64_t>{c.q_dim(), c.hidden_size};
     },
     always},
    {"self_attn.q_proj.bias", &LlamaLayer::q_bias,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.q_dim()}; }, has_qkv_bias},
    {"self_attn.k_proj.weight", &LlamaLayer::k_proj,
     [](const LlamaConfig& c) {
       return std::vector<int64_t>{c.kv_dim(), c.hidden_size};
     },
     always},
    {"self_attn.k_proj.bias", &LlamaLayer::k_bias,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.kv_dim()}; }, has_qkv_bias},
    {"self_attn.v_proj.weight", &LlamaLayer::v_proj,
     [](const LlamaConfig& c) {
       return std::vector<int64_t>{c.kv_dim(), c.hidden_size};
     },
     always},
    {"self_attn.v_proj.bias", &LlamaLayer::v_bias,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.kv_dim()}; }, has_qkv_bias},
    {"self_attn.o_proj.weight", &LlamaLayer::o_proj,
     [](const LlamaConfig& c) {
       return std::vector<int64_t>{c.hidden_size, c.q_dim()};
     },
     always},
    {"self_attn.o_proj.bias", &LlamaLayer::o_bias,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.hidden_size}; }, has_o_bias},
    {"post_attention_layernorm.weight", &LlamaLayer::post_norm,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.hidden_size}; }, always},
    {"mlp.gate_proj.weight", &LlamaLayer::gate_proj,
     [](const LlamaConfig& c) {
       return std::vector<int64_t>{c.intermediate_size, c.hidden_size};
     },
     always},
    {"mlp.gate_proj.bias", &LlamaLayer::gate_bias,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.intermediate_size}; }, has_mlp_bias},
    {"mlp.up_proj.weight", &LlamaLayer::up_proj,
     [](const LlamaConfig& c) {
       return std::vector<int64_t>{c.intermediate_size, c.hidden_size};
     },
     always},
    {"mlp.up_proj.bias", &LlamaLayer::up_bias,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.intermediate_size}; }, has_mlp_bias},
    {"mlp.down_proj.weight", &LlamaLayer::down_proj,
     [](const LlamaConfig& c) {
       return std::vector<int64_t>{c.hidden_size, c.intermediate_size};
     },
     always},
    {"mlp.down_proj.bias", &LlamaLayer::down_bias,
     [](const LlamaConfig& c) { return std::vector<int64_t>{c.hidden_size}; }, has_mlp_bias},
};

// Every tensor of an HF checkpoint of the config, in a fixed order, with its shape.
std::vector<NamedShape> hf_tensor_layout(const LlamaConfig& c) {
  std::vector<NamedShape> out{{"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}}};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    for (const auto& lt : kLayerTensors)
      if (lt.present(c))
        out.push_back({"model.layers." + std::to_string(l) + "." + lt.suffix, lt.shape(c)});
  out.push_back({"model.norm.weight", {c.hidden_size}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}});
  return out;
}

// The model's tensor of an HF name (of hf_tensor_layout).
at::Tensor& tensor_by_name(LlamaModel& m, const std::string& name) {
  if (name == "model.embed_tokens.weight") return m.embed_tokens;
  if (name == "model.norm.weight") return m.final_norm;
  if (name == "lm_head.weight") return m.lm_head;
  const std::string prefix = "model.layers.";
  size_t dot = name.find('.', prefix.size());
  auto& L = m.layers.at(size_t(std::stoll(name.substr(prefix.size(), dot - prefix.size()))));
  const std::string field = name.substr(dot + 1);
  for (const auto& lt : kLayerTensors)
    if (field == lt.suffix) return L.*lt.member;
  throw Error("internal: unknown tensor " + name);
}

const at::Tensor& tensor_by_name(const LlamaModel& m, const std::string& name) {
  return tensor_by_name(const_cast<LlamaModel&>(m), name);
}

void assign(LlamaModel& m, const std::string& name, at::Tensor t) {
  tensor_by_name(m, name) = std::move(t);
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  // HF LlamaRMSNorm: variance in fp32, normalised value cast back before the weight.
  at::Tensor xf = x.scalar_type() == at::kDouble ? x : x.to(at::kFloat);  // at least fp32
  at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x W^T (+ b, undefined when the projection has none) (+ the LoRA term).
at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, int64_t layer,
                   const char* module, const ForwardOptions& o) {
  at::Tensor y = at::linear(x, w, b);
  if (o.lora) {
    if (const LoraPair* p = o.lora->find(layer, module)) {
      at::Tensor dropped = at::dropout(x, o.lora->config().dropout, o.training);
      // Adapters are fp32 master weights; they compute in the activations' dtype (bf16/fp16 runs).
      const auto dt = x.scalar_type();
      y = y +
          at::linear(at::linear(dropped, p->a.to(dt)), p->b.to(dt)) * o.lora->config().scaling();
    }
  }
  return y;
}

}  // namespace

const at::Tensor& LlamaModel::weight(int64_t layer, const std::string& module) const {
  for (const auto& lt : kLayerTensors)
    if (lt.suffix == "self_attn." + module + ".weight" || lt.suffix == "mlp." + module + ".weight")
      return layers.at(size_t(layer)).*lt.member;
  throw Error("internal: no projection \"" + module + "\"");
}

void LlamaModel::to(const at::Device& device) {
  const bool tied = lm_head.is_same(embed_tokens);
  embed_tokens = embed_tokens.to(device);
  final_norm = final_norm.to(device);
  lm_head = tied ? embed_tokens : lm_head.to(device);
  for (auto& l : layers)
    for (const auto& lt : kLayerTensors)
      if ((l.*lt.member).defined()) l.*lt.member = (l.*lt.member).to(device);
}

LlamaModel load_hf_model(const fs::path& dir, at::ScalarType dtype, const at::Device& device) {
  if (fs::is_regular_file(dir))
    throw InputError(dir.string() + ": is a file (" + weight_format_name(sniff_weight_file(dir)) +
                     "); a model is a folder with config.json and its weights");
  LlamaModel m;
  m.config = read_llama_config(dir / "config.json");
  m.layers.resize(size_t(m.config.num_hidden_layers));
  // The weights as HF saves them: safetensors first, else PyTorch .bin (the era of TALLRec's
  // decapoda-research/llama-7b-hf and huggyllama/llama-7b), single file or sharded.
  const ModelWeightFiles weights = find_model_weight_files(dir);
  // One shard open at a time, HF's shards being in the order read here; a .bin shard's tensors
  // are handed over as they are read, so the peak is about the model itself.
  fs::path open_path;
  std::unique_ptr<TensorSource> open;
  for (const auto& [name, shape] : hf_tensor_layout(m.config)) {
    const fs::path& file = weights.file_of(name);
    if (file != open_path) {
      open.reset();
      open = open_tensor_file(file);
      open_path = file;
    }
    assign(m, name, open->load(name, dtype, shape).to(device));
  }
  if (m.config.tie_word_embeddings) m.lm_head = m.embed_tokens;
  return m;
}

LlamaModel load_llama2c_model(const fs::path& path) {
  const std::string origin = path.string();
  // llama2.c files have no magic; refuse the formats that do, by name, before misreading them.
  if (const WeightFormat f = sniff_weight_file(path); f != WeightFormat::kUnknown) {
    if (f == WeightFormat::kGitLfsPointer || f == WeightFormat::kTorchLegacy)
      require_weight_format(path, WeightFormat::kLlama2c);
    throw InputError(origin + ": is a " + weight_format_name(f) +
                     " file, not a llama2.c checkpoint (an HF model is "
                     "passed as its folder)");
  }
  std::string bytes = read_file(path);
  if (bytes.size() < 28) throw InputError(origin + ": truncated llama2.c header");
  int32_t h[7];
  std::memcpy(h, bytes.data(), sizeof h);
  LlamaConfig c;
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_hidden_layers = h[2];
  c.num_attention_heads = h[3];
  c.num_key_value_heads = h[4];
  const bool shared = h[5] > 0;
  c.vocab_size = shared ? h[5] : -h[5];
  c.max_position_embeddings = h[6];
  c.rms_norm_eps = 1e-5;  // llama2.c's run.c
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = shared;
  validate_llama_config(c, origin);

  const int64_t H = c.hidden_size, I = c.intermediate_size, L = c.num_hidden_layers,
                D = c.head_dim();
  const int64_t q = c.num_attention_heads * D, kv = c.kv_dim();
  size_t at_float = 7;
  const size_t total_floats = (bytes.size()) / 4;
  auto take = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    if ((at_float + size_t(n)) * 4 > bytes.size())
      throw InputError(origin + ": truncated (weights end early)");
    at::Tensor t = at::empty(shape, at::kFloat);
    std::memcpy(t.data_ptr<float>(), bytes.data() + at_float * 4, size_t(n) * 4);
    at_float += size_t(n);
    return t;
  };
  // Meta's interleaved rotary pairs (x0,x1),(x2,x3).. -> HF's halves, per head.
  auto permute = [&](at::Tensor w, int64_t heads) {
    const int64_t rows = w.size(0), cols = w.size(1);
    return w.view({heads, rows / heads / 2, 2, cols})
        .transpose(1, 2)
        .reshape({rows, cols})
        .contiguous();
  };
  LlamaModel m;
  m.config = c;
  m.layers.resize(size_t(L));
  m.embed_tokens = take({c.vocab_size, H});
  at::Tensor att_norm = take({L, H}), wq = take({L, q, H}), wk = take({L, kv, H}),
             wv = take({L, kv, H});
  at::Tensor wo = take({L, H, q}), ffn_norm = take({L, H}), w1 = take({L, I, H}),
             w2 = take({L, H, I});
  at::Tensor w3 = take({L, I, H});
  m.final_norm = take({H});
  take({c.max_position_embeddings, D / 2});  // freq_cis_real: recomputed from rope_theta
  take({c.max_position_embeddings, D / 2});  // freq_cis_imag
  m.lm_head = shared ? m.embed_tokens : take({c.vocab_size, H});
  if (at_float != total_floats)
    throw InputError(origin + ": " + std::to_string(total_floats - at_float) +
                     " unexpected trailing floats");
  for (int64_t l = 0; l < L; ++l) {
    auto& layer = m.layers[size_t(l)];
    layer.input_norm = att_norm[l].clone();
    layer.q_proj = permute(wq[l], c.num_attention_heads);
    layer.k_proj = permute(wk[l], c.num_key_value_heads);
    layer.v_proj = wv[l].clone();
    layer.o_proj = wo[l].clone();
    layer.post_norm = ffn_norm[l].clone();
    layer.gate_proj = w1[l].clone();
    layer.down_proj = w2[l].clone();
    layer.up_proj = w3[l].clone();
  }
  return m;
}

namespace {
at::Tensor random_tensor(const NamedShape& s, at::Generator& gen, at::ScalarType dtype) {
  const bool bias = s.name.size() > 5 && s.name.compare(s.name.size() - 5, 5, ".bias") == 0;
  if (bias) return at::zeros(s.shape, at::TensorOptions().dtype(dtype));
  if (s.shape.size() == 1) return at::ones(s.shape, at::TensorOptions().dtype(dtype));  // norms
  return at::normal(0.0, 0.02, s.shape, gen, at::TensorOptions().dtype(at::kFloat)).to(dtype);
}
}  // namespace

LlamaModel random_llama_model(const LlamaConfig& config, uint64_t seed, at::ScalarType dtype) {
  validate_llama_config(config, "model config");
  at::Generator gen = at::detail::createCPUGenerator(seed);
  LlamaModel m;
  m.config = config;
  m.layers.resize(size_t(config.num_hidden_layers));
  for (const auto& s : hf_tensor_layout(config)) assign(m, s.name, random_tensor(s, gen, dtype));
  if (config.tie_word_embeddings) m.lm_head = m.embed_tokens;
  return m;
}

void save_hf_model(const LlamaModel& model, const fs::path& dir) {
  fs::create_directories(dir);
  const at::ScalarType dtype = parse_torch_dtype(model.config.torch_dtype);
  std::vector<TensorToWrite> tensors;
  for (const auto& s : hf_tensor_layout(model.config))
    tensors.push_back({s.name, tensor_by_name(model, s.name).to(dtype)});
  write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
  write_file_atomically(dir / "config.json", llama_config_json(model.config));
}

void write_random_hf_model(const LlamaConfig& config, uint64_t seed, const fs::path& dir) {
  validate_llama_config(config, "model config");
  fs::create_directories(dir);
  const at::ScalarType dtype = parse_torch_dtype(config.torch_dtype);
  const auto layout = hf_tensor_layout(config);
  std::vector<TensorSpec> specs;
  for (const auto& s : layout) specs.push_back({s.name, dtype, s.shape});
  at::Generator gen = at::detail::createCPUGenerator(seed);
  write_safetensors_streaming(dir / "model.safetensors", specs,
                              [&](size_t i) { return random_tensor(layout[i], gen, dtype); },
                              {{"format", "pt"}});
  write_file_atomically(dir / "config.json", llama_config_json(config));
}

at::Tensor rope_inv_freq(const LlamaConfig& c, const at::TensorOptions& on) {
  const int64_t D = c.head_dim();
  at::Tensor inv_freq =
      1.0 /
      at::pow(c.rope_theta, at::arange(0, D, 2, on.dtype(at::kLong)).to(at::kFloat) / double(D));
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::kLinear) return inv_freq / s.factor;
  if (s.type != RopeScaling::Type::kLlama3) return inv_freq;
  // transformers' _compute_llama3_parameters: long wavelengths divided by the factor, short ones
  // kept, the band between them interpolated.
  const double old_len = double(s.original_max_position_embeddings);
  const double low_wavelen = old_len / s.low_freq_factor,
               high_wavelen = old_len / s.high_freq_factor;
  at::Tensor wavelen = 2 * M_PI / inv_freq;
  at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
  at::Tensor smooth =
      (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  at::Tensor medium =
      at::logical_not(wavelen < high_wavelen) & at::logical_not(wavelen > low_wavelen);
  return at::where(medium, smoothed, scaled);
}

at::Tensor positions_from_mask(const at::Tensor& attention_mask) {
  at::Tensor pos = attention_mask.to(at::kLong).cumsum(-1) - 1;
  return pos.masked_fill(attention_mask.eq(0), 1).clamp_min(0);
}

at::Tensor llama_forward(const LlamaModel& model, const at::Tensor& input_ids,
                         const at::Tensor& attention_mask, const at::Tensor& position_ids,
                         const ForwardOptions& o) {
  return at::linear(llama_hidden(model, input_ids, attention_mask, position_ids, o),
                    model.lm_head);  // [B, T, V]
}

at::Tensor llama_hidden(const LlamaModel& model, const at::Tensor& input_ids,
                        const at::Tensor& attention_mask, const at::Tensor& position_ids,
                        const ForwardOptions& o) {
  const LlamaConfig& c = model.config;
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const auto dtype = model.embed_tokens.scalar_type();

  // Mistral's sliding window changes nothing while every key is within it; beyond, refuse.
  if (c.sliding_window > 0 && T > c.sliding_window)
    throw InputError("a sequence of " + std::to_string(T) + " tokens is longer than the model's " +
                     "sliding_window of " + std::to_string(c.sliding_window) +
                     " (sliding-window attention is not implemented; lower cutoff_len)");
  at::Tensor h = at::embedding(model.embed_tokens, input_ids);  // [B, T, H]

  // Rotary tables, computed in fp32 as HF does: angles = pos * inv_freq, emb = [angles, angles].
  const auto on = at::TensorOptions().device(input_ids.device());
  at::Tensor pos = position_ids.defined()
                       ? position_ids
                       : at::arange(T, on.dtype(at::kLong)).unsqueeze(0).expand({B, T});
  at::Tensor inv_freq = rope_inv_freq(c, on);
  at::Tensor angles = pos.to(at::kFloat).unsqueeze(-1) * inv_freq;  // [B, T, D/2]
  at::Tensor emb = at::cat({angles, angles}, -1);                   // [B, T, D]
  at::Tensor cos = emb.cos().to(dtype).unsqueeze(1),
             sin = emb.sin().to(dtype).unsqueeze(1);  // [B, 1, T, D]

  // Causal + padding mask; rows that see no key get HF eager's uniform attention (attention.h).
  const AttentionMask mask = make_attention_mask(attention_mask, B, T, dtype, input_ids.device());

  const LayerContext ctx{cos, sin, mask};
  if (o.gradient_checkpointing && at::GradMode::is_enabled()) {
    // The checkpointed layers need an input that requires grad to stay in the graph (HF's
    // enable_input_require_grads does the same for the embeddings' output).
    h.requires_grad_(true);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) h = checkpointed_layer(model, l, h, ctx, o);
  } else {
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) h = llama_layer(model, l, h, ctx, o);
  }
  return rms_norm(h, model.final_norm, c.rms_norm_eps);  // [B, T, H]
}

at::Tensor llama_layer(const LlamaModel& model, int64_t l, at::Tensor h, const LayerContext& ctx,
                       const ForwardOptions& o) {
  const LlamaConfig& c = model.config;
  const int64_t B = h.size(0), T = h.size(1), Nh = c.num_attention_heads,
                Nkv = c.num_key_value_heads, D = c.head_dim();
  const at::Tensor &cos = ctx.cos, &sin = ctx.sin;
  const AttentionMask& mask = ctx.mask;
  {
    const LlamaLayer& L = model.layers[size_t(l)];
    at::Tensor a = rms_norm(h, L.input_norm, c.rms_norm_eps);
    at::Tensor q = project(a, L.q_proj, L.q_bias, l, "q_proj", o)
                       .view({B, T, Nh, D})
                       .transpose(1, 2);  // [B, Nh, T, D]
    at::Tensor k = project(a, L.k_proj, L.k_bias, l, "k_proj", o)
                       .view({B, T, Nkv, D})
                       .transpose(1, 2);  // [B, Nkv, T, D]
    at::Tensor v =
        project(a, L.v_proj, L.v_bias, l, "v_proj", o).view({B, T, Nkv, D}).transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    if (Nkv != Nh) {
      k = k.repeat_interleave(Nh / Nkv, 1);
      v = v.repeat_interleave(Nh / Nkv, 1);
    }
    at::Tensor attn = attention(q, k, v, mask);  // [B, Nh, T, D]
    attn = attn.transpose(1, 2).reshape({B, T, Nh * D});
    h = h + project(attn, L.o_proj, L.o_bias, l, "o_proj", o);
    at::Tensor m = rms_norm(h, L.post_norm, c.rms_norm_eps);
    at::Tensor gate = project(m, L.gate_proj, L.gate_bias, l, "gate_proj", o);
    at::Tensor up = project(m, L.up_proj, L.up_bias, l, "up_proj", o);
    h = h + project(at::silu(gate) * up, L.down_proj, L.down_bias, l, "down_proj", o);
  }
  return h;
}

std::vector<int64_t> greedy_generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                                     int64_t steps, int64_t stop_id) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> tokens = prompt, generated;
  for (int64_t s = 0; s < steps; ++s) {
    if (int64_t(tokens.size()) > model.config.max_position_embeddings) break;
    at::Tensor ids = at::tensor(tokens, at::kLong).unsqueeze(0).to(model.embed_tokens.device());
    at::Tensor logits = llama_forward(model, ids, at::Tensor(), at::Tensor());
    int64_t next = logits[0][int64_t(tokens.size()) - 1].argmax().item<int64_t>();
    if (next == stop_id) break;
    generated.push_back(next);
    tokens.push_back(next);
  }
  return generated;
}

}  // namespace tallrec
