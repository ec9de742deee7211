// The training recipe, phase by phase, as torchtune writes them: setup, resume, then per
// micro-batch the loss step and, at each update boundary, the optimizer step (data-parallel
// sum, loss scaling, clipping, AdamW), then evaluation and checkpoint, and finally the result.
// The step arithmetic is step_plan.h; the loss step is loss_step.h.
#include "jobs/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <numeric>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/memory_estimate.h"
#include "common/train_events.h"
#include "jobs/data/token_file.h"
#include "jobs/train/checkpoint.h"
#include "jobs/train/collate.h"
#include "jobs/train/data_order.h"
#include "jobs/train/device.h"
#include "jobs/train/distributed.h"
#include "jobs/train/events.h"
#include "jobs/train/llama.h"
#include "jobs/train/loss_step.h"
#include "jobs/train/memory_limit.h"
#include "jobs/train/optimizer.h"
#include "jobs/train/preemption.h"
#include "jobs/train/rng_state.h"
#include "jobs/train/roc_auc.h"
#include "jobs/train/safetensors.h"
#include "jobs/train/scoring.h"
#include "jobs/train/step_plan.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

fs::path checkpoint_path(const fs::path& checkpoints, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return checkpoints / name;
}

// What the progress event reports, summed since the last optimizer step.
struct ProgressTally {
  double loss = 0;  // sum of micro-batch mean losses
  int64_t micro_batches = 0, tokens = 0, positions = 0;
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
};

struct Trainer {
  const RunSpec& spec;
  fs::path out, checkpoints;
  EventLog events;
  int rank;
  std::string rendezvous_file;

  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  std::unique_ptr<ProcessGroup> group;
  std::unique_ptr<TokenizedDataset> train, valid;
  LlamaModel model;
  LoraAdapters lora;
  std::vector<at::Tensor> params;
  std::unique_ptr<AdamW> optimizer;
  StepPlan plan;
  int64_t eval_every = 0;
  uint64_t order_seed = 0;
  TrainerState state;
  fs::path best_checkpoint;
  int64_t checkpointed_step = -1;  // the step of the newest checkpoint written or resumed from
  bool preempted = false;
  std::string phase = "load";  // where an out-of-memory happened: load | train | evaluation | test
  ProgressTally tally;

  Trainer(const RunSpec& s, const fs::path& o, int r)
      : spec(s),
        out(o),
        checkpoints(o / "checkpoints"),
        events(r == 0 ? o / "events.jsonl" : o / ("rank-" + std::to_string(r) + ".events.jsonl"),
               r == 0),
        rank(r) {}

  bool fp16() const { return dtype == at::kHalf; }

  // Device, process group, data, model, adapters, optimizer and the step plan.
  void setup() {
    dtype = parse_torch_dtype(name_of(spec.dtype));
    set_cpu_threads(spec.threads);
    // "cuda" with several ranks: rank r takes the r-th visible GPU.
    device =
        at::Device(spec.device == "cuda" && spec.world_size > 1 ? "cuda:" + std::to_string(rank)
                                                                : spec.device);
    select_device(device);
    cap_memory(spec.memory_limit_gib, device);  // before the model: the cap counts it
    if (spec.world_size > 1)
      group = make_process_group(rendezvous_file, rank, spec.world_size, device);
    train = std::make_unique<TokenizedDataset>(spec.train_tokens);
    valid = std::make_unique<TokenizedDataset>(spec.valid_tokens);
    // Garbled ids would train silently; the hash is seconds even for the full 10,000 prompts.
    train->verify_checksum();
    valid->verify_checksum();
    if (train->size() == 0) throw InputError(spec.train_tokens + ": no training records");
    model = load_hf_model(spec.base_model, dtype, device);
    if (train->meta().vocab_size > model.config.vocab_size) {
      throw InputError(spec.train_tokens + ": token ids reach " +
                       std::to_string(train->meta().vocab_size) + ", the model's vocabulary has " +
                       std::to_string(model.config.vocab_size));
    }
    // TALLRec: the command line's LoRA settings define the model, a starting adapter's weights
    // are loaded into it.
    lora = spec.init_adapter.empty() ? LoraAdapters(model.config, spec.lora, spec.seed, at::kFloat)
                                     : LoraAdapters::load_peft_into(spec.init_adapter, model.config,
                                                                    spec.lora, at::kFloat);
    lora.to(device);
    params = lora.parameters();
    for (auto& p : params) p.requires_grad_(true);
    optimizer = std::make_unique<AdamW>(params, spec.optim);

    plan = plan_steps(int64_t(train->size()), spec.micro_batch_size, spec.batch_size,
                      spec.loss_normalization == LossNormalization::kMicroBatchMean, spec.epochs,
                      spec.max_steps);
    const int64_t sample = train->meta().few_shot ? train->meta().sample : plan.records;
    eval_every = spec.eval_every > 0 ? spec.eval_every : tallrec_eval_every(sample);
    order_seed = data_order_seed(spec);
    state.loss_scale = fp16() ? spec.loss_scale_init : 1.0;
    state.cursor_micro_batch_size = plan.micro_batch;
    at::manual_seed(spec.seed + uint64_t(rank));  // each rank its own dropout masks
    fs::create_directories(checkpoints);
  }

