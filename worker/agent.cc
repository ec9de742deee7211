#include "worker/agent.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/error.h"
#include "common/protocol.h"
#include "common/version.h"
#include "jobs/data/tokenizer.h"
#include "worker/prepare_run.h"

namespace tallrec {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

class Link {
 public:
  Link(zmq::context_t& ctx, const AgentOptions& o) : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::routing_id, o.id);
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.connect(o.coordinator);
  }
  void send(MessageType t, const nlohmann::json& body) {
    std::vector<zmq::const_buffer> frames;
    auto encoded = encode_message({t, body, ""});
    for (const auto& f : encoded) frames.push_back(zmq::buffer(f));
    zmq::send_multipart(socket_, frames);
  }
  // A message if one arrives within `ms`, else nullopt.
  std::optional<Message> receive(int ms) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(ms));
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
    std::vector<std::string> frames;
    for (auto& p : parts) frames.push_back(p.to_string());
    return decode_message(frames);
  }
  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_t socket_;
};

struct Child {
  pid_t pid = -1;
  int out = -1;
  fs::path stderr_file;
};

Child spawn_trainer(const fs::path& spec, const fs::path& run_dir) {
  const fs::path trainer = fs::read_symlink("/proc/self/exe").parent_path() / "tallrec-train";
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) throw Error("pipe failed");
  Child c;
  c.stderr_file = run_dir / "trainer.stderr";
  c.pid = ::fork();
  if (c.pid == 0) {
    ::dup2(pipe_fds[1], 1);
    int err = ::open(c.stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err >= 0) ::dup2(err, 2);
    ::close(pipe_fds[0]);
    ::execl(trainer.c_str(), trainer.c_str(), "train", "--spec", spec.c_str(), "--out", run_dir.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  c.out = pipe_fds[0];
  return c;
}

std::string tail_of(const fs::path& file, size_t bytes) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  std::string all = s.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

// Runs one leased attempt to its end; events are relayed and kept until ACKed.
void run_attempt(Link& link, const Message& lease, const AgentOptions& o, const std::atomic<bool>& stop) {
  const int64_t attempt = lease.body["attempt"];
  const nlohmann::json& run = lease.body["run"]["spec"];
  const fs::path run_dir = o.work_dir / "runs" / (lease.body["run"]["key"].get<std::string>().substr(0, 16) + "-a" +
                                                   std::to_string(attempt));
  std::map<int64_t, nlohmann::json> unacked;  // seq -> message body
  int64_t seq = 0;
  auto emit = [&](MessageType t, nlohmann::json body) {
    body["attempt"] = attempt;
    body["seq"] = ++seq;
    unacked[seq] = body;
    link.send(t, body);
  };
  Child child;
  try {
    Tokenizer tokenizer(run.at("tokenizer").get<std::string>());
    nlohmann::json overrides = nlohmann::json::object();
    if (o.threads > 0) overrides["threads"] = o.threads;
    const fs::path spec = prepare_run(run, tokenizer, o.work_dir / "token-cache", run_dir, overrides);
    child = spawn_trainer(spec, run_dir);
  } catch (const std::exception& e) {
    emit(MessageType::kEvent, {{"event", {{"type", "failed"}, {"reason", e.what()}, {"retryable", false}}}});
    emit(MessageType::kDone, {{"exit_code", 2}, {"signal", nullptr}, {"stderr_tail", e.what()}});
  }
  std::string partial;
  int child_status = 0;
  bool exited = child.pid < 0, done_sent = child.pid < 0;
  auto last_beat = Clock::now();
  const auto deadline_after_done = std::chrono::seconds(30);
  Clock::time_point done_at = Clock::now();
  while (!unacked.empty() || !done_sent) {
    if (child.out >= 0) {  // relay whole lines of the trainer's stdout
      char buf[8192];
      ssize_t n;
      while ((n = ::read(child.out, buf, sizeof buf)) > 0) partial.append(buf, size_t(n));
      for (size_t nl; (nl = partial.find('\n')) != std::string::npos;) {
        std::string line = partial.substr(0, nl);
        partial.erase(0, nl + 1);
        auto event = nlohmann::json::parse(line, nullptr, false);
        if (!event.is_discarded() && event.is_object()) emit(MessageType::kEvent, {{"event", event}});
      }
    }
    if (!exited) {
      if (::waitpid(child.pid, &child_status, WNOHANG) == child.pid) {
        exited = true;
        continue;  // drain the pipe once more before DONE
      }
    } else if (!done_sent) {  // the trainer exited and its output is drained
      ::close(child.out);
      child.out = -1;
      const bool signaled = WIFSIGNALED(child_status);
      emit(MessageType::kDone, {{"exit_code", signaled ? 128 + WTERMSIG(child_status) : WEXITSTATUS(child_status)},
                                {"signal", signaled ? nlohmann::json(WTERMSIG(child_status)) : nlohmann::json(nullptr)},
                                {"stderr_tail", tail_of(child.stderr_file, 4096)}});
      done_sent = true;
      done_at = Clock::now();
    }
    if (Clock::now() - last_beat > std::chrono::seconds(1)) {
      link.send(MessageType::kHeartbeat, {{"attempts", nlohmann::json::array({attempt})}});
      last_beat = Clock::now();
      for (const auto& [s, body] : unacked)  // resend what the coordinator has not confirmed
        link.send(body.contains("exit_code") ? MessageType::kDone : MessageType::kEvent, body);
    }
    if (done_sent && Clock::now() - done_at > deadline_after_done) break;  // give up on the ACKs
    if (stop && !exited) ::kill(child.pid, SIGTERM);
    if (auto m = link.receive(100)) {
      if (m->type == MessageType::kAck) {
        for (auto it = unacked.begin(); it != unacked.end() && it->first <= m->body["seq"].get<int64_t>();) it = unacked.erase(it);
      } else if (m->type == MessageType::kError && m->body.value("code", "") == "stale-attempt" && !exited) {
        ::kill(child.pid, SIGTERM);  // we lost the lease: the run is someone else's now
      }
    }
  }
}

}  // namespace

int run_agent(const AgentOptions& o, const std::atomic<bool>& stop) {
  zmq::context_t ctx(1);
  Link link(ctx, o);
  char host[256] = "?";
  ::gethostname(host, sizeof host);
  link.send(MessageType::kReady, {{"worker", o.id}, {"host", host}, {"version", kVersion}, {"slots", 1},
                                  {"gpus", nlohmann::json::array()}, {"attempts", nlohmann::json::array()}});
  while (!stop) {
    link.send(MessageType::kRequest, {{"slots_free", 1}});
    auto reply = link.receive(5000);
    if (!reply) {
      std::fprintf(stderr, "worker %s: no answer from %s\n", o.id.c_str(), o.coordinator.c_str());
      return 1;
    }
    if (reply->type == MessageType::kNoWork) {
      if (o.exit_when_idle) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(reply->body["retry_after_ms"].get<int64_t>()));
      continue;
    }
    if (reply->type != MessageType::kLease) continue;
    std::fprintf(stderr, "worker %s: attempt %lld of run %s\n", o.id.c_str(),
                 static_cast<long long>(reply->body["attempt"].get<int64_t>()),
                 reply->body["run"]["key"].get<std::string>().substr(0, 12).c_str());
    run_attempt(link, *reply, o, stop);
  }
  return 0;
}

}  // namespace tallrec
