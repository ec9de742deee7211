#include "coordinator/http_api.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/clock.h"
#include "common/error.h"
#include "common/json_text.h"
#include "common/protocol.h"
#include "coordinator/grid.h"
#include "coordinator/results.h"

namespace tallrec {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

HttpResponse json_response(int status, const json& body) {
  return {status, "application/json", dump_json(body), {}};
}
HttpResponse error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

// %XX escapes decoded; '+' is a space only in a query string (form encoding), never in a path.
std::string percent_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    out.push_back(percent_decode(path.substr(start, end - start), false));
    start = end + 1;
  }
  return out;
}

// A query parameter as an integer in [lo, hi], or `fallback` when absent; InputError otherwise.
int64_t int_param(const std::map<std::string, std::string>& q, const std::string& name,
                  int64_t fallback, int64_t lo, int64_t hi) {
  auto it = q.find(name);
  if (it == q.end()) return fallback;
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size() || v < lo || v > hi)
    throw InputError("query parameter " + name + "=\"" + it->second +
                     "\" must be an integer from " + std::to_string(lo) + " to " +
                     std::to_string(hi));
  return v;
}

int64_t id_segment(const std::string& s) {
  size_t used = 0;
  int64_t v = -1;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
  }
  return used == s.size() && v > 0 ? v : -1;
}

// At most `max_points` points, evenly strided, the last one always kept.
json downsample(const std::vector<MetricPoint>& points, size_t max_points) {
  json out = json::array();
  const size_t stride =
      points.size() > max_points ? (points.size() + max_points - 1) / max_points : 1;
  for (size_t i = 0; i < points.size(); ++i) {
    if (i % stride != 0 && i + 1 != points.size()) continue;
    out.push_back(
        {{"attempt", points[i].attempt}, {"step", points[i].step}, {"value", points[i].value}});
  }
  return out;
}

}  // namespace

const std::vector<HttpRoute>& http_routes() {
  // Every API operation, written once (schemas/openapi.json lists the same: a unit test checks).
  // A GET also answers HEAD. GET /api/events is the stream coordinator/http_server.cc serves.
  static const std::vector<HttpRoute> routes = {
      {"GET", "/api/sweeps", &HttpApi::list_sweeps},
      {"POST", "/api/sweeps", &HttpApi::submit_sweep},
      {"GET", "/api/sweeps/{name}", &HttpApi::sweep_detail},
      {"GET", "/api/sweeps/{name}/table", &HttpApi::sweep_table},
      {"GET", "/api/runs", &HttpApi::list_runs},
      {"GET", "/api/runs/{id}", &HttpApi::run_detail},
      {"GET", "/api/runs/{id}/metrics", &HttpApi::run_metrics},
      {"GET", "/api/runs/{id}/events", &HttpApi::run_events},
      {"POST", "/api/runs/{id}/cancel", &HttpApi::cancel_run},
      {"POST", "/api/runs/{id}/retry", &HttpApi::retry_run},
      {"GET", "/api/runs/{id}/checkpoints/{step}/{file}", &HttpApi::checkpoint_file},
      {"GET", "/api/workers", &HttpApi::list_workers},
      {"GET", "/api/events", nullptr},
      {"GET", "/api/openapi.json", &HttpApi::openapi_document},
  };
  return routes;
}

namespace {

// The routes' patterns split into segments, once (index i is http_routes()[i]).
const std::vector<std::vector<std::string>>& route_segments() {
  static const std::vector<std::vector<std::string>> split = [] {
    std::vector<std::vector<std::string>> out;
    for (const HttpRoute& r : http_routes()) out.push_back(segments(r.pattern));
    return out;
  }();
  return split;
}

// Whether route i's pattern fits `path` (split into segments); "{...}" matches one segment.
bool matches(const std::vector<std::string>& path, size_t route) {
  const std::vector<std::string>& want = route_segments()[route];
  if (want.size() != path.size()) return false;
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i].front() != '{' && want[i] != path[i]) return false;
  return true;
}

}  // namespace

