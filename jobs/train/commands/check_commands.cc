// The tools the oracles and users check the model with: generate (greedy ids), logits (a forward
// pass), score (P(Yes) and its AUC), gradients (one micro-batch's LoRA gradients), roc-auc, and
// inspect-tokens (a tokenized set and its first micro-batch).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "jobs/data/token_file.h"
#include "jobs/train/collate.h"
#include "jobs/train/commands/commands.h"
#include "jobs/train/llama.h"
#include "jobs/train/lora.h"
#include "jobs/train/loss_step.h"
#include "jobs/train/roc_auc.h"
#include "jobs/train/safetensors.h"
#include "jobs/train/scoring.h"

namespace tallrec {
namespace {

void add_generate(TrainerCli& cli) {
  struct Args {
    std::string model;
    std::vector<int64_t> prompt{1};
    int64_t steps = 200;
    std::optional<int64_t> stop;
  };
  auto args = std::make_shared<Args>();
  auto* gen = cli.app.add_subcommand(
      "generate", "Greedy decoding (a forward-pass check): prints the generated token ids");
  gen->add_option("--model", args->model, "HF model folder, or a llama2.c .bin checkpoint")
      ->required();
  gen->add_option("--prompt-ids", args->prompt, "Prompt token ids (default: BOS = 1)");
  gen->add_option("--steps", args->steps, "Tokens to generate")->capture_default_str();
  gen->add_option(
      "--stop-id", args->stop,
      "Stop at this id (default: BOS for llama2.c checkpoints, as run.c; none otherwise)");
  gen->callback([args, &cli] {
    cli.apply_threads();
    const bool llama2c = std::filesystem::is_regular_file(args->model);
    LlamaModel model =
        llama2c ? load_llama2c_model(args->model) : load_hf_model(args->model, at::kFloat);
    model.to(cli.tool_device());
    const int64_t stop = args->stop.value_or(llama2c ? 1 : -1);
    const auto ids = greedy_generate(model, args->prompt, args->steps, stop);
    for (size_t i = 0; i < ids.size(); ++i)
      std::printf(i ? " %lld" : "%lld", static_cast<long long>(ids[i]));
    std::printf("\n");
  });
}

void add_logits(TrainerCli& cli) {
  struct Args {
    std::string model, batch, out, adapter, positions = "arange";
  };
  auto args = std::make_shared<Args>();
  auto* logits = cli.app.add_subcommand(
      "logits",
      "Forward pass on a batch: input_ids (+ attention_mask) in, logits out (safetensors)");
  logits->add_option("--model", args->model, "HF model folder")->required();
  logits
      ->add_option("--batch", args->batch,
                   "safetensors with input_ids [B, T] and optionally attention_mask [B, T]")
      ->required();
  logits->add_option("--out", args->out, "Where to write logits [B, T, V] (float32 safetensors)")
      ->required();
  logits->add_option("--adapter", args->adapter, "A PEFT LoRA adapter folder to apply");
  logits
      ->add_option("--positions", args->positions,
                   "arange (0..T-1, as HF Trainer) or mask (from the attention mask, as HF "
                   "generate)")
      ->capture_default_str()
      ->check(CLI::IsMember({"arange", "mask"}));
  logits->callback([args, &cli] {
    cli.apply_threads();
    LlamaModel model = load_hf_model(args->model, at::kFloat, cli.tool_device());
    const auto device = model.embed_tokens.device();
    SafetensorsFile batch(args->batch);
    at::Tensor ids = batch.load("input_ids", at::kLong);
    at::Tensor mask =
        batch.contains("attention_mask") ? batch.load("attention_mask", at::kLong) : at::Tensor();
    at::Tensor positions =
        args->positions == "mask" && mask.defined() ? positions_from_mask(mask) : at::Tensor();
    LoraAdapters adapter;
    ForwardOptions options;
    if (!args->adapter.empty()) {
      adapter = LoraAdapters::load_peft(args->adapter, model.config, at::kFloat);
      adapter.to(device);
      options.lora = &adapter;
    }
    at::NoGradGuard no_grad;
    at::Tensor out = llama_forward(model, ids.to(device), mask.defined() ? mask.to(device) : mask,
                                   positions.defined() ? positions.to(device) : positions, options)
                         .to(at::kCPU, at::kFloat);
    write_safetensors(args->out, {{"logits", out.contiguous()}});
  });
}

void add_score(TrainerCli& cli) {
  struct Args {
    std::string model, adapter, tokens, out, scoring = "tallrec", dtype = "float32";
    int64_t batch = 32;
  };
  auto args = std::make_shared<Args>();
  auto* score = cli.app.add_subcommand(
      "score",
      "P(Yes) of every prompt of a tokenized test set (one forward pass each), and its ROC AUC");
  score->add_option("--model", args->model, "HF model folder")->required();
  score->add_option("--adapter", args->adapter, "PEFT LoRA adapter folder (none: the base model)");
  score->add_option("--tokens", args->tokens, "Folder written by `tallrec data tokenize`")
      ->required();
  score->add_option("--out", args->out,
                    "Write {labels, scores, auc} here as JSON (default: print the AUC only)");
  score
      ->add_option("--scoring", args->scoring,
                   "tallrec (softmax, then softmax over [No, Yes]) or logit_diff")
      ->capture_default_str();
  score
      ->add_option("--batch-size", args->batch,
                   "Prompts per forward pass (left-padded; scores equal unbatched ones)")
      ->capture_default_str();
  score
      ->add_option("--dtype", args->dtype,
                   "The base weights' dtype in memory: float32, float16 or bfloat16 (LLaMA-7B in "
                   "float32 needs 27 GB)")
      ->capture_default_str();
  score->callback([args, &cli] {
    cli.apply_threads();
    LlamaModel model =
        load_hf_model(args->model, parse_torch_dtype(args->dtype), cli.tool_device());
    TokenizedDataset data(args->tokens);
    LoraAdapters adapter;
    if (!args->adapter.empty()) {
      adapter = LoraAdapters::load_peft(args->adapter, model.config, at::kFloat);
      adapter.to(model.embed_tokens.device());
    }
    const auto r = evaluate_test(model, args->adapter.empty() ? nullptr : &adapter, data,
                                 args->batch, parse_enum<Scoring>(args->scoring, "--scoring"));
    const double auc = roc_auc(r.labels, r.scores);
    if (!args->out.empty()) {
      nlohmann::ordered_json j = {{"labels", r.labels},
                                  {"scores", r.scores},
                                  {"auc", auc},
                                  {"skipped", r.skipped},
                                  {"padding_fraction", r.padding_fraction()}};
      write_file_atomically(args->out, j.dump() + "\n");
    }
    std::printf("%zu prompts scored (%zu skipped, %.1f%% padding), ROC AUC %.6f\n", r.scores.size(),
                r.skipped, 100 * r.padding_fraction(), auc);
  });
}

void add_gradients(TrainerCli& cli) {
  struct Args {
    std::string model, adapter, tokens, out, dtype = "float32";
    std::vector<size_t> records;
    bool checkpointing = false;
  };
  auto args = std::make_shared<Args>();
  auto* grads = cli.app.add_subcommand("gradients",
                                       "One micro-batch's loss (HF's mean over label tokens) and "
                                       "the gradient of every LoRA tensor, dropout off");
  grads->add_option("--model", args->model, "HF model folder")->required();
  grads
      ->add_option("--adapter", args->adapter,
                   "PEFT LoRA adapter folder: its tensors are the point of the gradient")
      ->required();
  grads->add_option("--tokens", args->tokens, "Folder written by `tallrec data tokenize`")
      ->required();
  grads
      ->add_option("--records", args->records,
                   "Record indices of the micro-batch (left-padded as in training)")
      ->required()
      ->delimiter(',');
  grads->add_option("--out", args->out, "safetensors: loss [1] and one gradient per PEFT key name")
      ->required();
  grads->add_option("--dtype", args->dtype, "float32 or float64 (model, adapter and activations)")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "float64"}));
  grads->add_flag("--gradient-checkpointing", args->checkpointing,
                  "Recompute each layer in backward, as training does with it");
  grads->callback([args, &cli] {
    cli.apply_threads();
    const at::ScalarType dtype = args->dtype == "float64" ? at::kDouble : at::kFloat;
    const at::Device device = cli.tool_device();
    LlamaModel model = load_hf_model(args->model, dtype, device);
    LoraAdapters adapter = LoraAdapters::load_peft(args->adapter, model.config, dtype);
    adapter.to(device);
    TokenizedDataset data(args->tokens);
    for (size_t r : args->records)
      if (r >= data.size())
        throw InputError("--records: " + std::to_string(r) + " is past the last record of " +
                         args->tokens);
    const Batch batch = collate_training_batch(data, args->records).to(device);
    const MicroBatchGradients g = micro_batch_gradients(model, adapter, batch, args->checkpointing);
    std::vector<TensorToWrite> tensors{{"loss", at::full({1}, g.loss, at::kDouble)}};
    const auto names = adapter.parameter_names();
    for (size_t i = 0; i < names.size(); ++i)
      tensors.push_back({names[i], g.grads[i].to(at::kCPU).contiguous()});
    write_safetensors(args->out, tensors);
    std::printf("loss %.9g over %lld label tokens; %zu gradients in %s\n", g.loss,
                static_cast<long long>(g.label_tokens), names.size(), args->out.c_str());
  });
}

