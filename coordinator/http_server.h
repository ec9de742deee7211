// HTTP/1.1 for the coordinator (Boost.Beast on its own Asio thread, so it never blocks the
// ZeroMQ broker): the API and static files of coordinator/http_api.h, and GET /api/events as
// Server-Sent Events that replay the store's change feed from `Last-Event-ID`. Requests are
// limited to 1 MiB, and a connection idle for 30 s is closed.
#pragma once

#include <memory>
#include <string>

#include "coordinator/http_api.h"

namespace tallrec {

class HttpServer {
 public:
  // Binds address:port (port 0 picks a free one) and serves on a thread of its own until destroyed.
  HttpServer(HttpApi& api, const std::string& address, unsigned short port);
  ~HttpServer();
  unsigned short port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tallrec