  // Continues from the newest valid checkpoint, if there is one: adapters, AdamW moments,
  // schedule, this rank's RNG state, data cursor and early-stopping state.
  void resume() {
    auto found = newest_valid_checkpoint(checkpoints);
    if (!found) return;
    const fs::path& dir = *found;
    const CheckpointData d = read_checkpoint(dir, params.size());
    for (size_t i = 0; i < params.size(); ++i)
      if (d.exp_avg[i].sizes() != params[i].sizes() || d.exp_avg_sq[i].sizes() != params[i].sizes())
        throw InputError(dir.string() + ": optimizer state " + std::to_string(i) +
                         " does not fit the run's adapters");
    if (size_t(rank) >=
        d.rng.size())  // written by another world_size, or before states were kept per rank
      throw InputError(dir.string() + ": holds the RNG states of " + std::to_string(d.rng.size()) +
                       " rank(s), and this run has " + std::to_string(spec.world_size) +
                       ": it cannot be resumed exactly (start it in a new --out)");
    if (d.data_order != name_of(spec.data_order) || (d.data_seed && *d.data_seed != order_seed))
      throw InputError(dir.string() + ": was written with data_order \"" + d.data_order +
                       "\" (seed " +
                       (d.data_seed ? std::to_string(*d.data_seed) : std::string("unknown")) +
                       "); the spec asks for \"" + name_of(spec.data_order) +
                       "\": set it back to resume, or start in a new --out");
    LoraAdapters restored = LoraAdapters::load_peft(dir, model.config, at::kFloat);
    at::NoGradGuard no_grad;
    auto restored_params = restored.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      params[i].copy_(restored_params[i].to(device));
      optimizer->exp_avg()[i].copy_(d.exp_avg[i].to(device));
      optimizer->exp_avg_sq()[i].copy_(d.exp_avg_sq[i].to(device));
    }
    optimizer->set_steps(d.state.scheduler_steps);
    restore_rng_state(d.rng[size_t(rank)], device);
    state = d.state;
    // Written with another micro-batch size (the retry after an out-of-memory halves it): the
    // cursor, taken at an optimizer-step boundary, is the same records in the new unit.
    if (state.cursor_micro_batch_size > 0 && state.cursor_micro_batch_size != plan.micro_batch)
      state.micro_batch = state.micro_batch * state.cursor_micro_batch_size / plan.micro_batch;
    state.cursor_micro_batch_size = plan.micro_batch;
    if (state.best_step >= 0) best_checkpoint = checkpoint_path(checkpoints, state.best_step);
    checkpointed_step = state.global_step;
  }

  // `tallrec check`'s estimate for this run, with its longest training sequence as the width.
  double memory_estimate() const {
    size_t longest = 0;
    for (size_t i = 0; i < train->size(); ++i)
      longest = std::max(longest, train->train_ids(i).size());
    const LoraConfig& l = lora.config();
    return estimate_gpu_memory(model.config, bytes_per_value(spec.dtype), l.r, l.target_modules,
                               plan.micro_batch, int64_t(longest), spec.gradient_checkpointing)
        .total();
  }

  void emit_started() {
    int64_t trainable = 0;
    for (auto& p : params) trainable += p.numel();
    const LoraConfig& l = lora.config();
    events.emit(kStartedEvent, {{"records", plan.records},
                                {"recipe", name_of(spec.recipe)},
                                {"dtype", name_of(spec.dtype)},
                                {"steps", plan.total_steps},
                                {"steps_per_epoch", plan.steps_per_epoch},
                                {"eval_every", eval_every},
                                {"micro_batch_size", plan.micro_batch},
                                {"accumulation", plan.accumulation},
                                {"group_by_length", spec.group_by_length},
                                {"gradient_checkpointing", spec.gradient_checkpointing},
                                {"resumed_from_step", state.global_step},
                                {"threads", at::get_num_threads()},
                                {"trainable_parameters", trainable},
                                {"memory_estimate_bytes", memory_estimate()},
                                {"lora",
                                 {{"r", l.r},
                                  {"alpha", l.alpha},
                                  {"dropout", l.dropout},
                                  {"target_modules", l.target_modules},
                                  {"init_adapter", spec.init_adapter}}}});
  }

  // token_mean's divisor, as today's HF Trainer counts it (num_items_in_batch): the labels that
  // are not -100 in the update group's records, before the shift. With train_on_inputs that is
  // one more per record than the shifted targets of an unpadded row.
  int64_t group_label_tokens(const std::vector<size_t>& order, int64_t i) const {
    auto [first, end] = plan.update_group(i);
    int64_t tokens = 0;
    for (int64_t r = first * plan.micro_batch; r < std::min(plan.records, end * plan.micro_batch);
         ++r) {
      auto labels = train->training_labels(order[size_t(r)]);
      tokens +=
          std::count_if(labels.begin(), labels.end(), [](int32_t l) { return l != kIgnoreIndex; });
    }
    return tokens;
  }

  // Forward and backward of one micro-batch; gradients accumulate.
  void accumulate(const std::vector<size_t>& rows, int64_t group_tokens) {
    Batch b = collate_training_batch(*train, rows).to(device);
    LossStepResult r = loss_step(
        model, lora, b, /*training=*/true, spec.gradient_checkpointing,
        [&](int64_t count) { return plan.loss_divisor(count, group_tokens); }, state.loss_scale);
    tally.loss += r.mean_loss;
    ++tally.micro_batches;
    tally.tokens += b.attention_mask.sum().item<int64_t>();
    tally.positions += b.attention_mask.numel();
  }

  // Data parallel: sums every rank's gradients (one flat buffer) and the progress tally. The
  // losses were divided by the whole update's accumulation, so the sum is the one-process gradient.
  void sum_over_ranks() {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> grads;
    for (auto& p : params)
      grads.push_back(p.grad().defined() ? p.grad().reshape({-1})
                                         : at::zeros({p.numel()}, p.options()));
    grads.push_back(at::tensor(
        {tally.loss, double(tally.micro_batches), double(tally.tokens), double(tally.positions)},
        at::TensorOptions().dtype(at::kFloat).device(device)));
    std::vector<at::Tensor> flat{at::cat(grads)};
    group->allreduce_sum(flat);
    at::Tensor stats = flat[0].narrow(0, flat[0].numel() - 4, 4).to(at::kCPU, at::kDouble);
    tally.loss = stats[0].item<double>();
    tally.micro_batches = int64_t(stats[1].item<double>());
    tally.tokens = int64_t(stats[2].item<double>());
    tally.positions = int64_t(stats[3].item<double>());
    int64_t at_ = 0;
    for (auto& p : params) {
      p.mutable_grad() = flat[0].narrow(0, at_, p.numel()).view(p.sizes()).clone();
      at_ += p.numel();
    }
  }

  // One update: rank sum, float16 unscaling (an overflow skips the update and halves the scale,
  // as GradScaler; HF then does not advance the schedule either), clipping, AdamW.
  void optimizer_step(int64_t epoch, int64_t i) {
    if (group) sum_over_ranks();
    bool skipped = false;
    if (fp16()) {
      at::NoGradGuard no_grad;
      for (auto& p : params)
        if (p.grad().defined()) p.grad().div_(state.loss_scale);
      for (auto& p : params)
        skipped = skipped || (p.grad().defined() && !at::isfinite(p.grad()).all().item<bool>());
    }
    const double grad_norm = skipped ? std::nan("") : clip_grad_norm(params, spec.max_grad_norm);
    // A non-finite loss or gradient (NaN base weights, divergence) would train an all-NaN adapter
    // to a "success": it ends the run, not retryable (the same input fails the same way). float16
    // overflow is the loss scaler's business, unless the scale has nothing left to give.
    const double step_loss = tally.loss / double(std::max<int64_t>(tally.micro_batches, 1));
    if (!fp16() && (!std::isfinite(step_loss) || !std::isfinite(grad_norm)))
      throw InputError("step " + std::to_string(state.global_step + 1) + ": the loss (" +
                       std::to_string(step_loss) + ") or gradient norm (" +
                       std::to_string(grad_norm) +
                       ") is not finite; check the base model's weights and the learning rate");
    if (fp16() && skipped && state.loss_scale < 1.0)
      throw InputError("step " + std::to_string(state.global_step + 1) +
                       ": float16 gradients are not finite even at loss scale < 1; the loss itself "
                       "is not finite");
    const double lr = spec.optim.lr * linear_warmup_multiplier(state.scheduler_steps,
                                                               spec.warmup_steps, plan.total_steps);
    if (!skipped) {
      optimizer->step(lr);
      ++state.scheduler_steps;
    }
    optimizer->zero_grad();
    if (fp16()) {
      if (skipped) {
        state.loss_scale *= 0.5;
        state.clean_steps = 0;
      } else if (++state.clean_steps == 2000) {
        state.loss_scale *= 2.0;
        state.clean_steps = 0;
      }
    }
    const bool last = i + 1 == plan.micro_per_epoch;
    ++state.global_step;
    state.epoch = last ? epoch + 1 : epoch;
    state.micro_batch = last ? 0 : i + 1;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - tally.since).count();
    events.emit(kProgressEvent,
                {{"step", state.global_step},
                 {"epoch", double(epoch) + double(i + 1) / double(plan.micro_per_epoch)},
                 {"loss", tally.loss / double(tally.micro_batches)},
                 {"lr", lr},
                 {"grad_norm", grad_norm},
                 {"tokens_per_s", double(tally.tokens) / std::max(seconds, 1e-9)},
                 {"memory_bytes", memory_in_use_bytes(device)},
                 {"padding_fraction",
                  1.0 - double(tally.tokens) / double(std::max<int64_t>(tally.positions, 1))},
                 {"loss_scale", state.loss_scale},
                 {"skipped", skipped}});
    tally = ProgressTally{};
  }

  // HF evaluates every eval_every steps and not at the end; eval_at_end adds the last step.
  bool evaluation_due() const {
    if (state.global_step % eval_every == 0) return true;
    if (state.global_step < plan.total_steps) return false;
    // A run that ends before its first evaluation is evaluated once, so it still has a result
    // (HF's would be its final model: the same adapter). Every rank computes the same answer.
    return spec.eval_at_end || plan.total_steps < eval_every;
  }

  // Rank 0 scores validation, writes a checkpoint and decides whether to stop early; every rank
  // follows that decision. Returns whether to stop.
  bool evaluate_and_checkpoint() {
    phase = "evaluation";
    // Every rank's RNG state goes into rank 0's checkpoint (taken before evaluating, which draws
    // nothing).
    const std::vector<RngState> rng = gather_rng_states(group.get(), device);
    bool stop = false;
    if (rank == 0) {
      const auto began = std::chrono::steady_clock::now();
      EvalResult r = evaluate_validation(model, &lora, *valid, spec.eval_batch_size, spec.scoring);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      const double auc = roc_auc(r.labels, r.scores);
      state.history.push_back(
          {{"step", state.global_step}, {"val_auc", auc}, {"val_loss", r.loss}});
      const bool improved = auc > state.best_auc;  // HF: strictly greater is better
      if (improved) {
        state.best_auc = auc;
        state.best_step = state.global_step;
        state.evals_without_improvement = 0;
      } else {
        ++state.evals_without_improvement;
      }
      events.emit(kEvalEvent, {{"step", state.global_step},
                               {"val_auc", auc},
                               {"val_loss", r.loss},
                               {"best_val_auc", state.best_auc},
                               {"best_step", state.best_step},
                               {"scored", r.scores.size()},
                               {"skipped", r.skipped},
                               {"prompts_per_s", double(valid->size()) / std::max(seconds, 1e-9)},
                               {"padding_fraction", r.padding_fraction()}});
      auto [path, manifest_sha] =
          write_checkpoint(checkpoints, lora, spec.base_model,
                           {state, optimizer->exp_avg(), optimizer->exp_avg_sq(), rng,
                            name_of(spec.data_order), order_seed});
      if (improved) best_checkpoint = path;
      prune_checkpoints(checkpoints, {path, best_checkpoint});
      checkpointed_step = state.global_step;
      events.emit(kCheckpointEvent,
                  {{"step", state.global_step}, {"path", path.string()}, {"sha256", manifest_sha}});
      stop = state.evals_without_improvement >= spec.early_stopping_patience;
    }
    if (group) {
      at::Tensor flag =
          at::full({1}, stop ? 1 : 0, at::TensorOptions().dtype(at::kInt).device(device));
      group->broadcast(flag, 0);
      stop = flag.item<int>() != 0;
    }
    return stop;
  }

  // Whether a stop signal came (preemption.h). With several ranks they agree (a sum over ranks
  // each step), so every rank stops at the same step boundary.
  bool stop_requested() {
    if (!group) return preemption_signal() != 0;
    std::vector<at::Tensor> flag{at::full({1}, preemption_signal() != 0 ? 1.0f : 0.0f,
                                          at::TensorOptions().dtype(at::kFloat).device(device))};
    group->allreduce_sum(flag);
    return flag[0].item<float>() > 0;
  }

  // A full checkpoint at this optimizer-step boundary (unless one was just written here), as an
  // evaluation's but without evaluating: adapters, AdamW moments, schedule, loss scaler, every
  // rank's RNG state, the data cursor and the early-stopping state.
  void checkpoint_for_preemption() {
    const std::vector<RngState> rng = gather_rng_states(group.get(), device);
    if (rank != 0 || checkpointed_step == state.global_step) return;
    auto [path, manifest_sha] =
        write_checkpoint(checkpoints, lora, spec.base_model,
                         {state, optimizer->exp_avg(), optimizer->exp_avg_sq(), rng,
                          name_of(spec.data_order), order_seed});
    prune_checkpoints(checkpoints, {path, best_checkpoint});
    checkpointed_step = state.global_step;
    events.emit(kCheckpointEvent,
                {{"step", state.global_step}, {"path", path.string()}, {"sha256", manifest_sha}});
  }

  // Epochs of micro-batches until the step cap, the epoch count or early stopping.
  void train_loop() {
    EpochOrders orders(*train, spec.data_order, order_seed, spec.group_by_length, spec.batch_size);
    bool stop = state.global_step >= plan.total_steps;
    // Told to stop while loading: nothing new to save, the newest checkpoint stands.
    if (!stop && stop_requested()) preempted = stop = true;
    for (int64_t epoch = state.epoch; !stop; ++epoch) {
      const std::vector<size_t> order = orders.order(epoch);
      const int64_t first = epoch == state.epoch ? state.micro_batch : 0;
      int64_t group_tokens = 0;
      for (int64_t i = first; i < plan.micro_per_epoch && !stop; ++i) {
        if (!plan.hf_accumulation && (i % plan.accumulation == 0 || i == first))
          group_tokens = group_label_tokens(order, i);
        phase = "train";
        if (!group || plan.owner(i, group->world_size) == rank)
          accumulate(micro_batch(order, i, plan.micro_batch), group_tokens);
        if (!plan.steps_after(i)) continue;
        optimizer_step(epoch, i);
        if (evaluation_due()) stop = evaluate_and_checkpoint();
        if (state.global_step >= plan.total_steps) stop = true;
        if (!stop && stop_requested()) {
          checkpoint_for_preemption();
          preempted = stop = true;
        }
      }
      if (!stop && spec.max_steps <= 0 && epoch + 1 >= spec.epochs) stop = true;
    }
  }

  // The result is the best adapter: saved to OUT/adapter and scored on every test set.
  void finish() {
    phase = "test";
    if (best_checkpoint.empty()) throw Error("no evaluation happened, so there is no best adapter");
    LoraAdapters best = LoraAdapters::load_peft(best_checkpoint, model.config, at::kFloat);
    for (const auto& p : best.parameters())
      if (!at::isfinite(p).all().item<bool>())
        throw InputError(best_checkpoint.string() +
                         ": the best adapter has non-finite values; not a result");
    best.to(device);
    StagedDirectory result(out / "adapter");
    best.save_peft(result.path(), spec.base_model);
    result.commit();
    nlohmann::ordered_json test_aucs = nlohmann::ordered_json::object();
    for (const auto& [name, dir] : spec.test_tokens) {
      TokenizedDataset test(dir);
      test.verify_checksum();
      EvalResult r = evaluate_test(model, &best, test, spec.eval_batch_size, spec.scoring);
      test_aucs[name] = roc_auc(r.labels, r.scores);
    }
    events.emit(kFinishedEvent,
                {{"best_step", state.best_step},
                 {"best_val_auc", state.best_auc},
                 {"steps", state.global_step},
                 {"stopped_early", state.evals_without_improvement >= spec.early_stopping_patience},
                 {"adapter", (out / "adapter").string()},
                 {"test_auc", test_aucs}});
  }

  int run() {
    setup();
    resume();
    emit_started();
    train_loop();
    if (preempted) {
      if (rank == 0)
        events.emit(kPreemptedEvent,
                    {{"step", state.global_step},
                     {"checkpoint_step", checkpointed_step},
                     {"reason", preemption_signal() == SIGUSR1 ? "SIGUSR1" : "SIGTERM"}});
      return kPreemptedExitCode;
    }
    if (rank == 0) finish();
    return 0;
  }
};

