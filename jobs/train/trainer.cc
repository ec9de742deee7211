#include "jobs/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <unistd.h>


#include <chrono>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "jobs/data/token_file.h"
#include "jobs/train/checkpoint.h"
#include "jobs/train/collate.h"
#include "jobs/train/data_order.h"
#include "jobs/train/device.h"
#include "jobs/train/distributed.h"
#include "jobs/train/events.h"
#include "jobs/train/llama.h"
#include "jobs/train/rng_state.h"
#include "jobs/train/roc_auc.h"
#include "jobs/train/safetensors.h"
#include "jobs/train/scoring.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

struct Trainer {
  const RunSpec& spec;
  fs::path out;
  EventLog events;
  LlamaModel model;
  LoraAdapters lora;
  std::unique_ptr<TokenizedDataset> train, valid;
  Scoring scoring;

  int rank;
  std::string rendezvous_file;
  std::unique_ptr<ProcessGroup> group;

  Trainer(const RunSpec& s, const fs::path& o, int r)
      : spec(s), out(o), events(r == 0 ? o / "events.jsonl" : o / ("rank-" + std::to_string(r) + ".events.jsonl"), r == 0),
        scoring(parse_scoring(s.scoring)), rank(r) {}

  int run() {
    const auto dtype = parse_torch_dtype(spec.dtype);
    at::set_num_threads(spec.threads > 0 ? spec.threads : int(std::max(1u, std::thread::hardware_concurrency())));
    // "cuda" with several ranks: rank r takes the r-th visible GPU.
    const at::Device device(spec.device == "cuda" && spec.world_size > 1 ? "cuda:" + std::to_string(rank) : spec.device);
    select_device(device);
    if (spec.world_size > 1) group = make_process_group(rendezvous_file, rank, spec.world_size, device);
    train = std::make_unique<TokenizedDataset>(spec.train_tokens);
    valid = std::make_unique<TokenizedDataset>(spec.valid_tokens);
    if (train->size() == 0) throw InputError(spec.train_tokens + ": no training records");
    model = load_hf_model(spec.base_model, dtype, device);
    if (train->meta().vocab_size > model.config.vocab_size) {
      throw InputError(spec.train_tokens + ": token ids reach " + std::to_string(train->meta().vocab_size) +
                       ", the model's vocabulary has " + std::to_string(model.config.vocab_size));
    }
    lora = spec.init_adapter.empty() ? LoraAdapters(model.config, spec.lora, spec.seed, at::kFloat)
                                     : LoraAdapters::load_peft(spec.init_adapter, model.config, at::kFloat);
    lora.to(device);
    for (auto& p : lora.parameters()) p.requires_grad_(true);
    std::vector<at::Tensor> params = lora.parameters();
    AdamW optimizer(params, spec.optim);

    const int64_t micro = spec.micro_batch_size, accum = spec.batch_size / spec.micro_batch_size;
    const int64_t n = int64_t(train->size());
    const int64_t micro_per_epoch = (n + micro - 1) / micro;
    const bool tallrec_accumulation = spec.loss_normalization == "micro_batch_mean";
    const int64_t steps_per_epoch = tallrec_accumulation ? std::max<int64_t>(micro_per_epoch / accum, 1)
                                                         : (micro_per_epoch + accum - 1) / accum;
    const int64_t total_steps = spec.max_steps > 0 ? spec.max_steps : spec.epochs * steps_per_epoch;
    const int64_t sample = train->meta().few_shot ? train->meta().sample : -1;
    const int64_t eval_every = spec.eval_every > 0 ? spec.eval_every : tallrec_eval_every(sample > 0 ? sample : n);

    TrainerState state;
    const uint64_t order_seed = data_order_seed(spec);
    const bool fp16 = dtype == at::kHalf;
    state.loss_scale = fp16 ? spec.loss_scale_init : 1.0;
    at::manual_seed(spec.seed + uint64_t(rank));  // each rank its own dropout masks
    const fs::path checkpoints = out / "checkpoints";
    fs::create_directories(checkpoints);
    fs::path best_checkpoint;
    if (auto resume = newest_valid_checkpoint(checkpoints)) {
      CheckpointData d = read_checkpoint(*resume, params.size());
      LoraAdapters restored = LoraAdapters::load_peft(*resume, model.config, at::kFloat);
      at::NoGradGuard no_grad;
      auto restored_params = restored.parameters();
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(restored_params[i].to(device));
      for (size_t i = 0; i < params.size(); ++i) {
        optimizer.exp_avg()[i].copy_(d.exp_avg[i].to(device));
        optimizer.exp_avg_sq()[i].copy_(d.exp_avg_sq[i].to(device));
      }
      optimizer.set_steps(d.state.scheduler_steps);
      if (size_t(rank) >= d.rng.size())  // written by another world_size, or before states were kept per rank
        throw InputError(resume->string() + ": holds the RNG states of " + std::to_string(d.rng.size()) +
                         " rank(s), and this run has " + std::to_string(spec.world_size) +
                         ": it cannot be resumed exactly (start it in a new --out)");
      if (d.data_order != spec.data_order || (d.data_seed && *d.data_seed != order_seed))
        throw InputError(resume->string() + ": was written with data_order \"" + d.data_order + "\" (seed " +
                         (d.data_seed ? std::to_string(*d.data_seed) : std::string("unknown")) + "); the spec asks for \"" + spec.data_order +
                         "\": set it back to resume, or start in a new --out");
      restore_rng_state(d.rng[size_t(rank)], device);
      state = d.state;
      if (state.best_step >= 0) {
        char name[32];
        std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(state.best_step));
        best_checkpoint = checkpoints / name;
      }
    }

