// The other end of a TRP/1 conversation (docs/dev/protocol.md), played by a test on a real
// ZeroMQ socket on 127.0.0.1: a worker (DEALER, connecting with its routing id) when the broker
// is under test, a coordinator (ROUTER, bound to a free port, answering whoever spoke last) when
// a worker's part is. The one fake of the unit tests.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/protocol.h"

namespace tallrec::test {

class TrpPeer {
 public:
  // A worker named `id`, connected to a coordinator at `endpoint`.
  static TrpPeer worker(const std::string& endpoint, const std::string& id) {
    TrpPeer p(zmq::socket_type::dealer);
    p.socket_.set(zmq::sockopt::routing_id, id);
    p.socket_.connect(endpoint);
    return p;
  }
  // A coordinator on a free port of 127.0.0.1 (endpoint() says which).
  static TrpPeer coordinator() {
    TrpPeer p(zmq::socket_type::router);
    p.socket_.bind("tcp://127.0.0.1:*");
    return p;
  }

  std::string endpoint() const { return socket_.get(zmq::sockopt::last_endpoint); }
  // The routing id of the worker that spoke last (coordinator only).
  const std::string& peer() const { return peer_; }

  // Raw frames, for malformed input.
  void send_frames(std::vector<std::string> frames) {
    if (router_) frames.insert(frames.begin(), peer_);
    std::vector<zmq::const_buffer> b;
    for (const auto& f : frames) b.push_back(zmq::buffer(f));
    zmq::send_multipart(socket_, b);
  }
  void send(MessageType t, const nlohmann::json& body, const std::string& data = "") {
    send_frames(encode_message({t, body, data}));
  }
  // A message within `ms`, or nullopt.
  std::optional<Message> poll(int ms) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(ms));
    if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
    std::vector<zmq::message_t> parts;
    (void)zmq::recv_multipart(socket_, std::back_inserter(parts));
    size_t first = 0;
    if (router_) peer_ = parts.at(first++).to_string();
    std::vector<std::string> frames;
    for (size_t i = first; i < parts.size(); ++i) frames.push_back(parts[i].to_string());
    return decode_message(frames);
  }
  // The next message within 5 s; throws when none comes.
  Message receive() {
    if (auto m = poll(5000)) return *m;
    throw std::runtime_error("no message within 5 s");
  }
  // The next message of type `t` within `ms`, skipping others (heartbeats, say); nullopt if none.
  std::optional<Message> wait_for(MessageType t, int ms = 5000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (auto m = poll(int(std::max<int64_t>(1, left.count()))); m && m->type == t) return m;
    }
    return std::nullopt;
  }
  Message ask(MessageType t, const nlohmann::json& body) {
    send(t, body);
    return receive();
  }

 private:
  explicit TrpPeer(zmq::socket_type type)
      : context_(std::make_unique<zmq::context_t>()),
        socket_(*context_, type),
        router_(type == zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
  }

  std::unique_ptr<zmq::context_t> context_;  // its own, so a peer can be moved
  zmq::socket_t socket_;
  bool router_;
  std::string peer_;
};

}  // namespace tallrec::test