// An out-of-memory, said as such, with where and at which batch sizes: the queue retries the run
// with half the micro-batch (Queue::end_reported).
nlohmann::json out_of_memory_event(const Trainer& trainer, const RunSpec& spec,
                                   const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  const std::string what = c10_error ? c10_error->what_without_backtrace() : e.what();
  const bool in_steps = trainer.phase == "train" || trainer.phase == "evaluation";
  const int64_t step = trainer.state.global_step + (trainer.phase == "train" ? 1 : 0);
  std::string where = "out of memory in " + trainer.phase;
  if (in_steps) where += " at step " + std::to_string(step);
  where += " (micro-batch " + std::to_string(spec.micro_batch_size) + ", evaluation batch " +
           std::to_string(spec.eval_batch_size);
  if (spec.memory_limit_gib > 0)
    where += ", memory_limit_gib " + nlohmann::json(spec.memory_limit_gib).dump();
  return {{"reason", where + "): " + what.substr(0, 300)},
          {"retryable", true},
          {"out_of_memory",
           {{"phase", trainer.phase},
            {"step", step},
            {"micro_batch_size", spec.micro_batch_size},
            {"eval_batch_size", spec.eval_batch_size}}}};
}

}  // namespace

int run_training(const RunSpec& spec, const fs::path& out_dir, int rank,
                 const std::string& rendezvous_file) {
  fs::create_directories(out_dir);
  Trainer trainer(spec, out_dir, rank);
  trainer.rendezvous_file = rendezvous_file;
  try {
    try {
      return trainer.run();
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      trainer.events.emit(kFailedEvent, out_of_memory_event(trainer, spec, e));
      return 1;
    }
  } catch (const InputError& e) {
    trainer.events.emit(kFailedEvent, {{"reason", e.what()}, {"retryable", false}});
    return kBadInputExitCode;
  } catch (const c10::Error& e) {  // from libtorch: the message without its C++ stack trace
    trainer.events.emit(kFailedEvent,
                        {{"reason", e.what_without_backtrace()}, {"retryable", true}});
    return 1;
  } catch (const std::exception& e) {
    trainer.events.emit(kFailedEvent, {{"reason", e.what()}, {"retryable", true}});
    return 1;
  }
}

}  // namespace tallrec
