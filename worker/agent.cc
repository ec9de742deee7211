#include "worker/agent.h"

#include <unistd.h>

#include <csignal>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <list>

#include "common/protocol.h"
#include "common/version.h"
#include "worker/attempt.h"
#include "worker/coordinator_link.h"

namespace tallrec {
namespace fs = std::filesystem;
using json = nlohmann::json;
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kAnswerWait =
    std::chrono::seconds(5);  // a REQUEST unanswered this long is asked again

// Where Slurm runs this worker (null outside a Slurm job): shown by `tallrec workers`, the API
// and the dashboard, so a lab can tell which job and node a worker is.
json slurm_task() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (!job) return nullptr;
  json out = json::object();
  const std::pair<const char*, const char*> fields[] = {{"job", "SLURM_JOB_ID"},
                                                        {"array_job", "SLURM_ARRAY_JOB_ID"},
                                                        {"array_task", "SLURM_ARRAY_TASK_ID"},
                                                        {"node", "SLURMD_NODENAME"},
                                                        {"restarts", "SLURM_RESTART_COUNT"},
                                                        {"gpus", "CUDA_VISIBLE_DEVICES"},
                                                        {"partition", "SLURM_JOB_PARTITION"}};
  for (const auto& [name, variable] : fields)
    if (const char* v = std::getenv(variable)) out[name] = std::string(v).substr(0, 128);
  return out;
}

class Agent {
 public:
  Agent(const AgentOptions& o, const std::atomic<bool>& stop, const std::atomic<int>* stop_signal)
      : o_(o),
        stop_(stop),
        stop_signal_(stop_signal),
        link_(o.coordinator, o.id, o.curve),
        slots_(split_slots(o.gpus, o.slots)),
        busy_(slots_.size(), nullptr) {}

  int run() {
    ready();
    for (;;) {
      step_attempts();
      tick();
      if (stop_) {
        if (attempts_.empty() || link_.silent_seconds() > 5)
          return 0;  // shutting down: DONEs sent, or nobody listens
      } else if (o_.give_up_after > 0 && link_.silent_seconds() > o_.give_up_after) {
        std::fprintf(stderr, "worker %s: no word from %s for %.0f s; giving up\n", o_.id.c_str(),
                     o_.coordinator.c_str(), link_.silent_seconds());
        return 1;
      } else if (idle_and_told_so_) {
        return 0;
      } else {
        maybe_request();
      }
      if (auto m = link_.receive(50)) on_message(*m);
    }
  }

 private:
  json live_ids() const {
    json ids = json::array();
    for (const auto& a : attempts_) ids.push_back(a.id());
    return ids;
  }

  void ready() {
    char host[256] = "?";
    ::gethostname(host, sizeof host);
    link_.send(MessageType::kReady, {{"worker", o_.id},
                                     {"host", host},
                                     {"version", kVersion},
                                     {"slots", slots_.size()},
                                     {"gpus", gpus_json(o_.gpus)},
                                     {"attempts", live_ids()},
                                     {"slurm", slurm_task()}});
  }

  // Heartbeats and Paranoid Pirate reconnects; every second, what is unacknowledged goes again.
  void tick() {
    if (link_.reconnect_if_silent()) {
      ready();
      asked_ = false;  // that REQUEST went with the old socket
      for (auto& a : attempts_) {
        a.resend();
        a.restart_transfers();
      }
    }
    if (Clock::now() - last_beat_ >= std::chrono::seconds(1)) {
      link_.send(MessageType::kHeartbeat, {{"attempts", live_ids()}});
      for (auto& a : attempts_) a.resend();
      last_beat_ = Clock::now();
    }
  }

  void step_attempts() {
    for (auto it = attempts_.begin(); it != attempts_.end();) {
      it->step(stopping_signal());
      if (!it->over()) {
        ++it;
        continue;
      }
      for (auto& b : busy_)
        if (b == &*it) b = nullptr;
      it = attempts_.erase(it);
    }
  }

  // 0 while running; once stopped, the signal the trainers get (SIGUSR1 or SIGTERM).
  int stopping_signal() const {
    if (!stop_) return 0;
    return stop_signal_ && *stop_signal_ == SIGUSR1 ? SIGUSR1 : SIGTERM;
  }

  size_t free_slots() const { return size_t(std::count(busy_.begin(), busy_.end(), nullptr)); }

  void maybe_request() {
    if (asked_ && Clock::now() - asked_at_ > kAnswerWait) asked_ = false;
    if (asked_ || free_slots() == 0 || Clock::now() < next_request_) return;
    link_.send(MessageType::kRequest, {{"slots_free", free_slots()}});
    asked_ = true;
    asked_at_ = Clock::now();
  }

  void on_message(const Message& m) {
    if (m.type == MessageType::kLease) return start(m);
    if (m.type == MessageType::kNoWork) {
      asked_ = false;
      next_request_ =
          Clock::now() + std::chrono::milliseconds(m.body["retry_after_ms"].get<int64_t>());
      idle_and_told_so_ = o_.exit_when_idle && attempts_.empty();
      return;
    }
    for (auto& a : attempts_)
      if (a.handle(m)) return;
    // Otherwise a late answer about an attempt that is over: nothing to do.
  }

  void start(const Message& lease) {
    asked_ = false;
    const auto slot = std::find(busy_.begin(), busy_.end(), nullptr);
    if (slot == busy_.end()) return;  // more leases than slots cannot happen: one REQUEST at a time
    std::fprintf(
        stderr, "worker %s: attempt %lld of run %s%s\n", o_.id.c_str(),
        static_cast<long long>(lease.body["attempt"].get<int64_t>()),
        lease.body["run"]["key"].get<std::string>().substr(0, 12).c_str(),
        lease.body["resume"].is_null() ? "" : " (resuming from the coordinator's checkpoint)");
    Attempt& a = attempts_.emplace_back(link_, lease, slots_[size_t(slot - busy_.begin())], o_);
    *slot = &a;
    // Preparing, fetching, training and uploading are each pumped by this loop, which keeps
    // receiving throughout.
    a.start();
  }

  const AgentOptions& o_;
  const std::atomic<bool>& stop_;
  const std::atomic<int>* stop_signal_;
  CoordinatorLink link_;
  std::vector<SlotResources> slots_;
  std::list<Attempt> attempts_;  // stable addresses: busy_ points into it
  std::vector<Attempt*> busy_;   // per slot: its attempt, or nullptr
  bool asked_ = false, idle_and_told_so_ = false;
  Clock::time_point asked_at_, next_request_, last_beat_;
};

}  // namespace

int run_agent(const AgentOptions& o, const std::atomic<bool>& stop,
              const std::atomic<int>* stop_signal) {
  return Agent(o, stop, stop_signal).run();
}

}  // namespace tallrec
