#include "worker/coordinator_link.h"

#include <cstdio>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace tallrec {
namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kSilenceLimit = std::chrono::seconds(5);
constexpr auto kMaxBackoff = std::chrono::seconds(32);
}  // namespace

CoordinatorLink::CoordinatorLink(std::string endpoint, std::string worker_id,
                                 std::optional<CurveClient> curve)
    : endpoint_(std::move(endpoint)),
      id_(std::move(worker_id)),
      curve_(std::move(curve)),
      context_(std::make_unique<zmq::context_t>(1)) {
  open();
}

CoordinatorLink::~CoordinatorLink() = default;

void CoordinatorLink::open() {
  socket_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::routing_id, id_);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::maxmsgsize, int64_t(kMaxChunkBytes + kMaxMessageBytes));
  if (curve_) {
    socket_->set(zmq::sockopt::curve_serverkey, curve_->server_public_key);
    socket_->set(zmq::sockopt::curve_publickey, curve_->own.public_key);
    socket_->set(zmq::sockopt::curve_secretkey, curve_->own.secret_key);
  }
  socket_->connect(endpoint_);
  last_heard_ = Clock::now();
  next_reconnect_ = last_heard_ + kSilenceLimit;
}

void CoordinatorLink::send(MessageType type, const nlohmann::json& body, const std::string& data) {
  std::vector<zmq::const_buffer> frames;
  const auto encoded = encode_message({type, body, data});
  for (const auto& f : encoded) frames.push_back(zmq::buffer(f));
  // DEALER queues while the coordinator is away; if even that queue is full, the message is
  // dropped here and re-sent by the caller's unacknowledged-message rule.
  zmq::send_multipart(*socket_, frames, zmq::send_flags::dontwait);
}

std::optional<Message> CoordinatorLink::receive(int ms) {
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 1, std::chrono::milliseconds(ms));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::nullopt;  // a signal: the caller checks its stop flag
    throw;
  }
  if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
  std::vector<zmq::message_t> parts;
  if (!zmq::recv_multipart(*socket_, std::back_inserter(parts), zmq::recv_flags::dontwait))
    return std::nullopt;
  last_heard_ = Clock::now();
  backoff_ = std::chrono::seconds(1);
  std::vector<std::string> frames;
  for (auto& p : parts) frames.push_back(p.to_string());
  try {
    return decode_message(frames);
  } catch (const ProtocolError& e) {
    std::fprintf(stderr, "worker %s: dropped a malformed message from the coordinator: %s\n",
                 id_.c_str(), e.what());
    return std::nullopt;
  }
}

double CoordinatorLink::silent_seconds() const {
  return std::chrono::duration<double>(Clock::now() - last_heard_).count();
}

bool CoordinatorLink::reconnect_if_silent() {
  const auto now = Clock::now();
  if (now - last_heard_ < kSilenceLimit || now < next_reconnect_) return false;
  std::fprintf(stderr, "worker %s: no word from %s for %.0f s; reconnecting\n", id_.c_str(),
               endpoint_.c_str(), silent_seconds());
  const auto heard = last_heard_;
  open();
  last_heard_ = heard;  // still silent: only an answer counts
  next_reconnect_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  return true;
}

}  // namespace tallrec
