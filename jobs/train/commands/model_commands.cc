// Model folders written: init (random weights), import-gguf (a llama.cpp file), merge (an
// adapter folded into the base weights).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "common/model_config.h"
#include "jobs/train/commands/commands.h"
#include "jobs/train/gguf_import.h"
#include "jobs/train/llama.h"
#include "jobs/train/lora.h"

namespace tallrec {
namespace {

void add_init(TrainerCli& cli) {
  struct Args {
    std::string preset, out, dtype;
    uint64_t seed = 0;
  };
  auto args = std::make_shared<Args>();
  auto* init = cli.app.add_subcommand(
      "init", "Write a randomly initialised LLaMA in HF layout (config.json + model.safetensors)");
  init->add_option("--preset", args->preset,
                   "tiny (tests, CPU demo) or 7b (LLaMA-7B shapes, for GPUs)")
      ->required();
  init->add_option("--out", args->out, "Output folder")->required();
  init->add_option("--seed", args->seed, "Seed of the random weights")->capture_default_str();
  init->add_option("--dtype", args->dtype,
                   "Stored dtype: float32, float16 or bfloat16 (default: the preset's)");
  init->callback([args, &cli] {
    cli.apply_threads();
    LlamaConfig config = llama_preset(args->preset);
    if (!args->dtype.empty()) config.torch_dtype = args->dtype;
    write_random_hf_model(config, args->seed, args->out);
    std::printf("%s: LLaMA %s preset, %lld layers, hidden %lld, heads %lld/%lld, vocab %lld, %s\n",
                args->out.c_str(), args->preset.c_str(),
                static_cast<long long>(config.num_hidden_layers),
                static_cast<long long>(config.hidden_size),
                static_cast<long long>(config.num_attention_heads),
                static_cast<long long>(config.num_key_value_heads),
                static_cast<long long>(config.vocab_size), config.torch_dtype.c_str());
  });
}

void add_import_gguf(TrainerCli& cli) {
  struct Args {
    std::string file, out, dtype = "float32";
  };
  auto args = std::make_shared<Args>();
  auto* import = cli.app.add_subcommand(
      "import-gguf",
      "A llama-architecture GGUF file -> an HF model folder (config.json, model.safetensors, "
      "tokenizer.json and its configs), every tensor dequantized");
  import->add_option("file", args->file, "The .gguf file")->required();
  import->add_option("--out", args->out, "The folder to write (must not exist)")->required();
  import->add_option("--dtype", args->dtype, "Stored dtype: float32, float16 or bfloat16")
      ->capture_default_str();
  import->callback([args, &cli] {
    cli.apply_threads();
  const auto s = import_gguf(args->file, args->out, args->dtype);
  std::printf(
      "%s: %zu tensors (%s) -> %s: %lld layers, hidden %lld, heads %lld/%lld, vocab "
      "%lld, %s embeddings, %s; tokenizer.json with the \"%s\" pre-tokenizer\n",
      args->file.c_str(), s.tensors, s.tensor_types.c_str(), args->out.c_str(),
      static_cast<long long>(s.config.num_hidden_layers),
      static_cast<long long>(s.config.hidden_size),
      static_cast<long long>(s.config.num_attention_heads),
      static_cast<long long>(s.config.num_key_value_heads),
      static_cast<long long>(s.config.vocab_size), s.config.tie_word_embeddings ? "tied" : "untied",
      args->dtype.c_str(), s.pre_tokenizer.c_str());
});
}  // namespace

void add_merge(TrainerCli& cli) {
  struct Args {
    std::string model, adapter, out;
  };
  auto args = std::make_shared<Args>();
  auto* merge = cli.app.add_subcommand(
      "merge", "Fold a LoRA adapter into the base weights and write an HF model (for inference)");
  merge->add_option("--model", args->model, "HF model folder")->required();
  merge->add_option("--adapter", args->adapter, "PEFT LoRA adapter folder")->required();
  merge->add_option("--out", args->out, "Output HF model folder")->required();
  merge->callback([args, &cli] {
    cli.apply_threads();
    LlamaModel model = load_hf_model(args->model, at::kFloat);
    merge_lora_into(model, LoraAdapters::load_peft(args->adapter, model.config, at::kFloat));
    model.config.torch_dtype =
        read_llama_config(std::filesystem::path(args->model) / "config.json").torch_dtype;
    save_hf_model(model, args->out);
    std::printf("%s: %s merged into %s\n", args->out.c_str(), args->adapter.c_str(),
                args->model.c_str());
  });
}

}  // namespace tallrec

void add_model_commands(TrainerCli& cli) {
  add_init(cli);
  add_import_gguf(cli);
  add_merge(cli);
}

}  // namespace tallrec
