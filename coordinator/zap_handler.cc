#include "coordinator/zap_handler.h"

#include <cstdio>
#include <zmq_addon.hpp>

namespace tallrec {

ZapHandler::ZapHandler(zmq::context_t& context, std::set<std::string> allowed)
    : socket_(context, zmq::socket_type::rep), allowed_(std::move(allowed)) {
  socket_.bind("inproc://zeromq.zap.01");
}

void ZapHandler::answer() {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
  // Frames (RFC 27): version, request id, domain, address, routing id, mechanism, credentials...
  if (request.size() < 6) return;
  const std::string version = request[0].to_string(), request_id = request[1].to_string();
  const std::string address = request[3].to_string(), mechanism = request[5].to_string();
  bool ok = false;
  std::string client = "(none)";
  if (mechanism == "CURVE" && request.size() >= 7 && request[6].size() == 32) {
    char z85[41] = {};
    zmq_z85_encode(z85, static_cast<const uint8_t*>(request[6].data()), 32);
    client = z85;
    ok = allowed_.count(client) > 0;
  }
  if (!ok) {
    std::fprintf(
        stderr,
        "coordinator: refused a %s connection from %s with key %s: not a known worker key\n",
        mechanism.c_str(), address.c_str(), client.c_str());
  }
  const std::string code = ok ? "200" : "400", text = ok ? "OK" : "unknown worker key", metadata;
  std::vector<zmq::const_buffer> reply{zmq::buffer(version), zmq::buffer(request_id),
                                       zmq::buffer(code),    zmq::buffer(text),
                                       zmq::buffer(client),  zmq::buffer(metadata)};
  zmq::send_multipart(socket_, reply);
}

}  // namespace tallrec
