#include "worker/attempt.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "common/error.h"
#include "common/exit_codes.h"
#include "common/train_events.h"

#include "jobs/data/tokenizer.h"
#include "worker/prepare_baseline_run.h"
#include "worker/prepare_run.h"

namespace tallrec {
namespace fs = std::filesystem;
using json = nlohmann::json;

Attempt::Attempt(CoordinatorLink& link, const Message& lease, const SlotResources& slot,
                 const AgentOptions& options)
    : link_(link), options_(options), slot_(slot), lease_(lease), id_(lease.body["attempt"]) {
  run_dir_ =
      options.work_dir / "runs" /
      (lease.body["run"]["key"].get<std::string>().substr(0, 16) + "-a" + std::to_string(id_));
}

void Attempt::log_event(const json& event) const {
  const std::string type = event.value("type", "");
  char what[512];
  if (type == kProgressEvent && event.contains("loss") && event["loss"].is_number())
    std::snprintf(what, sizeof what, "step %lld loss %.4f lr %.3g",
                  static_cast<long long>(event.value("step", int64_t(0))),
                  event["loss"].get<double>(), event.value("lr", 0.0));
  else if (type == kEvalEvent && event.contains("val_auc") && event["val_auc"].is_number())
    std::snprintf(what, sizeof what, "step %lld val AUC %.4f (best %.4f at step %lld)",
                  static_cast<long long>(event.value("step", int64_t(0))),
                  event["val_auc"].get<double>(), event.value("best_val_auc", 0.0),
                  static_cast<long long>(event.value("best_step", int64_t(0))));
  else if (type == kFinishedEvent)
    std::snprintf(what, sizeof what, "finished: best val AUC %.4f at step %lld, test AUC %s",
                  event.value("best_val_auc", 0.0),
                  static_cast<long long>(event.value("best_step", int64_t(0))),
                  event.value("test_auc", json::object()).dump().c_str());
  else if (type == kPreemptedEvent)
    std::snprintf(what, sizeof what, "preempted (%s) at step %lld; checkpoint of step %lld",
                  event.value("reason", std::string("?")).c_str(),
                  static_cast<long long>(event.value("step", int64_t(0))),
                  static_cast<long long>(event.value("checkpoint_step", int64_t(0))));
  else if (type == kFailedEvent)
    std::snprintf(what, sizeof what, "failed (%s): %.400s",
                  event.value("retryable", true) ? "retryable" : "not retryable",
                  event.value("reason", std::string("?")).c_str());
  else
    return;
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::fprintf(stderr, "%s worker %s: run %s attempt %lld (id %lld): %s\n", stamp,
               options_.id.c_str(),
               lease_.body["run"]["key"].get<std::string>().substr(0, 12).c_str(),
               static_cast<long long>(lease_.body.value("number", int64_t(0))),
               static_cast<long long>(id_), what);
}

void Attempt::emit(MessageType type, json body) {
  body["attempt"] = id_;
  body["seq"] = ++seq_;
  unacked_[seq_] = {type, body};
  link_.send(type, body);
}

void Attempt::resend() {
  for (const auto& [seq, m] : unacked_) link_.send(m.first, m.second);
}

void Attempt::restart_transfers() {
  if (fetcher_) fetcher_->restart();
  if (uploader_) uploader_->restart();
}

Attempt::~Attempt() {
  if (preparing_.joinable()) {  // the worker is going: stop tokenizing at the next record
    preparation_->cancel = true;
    preparing_.join();
  }
}

void Attempt::start() {
  // Tokenizing can take minutes on a cold cache: it runs on a thread of its own, and the agent's
  // loop goes on receiving, heartbeating and pumping the other slots; step() takes the result.
  const json run = lease_.body["run"]["spec"];
  json overrides = slot_.overrides();
  if (options_.threads > 0) overrides["threads"] = options_.threads;
  // The batch sizes the queue halved after an out-of-memory (docs/dev/protocol.md, LEASE).
  if (lease_.body.contains("batch") && lease_.body["batch"].is_object())
    for (const char* field : {"micro_batch_size", "eval_batch_size"})
      if (lease_.body["batch"].contains(field) && lease_.body["batch"][field].is_number_integer())
        overrides[field] = lease_.body["batch"][field];
  // The tighter of the grid's memory cap and this worker's.
  const double grid_cap = run.value("memory_limit_gib", 0.0);
  const double cap = options_.memory_limit_gib <= 0 ? grid_cap
                     : grid_cap <= 0                ? options_.memory_limit_gib
                                                    : std::min(grid_cap, options_.memory_limit_gib);
  if (cap > 0) overrides["memory_limit_gib"] = cap;
  preparation_ = std::make_shared<Preparation>();
  preparing_ = std::thread([p = preparation_, run, overrides,
                            cache = options_.work_dir / "token-cache", dir = run_dir_] {
    try {
      if (is_baseline_run(run)) {
        p->spec = prepare_baseline_run(run, dir, overrides);
      } else {
        Tokenizer tokenizer(run.at("tokenizer").get<std::string>());
        p->spec = prepare_run(run, tokenizer, cache, dir, overrides, &p->cancel);
      }
    } catch (...) {
      p->failure = std::current_exception();
    }
    p->done = true;
  });
}

bool Attempt::step_preparation(int stop_signal) {
  if (!preparation_) return true;
  if (stop_signal != 0 || lost_) preparation_->cancel = true;
  if (!preparation_->done) return false;
  preparing_.join();
  const std::shared_ptr<Preparation> p = std::move(preparation_);
  preparation_.reset();
  if (lost_) return false;  // cancelled: nothing more to report
  if (stop_signal != 0) {
    preempt_before_training(stop_signal);
    return false;
  }
  try {
    if (p->failure) std::rethrow_exception(p->failure);
    spec_ = p->spec;
    fetcher_.emplace(link_, id_, lease_.body["resume"], run_dir_ / "checkpoints");
  } catch (const std::exception& e) {
    fail_before_training(e);
  }
  return false;
}

void Attempt::preempt_before_training(int stop_signal) {
  // Nothing trained, no new checkpoint: the run goes back to the queue at once, without spending
  // an attempt, and resumes from what the coordinator already stores.
  emit(MessageType::kEvent, {{"event",
                              {{"type", kPreemptedEvent},
                               {"time", double(std::time(nullptr))},
                               {"step", 0},
                               {"checkpoint_step", -1},
                               {"reason", stop_signal == SIGUSR1 ? "SIGUSR1" : "SIGTERM"}}}});
  emit(MessageType::kDone, {{"exit_code", kPreemptedExitCode},
                            {"signal", nullptr},
                            {"stderr_tail", "stopped before training"}});
  done_sent_ = true;
}

void Attempt::fail_before_training(const std::exception& e) {
  // Bad data or a bad spec fails the run; anything else here (a full disk, say) is this
  // worker's trouble, and another attempt may well succeed.
  const bool retryable = dynamic_cast<const InputError*>(&e) == nullptr;
  emit(MessageType::kEvent,
       {{"event", {{"type", kFailedEvent}, {"reason", e.what()}, {"retryable", retryable}}}});
  emit(MessageType::kDone, {{"exit_code", retryable ? 1 : kBadInputExitCode},
                            {"signal", nullptr},
                            {"stderr_tail", e.what()}});
  done_sent_ = true;
}

void Attempt::launch(const fs::path& spec) {
  try {
    trainer_.emplace(spec, run_dir_, slot_.visible_devices());
    uploader_.emplace(link_, id_, run_dir_ / "upload");
  } catch (const std::exception& e) {
    fail_before_training(e);
  }
}

void Attempt::step(int stop_signal) {
  const bool stopping = stop_signal != 0;
  if (!step_preparation(stop_signal)) return;
  if (fetcher_ && !lost_ && !done_sent_) {
    if (stopping) {  // nothing trained yet
      fetcher_.reset();
      preempt_before_training(stop_signal);
      return;
    }
    fetcher_->pump();
    if (!fetcher_->result()) return;
    if (*fetcher_->result() == FetchResult::kFailed) {  // starting over gives the same, only later
      std::fprintf(
          stderr,
          "worker %s: could not fetch the resume checkpoint; attempt %lld starts from step 0\n",
          options_.id.c_str(), static_cast<long long>(id_));
      fs::remove_all(run_dir_ / "checkpoints");
    }
    fetcher_.reset();
    launch(spec_);
  }
  if (!trainer_) return;
  for (const auto& line : trainer_->read_lines()) {
    auto event = json::parse(line, nullptr, false);
    if (event.is_discarded() || !event.is_object() || lost_) continue;
    log_event(event);
    emit(MessageType::kEvent, {{"event", event}});
    if (event.value("type", "") == kCheckpointEvent && event.contains("path"))
      uploader_->add(event["path"].get<std::string>());
  }
  const auto now = std::chrono::steady_clock::now();
  if (lost_) {
    trainer_->terminate(std::chrono::seconds(options_.cancel_grace_seconds));
  } else if (stopping) {
    // The trainer checkpoints at its next step boundary and exits (preempted); that checkpoint is
    // uploaded before DONE unless the grace runs out.
    if (!stop_deadline_) stop_deadline_ = now + std::chrono::seconds(options_.stop_grace_seconds);
    trainer_->terminate(std::chrono::seconds(options_.stop_grace_seconds), stop_signal);
  }
  const bool out_of_time = stop_deadline_ && now > *stop_deadline_ + std::chrono::seconds(5);
  // DONE only after every checkpoint is stored, so a succeeded run has its best one and a
  // preempted run resumes from the step it stopped at.
  if (!lost_ && !done_sent_ && trainer_->finished() && (uploader_->idle() || out_of_time)) {
    emit(MessageType::kDone,
         {{"exit_code", trainer_->exit_code()},
          {"signal", trainer_->signal() ? json(*trainer_->signal()) : json(nullptr)},
          {"stderr_tail", trainer_->stderr_tail(4096)}});
    done_sent_ = true;
  }
  if (!lost_) uploader_->pump();
}

bool Attempt::handle(const Message& m) {
  if (fetcher_ && fetcher_->handle(m)) return true;
  if (uploader_ && uploader_->handle(m)) return true;
  if (m.body.value("attempt", int64_t(-1)) != id_) return false;
  if (m.type == MessageType::kAck) {
    unacked_.erase(
        m.body["seq"].get<int64_t>());  // that message only: an earlier one may have been lost
  } else if (m.type == MessageType::kCancel ||
             (m.type == MessageType::kError && m.body.value("code", "") == "stale-attempt")) {
    if (!lost_)
      std::fprintf(stderr, "worker %s: attempt %lld is no longer ours; stopping it\n",
                   options_.id.c_str(), static_cast<long long>(id_));
    lost_ = true;
    unacked_.clear();
  } else if (m.type == MessageType::kError) {
    // Refused as malformed: sent again unchanged it would be refused again (docs/dev/protocol.md
    // §3.10).
    std::fprintf(stderr, "worker %s: the coordinator refused a message of attempt %lld: %s\n",
                 options_.id.c_str(), static_cast<long long>(id_),
                 m.body.value("message", "").c_str());
    unacked_.clear();
  }
  return true;
}

bool Attempt::over() {
  if (lost_) return !preparation_ && (!trainer_ || trainer_->finished());
  return done_sent_ && unacked_.empty();
}

}  // namespace tallrec