    events.emit("started", {{"records", n}, {"dtype", spec.dtype}, {"steps", total_steps}, {"steps_per_epoch", steps_per_epoch},
                            {"eval_every", eval_every}, {"micro_batch_size", micro}, {"accumulation", accum},
                            {"resumed_from_step", state.global_step}, {"threads", at::get_num_threads()},
                            {"trainable_parameters", [&] { int64_t c = 0; for (auto& p : params) c += p.numel(); return c; }()}});

    EpochOrders orders(*train, spec.data_order, order_seed, spec.group_by_length, spec.batch_size);
    bool stop = state.global_step >= total_steps;
    auto clock = std::chrono::steady_clock::now();
    int64_t tokens_since = 0, positions_since = 0;
    double loss_since = 0;
    int64_t micro_since = 0;
    for (int64_t epoch = state.epoch; !stop; ++epoch) {
      const std::vector<size_t> order = orders.order(epoch);
      const int64_t first = epoch == state.epoch ? state.micro_batch : 0;
      int64_t group_tokens = 0;  // token_mean: label tokens in the current update group
      for (int64_t i = first; i < micro_per_epoch && !stop; ++i) {
        const std::vector<size_t> rows = micro_batch(order, i, micro);
        if (!tallrec_accumulation && (i % accum == 0 || i == first)) {
          group_tokens = 0;
          for (int64_t k = i - i % accum; k < std::min(micro_per_epoch, i - i % accum + accum); ++k)
            for (int64_t r = k * micro; r < std::min(n, (k + 1) * micro); ++r) {
              auto labels = train->training_labels(order[size_t(r)]);
              group_tokens += std::count_if(labels.begin() + 1, labels.end(), [](int32_t l) { return l != kIgnoreIndex; });
            }
        }
        // Data parallel: rank r takes its equal, contiguous share of every update's micro-batches.
        const bool mine = !group || (i % accum) / (accum / group->world_size) == rank;
        if (mine) {
          Batch b = collate_training_batch(*train, rows).to(device);
          at::Tensor hidden = llama_hidden(model, b.input_ids, b.attention_mask, at::Tensor(),
                                           {&lora, true, spec.gradient_checkpointing});
          auto [sum, count] = causal_lm_loss_sum(model, hidden, b.labels);
          at::Tensor loss = tallrec_accumulation ? sum / double(std::max<int64_t>(count, 1)) / double(accum)
                                                 : sum / double(std::max<int64_t>(group_tokens, 1));
          (loss * state.loss_scale).backward();
          loss_since += sum.item<double>() / double(std::max<int64_t>(count, 1));
          ++micro_since;
          tokens_since += b.attention_mask.sum().item<int64_t>();
          positions_since += b.attention_mask.numel();
        }

        const bool last = i + 1 == micro_per_epoch;
        const bool step_now = tallrec_accumulation ? ((i + 1) % accum == 0 || (micro_per_epoch <= accum && last))
                                                   : ((i + 1) % accum == 0 || last);
        if (!step_now) continue;
        // float16: unscale, and skip the update (halving the scale) on inf/NaN, as GradScaler;
        // HF then does not advance the schedule either.
        if (group) {
          // Sum every rank's gradients (one flat buffer); the losses were already divided by
          // the whole update's accumulation count, so the sum is the single-process gradient.
          at::NoGradGuard no_grad;
          std::vector<at::Tensor> grads;
          for (auto& p : params) grads.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}, p.options()));
          grads.push_back(at::tensor({loss_since, double(micro_since), double(tokens_since), double(positions_since)},
                                     at::TensorOptions().dtype(at::kFloat).device(device)));  // for the progress event
          std::vector<at::Tensor> flat{at::cat(grads)};
          group->allreduce_sum(flat);
          at::Tensor stats = flat[0].narrow(0, flat[0].numel() - 4, 4).to(at::kCPU, at::kDouble);
          loss_since = stats[0].item<double>();
          micro_since = int64_t(stats[1].item<double>());
          tokens_since = int64_t(stats[2].item<double>());
          positions_since = int64_t(stats[3].item<double>());
          int64_t at_ = 0;
          for (auto& p : params) {
            p.mutable_grad() = flat[0].narrow(0, at_, p.numel()).view(p.sizes()).clone();
            at_ += p.numel();
          }
        }
        bool skipped = false;
        if (fp16) {
          at::NoGradGuard no_grad;
          for (auto& p : params)
            if (p.grad().defined()) p.grad().div_(state.loss_scale);
          for (auto& p : params) skipped = skipped || (p.grad().defined() && !at::isfinite(p.grad()).all().item<bool>());
        }
        const double grad_norm = skipped ? std::nan("") : clip_grad_norm(params, spec.max_grad_norm);
        const double lr = spec.optim.lr * linear_warmup_multiplier(state.scheduler_steps, spec.warmup_steps, total_steps);
        if (!skipped) {
          optimizer.step(lr);
          ++state.scheduler_steps;
        }
        optimizer.zero_grad();
        if (fp16) {
          if (skipped) {
            state.loss_scale *= 0.5;
            state.clean_steps = 0;
          } else if (++state.clean_steps == 2000) {
            state.loss_scale *= 2.0;
            state.clean_steps = 0;
          }
        }
        ++state.global_step;
        state.epoch = last ? epoch + 1 : epoch;
        state.micro_batch = last ? 0 : i + 1;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - clock).count();
        events.emit("progress", {{"step", state.global_step}, {"epoch", double(epoch) + double(i + 1) / double(micro_per_epoch)},
                                 {"loss", loss_since / double(micro_since)}, {"lr", lr}, {"grad_norm", grad_norm},
                                 {"tokens_per_s", double(tokens_since) / std::max(seconds, 1e-9)},
                                 {"memory_bytes", memory_in_use_bytes(device)},
                                 {"padding_fraction", 1.0 - double(tokens_since) / double(std::max<int64_t>(positions_since, 1))}, {"loss_scale", state.loss_scale},
                                 {"skipped", skipped}});
        loss_since = 0;
        micro_since = 0;
        tokens_since = 0;
        positions_since = 0;
        clock = std::chrono::steady_clock::now();

        const bool eval_now = state.global_step % eval_every == 0 || state.global_step >= total_steps;
        // Every rank's RNG state goes into rank 0's checkpoint (taken before evaluating, which
        // draws nothing).
        const std::vector<RngState> rng = eval_now ? gather_rng_states(group.get(), device) : std::vector<RngState>{};
        if (eval_now && rank == 0) {
          EvalResult r = evaluate_validation(model, &lora, *valid, spec.eval_batch_size, scoring);
          const double auc = roc_auc(r.labels, r.scores);
          state.history.push_back({{"step", state.global_step}, {"val_auc", auc}, {"val_loss", r.loss}});
          const bool improved = auc > state.best_auc;  // HF: strictly greater is better
          if (improved) {
            state.best_auc = auc;
            state.best_step = state.global_step;
            state.evals_without_improvement = 0;
          } else {
            ++state.evals_without_improvement;
          }
          events.emit("eval", {{"step", state.global_step}, {"val_auc", auc}, {"val_loss", r.loss},
                               {"best_val_auc", state.best_auc}, {"best_step", state.best_step},
                               {"scored", r.scores.size()}, {"skipped", r.skipped}});
          auto [path, manifest_sha] = write_checkpoint(checkpoints, lora, spec.base_model,
                                                       {state, optimizer.exp_avg(), optimizer.exp_avg_sq(), rng, spec.data_order, order_seed});
          if (improved) best_checkpoint = path;
          prune_checkpoints(checkpoints, {path, best_checkpoint});
          events.emit("checkpoint", {{"step", state.global_step}, {"path", path.string()}, {"sha256", manifest_sha}});
          if (state.evals_without_improvement >= spec.early_stopping_patience) stop = true;
        }
        if (eval_now && group) {  // rank 0 decides whether to stop early; every rank follows
          at::Tensor flag = at::full({1}, stop ? 1 : 0, at::TensorOptions().dtype(at::kInt).device(device));
          group->broadcast(flag, 0);
          stop = flag.item<int>() != 0;
        }
        if (state.global_step >= total_steps) stop = true;
      }
      if (!stop && spec.max_steps <= 0 && epoch + 1 >= spec.epochs) stop = true;
    }

    if (rank != 0) return 0;
    // The result is the best adapter; score the test sets with it.
    if (best_checkpoint.empty()) throw Error("no evaluation happened, so there is no best adapter");
    LoraAdapters best = LoraAdapters::load_peft(best_checkpoint, model.config, at::kFloat);
    best.to(device);
    StagedDirectory result(out / "adapter");
    best.save_peft(result.path(), spec.base_model);
    result.commit();
    nlohmann::ordered_json test_aucs = nlohmann::ordered_json::object();
    for (const auto& [name, dir] : spec.test_tokens) {
      TokenizedDataset test(dir);
      EvalResult r = evaluate_test(model, &best, test, spec.eval_batch_size, scoring);
      test_aucs[name] = roc_auc(r.labels, r.scores);
    }
    events.emit("finished", {{"best_step", state.best_step}, {"best_val_auc", state.best_auc}, {"steps", state.global_step},
                             {"stopped_early", state.evals_without_improvement >= spec.early_stopping_patience},
                             {"adapter", (out / "adapter").string()}, {"test_auc", test_aucs}});
    return 0;
  }
};

}  // namespace

int run_training(const RunSpec& spec, const fs::path& out_dir, int rank, const std::string& rendezvous_file) {
  fs::create_directories(out_dir);
  Trainer trainer(spec, out_dir, rank);
  trainer.rendezvous_file = rendezvous_file;
  try {
    return trainer.run();
  } catch (const InputError& e) {
    trainer.events.emit("failed", {{"reason", e.what()}, {"retryable", false}});
    return 2;
  } catch (const c10::Error& e) {  // from libtorch: the message without its C++ stack trace
    trainer.events.emit("failed", {{"reason", e.what_without_backtrace()}, {"retryable", true}});
    return 1;
  } catch (const std::exception& e) {
    trainer.events.emit("failed", {{"reason", e.what()}, {"retryable", true}});
    return 1;
  }
}

}  // namespace tallrec
