// Loading, saving and creating LlamaModel weights (llama.h): HF folders (safetensors or .bin,
// sharded or not), llama2.c checkpoints, random weights. One table names a decoder layer's
// tensors; every reader and writer here, device moves and weight() go through it. Shapes come
// from common/model_config.h (projection_shape), which the pre-flight reads too.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <memory>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/model_folder.h"
#include "jobs/train/llama.h"
#include "jobs/train/safetensors.h"
#include "jobs/train/weight_files.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

struct NamedShape {
  std::string name;
  std::vector<int64_t> shape;
};

// What a row of the table is: a norm's weight [H], a projection's weight [out, in] or its bias
// [out] (present only when the config has that bias).
enum class Part { kNorm, kWeight, kBias };

// A decoder layer's tensors, written once: HF's name after "model.layers.N.", the member, and
// for a projection its name (shapes from projection_shape).
struct LayerTensor {
  const char* suffix;       // HF's
  const char* gguf_suffix;  // llama.cpp's, after "blk.N."
  at::Tensor LlamaLayer::*member;
  Part part;
  const char* projection;  // nullptr for the norms

  bool present(const LlamaConfig& c) const {
    if (part != Part::kBias) return true;
    const std::string p = projection;
    if (p == "o_proj") return c.o_bias;
    return is_attention_projection(p) ? c.qkv_bias : c.mlp_bias;
  }
  std::vector<int64_t> shape(const LlamaConfig& c) const {
    if (part == Part::kNorm) return {c.hidden_size};
    const auto [out, in] = projection_shape(c, projection);
    return part == Part::kWeight ? std::vector<int64_t>{out, in} : std::vector<int64_t>{out};
  }
};

const LayerTensor kLayerTensors[] = {
    {"input_layernorm.weight", "attn_norm.weight", &LlamaLayer::input_norm, Part::kNorm, nullptr},
    {"self_attn.q_proj.weight", "attn_q.weight", &LlamaLayer::q_proj, Part::kWeight, "q_proj"},
    {"self_attn.q_proj.bias", "attn_q.bias", &LlamaLayer::q_bias, Part::kBias, "q_proj"},
    {"self_attn.k_proj.weight", "attn_k.weight", &LlamaLayer::k_proj, Part::kWeight, "k_proj"},
    {"self_attn.k_proj.bias", "attn_k.bias", &LlamaLayer::k_bias, Part::kBias, "k_proj"},
    {"self_attn.v_proj.weight", "attn_v.weight", &LlamaLayer::v_proj, Part::kWeight, "v_proj"},
    {"self_attn.v_proj.bias", "attn_v.bias", &LlamaLayer::v_bias, Part::kBias, "v_proj"},
    {"self_attn.o_proj.weight", "attn_output.weight", &LlamaLayer::o_proj, Part::kWeight, "o_proj"},
    {"self_attn.o_proj.bias", "attn_output.bias", &LlamaLayer::o_bias, Part::kBias, "o_proj"},
    {"post_attention_layernorm.weight", "ffn_norm.weight", &LlamaLayer::post_norm, Part::kNorm,
     nullptr},
    {"mlp.gate_proj.weight", "ffn_gate.weight", &LlamaLayer::gate_proj, Part::kWeight, "gate_proj"},
    {"mlp.gate_proj.bias", "ffn_gate.bias", &LlamaLayer::gate_bias, Part::kBias, "gate_proj"},
    {"mlp.up_proj.weight", "ffn_up.weight", &LlamaLayer::up_proj, Part::kWeight, "up_proj"},
    {"mlp.up_proj.bias", "ffn_up.bias", &LlamaLayer::up_bias, Part::kBias, "up_proj"},
    {"mlp.down_proj.weight", "ffn_down.weight", &LlamaLayer::down_proj, Part::kWeight, "down_proj"},
    {"mlp.down_proj.bias", "ffn_down.bias", &LlamaLayer::down_bias, Part::kBias, "down_proj"},
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

}  // namespace

at::Tensor rotary_pairs_to_halves(const at::Tensor& w, int64_t heads) {
  const int64_t rows = w.size(0), cols = w.size(1);
  return w.view({heads, rows / heads / 2, 2, cols})
      .transpose(1, 2)
      .reshape({rows, cols})
      .contiguous();
}

namespace {

// Meta's checkpoints (llama.cpp's GGUF, llama2.c) interleave each head's rotary pairs of q and k
// (weights and biases); HF's layout, ours, has the halves. Other tensors pass unchanged.
at::Tensor rotary_halves(const LayerTensor& lt, const LlamaConfig& c, const at::Tensor& t) {
  const std::string projection = lt.projection ? lt.projection : "";
  if (projection != "q_proj" && projection != "k_proj") return t;
  const int64_t heads = projection == "q_proj" ? c.num_attention_heads : c.num_key_value_heads;
  return lt.part == Part::kWeight ? rotary_pairs_to_halves(t, heads)
                                  : rotary_pairs_to_halves(t.unsqueeze(1), heads).squeeze(1);
}

const LayerTensor& layer_tensor(const char* suffix) {
  for (const auto& lt : kLayerTensors)
    if (std::string(lt.suffix) == suffix) return lt;
  throw Error(std::string("internal: no layer tensor \"") + suffix + "\"");
}

}  // namespace

void read_gguf_layer(const LlamaConfig& c, LlamaLayer& layer, const GgufTensorReader& read) {
  for (const auto& lt : kLayerTensors) {
    if (!lt.present(c)) continue;
    layer.*lt.member = rotary_halves(lt, c, read(lt.gguf_suffix, lt.shape(c)));
  }
}

const at::Tensor& LlamaModel::weight(int64_t layer, const std::string& module) const {
  for (const auto& lt : kLayerTensors)
    if (lt.part == Part::kWeight && lt.projection == module)
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

  const int64_t H = c.hidden_size, L = c.num_hidden_layers, D = c.head_dim();
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
  LlamaModel m;
  m.config = c;
  m.layers.resize(size_t(L));
  m.embed_tokens = take({c.vocab_size, H});
  // llama2.c's export order: each layer tensor for all layers at once, [L, shape...] (w1, w2,
  // w3 are gate, down, up); shapes and members from the one table.
  for (const char* suffix :
       {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
        "mlp.gate_proj.weight", "mlp.down_proj.weight", "mlp.up_proj.weight"}) {
    const LayerTensor& lt = layer_tensor(suffix);
    std::vector<int64_t> shape = lt.shape(c);
    shape.insert(shape.begin(), L);
    const at::Tensor all = take(shape);
    for (int64_t l = 0; l < L; ++l)
      m.layers[size_t(l)].*lt.member = rotary_halves(lt, c, all[l].clone());
  }
  m.final_norm = take({H});
  take({c.max_position_embeddings, D / 2});  // freq_cis_real: recomputed from rope_theta
  take({c.max_position_embeddings, D / 2});  // freq_cis_imag
  m.lm_head = shared ? m.embed_tokens : take({c.vocab_size, H});
  if (at_float != total_floats)
    throw InputError(origin + ": " + std::to_string(total_floats - at_float) +
                     " unexpected trailing floats");
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

}  // namespace tallrec