std::string allowed_methods(const std::string& path) {
  if (path.rfind("/api/", 0) != 0 && path != "/api") return "GET, HEAD";  // /metrics, static files
  const auto seg = segments(path);
  std::string allow;
  auto add = [&](const std::string& method) {
    if (allow.find(method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + method;
  };
  for (size_t i = 0; i < http_routes().size(); ++i)
    if (const HttpRoute& r = http_routes()[i]; matches(seg, i)) {
      add(r.method);
      if (std::string(r.method) == "GET" && r.handle) add("HEAD");
    }
  return allow;
}

std::pair<std::string, std::map<std::string, std::string>> split_target(const std::string& target) {
  const size_t q = target.find('?');
  std::map<std::string, std::string> params;
  if (q != std::string::npos) {
    std::string rest = target.substr(q + 1);
    size_t start = 0;
    while (start <= rest.size()) {
      size_t end = rest.find('&', start);
      if (end == std::string::npos) end = rest.size();
      const std::string pair = rest.substr(start, end - start);
      const size_t eq = pair.find('=');
      if (!pair.empty())
        params[percent_decode(pair.substr(0, eq), true)] =
            eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1), true);
      start = end + 1;
    }
  }
  return {target.substr(0, q), params};
}

HttpApi::HttpApi(Store& store, ApiOptions options, CoordinatorMetrics* metrics)
    : store_(store), options_(std::move(options)), metrics_(metrics) {}

bool HttpApi::read_allowed(const std::string& authorization) const {
  return !options_.reads_need_token || authorization == "Bearer " + options_.token;
}

HttpResponse HttpApi::handle(const HttpRequest& request) {
  HttpResponse response;
  try {
    response = route(request);
  } catch (const InputError& e) {
    response = error_response(400, e.what());
  } catch (const nlohmann::json::exception& e) {
    response = error_response(400, std::string("bad JSON: ") + e.what());
  } catch (const std::exception& e) {
    response = error_response(500, e.what());
  }
  if (metrics_) metrics_->count_http_request(request.method, response.status);
  return response;
}

HttpResponse HttpApi::route(const HttpRequest& request) {
  const auto [path, query] = split_target(request.target);
  const std::string& method = request.method;
  const bool mutation = method == "POST";
  const std::string allow = allowed_methods(path);
  if (allow.empty()) return error_response(404, "no such endpoint: " + method + " " + path);
  bool served = false;  // the method is one of `allow`'s
  for (size_t start = 0; start < allow.size();) {
    const size_t end = std::min(allow.find(", ", start), allow.size());
    served = served || allow.compare(start, end - start, method) == 0;
    start = end + 2;
  }
  if (!served)  // coordinator/http_server.cc adds the Allow header
    return error_response(405, method + " is not served at " + path + " (Allow: " + allow + ")");
  const bool authorized = request.authorization == "Bearer " + options_.token;
  if (mutation && !authorized)
    return error_response(401,
                          "this change needs Authorization: Bearer <token> (printed when the "
                          "coordinator first started)");
  if (!mutation && !read_allowed(request.authorization))
    return error_response(401, "reads need Authorization: Bearer <token> here");

  if (path == "/metrics" && !mutation)
    return {
        200, "text/plain; version=0.0.4", metrics_ ? metrics_->prometheus_text(store_) : "", {}};
  if (path == "/favicon.ico" && !mutation)
    return static_file("/favicon.svg");  // browsers ask for it unprompted
  if (path.rfind("/api/", 0) != 0 && path != "/api")
    return static_file(path);  // GET or HEAD: allowed_methods

  const ApiCall call{segments(path), query, request};
  const std::string wanted = method == "HEAD" ? "GET" : method;
  for (size_t i = 0; i < http_routes().size(); ++i)
    if (const HttpRoute& r = http_routes()[i];
        r.handle && wanted == r.method && matches(call.seg, i))
      return (this->*r.handle)(call);
  return error_response(404, "no such endpoint: " + method + " " + path);
}

// The handlers of http_routes(): `call.seg` is the path's segments ("api", ...).

HttpResponse HttpApi::openapi_document(const ApiCall&) {
  return {200, "application/json", "", options_.openapi};
}

HttpResponse HttpApi::list_sweeps(const ApiCall&) {
  json out = json::array();
  for (const auto& s : store_.views.status()) out.push_back(sweep_status_json(s));
  return json_response(200, {{"sweeps", out}});
}

