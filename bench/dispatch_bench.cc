// Dispatch throughput and latency (issue goal: >= 5,000 assignments/s, p99 assign latency
// < 10 ms, with 64 simulated workers doing no-op runs on loopback).
// A real coordinator (CoordinatorService: broker, store, WAL checkpointer) on a real SQLite file
// and ROUTER socket; 64 DEALER sockets, each a worker that asks for a run, reports it started and
// finished, and sends DONE: the same four messages and four store transactions as a real attempt,
// with no training in between. "Assign latency" is REQUEST sent -> LEASE received, as a worker sees
// it. Run: build/bench/tallrec_dispatch_bench [runs=20000] [workers=64] [client_threads=2]
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/protocol.h"
#include "coordinator/coordinator_service.h"
#include "coordinator/grid.h"
#include "coordinator/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using tallrec::Message;
using tallrec::MessageType;

void send(zmq::socket_t& s, MessageType t, const nlohmann::json& body) {
  auto frames = tallrec::encode_message({t, body, ""});
  std::vector<zmq::const_buffer> b;
  for (const auto& f : frames) b.push_back(zmq::buffer(f));
  zmq::send_multipart(s, b);
}

Message receive(zmq::socket_t& s) {
  std::vector<zmq::message_t> parts;
  (void)zmq::recv_multipart(s, std::back_inserter(parts));
  std::vector<std::string> frames;
  for (auto& p : parts) frames.push_back(p.to_string());
  return tallrec::decode_message(frames);
}

// One client thread drives `n` simulated workers; each holds one request or run at a time.
void drive(zmq::context_t& ctx, const std::string& endpoint, int first, int n,
           std::vector<double>& latencies_ms, std::atomic<int>& idle_workers) {
  struct Sim {
    zmq::socket_t socket;
    Clock::time_point asked;
    int64_t attempt = 0;
    bool done = false;
  };
  std::vector<Sim> sims;
  for (int i = 0; i < n; ++i) {
    sims.push_back({zmq::socket_t(ctx, zmq::socket_type::dealer), {}, 0, false});
    sims.back().socket.set(zmq::sockopt::routing_id, "sim-" + std::to_string(first + i));
    sims.back().socket.connect(endpoint);
  }
  for (auto& s : sims) {
    send(s.socket, MessageType::kReady,
         {{"worker", "sim"},
          {"host", "bench"},
          {"version", "bench"},
          {"slots", 1},
          {"gpus", nlohmann::json::array()},
          {"attempts", nlohmann::json::array()}});
    s.asked = Clock::now();
    send(s.socket, MessageType::kRequest, {{"slots_free", 1}});
  }
  int finished = 0;
  std::vector<zmq::pollitem_t> items(static_cast<size_t>(n));
  while (finished < n) {
    for (int i = 0; i < n; ++i)
      items[size_t(i)] = {sims[size_t(i)].socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (int i = 0; i < n; ++i) {
      if (!(items[size_t(i)].revents & ZMQ_POLLIN)) continue;
      Sim& s = sims[size_t(i)];
      Message m = receive(s.socket);
      if (m.type == MessageType::kLease) {
        latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - s.asked).count());
        s.attempt = m.body["attempt"];
        send(s.socket, MessageType::kEvent,
             {{"attempt", s.attempt}, {"seq", 1}, {"event", {{"type", "started"}}}});
      } else if (m.type == MessageType::kAck && m.body["seq"] == 1) {
        send(s.socket, MessageType::kEvent,
             {{"attempt", s.attempt},
              {"seq", 2},
              {"event", {{"type", "finished"}, {"test_auc", {{"movie", 0.5}}}}}});
      } else if (m.type == MessageType::kAck && m.body["seq"] == 2) {
        send(s.socket, MessageType::kDone,
             {{"attempt", s.attempt},
              {"seq", 3},
              {"exit_code", 0},
              {"signal", nullptr},
              {"stderr_tail", ""}});
      } else if (m.type == MessageType::kAck && m.body["seq"] == 3) {
        s.asked = Clock::now();
        send(s.socket, MessageType::kRequest, {{"slots_free", 1}});
      } else if (m.type == MessageType::kNoWork && !s.done) {
        s.done = true;
        ++finished;
        ++idle_workers;
      } else if (m.type == MessageType::kError) {
        std::fprintf(stderr, "error: %s\n", m.body.dump().c_str());
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int workers = argc > 2 ? std::atoi(argv[2]) : 64;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("tallrec-dispatch-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  nlohmann::json seeds = nlohmann::json::array();
  for (int s = 0; s < runs; ++s) seeds.push_back(s);
  nlohmann::json grid = {{"name", "dispatch"},
                         {"base_model", "/m"},
                         {"tokenizer", "/t"},
                         {"datasets", {{"movie", {{"train", "a"}, {"valid", "b"}, {"test", "c"}}}}},
                         {"domains", {"movie"}},
                         {"samples", {16}},
                         {"seeds", seeds}};
  tallrec::Store submit_store(dir / "bench.db");
  submit_store.queue.submit(tallrec::parse_grid(grid.dump(), "bench grid"));

  tallrec::CoordinatorOptions options;  // what `tallrec coordinator` runs, without HTTP
  options.db = dir / "bench.db";
  options.listen = "tcp://127.0.0.1:*";
  options.http = "off";
  tallrec::CoordinatorService broker(options);
  std::atomic<bool> stop{false};
  double broker_cpu = 0;  // seconds of CPU the broker's thread used: how busy the coordinator was
  std::thread serving([&] {
    broker.serve(stop);
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    broker_cpu = double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
  });

  zmq::context_t ctx(1);
  std::vector<std::vector<double>> latencies(static_cast<size_t>(threads));
  std::atomic<int> idle{0};
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    const int first = workers * t / threads, last = workers * (t + 1) / threads;
    clients.emplace_back([&, t, first, last] {
      drive(ctx, broker.zmq_endpoint(), first, last - first, latencies[size_t(t)], idle);
    });
  }
  for (auto& c : clients) c.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  serving.join();

  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(p * double(all.size())))];
  };
  const auto by_state = submit_store.views.status().at(0).runs_by_state;
  std::printf("machine: %u hardware threads; %d simulated workers on %d client threads; store %s\n",
              std::thread::hardware_concurrency(), workers, threads, (dir / "bench.db").c_str());
  std::printf("runs: %d, assignments: %zu, succeeded: %lld, integrity: %s\n", runs, all.size(),
              static_cast<long long>(by_state.at(tallrec::RunState::kSucceeded)),
              submit_store.database.integrity_check().c_str());
  std::printf(
      "throughput: %.0f assignments/s (each: lease, 2 events, done = 4 transactions) in %.2f s\n",
      double(all.size()) / seconds, seconds);
  std::printf("assign latency (REQUEST -> LEASE): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              pct(0.50), pct(0.99), all.empty() ? 0.0 : all.back());
  std::printf(
      "broker thread: %.2f s of CPU in %.2f s (%.0f%% busy); the rest of the 2 cores ran the "
      "simulated workers\n",
      broker_cpu, seconds, 100 * broker_cpu / seconds);
  std::filesystem::remove_all(dir);
  return by_state.at(tallrec::RunState::kSucceeded) == runs ? 0 : 1;
}
