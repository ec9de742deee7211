// ZeroMQ's authentication protocol (ZAP, RFC 27) for the broker's CURVE socket: libzmq asks, over
// inproc://zeromq.zap.01, whether each connecting worker's public key may in. Only keys made by
// `tallrec keys` and placed in the coordinator's worker-keys folder are accepted; any other
// connection fails its handshake and never reaches the broker, so it can get no work.
#pragma once

#include <set>
#include <string>
#include <zmq.hpp>

namespace tallrec {

class ZapHandler {
 public:
  // Binds the ZAP endpoint in `context`; must exist before a CURVE server socket binds.
  ZapHandler(zmq::context_t& context, std::set<std::string> allowed_public_keys);
  zmq::socket_t& socket() { return socket_; }
  // Answers one pending request (call when socket() is readable). Refusals are logged to stderr.
  void answer();

 private:
  zmq::socket_t socket_;
  std::set<std::string> allowed_;
};

}  // namespace tallrec
