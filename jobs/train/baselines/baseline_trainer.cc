#include "jobs/train/baselines/baseline_trainer.h"

#include "jobs/train/baselines/baseline_loss.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <csignal>
#include <optional>

#include "common/error.h"
#include "common/exit_codes.h"
#include "common/train_events.h"
#include "jobs/train/device.h"
#include "jobs/train/events.h"
#include "jobs/train/optimizer.h"
#include "jobs/train/preemption.h"
#include "jobs/train/roc_auc.h"
#include "jobs/train/safetensors.h"

namespace tallrec {
namespace fs = std::filesystem;

SequenceBatch sequence_batch(const EncodedSplit& s, int64_t max_history) {
  auto tensor = [](const std::vector<int64_t>& v) {
    return at::tensor(at::ArrayRef<int64_t>(v), at::TensorOptions().dtype(at::kLong));
  };
  return {tensor(s.user), tensor(s.history).view({s.rows(), max_history}), tensor(s.history_length),
          tensor(s.target)};
}

namespace {

SequenceBatch rows(const SequenceBatch& b, const at::Tensor& index) {
  return {b.user.index_select(0, index), b.history.index_select(0, index),
          b.history_length.index_select(0, index), b.target.index_select(0, index)};
}

// torch.optim.Adam with weight_decay: the L2 term joins the gradient before the moments, which
// then is jobs/train/optimizer.h's AdamW without its decoupled decay.
void add_l2_to_gradients(const std::vector<at::Tensor>& params, double weight_decay) {
  if (weight_decay == 0) return;
  at::NoGradGuard no_grad;
  for (const auto& p : params)
    if (p.grad().defined()) p.grad().add_(p, weight_decay);
}

struct Scored {
  double auc = 0, loss = 0;
};

Scored score_split(SequentialModel& model, const SequenceBatch& all, const EncodedSplit& split,
                   int64_t batch_size) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> scores;
  for (int64_t begin = 0; begin < split.rows(); begin += batch_size) {
    const at::Tensor index = at::arange(begin, std::min(split.rows(), begin + batch_size));
    scores.push_back(model.score(rows(all, index), /*training=*/false));
  }
  const at::Tensor score = at::cat(scores);
  const at::Tensor label = at::tensor(at::ArrayRef<int64_t>(split.label));
  const at::Tensor p = at::sigmoid(score).to(at::kDouble).contiguous();
  std::vector<int> labels(split.label.begin(), split.label.end());
  std::vector<double> probs(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
  return {roc_auc(labels, probs), like_loss(score, label).item<double>()};
}

std::vector<at::Tensor> snapshot(SequentialModel& model) {
  std::vector<at::Tensor> out;
  for (auto& [name, p] : model.parameters()) out.push_back(p.detach().clone());
  return out;
}

int train(const BaselineSpec& spec, const fs::path& out, EventLog& events) {
  set_cpu_threads(spec.threads);
  at::manual_seed(spec.seed);
  const BaselineInputs in = read_baseline_inputs(spec.inputs);
  auto model = make_sequential_model(spec, {in.items, in.users, in.max_history});
  std::vector<at::Tensor> params;
  int64_t trainable = 0;
  for (auto& [name, p] : model->parameters()) {
    params.push_back(p);
    trainable += p.numel();
  }
  AdamW adam(params, AdamWConfig{.lr = spec.lr, .weight_decay = 0});

  const SequenceBatch train = sequence_batch(in.train, in.max_history);
  const SequenceBatch valid = sequence_batch(in.valid, in.max_history);
  const at::Tensor train_label = at::tensor(at::ArrayRef<int64_t>(in.train.label));
  const at::Tensor item_weights = dros_item_weights(in.train, in.items);
  const int64_t n = in.train.rows();
  const int64_t steps_per_epoch = n / spec.batch_size + (n % spec.batch_size != 0);
  events.emit(kStartedEvent, {{"method", name_of(spec.method)},
                              {"records", n},
                              {"steps", steps_per_epoch * spec.epochs},
                              {"steps_per_epoch", steps_per_epoch},
                              {"eval_every", steps_per_epoch},
                              {"micro_batch_size", spec.batch_size},
                              {"accumulation", 1},
                              {"resumed_from_step", 0},
                              {"threads", at::get_num_threads()},
                              {"trainable_parameters", trainable},
                              {"memory_estimate_bytes", 0}});

  at::Generator order_rng = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  int64_t step = 0, best_step = 0, stale = 0;
  bool stopped_early = false;
  double best_auc = -1;
  std::vector<at::Tensor> best = snapshot(*model);
  for (int64_t epoch = 0; epoch < spec.epochs && !stopped_early; ++epoch) {
    const at::Tensor order = at::randperm(n, order_rng);
    for (int64_t begin = 0; begin < n; begin += spec.batch_size) {
      if (int signal = preemption_signal()) {
        events.emit(kPreemptedEvent, {{"step", step},
                                      {"checkpoint_step", -1},
                                      {"reason", signal == SIGUSR1 ? "SIGUSR1" : "SIGTERM"}});
        return kPreemptedExitCode;
      }
      const auto start = std::chrono::steady_clock::now();
      const at::Tensor index = order.slice(0, begin, std::min(n, begin + spec.batch_size));
      const at::Tensor loss = baseline_loss(*model, rows(train, index),
                                            train_label.index_select(0, index), spec, item_weights,
                                            /*training=*/true);
      loss.backward();
      double norm2 = 0;
      for (const auto& p : params)
        if (p.grad().defined()) norm2 += p.grad().pow(2).sum().item<double>();
      // A non-finite loss or gradient (DROS's exp overflowing at a small dros_beta, a diverging
      // lr) would train NaN weights to a meaningless AUC: the run fails, not retryable (the same
      // spec fails the same way).
      const double step_loss = loss.item<double>();
      if (!std::isfinite(step_loss) || !std::isfinite(norm2))
        throw InputError("step " + std::to_string(step + 1) + ": the loss (" +
                         std::to_string(step_loss) + ") or gradient norm (" +
                         std::to_string(std::sqrt(norm2)) +
                         ") is not finite; lower lr, or raise dros_beta for DROS");
      add_l2_to_gradients(params, spec.weight_decay);
      adam.step(spec.lr);
      adam.zero_grad();
      ++step;
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      events.emit(kProgressEvent,
                  {{"step", step},
                   {"epoch", double(step) / double(steps_per_epoch)},
                   {"loss", loss.item<double>()},
                   {"lr", spec.lr},
                   {"grad_norm", std::sqrt(norm2)},
                   {"tokens_per_s", double(index.numel()) / std::max(seconds, 1e-9)},
                   {"memory_bytes", -1}});
    }
    const auto start = std::chrono::steady_clock::now();
    const Scored v = score_split(*model, valid, in.valid, spec.eval_batch_size);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (v.auc > best_auc) {  // strictly better, as the LLM's early stopping
      best_auc = v.auc;
      best_step = step;
      best = snapshot(*model);
      stale = 0;
    } else {
      ++stale;
    }
    stopped_early = stale >= spec.early_stopping_patience && epoch + 1 < spec.epochs;
    events.emit(kEvalEvent, {{"step", step},
                             {"val_auc", v.auc},
                             {"val_loss", v.loss},
                             {"best_val_auc", best_auc},
                             {"best_step", best_step},
                             {"scored", in.valid.rows()},
                             {"skipped", 0},
                             {"prompts_per_s", double(in.valid.rows()) / std::max(seconds, 1e-9)},
                             {"padding_fraction", 0.0}});
  }

  std::vector<TensorToWrite> weights;
  {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) {
      params[i].copy_(best[i]);
      weights.push_back({model->parameters()[i].first, best[i]});
    }
  }
  nlohmann::json test_auc = nlohmann::json::object();
  for (const auto& [name, split] : in.tests)
    test_auc[name] =
        score_split(*model, sequence_batch(split, in.max_history), split, spec.eval_batch_size).auc;
  const fs::path model_file = out / "model.safetensors";
  write_safetensors(model_file, weights, {{"method", name_of(spec.method)}});
  events.emit(kFinishedEvent, {{"best_step", best_step},
                               {"best_val_auc", best_auc},
                               {"steps", step},
                               {"stopped_early", stopped_early},
                               {"adapter", model_file.string()},
                               {"test_auc", test_auc}});
  return 0;
}

}  // namespace

int run_baseline(const BaselineSpec& spec, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  EventLog events(out_dir / "events.jsonl");
  try {
    return train(spec, out_dir, events);
  } catch (const InputError& e) {
    events.emit(kFailedEvent, {{"reason", e.what()}, {"retryable", false}});
    return kBadInputExitCode;
  } catch (const c10::Error& e) {
    events.emit(kFailedEvent, {{"reason", e.what_without_backtrace()}, {"retryable", true}});
    return 1;
  } catch (const std::exception& e) {
    events.emit(kFailedEvent, {{"reason", e.what()}, {"retryable", true}});
    return 1;
  }
}

}  // namespace tallrec
