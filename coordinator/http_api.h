// The coordinator's HTTP API (schemas/openapi.json) as a function from request to response, on
// the store; the sockets are coordinator/http_server.cc's. Reads are open unless configured
// otherwise; every mutation needs `Authorization: Bearer TOKEN`. Bad input is a 400 with a
// message, an unknown run or sweep a 404, a method the path does not serve a 405 with `Allow`, a
// state that forbids the change a 409.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "coordinator/metrics.h"
#include "coordinator/store.h"

namespace tallrec {

struct HttpRequest {
  std::string method, target, body, authorization;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::filesystem::path
      file;  // when set, the body is this file's content (downloads, static files)
};

struct ApiOptions {
  std::string token;
  bool reads_need_token = false;
  std::filesystem::path artifacts;  // stored checkpoints
  std::filesystem::path web_root;   // web-ui-static/
  std::filesystem::path chart_js;   // served as /vendor/chart.js
  std::filesystem::path openapi;    // served as /api/openapi.json
};

class HttpApi {
 public:
  HttpApi(Store& store, ApiOptions options, CoordinatorMetrics* metrics);
  HttpResponse handle(const HttpRequest& request);
  // Whether a read (GET) with this Authorization header may go on (SSE asks before streaming).
  bool read_allowed(const std::string& authorization) const;
  Store& store() { return store_; }

 private:
  HttpResponse route(const HttpRequest& request);
  HttpResponse static_file(const std::string& path);
  Store& store_;
  ApiOptions options_;
  CoordinatorMetrics* metrics_;
};

// The methods served at a path, as an `Allow` header ("GET, HEAD", "POST", ...), or "" where
// nothing is served (a 404 for every method). A 405 is sent with it (RFC 9110).
std::string allowed_methods(const std::string& path);

// Splits "/a/b?x=1&y=2" into path and decoded query parameters.
std::pair<std::string, std::map<std::string, std::string>> split_target(const std::string& target);

}  // namespace tallrec
