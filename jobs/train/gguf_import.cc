#include "jobs/train/gguf_import.h"

#include <ATen/ATen.h>

#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/gguf_file.h"
#include "jobs/train/llama.h"
#include "jobs/train/safetensors.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

using json = nlohmann::json;

// The split patterns of the pre-tokenizers `tokenizer.ggml.pre` names (as llama.cpp reads them).
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

int64_t integer(const json& meta, const std::string& key, const std::string& origin,
                int64_t fallback = -1) {
  if (!meta.contains(key)) {
    if (fallback >= 0) return fallback;
    throw InputError(origin + ": missing key \"" + key + "\"");
  }
  const json& v = meta[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    throw InputError(origin + ": key \"" + key + "\" must be a non-negative integer");
  return v.get<int64_t>();
}

double number(const json& meta, const std::string& key, double fallback) {
  return meta.contains(key) && meta[key].is_number() ? meta[key].get<double>() : fallback;
}

LlamaConfig config_of(const GgufFile& g, const std::string& dtype) {
  const json& m = g.metadata();
  const std::string& o = g.origin();
  const std::string arch = m.value("general.architecture", std::string());
  if (arch != "llama")
    throw InputError(o + ": general.architecture \"" + arch + "\" is not supported (llama)");
  LlamaConfig c;
  c.hidden_size = integer(m, "llama.embedding_length", o);
  c.intermediate_size = integer(m, "llama.feed_forward_length", o);
  c.num_hidden_layers = integer(m, "llama.block_count", o);
  c.num_attention_heads = integer(m, "llama.attention.head_count", o);
  c.num_key_value_heads = integer(m, "llama.attention.head_count_kv", o, c.num_attention_heads);
  c.max_position_embeddings = integer(m, "llama.context_length", o, 2048);
  c.rms_norm_eps = number(m, "llama.attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = number(m, "llama.rope.freq_base", 10000.0);
  const GgufTensor* embed = g.find("token_embd.weight");
  if (!embed || embed->dims.size() != 2) throw InputError(o + ": no 2-D token_embd.weight");
  c.vocab_size = embed->dims[1];
  c.tie_word_embeddings = g.find("output.weight") == nullptr;
  if (c.num_attention_heads > 0) {
    const int64_t key_length =
        integer(m, "llama.attention.key_length", o, c.hidden_size / c.num_attention_heads);
    if (key_length != c.hidden_size / c.num_attention_heads) c.explicit_head_dim = key_length;
  }
  const std::string scaling = m.value("llama.rope.scaling.type", std::string("none"));
  if (scaling == "linear") {
    c.rope_scaling.type = RopeScaling::Type::kLinear;
    c.rope_scaling.factor = number(m, "llama.rope.scaling.factor", 1.0);
  } else if (scaling != "none") {
    throw InputError(o + ": llama.rope.scaling.type \"" + scaling + "\" is not supported");
  }
  if (g.find("rope_freqs.weight"))
    throw InputError(o +
                     ": rope_freqs.weight (Llama-3.1's rope scaling as a tensor) is not "
                     "supported");
  c.torch_dtype = dtype;
  validate_llama_config(c, o);
  if (integer(m, "llama.rope.dimension_count", o, c.head_dim()) != c.head_dim())
    throw InputError(o +
                     ": llama.rope.dimension_count is not the head dimension (partial rotary "
                     "embeddings are not supported)");
  return c;
}

// tokenizer.json (and its two config files) from the GGUF tokenizer.
void write_tokenizer(const GgufFile& g, const LlamaConfig& c, const fs::path& dir) {
  const json& m = g.metadata();
  const std::string& o = g.origin();
  const std::string model = m.value("tokenizer.ggml.model", std::string());
  if (model != "gpt2")
    throw InputError(o + ": tokenizer.ggml.model \"" + model +
                     "\" is not supported (gpt2, a byte-level BPE)");
  const json tokens = m.value("tokenizer.ggml.tokens", json());
  const json types = m.value("tokenizer.ggml.token_type", json());
  const json merges = m.value("tokenizer.ggml.merges", json::array());
  if (!tokens.is_array() || tokens.empty() || !merges.is_array())
    throw InputError(o + ": tokenizer.ggml.tokens and tokenizer.ggml.merges must be lists");
  if (types.is_array() && types.size() != tokens.size())
    throw InputError(o + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                     " entries for " + std::to_string(tokens.size()) + " tokens");
  if (int64_t(tokens.size()) > c.vocab_size)
    throw InputError(o + ": " + std::to_string(tokens.size()) +
                     " tokens, more than token_embd.weight's " + std::to_string(c.vocab_size));
  json vocab = json::object(), added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].is_string())
      throw InputError(o + ": token " + std::to_string(i) + " is not a string");
    const std::string t = tokens[i].get<std::string>();
    vocab[t] = i;
    const int type = types.is_array() && types[i].is_number_integer() ? types[i].get<int>() : 1;
    if (type == 3 || type == 4)  // control, user-defined: matched whole, before the BPE
      added.push_back({{"id", i},
                       {"content", t},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type == 3}});
  }
  const std::string pre = m.value("tokenizer.ggml.pre", std::string("gpt-2"));
  json normalizer = nullptr, pre_tokenizer;
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  auto split_then_bytes = [](const char* pattern) {
    return json{{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Split"},
                   {"pattern", {{"Regex", pattern}}},
                   {"behavior", "Isolated"},
                   {"invert", false}},
                  {{"type", "ByteLevel"},
                   {"add_prefix_space", false},
                   {"trim_offsets", true},
                   {"use_regex", false}}}}};
  };
  bool ignore_merges = false;
  if (pre == "gpt-2" || pre == "gpt2" || pre == "mpt" || pre == "olmo") {
    pre_tokenizer = byte_level;
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") {
    pre_tokenizer = {
        {"type", "Sequence"},
        {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}};
  } else if (pre == "llama-bpe" || pre == "llama3") {
    pre_tokenizer = split_then_bytes(kLlama3Pattern);
    ignore_merges = true;
  } else if (pre == "qwen2") {
    normalizer = {{"type", "NFC"}};
    pre_tokenizer = split_then_bytes(kQwen2Pattern);
  } else {
    throw InputError(o + ": tokenizer.ggml.pre \"" + pre +
                     "\" is not supported (gpt-2, smollm, starcoder, llama-bpe, qwen2)");
  }
  auto token_of = [&](const char* key) -> std::string {
    if (!m.contains(key)) return "";
    const int64_t id = integer(m, key, o);
    if (id >= int64_t(tokens.size()))
      throw InputError(o + ": " + key + " " + std::to_string(id) + " is not a token");
    return tokens[size_t(id)].get<std::string>();
  };
  const std::string bos = token_of("tokenizer.ggml.bos_token_id"),
                    eos = token_of("tokenizer.ggml.eos_token_id"),
                    unk = token_of("tokenizer.ggml.unknown_token_id");
  const bool add_bos = m.value("tokenizer.ggml.add_bos_token", false) && !bos.empty();
  json post = {{"type", "ByteLevel"},
               {"add_prefix_space", true},
               {"trim_offsets", false},
               {"use_regex", true}};
  if (add_bos)
    post = {{"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {vocab[bos]}}, {"tokens", {bos}}}}}}};
  const json doc = {{"version", "1.0"},
                    {"truncation", nullptr},
                    {"padding", nullptr},
                    {"added_tokens", added},
                    {"normalizer", normalizer},
                    {"pre_tokenizer", pre_tokenizer},
                    {"post_processor", post},
                    {"decoder",
                     {{"type", "ByteLevel"},
                      {"add_prefix_space", true},
                      {"trim_offsets", true},
                      {"use_regex", true}}},
                    {"model",
                     {{"type", "BPE"},
                      {"dropout", nullptr},
                      {"unk_token", nullptr},
                      {"continuing_subword_prefix", nullptr},
                      {"end_of_word_suffix", nullptr},
                      {"fuse_unk", false},
                      {"byte_fallback", false},
                      {"ignore_merges", ignore_merges},
                      {"vocab", vocab},
                      {"merges", merges}}}};
  write_file_atomically(dir / "tokenizer.json", doc.dump() + "\n");
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                 {"add_bos_token", add_bos},
                 {"model_max_length", c.max_position_embeddings},
                 {"clean_up_tokenization_spaces", false}};
  if (!bos.empty()) config["bos_token"] = bos;
  if (!eos.empty()) config["eos_token"] = eos;
  if (!unk.empty()) config["unk_token"] = unk;
  write_file_atomically(dir / "tokenizer_config.json", config.dump(2) + "\n");
  json generation = json::object();
  if (!bos.empty()) generation["bos_token_id"] = vocab[bos];
  if (!eos.empty()) generation["eos_token_id"] = vocab[eos];
  write_file_atomically(dir / "generation_config.json", generation.dump(2) + "\n");
}

}  // namespace

