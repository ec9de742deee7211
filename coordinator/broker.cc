#include "coordinator/broker.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/clock.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/protocol.h"
#include "coordinator/checkpoint_transfers.h"
#include "coordinator/zap_handler.h"

namespace tallrec {

struct Broker::Impl {
  Store& store;
  RetryPolicy policy;
  std::function<double()> now = unix_time;  // seconds since the epoch; Broker::set_clock
  zmq::context_t context{1};
  std::unique_ptr<ZapHandler> zap;  // bound before the socket, when CURVE is on
  zmq::socket_t socket{context, zmq::socket_type::router};
  CheckpointTransfers transfers;

  Impl(Store& s, const std::filesystem::path& artifacts, RetryPolicy p)
      : store(s),
        policy(p),
        transfers(s, artifacts, [this](const std::string& w, const Message& m) { send(w, m); }) {}

  // Fencing and cancel in one rule: an attempt a worker still runs but the store no longer
  // holds live (cancelled, lease lost, re-leased) is told to stop.
  // And the converse: a lease the worker does not list (its LEASE was lost, or came when it had
  // no free slot) goes back to the queue once it is old enough to have arrived.
  void cancel_unless_live(const std::string& worker, const nlohmann::json& attempts) {
    std::vector<int64_t> listed;
    for (const auto& a : attempts) {
      if (!a.is_number_integer()) continue;
      if (store.queue.attempt_holder(a.get<int64_t>()) !=
          worker) {  // not this peer's: touch nothing, tell it to stop
        send(worker, {MessageType::kCancel, {{"attempt", a}}, ""});
        continue;
      }
      listed.push_back(a.get<int64_t>());
      if (!store.queue.heartbeat(a.get<int64_t>(), now(), policy))
        send(worker, {MessageType::kCancel, {{"attempt", a}}, ""});
    }
    store.queue.release_unlisted(worker, listed, now() - policy.lease_arrival, now());
  }

  // Replies wait here while a batch is open and go out once it is committed.
  std::vector<std::pair<std::string, Message>> held;
  bool holding = false;
  CoordinatorMetrics* metrics = nullptr;

  void send(const std::string& worker, const Message& m) {
    if (holding) return held.push_back({worker, m});
    send_now(worker, m);
  }

  std::unique_ptr<std::ofstream> trace;
  void trace_message(const char* dir, const std::string& worker, const Message& m) {
    if (!trace) return;
    nlohmann::json line = {
        {"dir", dir}, {"worker", worker}, {"type", message_type_name(m.type)}, {"body", m.body}};
    if (m.type == MessageType::kChunk) line["data_bytes"] = m.data.size();
    *trace << dump_json(line) << "\n" << std::flush;
  }

  void send_now(const std::string& worker, const Message& m) {
    trace_message("out", worker, m);
    std::vector<zmq::const_buffer> frames{zmq::buffer(worker)};
    auto encoded = encode_message(m);
    for (const auto& f : encoded) frames.push_back(zmq::buffer(f));
    zmq::send_multipart(socket, frames, zmq::send_flags::dontwait);
  }

  void error(const std::string& worker, const std::string& code, const std::string& what,
             const nlohmann::json& attempt) {
    nlohmann::json body = {{"code", code}, {"message", what}};
    if (!attempt.is_null()) body["attempt"] = attempt;
    send(worker, {MessageType::kError, body, ""});
  }

  // Under CURVE a worker id belongs to the key it was first seen with: a peer with another
  // (known) key cannot speak as that worker, so it cannot act for the worker's attempts either.
  std::map<std::string, std::string> key_of;  // worker id -> bound key (a cache of the store's)
  void require_bound_key(const std::string& worker, const std::string& key) {
    auto it = key_of.find(worker);
    if (it == key_of.end()) {
      std::string bound = store.workers.curve_key(worker);
      if (bound.empty()) {
        store.workers.bind_curve_key(worker, key);
        bound = key;
      }
      it = key_of.emplace(worker, bound).first;
    }
    if (it->second != key)
      throw ProtocolError(
          "not-yours", "worker id \"" + printable_utf8(worker) + "\" belongs to another CURVE key");
  }

  // Messages about an attempt count only from the peer that leased it; anyone else's change
  // nothing.
  void require_holder(const std::string& worker, const nlohmann::json& attempt) {
    if (!attempt.is_number_integer() ||
        store.queue.attempt_holder(attempt.get<int64_t>()) != worker)
      throw ProtocolError("not-yours",
                          "attempt " + attempt.dump() + " was not leased to this worker");
  }

