// The worker's connection to the coordinator: one ZeroMQ DEALER speaking TRP/1, with the
// Paranoid Pirate rule of docs/dev/protocol.md §3.2: after 5 s without hearing from the coordinator
// the socket is closed (dropping whatever it still queued) and opened again; the interval
// between reconnects starts at 1 s and doubles up to 32 s. Nothing here blocks for long, so
// the trainer runs on while the coordinator is away.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/curve_keys.h"
#include "common/protocol.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace tallrec {

class CoordinatorLink {
 public:
  // With `curve`, every (re)opened socket authenticates with it.
  CoordinatorLink(std::string endpoint, std::string worker_id,
                  std::optional<CurveClient> curve = std::nullopt);
  ~CoordinatorLink();

  void send(MessageType type, const nlohmann::json& body, const std::string& data = "");
  // The next well-formed message within `ms`, or nullopt. Malformed ones are logged and dropped.
  std::optional<Message> receive(int ms);
  // Seconds since anything arrived from the coordinator.
  double silent_seconds() const;
  // True when the link was just re-opened: the caller then sends READY and re-sends what was
  // not acknowledged. Call it often; it reconnects only when the silence and backoff say so.
  bool reconnect_if_silent();

 private:
  void open();
  std::string endpoint_, id_;
  std::optional<CurveClient> curve_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::chrono::steady_clock::time_point last_heard_, next_reconnect_;
  std::chrono::seconds backoff_{1};
};

}  // namespace tallrec