HttpResponse HttpApi::submit_sweep(const ApiCall& call) {
  Grid grid = parse_grid(call.request.body, "request body");
  SubmitResult r = store_.queue.submit(grid);
  return json_response(r.new_sweep ? 201 : 200, {{"sweep_id", r.sweep_id},
                                                 {"sweep", grid.name},
                                                 {"new_sweep", r.new_sweep},
                                                 {"runs_added", r.added},
                                                 {"runs_existing", r.existing}});
}

HttpResponse HttpApi::sweep_detail(const ApiCall& call) {
  const std::string& name = call.seg[2];
  auto doc = store_.views.sweep_document(name);
  if (!doc) return error_response(404, "no sweep named \"" + name + "\"");
  for (const auto& s : store_.views.status())
    if (s.name == name) {
      (*doc)["by_state"] = runs_by_state_json(s.runs_by_state);
      (*doc)["eta_seconds"] = s.eta_seconds < 0 ? json() : json(s.eta_seconds);
    }
  const ResultsTable table = build_results_table(store_.views.run_outcomes(name));
  (*doc)["heatmap"] = results_table_json(table);
  (*doc)["results_json"] = table.tallrec_json;
  return json_response(200, *doc);
}

HttpResponse HttpApi::sweep_table(const ApiCall& call) {  // Table 1 export, as `results --format`
  const std::string& name = call.seg[2];
  if (!store_.views.sweep_document(name))
    return error_response(404, "no sweep named \"" + name + "\"");
  const std::string format = call.query.count("format") ? call.query.at("format") : "csv";
  static const std::map<std::string, std::string> types = {
      {"csv", "text/csv; charset=utf-8"},
      {"markdown", "text/markdown; charset=utf-8"},
      {"latex", "application/x-latex; charset=utf-8"}};
  if (!types.count(format)) return error_response(400, "format must be csv, markdown or latex");
  return {200,
          types.at(format),
          export_results_table(build_results_table(store_.views.run_outcomes(name)), format),
          {}};
}

HttpResponse HttpApi::list_runs(const ApiCall& call) {
  const auto& query = call.query;
  const std::string sweep = query.count("sweep") ? query.at("sweep") : "";
  std::optional<RunState> state;
  if (query.count("state")) {
    state = parse_run_state(query.at("state"));
    if (!state && !query.at("state").empty())
      return error_response(400, "state must be " + run_state_names());
  }
  const int64_t limit = int_param(query, "limit", 50, 1, 1000),
                offset = int_param(query, "offset", 0, 0, INT64_MAX);
  json runs = json::array();
  for (const auto& r : store_.views.runs(sweep, state, limit, offset))
    runs.push_back(run_row_json(r));
  return json_response(200, {{"total", store_.views.count_runs(sweep, state)},
                             {"limit", limit},
                             {"offset", offset},
                             {"runs", runs}});
}

std::optional<HttpApi::FoundRun> HttpApi::find_run(const ApiCall& call, HttpResponse& refusal) {
  const int64_t id = id_segment(call.seg[2]);
  if (id < 0) {
    refusal = error_response(400, "\"" + call.seg[2] + "\" is not a run id");
    return std::nullopt;
  }
  auto detail = store_.views.run_detail(id);
  if (!detail) {
    refusal = error_response(404, "no run " + call.seg[2]);
    return std::nullopt;
  }
  return FoundRun{id, std::move(*detail)};
}

HttpResponse HttpApi::run_detail(const ApiCall& call) {
  HttpResponse refusal;
  const auto run = find_run(call, refusal);
  return run ? json_response(200, run->detail) : refusal;
}

HttpResponse HttpApi::change_run(const ApiCall& call, bool cancel) {
  HttpResponse refusal;
  const auto run = find_run(call, refusal);
  if (!run) return refusal;
  const int64_t id = run->id;
  const bool ok =
      cancel ? store_.queue.cancel(id, unix_time()) : store_.queue.retry(id, unix_time());
  if (!ok) {
    // Which states allow it: the predicates the queue uses (coordinator/run_state.h).
    return error_response(409, "run " + call.seg[2] + " is " +
                                   run->detail["state"].get<std::string>() + ": only " +
                                   run_state_names(cancel ? is_unfinished : is_retryable) +
                                   " runs can be " + (cancel ? "canceled" : "retried"));
  }
  return json_response(200, {{"run", id}, {"state", run_state_name(*store_.views.run_state(id))}});
}