GgufImportSummary import_gguf(const fs::path& file, const fs::path& out, const std::string& dtype) {
  // Refused before any tensor is read, not after the whole model was dequantized.
  if (fs::exists(out)) throw InputError(out.string() + ": already exists (choose a new --out)");
  GgufFile g(file);
  GgufImportSummary summary;
  summary.config = config_of(g, dtype);
  const LlamaConfig& c = summary.config;
  const at::ScalarType type = parse_torch_dtype(dtype);

  std::map<std::string, int> type_counts;
  for (const auto& t : g.tensors()) type_counts[ggml_type_name(t.type)]++;
  for (const auto& [name, n] : type_counts)
    summary.tensor_types +=
        (summary.tensor_types.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  summary.tensors = g.tensors().size();

  // One tensor of the file as [out, in] (ggml's dims reversed), dequantized, in `type`.
  auto load = [&](const std::string& name, std::vector<int64_t> shape) {
    const GgufTensor* t = g.find(name);
    if (!t) throw InputError(g.origin() + ": missing tensor \"" + name + "\"");
    std::vector<int64_t> have(t->dims.rbegin(), t->dims.rend());
    if (have != shape)
      throw InputError(g.origin() + ": tensor \"" + name + "\" has the wrong shape for the config");
    std::vector<float> values = g.dequantize(*t);
    return at::from_blob(values.data(), shape, at::kFloat).clone();
  };
  const int64_t H = c.hidden_size;
  LlamaModel model;
  model.config = c;
  model.embed_tokens = load("token_embd.weight", {c.vocab_size, H}).to(type);
  model.final_norm = load("output_norm.weight", {H}).to(type);
  model.lm_head = c.tie_word_embeddings ? model.embed_tokens
                                        : load("output.weight", {c.vocab_size, H}).to(type);
  model.layers.resize(size_t(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    read_gguf_layer(c, model.layers[size_t(l)],
                    [&](const std::string& name, const std::vector<int64_t>& shape) {
                      return load(p + name, shape).to(type);
                    });
  }
  summary.pre_tokenizer = g.metadata().value("tokenizer.ggml.pre", std::string("gpt-2"));

  // Written beside `out` and renamed into place: a failed import leaves nothing behind.
  const fs::path staging = out.string() + ".importing";
  fs::remove_all(staging);
  try {
    fs::create_directories(staging);
    write_tokenizer(g, c, staging);
    save_hf_model(model, staging);
  } catch (...) {
    fs::remove_all(staging);
    throw;
  }
  fs::rename(staging, out);
  return summary;
}

}  // namespace tallrec
