// The coordinator's HTTP API (schemas/openapi.json) as a function from request to response, on
// the store; the sockets are coordinator/http_server.cc's. Reads are open unless configured
// otherwise; every mutation needs `Authorization: Bearer TOKEN`. Bad input is a 400 with a
// message, an unknown run or sweep a 404, a method the path does not serve a 405 with `Allow`, a
// state that forbids the change a 409.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

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

// A request as a route's handler sees it.
struct ApiCall {
  std::vector<std::string> seg;  // the path's decoded segments: "api", "runs", "7", ...
  const std::map<std::string, std::string>& query;
  const HttpRequest& request;
};

class HttpApi {
 public:
  HttpApi(Store& store, ApiOptions options, CoordinatorMetrics* metrics);
  HttpResponse handle(const HttpRequest& request);
  // Whether a read (GET) with this Authorization header may go on (SSE asks before streaming).
  bool read_allowed(const std::string& authorization) const;
  Store& store() { return store_; }

  // The handlers of http_routes() (below), one per operation of schemas/openapi.json.
  HttpResponse list_sweeps(const ApiCall& call);
  HttpResponse submit_sweep(const ApiCall& call);
  HttpResponse sweep_detail(const ApiCall& call);
  HttpResponse sweep_table(const ApiCall& call);
  HttpResponse list_runs(const ApiCall& call);
  HttpResponse run_detail(const ApiCall& call);
  HttpResponse run_metrics(const ApiCall& call);
  HttpResponse run_events(const ApiCall& call);
  HttpResponse cancel_run(const ApiCall& call);
  HttpResponse retry_run(const ApiCall& call);
  HttpResponse checkpoint_file(const ApiCall& call);
  HttpResponse list_workers(const ApiCall& call);
  HttpResponse openapi_document(const ApiCall& call);

 private:
  HttpResponse route(const HttpRequest& request);
  HttpResponse static_file(const std::string& path);
  // The run a /api/runs/{id}/... path names (its id and detail), or nullopt with the 400 or 404
  // in `refusal`.
  struct FoundRun {
    int64_t id;
    nlohmann::json detail;
  };
  std::optional<FoundRun> find_run(const ApiCall& call, HttpResponse& refusal);
  HttpResponse change_run(const ApiCall& call, bool cancel);
  Store& store_;
  ApiOptions options_;
  CoordinatorMetrics* metrics_;
};

// The API's operations, written once: method, path as schemas/openapi.json writes it ("{name}"
// matches one segment), and the handler (null: served by coordinator/http_server.cc). Dispatch,
// 404, 405 and Allow follow from it.
struct HttpRoute {
  const char* method;
  const char* pattern;
  HttpResponse (HttpApi::*handle)(const ApiCall&);
};
const std::vector<HttpRoute>& http_routes();

// The methods served at a path, as an `Allow` header ("GET, HEAD", "POST", ...), or "" where
// nothing is served (a 404 for every method). A 405 is sent with it (RFC 9110).
std::string allowed_methods(const std::string& path);

// Splits "/a/b?x=1&y=2" into path and decoded query parameters.
std::pair<std::string, std::map<std::string, std::string>> split_target(const std::string& target);

}  // namespace tallrec
