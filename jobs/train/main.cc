// `tallrec-train`: one training attempt per process (docs/design.md, "Training job"), plus the
// tools around the model: init, generate, logits, score, gradients, merge, roc-auc, inspect-tokens,
// batches. Links
// libtorch, never SentencePiece or the network.
// Exit codes: 0 success, 1 failure (retryable), 2 bad input or usage (not retryable).
#include <malloc.h>

#include <limits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "common/atomic_file.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/run_spec.h"
#include "common/version.h"
#include "jobs/data/token_file.h"
#include "jobs/train/collate.h"
#include "jobs/train/data_order.h"
#include "jobs/train/device.h"
#include "jobs/train/gguf_import.h"
#include "jobs/train/llama.h"
#include "jobs/train/lora.h"
#include "jobs/train/loss_step.h"
#include "jobs/train/preemption.h"
#include "jobs/train/roc_auc.h"
#include "jobs/train/safetensors.h"
#include "jobs/train/scoring.h"
#include "jobs/train/trainer.h"

namespace {

void inspect_tokens(const std::string& dir, int64_t micro_batch, bool verify) {
  tallrec::TokenizedDataset data(dir);
  if (verify) data.verify_checksum();
  const auto& m = data.meta();
  size_t longest = 0, total = 0, yes = 0, truncated = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    size_t len = data.train_ids(i).size();
    longest = std::max(longest, len);
    total += len;
    yes += data.label(i) == 1;
    truncated += int64_t(len) == m.cutoff_len && data.train_ids(i).back() != m.eos_id;
  }
  std::printf("%s: %zu records from %s (template %s, cutoff %lld, train_on_inputs %s)\n",
              dir.c_str(), data.size(), m.source.c_str(), m.prompt_template.c_str(),
              static_cast<long long>(m.cutoff_len), m.train_on_inputs ? "true" : "false");
  if (m.few_shot) {
    std::printf("  few-shot subset: sample %lld, seed %llu\n", static_cast<long long>(m.sample),
                static_cast<unsigned long long>(m.seed));
  }
  std::printf(
      "  training tokens %zu (mean %.1f, longest %zu, %zu truncated); yes ratio %.4f; answer ids "
      "yes=%d no=%d\n",
      total, data.size() ? double(total) / double(data.size()) : 0.0, longest, truncated,
      data.size() ? double(yes) / double(data.size()) : 0.0, m.yes_id, m.no_id);
  if (data.size() == 0 || micro_batch <= 0) return;
  std::vector<size_t> first(std::min<size_t>(size_t(micro_batch), data.size()));
  std::iota(first.begin(), first.end(), 0);
  auto batch = tallrec::collate_training_batch(data, first);
  std::printf("  first micro-batch: input_ids [%lld, %lld], %lld real tokens\n",
              static_cast<long long>(batch.input_ids.size(0)),
              static_cast<long long>(batch.input_ids.size(1)),
              static_cast<long long>(batch.attention_mask.sum().item<int64_t>()));
}

}  // namespace