  // READY's optional `slurm` object as it may be stored: at most 16 string fields of at most 128
  // bytes, printable; anything else is dropped (it is only shown, never acted on).
  static nlohmann::json slurm_task(const nlohmann::json& body) {
    if (!body.contains("slurm") || !body["slurm"].is_object()) return nullptr;
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : body["slurm"].items()) {
      if (out.size() >= 16 || key.size() > 32 || !value.is_string()) continue;
      out[printable_utf8(key)] = printable_utf8(value.get<std::string>().substr(0, 128));
    }
    return out;
  }

  void handle(const std::string& worker, const Message& m) {
    const nlohmann::json& b = m.body;
    if (m.type == MessageType::kEvent || m.type == MessageType::kDone ||
        m.type == MessageType::kOffer || m.type == MessageType::kFetch)
      require_holder(worker, b["attempt"]);
    switch (m.type) {
      case MessageType::kReady:
        store.workers.announce(worker, b["host"], b["gpus"], b["slots"], b["version"], now(),
                               slurm_task(b));
        cancel_unless_live(worker, b["attempts"]);
        return;
      case MessageType::kRequest: {
        store.workers.ensure_known(worker, now());
        if (auto lease = store.queue.lease_next(worker, now(), policy)) {
          nlohmann::json lease_body = {
              {"attempt", lease->attempt_id},
              {"number", lease->attempt_number},
              {"lease_seconds", policy.lease_seconds},
              {"resume", transfers.resume_point(lease->run_id)},
              {"batch", lease->micro_batch_size
                            ? nlohmann::json{{"micro_batch_size", *lease->micro_batch_size},
                                             {"eval_batch_size", *lease->eval_batch_size}}
                            : nlohmann::json()},
              {"run", {{"id", lease->run_id}, {"key", lease->run_key}, {"spec", lease->spec}}}};
          send(worker, {MessageType::kLease, std::move(lease_body), ""});
        } else {
          send(worker, {MessageType::kNoWork, {{"retry_after_ms", 1000}}, ""});
        }
        return;
      }
      case MessageType::kHeartbeat:
        store.workers.seen(worker, now());
        if (b.contains("attempts") && b["attempts"].is_array())
          cancel_unless_live(worker, b["attempts"]);
        send(worker, {MessageType::kHeartbeat, nlohmann::json::object(), ""});
        return;
      case MessageType::kEvent: {
        const int64_t attempt = b["attempt"];
        if (!store.queue.record_event(attempt, b["seq"], b["event"])) {
          return error(worker, "stale-attempt",
                       "attempt " + std::to_string(attempt) + " is not live", attempt);
        }
        send(worker, {MessageType::kAck, {{"attempt", attempt}, {"seq", b["seq"]}}, ""});
        return;
      }
      case MessageType::kDone: {
        const int64_t attempt = b["attempt"];
        if (!store.queue.end_reported(attempt, b["exit_code"], b["stderr_tail"], now(), policy))
          return error(worker, "stale-attempt",
                       "attempt " + std::to_string(attempt) + " is not live", attempt);
        send(worker, {MessageType::kAck, {{"attempt", attempt}, {"seq", b["seq"]}}, ""});
        return;
      }
      case MessageType::kOffer:
        return transfers.offer(worker, b, now());
      case MessageType::kChunk:
        return transfers.chunk(worker, m, now());
      case MessageType::kFetch:
        return transfers.fetch(worker, b, now());
      case MessageType::kCredit:
        return transfers.credit(worker, b, now());
      default:
        return error(worker, "bad-message",
                     std::string(message_type_name(m.type)) + " is not sent to a coordinator",
                     nullptr);
    }
  }
};

Broker::Broker(Store& store, const std::string& endpoint, const std::filesystem::path& artifacts,
               RetryPolicy policy, std::optional<CurveServer> curve)
    : impl_(std::make_unique<Impl>(store, artifacts, policy)) {
  if (curve) {
    impl_->zap = std::make_unique<ZapHandler>(impl_->context, curve->worker_keys);
    impl_->socket.set(zmq::sockopt::curve_server, 1);
    impl_->socket.set(zmq::sockopt::curve_secretkey, curve->secret_key);
    impl_->socket.set(zmq::sockopt::curve_publickey, curve->public_key);
    impl_->socket.set(zmq::sockopt::zap_domain, "tallrec");
  }
  impl_->socket.set(zmq::sockopt::router_mandatory, 0);
  impl_->socket.set(zmq::sockopt::maxmsgsize, int64_t(kMaxChunkBytes + kMaxMessageBytes));
  impl_->socket.bind(endpoint);
}

