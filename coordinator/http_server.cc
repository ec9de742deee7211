#include "coordinator/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "common/error.h"
#include "common/json_text.h"

namespace tallrec {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr size_t kBodyLimit = 1u << 20;
constexpr auto kIdle = std::chrono::seconds(30);
constexpr auto kFeedPoll = std::chrono::milliseconds(250);
constexpr int kKeepAliveTicks =
    60;  // a comment line every 15 s keeps proxies from closing an SSE stream

// One Server-Sent Events stream: the change feed after `last`, polled from the store.
class EventStream : public std::enable_shared_from_this<EventStream> {
 public:
  EventStream(beast::tcp_stream stream, HttpApi& api, int64_t last)
      : stream_(std::move(stream)), timer_(stream_.get_executor()), api_(api), last_(last) {}

  void start(bool keep_alive_version_11) {
    stream_.expires_never();
    out_ = std::string(keep_alive_version_11 ? "HTTP/1.1" : "HTTP/1.0") +
           " 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: "
           "close\r\n"
           "X-Accel-Buffering: no\r\n\r\nretry: 1000\n\n";
    write();
  }

 private:
  void write() {
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;  // the client went away
                       self->out_.clear();
                       self->wait();
                     });
  }
  void wait() {
    timer_.expires_after(kFeedPoll);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->poll();
    });
  }
  void poll() {
    try {
      for (const auto& c : api_.store().changes.since(last_, 500)) {
        out_ += "id: " + std::to_string(c.id) + "\nevent: " + c.kind +
                "\ndata: " + dump_json(c.body) + "\n\n";
        last_ = c.id;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "coordinator: event stream: %s\n", e.what());
    }
    if (out_.empty() && ++ticks_ % kKeepAliveTicks == 0) out_ = ": keep-alive\n\n";
    if (out_.empty()) return wait();
    write();
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  HttpApi& api_;
  int64_t last_;
  std::string out_;
  int ticks_ = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpApi& api) : stream_(std::move(socket)), api_(api) {}
  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kIdle);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::connection_reset)
      return close();
    if (ec == http::error::body_limit)
      return reply(413, "{\"error\": \"request body over 1 MiB\"}", false);
    if (ec)
      return reply(400, "{\"error\": \"malformed HTTP request: " + ec.message() + "\"}", false);
    auto& req = parser_->get();
    HttpRequest request{std::string(req.method_string()), std::string(req.target()), req.body(),
                        std::string(req[http::field::authorization])};
    const auto [path, query] = split_target(request.target);
    if (path == "/api/events" && req.method() == http::verb::get) {
      if (!api_.read_allowed(request.authorization))
        return reply(401, "{\"error\": \"reads need a bearer token here\"}", false);
      int64_t last = -1;  // -1: from now on
      const std::string resume = std::string(req["Last-Event-ID"]);
      try {
        // The whole text is the id, digits only: "1e3", "+1" and " 1" are not 1.
        auto whole_id = [](const std::string& text) {
          if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
            throw std::invalid_argument(text);
          return int64_t(std::stoll(text));  // std::out_of_range past 2^63-1
        };
        // Both are checked when both are given; Last-Event-ID wins.
        if (query.count("after")) last = whole_id(query.at("after"));
        if (req.find("Last-Event-ID") != req.end()) last = whole_id(resume);  // even empty
      } catch (const std::exception&) {
        return reply(400, "{\"error\": \"Last-Event-ID and after must be change ids\"}", false);
      }
      try {
        if (last < 0) last = api_.store().changes.last_id();
      } catch (const std::exception& e) {  // nothing may escape an Asio handler
        return reply(500, dump_json(nlohmann::json{{"error", e.what()}}), false);
      }
      std::make_shared<EventStream>(std::move(stream_), api_, last)->start(req.version() == 11);
      return;
    }
    HttpResponse r = api_.handle(request);
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    if (!r.file.empty()) return send_file(r);
    reply(r.status, r.body, keep_alive_, r.content_type,
          r.status == 405 ? allowed_methods(path) : "");
  }

  void reply(int status, std::string body, bool keep_alive,
             const std::string& type = "application/json", const std::string& allow = "") {
    auto res = std::make_shared<http::response<http::string_body>>(http::status(status), 11);
    res->set(http::field::server, "tallrec");
    res->set(http::field::content_type, type);
    if (!allow.empty()) res->set(http::field::allow, allow);  // a 405's (RFC 9110)
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(keep_alive);
    res->body() = head_ ? "" : std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        self->after_write(ec, res->keep_alive());
                      });
  }

  void send_file(const HttpResponse& r) {
    beast::error_code ec;
    http::file_body::value_type body;
    body.open(r.file.c_str(), beast::file_mode::scan, ec);
    if (ec) return reply(404, "{\"error\": \"cannot open the file\"}", keep_alive_);
    auto res = std::make_shared<http::response<http::file_body>>(http::status::ok, 11);
    res->set(http::field::server, "tallrec");
    res->set(http::field::content_type, r.content_type);
    if (r.content_type == "application/octet-stream")
      res->set(http::field::content_disposition,
               "attachment; filename=\"" + r.file.filename().string() + "\"");
    res->keep_alive(keep_alive_);
    res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        self->after_write(ec, res->keep_alive());
                      });
  }

  void after_write(beast::error_code ec, bool keep_alive) {
    if (ec || !keep_alive) return close();
    read();
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpApi& api_;
  bool keep_alive_ = false, head_ = false;
};

}  // namespace

struct HttpServer::Impl {
  HttpApi& api;
  net::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  explicit Impl(HttpApi& a) : api(a) {}
  void accept() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (!ec) std::make_shared<Session>(std::move(socket), api)->start();
      if (acceptor.is_open()) accept();
    });
  }
};

HttpServer::HttpServer(HttpApi& api, const std::string& address, unsigned short port)
    : impl_(std::make_unique<Impl>(api)) {
  beast::error_code ec;
  const auto ip = net::ip::make_address(address, ec);
  if (ec) throw InputError("--http: \"" + address + "\" is not an IP address");
  const tcp::endpoint endpoint(ip, port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(net::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint, ec);
  if (ec)
    throw Error("cannot serve HTTP on " + address + ":" + std::to_string(port) + ": " +
                ec.message());
  impl_->acceptor.listen();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

HttpServer::~HttpServer() {
  net::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->io.stop();
  });
  impl_->thread.join();
}

unsigned short HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace tallrec
