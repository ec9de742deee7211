#include "worker/agent.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "common/error.h"
#include "common/protocol.h"
#include "common/version.h"
#include "jobs/data/tokenizer.h"
#include "worker/checkpoint_sync.h"
#include "worker/coordinator_link.h"
#include "worker/prepare_run.h"
#include "worker/trainer_process.h"

namespace tallrec {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace {

using Clock = std::chrono::steady_clock;

class Agent {
 public:
  Agent(const AgentOptions& o, const std::atomic<bool>& stop) : o_(o), stop_(stop), link_(o.coordinator, o.id, o.curve) {}

  int run() {
    ready(json::array());
    while (!stop_) {
      auto reply = ask_for_work();
      if (!reply) return stop_ ? 0 : 1;
      if (reply->type == MessageType::kNoWork) {
        if (o_.exit_when_idle) return 0;
        const auto until = Clock::now() + std::chrono::milliseconds(reply->body["retry_after_ms"].get<int64_t>());
        while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      std::fprintf(stderr, "worker %s: attempt %lld of run %s%s\n", o_.id.c_str(),
                   static_cast<long long>(reply->body["attempt"].get<int64_t>()),
                   reply->body["run"]["key"].get<std::string>().substr(0, 12).c_str(),
                   reply->body["resume"].is_null() ? "" : " (resuming from the coordinator's checkpoint)");
      run_attempt(*reply);
    }
    return 0;
  }

 private:
  void ready(const json& attempts) {
    char host[256] = "?";
    ::gethostname(host, sizeof host);
    link_.send(MessageType::kReady, {{"worker", o_.id}, {"host", host}, {"version", kVersion}, {"slots", 1},
                                     {"gpus", json::array()}, {"attempts", attempts}});
  }

  // REQUEST, then wait for LEASE or NOWORK, reconnecting while the coordinator is silent.
  std::optional<Message> ask_for_work() {
    link_.send(MessageType::kRequest, {{"slots_free", 1}});
    while (!stop_) {
      if (auto m = link_.receive(200)) {
        if (m->type == MessageType::kLease || m->type == MessageType::kNoWork) return m;
        continue;  // late answers about an attempt that is over
      }
      if (o_.give_up_after > 0 && link_.silent_seconds() > o_.give_up_after) {
        std::fprintf(stderr, "worker %s: no answer from %s for %.0f s; giving up\n", o_.id.c_str(),
                     o_.coordinator.c_str(), link_.silent_seconds());
        return std::nullopt;
      }
      if (link_.reconnect_if_silent()) {
        ready(json::array());
        link_.send(MessageType::kRequest, {{"slots_free", 1}});
      }
    }
    return std::nullopt;
  }

  void run_attempt(const Message& lease) {
    const int64_t attempt = lease.body["attempt"];
    const json& run = lease.body["run"]["spec"];
    const fs::path run_dir =
        o_.work_dir / "runs" / (lease.body["run"]["key"].get<std::string>().substr(0, 16) + "-a" + std::to_string(attempt));
    std::map<int64_t, std::pair<MessageType, json>> unacked;  // seq -> message
    int64_t seq = 0;
    bool lost = false;  // cancelled, or no longer ours: stop and report nothing more
    auto emit = [&](MessageType t, json body) {
      body["attempt"] = attempt;
      body["seq"] = ++seq;
      unacked[seq] = {t, body};
      link_.send(t, body);
    };
    auto resend = [&] {
      for (const auto& [s, m] : unacked) link_.send(m.first, m.second);
    };
    std::optional<CheckpointUploader> uploader;
    auto last_beat = Clock::now();
    auto tick = [&] {
      if (link_.reconnect_if_silent()) {
        ready(json::array({attempt}));
        resend();
        if (uploader) uploader->restart();
      }
      if (Clock::now() - last_beat >= std::chrono::seconds(1)) {
        link_.send(MessageType::kHeartbeat, {{"attempts", json::array({attempt})}});
        resend();
        last_beat = Clock::now();
      }
    };
    auto on_message = [&](const Message& m) {
      if (uploader && uploader->handle(m)) return;
      const bool ours = m.body.value("attempt", int64_t(-1)) == attempt;
      if (m.type == MessageType::kAck && ours) {
        for (auto it = unacked.begin(); it != unacked.end() && it->first <= m.body["seq"].get<int64_t>();) it = unacked.erase(it);
      } else if ((m.type == MessageType::kCancel && ours) ||
                 (m.type == MessageType::kError && ours && m.body.value("code", "") == "stale-attempt")) {
        if (!lost) std::fprintf(stderr, "worker %s: attempt %lld is no longer ours; stopping it\n", o_.id.c_str(),
                                static_cast<long long>(attempt));
        lost = true;
        unacked.clear();
      }
    };

    std::optional<TrainerProcess> trainer;
    try {
      Tokenizer tokenizer(run.at("tokenizer").get<std::string>());
      json overrides = json::object();
      if (o_.threads > 0) overrides["threads"] = o_.threads;
      const fs::path spec = prepare_run(run, tokenizer, o_.work_dir / "token-cache", run_dir, overrides);
      switch (fetch_checkpoints(link_, attempt, lease.body["resume"], run_dir / "checkpoints", [&] {
        tick();
        return !stop_;
      })) {
        case FetchResult::kCanceled: return;
        case FetchResult::kFailed:  // starting over gives the same result, only later
          std::fprintf(stderr, "worker %s: could not fetch the resume checkpoint; starting from step 0\n", o_.id.c_str());
          fs::remove_all(run_dir / "checkpoints");
          break;
        case FetchResult::kFetched: break;
      }
      trainer.emplace(spec, run_dir);
      uploader.emplace(link_, attempt, run_dir / "upload");
    } catch (const std::exception& e) {
      emit(MessageType::kEvent, {{"event", {{"type", "failed"}, {"reason", e.what()}, {"retryable", false}}}});
      emit(MessageType::kDone, {{"exit_code", 2}, {"signal", nullptr}, {"stderr_tail", e.what()}});
    }

    bool done_sent = !trainer;
    while (!(done_sent && unacked.empty())) {
      if (trainer) {
        for (const auto& line : trainer->read_lines()) {
          auto event = json::parse(line, nullptr, false);
          if (event.is_discarded() || !event.is_object() || lost) continue;
          emit(MessageType::kEvent, {{"event", event}});
          if (event.value("type", "") == "checkpoint" && event.contains("path")) uploader->add(event["path"].get<std::string>());
        }
        if (lost || stop_) trainer->terminate(std::chrono::seconds(o_.cancel_grace_seconds));
        if (lost && trainer->finished()) return;
        // DONE only after every checkpoint is stored, so a succeeded run has its best one.
        if (!done_sent && trainer->finished() && (uploader->idle() || stop_)) {
          emit(MessageType::kDone, {{"exit_code", trainer->exit_code()},
                                    {"signal", trainer->signal() ? json(*trainer->signal()) : json(nullptr)},
                                    {"stderr_tail", trainer->stderr_tail(4096)}});
          done_sent = true;
        }
        if (!lost) uploader->pump();
      } else if (lost) {
        return;
      }
      if (stop_ && done_sent && link_.silent_seconds() > 5) return;  // shutting down: no more waiting
      if (o_.give_up_after > 0 && link_.silent_seconds() > o_.give_up_after) return;
      tick();
      if (auto m = link_.receive(100)) on_message(*m);
    }
  }

  const AgentOptions& o_;
  const std::atomic<bool>& stop_;
  CoordinatorLink link_;
};

}  // namespace

int run_agent(const AgentOptions& o, const std::atomic<bool>& stop) { return Agent(o, stop).run(); }

}  // namespace tallrec