int main(int argc, char** argv) {
  // Training allocates and frees the same large activations (logits of a 32000-word vocabulary)
  // every micro-batch. glibc serves them with fresh mmaps, and zeroing those pages cost more
  // system time than the math; keeping freed memory in the heap removes that.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_TOP_PAD, std::numeric_limits<int>::max());
  CLI::App app{"tallrec-train: one TALLRec LoRA rec-tuning attempt (libtorch)"};
  app.set_version_flag("--version", std::string(tallrec::kVersion));
  app.require_subcommand(1);
  int threads = 0;
  app.add_option("--threads", threads,
                 "Intra-op CPU threads (0: all cores; for train, the spec's unless given)");
  auto set_threads = [&] {
    // libtorch's default intra-op thread count has been seen to be 1 (docs/design.md): set it.
    at::set_num_threads(threads > 0 ? threads
                                    : int(std::max(1u, std::thread::hardware_concurrency())));
  };

  std::string device_name = "cpu";
  app.add_option("--device", device_name,
                 "Where generate, logits and score run: cpu or cuda[:N] (train: the spec's)")
      ->capture_default_str();
  auto tool_device = [&] {
    const at::Device device = tallrec::parse_device(device_name, "--device");
    tallrec::select_device(device);
    return device;
  };

  std::string dir;
  int64_t micro_batch = 32;
  bool verify = false;
  auto* inspect = app.add_subcommand("inspect-tokens",
                                     "Check a tokenized dataset and build its first micro-batch");
  inspect->add_option("tokens", dir, "Folder written by `tallrec data tokenize`")->required();
  inspect->add_option("--micro-batch", micro_batch, "Micro-batch size to collate")
      ->capture_default_str();
  inspect->add_flag("--verify", verify, "Also check tokens.bin against its SHA-256");
  inspect->callback([&] {
    set_threads();
    inspect_tokens(dir, micro_batch, verify);
  });

  std::string preset, init_out, init_dtype;
  uint64_t init_seed = 0;
  auto* init = app.add_subcommand(
      "init", "Write a randomly initialised LLaMA in HF layout (config.json + model.safetensors)");
  init->add_option("--preset", preset, "tiny (tests, CPU demo) or 7b (LLaMA-7B shapes, for GPUs)")
      ->required();
  init->add_option("--out", init_out, "Output folder")->required();
  init->add_option("--seed", init_seed, "Seed of the random weights")->capture_default_str();
  init->add_option("--dtype", init_dtype,
                   "Stored dtype: float32, float16 or bfloat16 (default: the preset's)");
  init->callback([&] {
    set_threads();
    tallrec::LlamaConfig config = tallrec::llama_preset(preset);
    if (!init_dtype.empty()) config.torch_dtype = init_dtype;
    tallrec::write_random_hf_model(config, init_seed, init_out);
    std::printf("%s: LLaMA %s preset, %lld layers, hidden %lld, heads %lld/%lld, vocab %lld, %s\n",
                init_out.c_str(), preset.c_str(), static_cast<long long>(config.num_hidden_layers),
                static_cast<long long>(config.hidden_size),
                static_cast<long long>(config.num_attention_heads),
                static_cast<long long>(config.num_key_value_heads),
                static_cast<long long>(config.vocab_size), config.torch_dtype.c_str());
  });

  std::string gguf_file, gguf_out, gguf_dtype = "float32";
  auto* import = app.add_subcommand(
      "import-gguf",
      "A llama-architecture GGUF file -> an HF model folder (config.json, model.safetensors, "
      "tokenizer.json and its configs), every tensor dequantized");
  import->add_option("file", gguf_file, "The .gguf file")->required();
  import->add_option("--out", gguf_out, "The folder to write (must not exist)")->required();
  import->add_option("--dtype", gguf_dtype, "Stored dtype: float32, float16 or bfloat16")
      ->capture_default_str();
  import->callback([&] {
    set_threads();
  const auto s = tallrec::import_gguf(gguf_file, gguf_out, gguf_dtype);
  std::printf(
      "%s: %zu tensors (%s) -> %s: %lld layers, hidden %lld, heads %lld/%lld, vocab "
      "%lld, %s embeddings, %s; tokenizer.json with the \"%s\" pre-tokenizer\n",
      gguf_file.c_str(), s.tensors, s.tensor_types.c_str(), gguf_out.c_str(),
      static_cast<long long>(s.config.num_hidden_layers),
      static_cast<long long>(s.config.hidden_size),
      static_cast<long long>(s.config.num_attention_heads),
      static_cast<long long>(s.config.num_key_value_heads),
      static_cast<long long>(s.config.vocab_size), s.config.tie_word_embeddings ? "tied" : "untied",
      gguf_dtype.c_str(), s.pre_tokenizer.c_str());
});

std::string gen_model;
std::vector<int64_t> gen_prompt{1};
int64_t gen_steps = 200, gen_stop = -2;
auto* gen = app.add_subcommand(
    "generate", "Greedy decoding (a forward-pass check): prints the generated token ids");
gen->add_option("--model", gen_model, "HF model folder, or a llama2.c .bin checkpoint")->required();
gen->add_option("--prompt-ids", gen_prompt, "Prompt token ids (default: BOS = 1)");
gen->add_option("--steps", gen_steps, "Tokens to generate")->capture_default_str();
gen->add_option(
    "--stop-id", gen_stop,
    "Stop at this id (default: BOS for llama2.c checkpoints, as run.c; none otherwise)");
gen->callback([&] {
  set_threads();
  const bool llama2c = std::filesystem::is_regular_file(gen_model);
  tallrec::LlamaModel model = llama2c ? tallrec::load_llama2c_model(gen_model)
                                      : tallrec::load_hf_model(gen_model, at::kFloat);
  model.to(tool_device());
  int64_t stop = gen_stop != -2 ? gen_stop : (llama2c ? 1 : -1);
  auto ids = tallrec::greedy_generate(model, gen_prompt, gen_steps, stop);
  for (size_t i = 0; i < ids.size(); ++i)
    std::printf(i ? " %lld" : "%lld", static_cast<long long>(ids[i]));
  std::printf("\n");
});

std::string spec_path, train_out, rendezvous;
int train_exit = 0, rank = -1;
auto* train = app.add_subcommand(
    "train", "Run one TALLRec LoRA rec-tuning attempt (resumes from OUT's newest checkpoint)");
train->add_option("--spec", spec_path, "Run spec JSON (schemas/run_spec.schema.json)")->required();
train->add_option("--out", train_out, "Output folder: events.jsonl, checkpoints/, adapter/")
    ->required();
train->add_option(
    "--rank", rank,
    "This process's rank when world_size > 1 (without it, all ranks are started here)");
train->add_option("--rendezvous", rendezvous, "FileStore path shared by the ranks (with --rank)");
train->callback([&] {
  if (app.get_option("--device")->count() > 0)
    throw tallrec::InputError(
        "train takes its device from the spec (\"device\"), not from --device");
  tallrec::RunSpec spec = tallrec::read_run_spec(spec_path);
  if (threads > 0) spec.threads = threads;
  const bool launcher = spec.world_size > 1 && rank < 0;
  tallrec::install_preemption_handlers(/*interrupt_waits=*/launcher);
  if (launcher) {
    train_exit = tallrec::launch_ranks(std::filesystem::read_symlink("/proc/self/exe").string(),
                                       spec_path, spec, train_out);
  } else {
    train_exit = tallrec::run_training(spec, train_out, std::max(rank, 0), rendezvous);
  }
});

std::string batches_spec;
int64_t batches_epochs = 1;
auto* batches = app.add_subcommand(
    "batches",
    "The records of every micro-batch, epoch by epoch, in the order `train` visits them");
batches
    ->add_option("--spec", batches_spec,
                 "Run spec JSON (its train_tokens, data_order, seeds, batch sizes)")
    ->required();
batches->add_option("--epochs", batches_epochs, "Epochs to print")
    ->capture_default_str()
    ->check(CLI::PositiveNumber);
batches->callback([&] {
  const tallrec::RunSpec spec = tallrec::read_run_spec(batches_spec);
  tallrec::TokenizedDataset data(spec.train_tokens);
  const int64_t n = int64_t(data.size()), micro = spec.micro_batch_size;
  tallrec::EpochOrders orders(data, spec.data_order, tallrec::data_order_seed(spec),
                              spec.group_by_length, spec.batch_size);
  for (int64_t epoch = 0; epoch < batches_epochs; ++epoch) {
    const auto order = orders.order(epoch);
    nlohmann::json micro_batches = nlohmann::json::array();
    for (int64_t i = 0; i * micro < n; ++i)
      micro_batches.push_back(tallrec::micro_batch(order, i, micro));
    std::printf("%s\n",
                nlohmann::json{{"epoch", epoch}, {"micro_batches", micro_batches}}.dump().c_str());
  }
});

std::string logits_model, logits_batch, logits_out, logits_adapter, logits_positions = "arange";
auto* logits = app.add_subcommand(
    "logits", "Forward pass on a batch: input_ids (+ attention_mask) in, logits out (safetensors)");
logits->add_option("--model", logits_model, "HF model folder")->required();
logits
    ->add_option("--batch", logits_batch,
                 "safetensors with input_ids [B, T] and optionally attention_mask [B, T]")
    ->required();
logits->add_option("--out", logits_out, "Where to write logits [B, T, V] (float32 safetensors)")
    ->required();
logits->add_option("--adapter", logits_adapter, "A PEFT LoRA adapter folder to apply");
logits
    ->add_option("--positions", logits_positions,
                 "arange (0..T-1, as HF Trainer) or mask (from the attention mask, as HF generate)")
    ->capture_default_str();
logits->callback([&] {
  set_threads();
  tallrec::LlamaModel model = tallrec::load_hf_model(logits_model, at::kFloat, tool_device());
  tallrec::SafetensorsFile batch(logits_batch);
  at::Tensor ids = batch.load("input_ids", at::kLong);
  at::Tensor mask =
      batch.contains("attention_mask") ? batch.load("attention_mask", at::kLong) : at::Tensor();
  if (logits_positions != "arange" && logits_positions != "mask")
    throw tallrec::InputError("--positions must be arange or mask");
  at::Tensor positions = logits_positions == "mask" && mask.defined()
                             ? tallrec::positions_from_mask(mask)
                             : at::Tensor();
  tallrec::LoraAdapters adapter;
  tallrec::ForwardOptions options;
  if (!logits_adapter.empty()) {
    adapter = tallrec::LoraAdapters::load_peft(logits_adapter, model.config, at::kFloat);
    options.lora = &adapter;
  }
  at::NoGradGuard no_grad;
  if (!logits_adapter.empty()) adapter.to(model.embed_tokens.device());
  at::Tensor out =
      tallrec::llama_forward(
          model, ids.to(model.embed_tokens.device()),
          mask.defined() ? mask.to(model.embed_tokens.device()) : mask,
          positions.defined() ? positions.to(model.embed_tokens.device()) : positions, options)
          .to(at::kCPU, at::kFloat);
  tallrec::write_safetensors(logits_out, {{"logits", out.contiguous()}});
});

std::string score_model, score_adapter, score_tokens, score_out, score_scoring = "tallrec",
                                                                 score_dtype = "float32";
int64_t score_batch = 32;
auto* score = app.add_subcommand(
    "score",
    "P(Yes) of every prompt of a tokenized test set (one forward pass each), and its ROC AUC");
score->add_option("--model", score_model, "HF model folder")->required();
score->add_option("--adapter", score_adapter, "PEFT LoRA adapter folder (none: the base model)");
score->add_option("--tokens", score_tokens, "Folder written by `tallrec data tokenize`")
    ->required();
score->add_option("--out", score_out,
                  "Write {labels, scores, auc} here as JSON (default: print the AUC only)");
score
    ->add_option("--scoring", score_scoring,
                 "tallrec (softmax, then softmax over [No, Yes]) or logit_diff")
    ->capture_default_str();
score
    ->add_option("--batch-size", score_batch,
                 "Prompts per forward pass (left-padded; scores equal unbatched ones)")
    ->capture_default_str();
score
    ->add_option("--dtype", score_dtype,
                 "The base weights' dtype in memory: float32, float16 or bfloat16 (LLaMA-7B in "
                 "float32 needs 27 GB)")
    ->capture_default_str();
score->callback([&] {
  set_threads();
  tallrec::LlamaModel model =
      tallrec::load_hf_model(score_model, tallrec::parse_torch_dtype(score_dtype), tool_device());
  tallrec::TokenizedDataset data(score_tokens);
  tallrec::LoraAdapters adapter;
  if (!score_adapter.empty()) {
    adapter = tallrec::LoraAdapters::load_peft(score_adapter, model.config, at::kFloat);
    adapter.to(model.embed_tokens.device());
  }
  auto r = tallrec::evaluate_test(model, score_adapter.empty() ? nullptr : &adapter, data,
                                  score_batch, tallrec::parse_scoring(score_scoring));
  const double auc_value = tallrec::roc_auc(r.labels, r.scores);
  if (!score_out.empty()) {
    nlohmann::ordered_json j = {
        {"labels", r.labels}, {"scores", r.scores}, {"auc", auc_value}, {"skipped", r.skipped}};
    tallrec::write_file_atomically(score_out, j.dump() + "\n");
  }
  std::printf("%zu prompts scored (%zu skipped), ROC AUC %.6f\n", r.scores.size(), r.skipped,
              auc_value);
});

std::string grad_model, grad_adapter, grad_tokens, grad_out, grad_dtype = "float32";
std::vector<size_t> grad_records;
bool grad_checkpointing = false;
auto* grads = app.add_subcommand("gradients",
                                 "One micro-batch's loss (HF's mean over label tokens) and the "
                                 "gradient of every LoRA tensor, dropout off");
grads->add_option("--model", grad_model, "HF model folder")->required();
grads
    ->add_option("--adapter", grad_adapter,
                 "PEFT LoRA adapter folder: its tensors are the point of the gradient")
    ->required();
grads->add_option("--tokens", grad_tokens, "Folder written by `tallrec data tokenize`")->required();
grads
    ->add_option("--records", grad_records,
                 "Record indices of the micro-batch (left-padded as in training)")
    ->required()
    ->delimiter(',');
grads->add_option("--out", grad_out, "safetensors: loss [1] and one gradient per PEFT key name")
    ->required();
grads->add_option("--dtype", grad_dtype, "float32 or float64 (model, adapter and activations)")
    ->capture_default_str();
grads->add_flag("--gradient-checkpointing", grad_checkpointing,
                "Recompute each layer in backward, as training does with it");
grads->callback([&] {
  set_threads();
  if (grad_dtype != "float32" && grad_dtype != "float64")
    throw tallrec::InputError("--dtype must be float32 or float64");
  const at::ScalarType dtype = grad_dtype == "float64" ? at::kDouble : at::kFloat;
  const at::Device device = tool_device();
  tallrec::LlamaModel model = tallrec::load_hf_model(grad_model, dtype, device);
  tallrec::LoraAdapters adapter =
      tallrec::LoraAdapters::load_peft(grad_adapter, model.config, dtype);
  adapter.to(device);
  tallrec::TokenizedDataset data(grad_tokens);
  for (size_t r : grad_records)
    if (r >= data.size())
      throw tallrec::InputError("--records: " + std::to_string(r) + " is past the last record of " +
                                grad_tokens);
  const tallrec::Batch batch = tallrec::collate_training_batch(data, grad_records).to(device);
  const tallrec::MicroBatchGradients g =
      tallrec::micro_batch_gradients(model, adapter, batch, grad_checkpointing);
  std::vector<tallrec::TensorToWrite> tensors{{"loss", at::full({1}, g.loss, at::kDouble)}};
  const auto names = adapter.parameter_names();
  for (size_t i = 0; i < names.size(); ++i)
    tensors.push_back({names[i], g.grads[i].to(at::kCPU).contiguous()});
  tallrec::write_safetensors(grad_out, tensors);
  std::printf("loss %.9g over %lld label tokens; %zu gradients in %s\n", g.loss,
              static_cast<long long>(g.label_tokens), names.size(), grad_out.c_str());
});

std::string merge_model, merge_adapter, merge_out;
auto* merge = app.add_subcommand(
    "merge", "Fold a LoRA adapter into the base weights and write an HF model (for inference)");
merge->add_option("--model", merge_model, "HF model folder")->required();
merge->add_option("--adapter", merge_adapter, "PEFT LoRA adapter folder")->required();
merge->add_option("--out", merge_out, "Output HF model folder")->required();
merge->callback([&] {
  set_threads();
  tallrec::LlamaModel model = tallrec::load_hf_model(merge_model, at::kFloat);
  tallrec::merge_lora_into(
      model, tallrec::LoraAdapters::load_peft(merge_adapter, model.config, at::kFloat));
  model.config.torch_dtype =
      tallrec::read_llama_config(std::filesystem::path(merge_model) / "config.json").torch_dtype;
  tallrec::save_hf_model(model, merge_out);
  std::printf("%s: %s merged into %s\n", merge_out.c_str(), merge_adapter.c_str(),
              merge_model.c_str());
});

std::string auc_input;
auto* auc = app.add_subcommand(
    "roc-auc",
    "ROC AUC (scikit-learn's) of {\"labels\": [...], \"scores\": [...]} or a list of such");
auc->add_option("input", auc_input, "JSON file")->required();
auc->callback([&] {
  auto j = nlohmann::json::parse(tallrec::read_file(auc_input));
  auto one = [](const nlohmann::json& c) {
    return tallrec::roc_auc(c.at("labels").get<std::vector<int>>(),
                            c.at("scores").get<std::vector<double>>());
  };
  std::vector<double> out;
  if (j.is_array())
    for (const auto& c : j) out.push_back(one(c));
  else
    out.push_back(one(j));
  for (double v : out) std::printf("%.17g\n", v);
});

const int code = tallrec::run_cli(app, argc, argv);
return code != 0 ? code : train_exit;
}