Broker::~Broker() = default;

void Broker::set_metrics(CoordinatorMetrics* metrics) {
  impl_->metrics = metrics;
  impl_->transfers.set_metrics(metrics);
}

void Broker::trace_to(const std::filesystem::path& file) {
  impl_->trace = std::make_unique<std::ofstream>(file, std::ios::app);
  if (!*impl_->trace) throw Error("cannot write the protocol trace " + file.string());
}

void Broker::set_clock(std::function<double()> now) { impl_->now = std::move(now); }

std::string Broker::endpoint() const { return impl_->socket.get(zmq::sockopt::last_endpoint); }

void Broker::serve(const std::atomic<bool>& stop) {
  double next_expiry = 0;
  while (!stop) {
    zmq::pollitem_t items[] = {
        {impl_->socket.handle(), 0, ZMQ_POLLIN, 0},
        {impl_->zap ? impl_->zap->socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, impl_->zap ? 2 : 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal (Ctrl-C): `stop` says whether to go on
      throw;
    }
    if (impl_->zap && (items[1].revents & ZMQ_POLLIN)) impl_->zap->answer();
    // A burst of messages is handled in one store batch (group commit); replies go out after it.
    std::optional<Database::Batch> batch;
    const auto burst_start = std::chrono::steady_clock::now();
    if (items[0].revents & ZMQ_POLLIN) {
      batch.emplace(impl_->store.database);
      impl_->holding = true;
    }
    for (int n = 0; n < 256 && (items[0].revents & ZMQ_POLLIN); ++n) {
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(impl_->socket, std::back_inserter(parts), zmq::recv_flags::dontwait))
        break;
      if (parts.empty()) continue;
      const std::string worker = parts[0].to_string();
      std::string peer_key;  // the CURVE public key ZAP accepted (its User-Id), under CURVE
      if (impl_->zap &&
          parts.size() > 1) {  // metadata rides on the peer's own frames, not the routing id
        try {
          peer_key = parts[1].gets("User-Id");
        } catch (const zmq::error_t&) {
        }
      }
      std::vector<std::string> frames;
      for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string());
      // Each message is all or nothing: its changes a savepoint, its replies dropped if it fails.
      const size_t held_before = impl_->held.size();
      const size_t removals_before = impl_->transfers.removals_mark();
      auto undo = [&] {  // the savepoint rolls back the store; these, what else it would leave
        impl_->held.erase(impl_->held.begin() + std::ptrdiff_t(held_before), impl_->held.end());
        impl_->transfers.rollback_removals(removals_before);
      };
      Database::Savepoint savepoint(impl_->store.database);
      nlohmann::json attempt;  // named in the ERROR, so that the worker knows what was refused
      try {
        const Message m = decode_message(frames);
        if (m.body.contains("attempt")) attempt = m.body["attempt"];
        impl_->trace_message("in", worker, m);
        if (impl_->zap) impl_->require_bound_key(worker, peer_key);
        impl_->handle(worker, m);
        savepoint.release();
        continue;
      } catch (const ProtocolError& e) {
        undo();
        impl_->error(worker, e.code(), e.what(), attempt);
      } catch (const nlohmann::json::exception& e) {
        undo();
        impl_->error(worker, "bad-message", e.what(), attempt);
      } catch (const std::exception& e) {  // the store, the file system: refuse this one, serve on
        std::fprintf(stderr, "coordinator: a message from %s failed: %s\n", worker.c_str(),
                     e.what());
        undo();
        impl_->error(worker, "bad-message",
                     std::string("the coordinator could not handle it: ") + e.what(), attempt);
      }
    }
    if (batch) {
      batch->commit();
      impl_->holding = false;
      const double latency =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - burst_start).count();
      for (const auto& [worker, m] : impl_->held) {
        impl_->send_now(worker, m);
        if (impl_->metrics && m.type == MessageType::kLease)
          impl_->metrics->observe_dispatch(latency);
      }
      impl_->held.clear();
      impl_->transfers.after_commit();
    }
    // Expiry after the burst: heartbeats that were waiting in the socket count first.
    if (impl_->now() >= next_expiry) {
      impl_->store.queue.expire_leases(impl_->now(), impl_->policy);
      impl_->store.workers.mark_silent(impl_->now() - impl_->policy.lease_seconds, impl_->now());
      next_expiry = impl_->now() + 1.0;
    }
    impl_->transfers.pump(impl_->now());
  }
}

}  // namespace tallrec