HttpResponse HttpApi::cancel_run(const ApiCall& call) { return change_run(call, true); }
HttpResponse HttpApi::retry_run(const ApiCall& call) { return change_run(call, false); }

HttpResponse HttpApi::run_metrics(const ApiCall& call) {
  HttpResponse refusal;
  const auto run = find_run(call, refusal);
  if (!run) return refusal;
  const std::string name = call.query.count("name") ? call.query.at("name") : "loss";
  const int64_t max_points = int_param(call.query, "max_points", 500, 2, 100000);
  const int64_t id = run->id;
  return json_response(
      200, {{"run", id},
            {"name", name},
            {"points", downsample(store_.views.metric_series(id, name), size_t(max_points))}});
}

HttpResponse HttpApi::run_events(const ApiCall& call) {
  HttpResponse refusal;
  const auto run = find_run(call, refusal);
  if (!run) return refusal;
  const int64_t after = int_param(call.query, "after", 0, 0, INT64_MAX),
                limit = int_param(call.query, "limit", 200, 1, 1000);
  const int64_t id = run->id;
  return json_response(200, {{"run", id}, {"events", store_.views.run_events(id, after, limit)}});
}

HttpResponse HttpApi::checkpoint_file(const ApiCall& call) {
  HttpResponse refusal;
  const auto run = find_run(call, refusal);
  if (!run) return refusal;
  const auto& seg = call.seg;
  // "best" is the result's best step (or, unfinished, the newest stored checkpoint).
  const auto& cps = run->detail["checkpoints"];
  if (cps.empty()) return error_response(404, "run " + seg[2] + " has no stored checkpoint");
  int64_t step = seg[4] == "best" ? (run->detail["result"].is_object()
                                         ? run->detail["result"].value("best_step", int64_t(-1))
                                         : cps.back()["step"].get<int64_t>())
                                  : id_segment(seg[4]);
  for (const auto& c : cps) {
    if (c["step"].get<int64_t>() != step) continue;
    if (!is_plain_file_name(seg[5]))
      return error_response(400, "\"" + seg[5] + "\" is not a file name");
    const fs::path file = options_.artifacts / c["path"].get<std::string>() / seg[5];
    if (!fs::is_regular_file(file))
      return error_response(404,
                            "checkpoint step " + std::to_string(step) + " has no file " + seg[5]);
    return {200,
            seg[5].size() > 5 && seg[5].substr(seg[5].size() - 5) == ".json"
                ? "application/json"
                : "application/octet-stream",
            "", file};
  }
  return error_response(404, "run " + seg[2] + " has no stored checkpoint at step " + seg[4]);
}

HttpResponse HttpApi::list_workers(const ApiCall&) {
  json out = json::array();
  for (const auto& w : store_.workers.list()) out.push_back(worker_row_json(w));
  return json_response(200, {{"workers", out}, {"now", unix_time()}});
}

HttpResponse HttpApi::static_file(const std::string& raw_path) {
  const std::string path = percent_decode(raw_path, false);
  if (path == "/vendor/chart.js") return {200, "text/javascript", "", options_.chart_js};
  for (const auto& s : segments(path))
    if (s == ".." || s.find('\\') != std::string::npos || s.find('\0') != std::string::npos)
      return error_response(400, "path \"" + path + "\" leaves the web root");
  const fs::path file = options_.web_root / (path == "/" ? "index.html" : path.substr(1));
  std::error_code ec;
  const fs::path real = fs::canonical(file, ec), root = fs::canonical(options_.web_root, ec);
  if (real.empty() || !fs::is_regular_file(real) ||
      real.string().rfind(root.string() + "/", 0) != 0)
    return error_response(404, "no such file: " + path);
  static const std::map<std::string, std::string> types = {{".html", "text/html; charset=utf-8"},
                                                           {".js", "text/javascript"},
                                                           {".css", "text/css"},
                                                           {".svg", "image/svg+xml"},
                                                           {".json", "application/json"}};
  auto t = types.find(real.extension().string());
  return {200, t == types.end() ? "application/octet-stream" : t->second, "", real};
}

}  // namespace tallrec