void add_roc_auc(TrainerCli& cli) {
  auto input = std::make_shared<std::string>();
  auto* auc = cli.app.add_subcommand(
      "roc-auc",
      "ROC AUC (scikit-learn's) of {\"labels\": [...], \"scores\": [...]} or a list of such");
  auc->add_option("input", *input, "JSON file")->required();
  auc->callback([input] {
    const auto j = nlohmann::json::parse(read_file(*input));
    auto one = [](const nlohmann::json& c) {
      return roc_auc(c.at("labels").get<std::vector<int>>(),
                     c.at("scores").get<std::vector<double>>());
    };
    std::vector<double> out;
    if (j.is_array())
      for (const auto& c : j) out.push_back(one(c));
    else
      out.push_back(one(j));
    for (double v : out) std::printf("%.17g\n", v);
  });
}

void inspect_tokens(const std::string& dir, int64_t micro_batch, bool verify) {
  TokenizedDataset data(dir);
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
  auto batch = collate_training_batch(data, first);
  std::printf("  first micro-batch: input_ids [%lld, %lld], %lld real tokens\n",
              static_cast<long long>(batch.input_ids.size(0)),
              static_cast<long long>(batch.input_ids.size(1)),
              static_cast<long long>(batch.attention_mask.sum().item<int64_t>()));
}

void add_inspect_tokens(TrainerCli& cli) {
  struct Args {
    std::string dir;
    int64_t micro_batch = 32;
    bool verify = false;
  };
  auto args = std::make_shared<Args>();
  auto* inspect = cli.app.add_subcommand(
      "inspect-tokens", "Check a tokenized dataset and build its first micro-batch");
  inspect->add_option("tokens", args->dir, "Folder written by `tallrec data tokenize`")->required();
  inspect->add_option("--micro-batch", args->micro_batch, "Micro-batch size to collate")
      ->capture_default_str();
  inspect->add_flag("--verify", args->verify, "Also check tokens.bin against its SHA-256");
  inspect->callback([args, &cli] {
    cli.apply_threads();
    inspect_tokens(args->dir, args->micro_batch, args->verify);
  });
}

}  // namespace

void add_check_commands(TrainerCli& cli) {
  add_generate(cli);
  add_logits(cli);
  add_score(cli);
  add_gradients(cli);
  add_roc_auc(cli);
  add_inspect_tokens(cli);
}

}  // namespace tallrec
