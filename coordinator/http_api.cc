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

std::string allowed_methods(const std::string& path) {
  if (path.rfind("/api/", 0) != 0 && path != "/api") return "GET, HEAD";  // /metrics, static files
  const auto seg = segments(path);                                        // "api", ...
  const size_t n = seg.size();
  const std::string what = n >= 2 ? seg[1] : "";
  if (n == 2 && what == "sweeps") return "GET, HEAD, POST";
  if (n == 2 && what == "events") return "GET";  // the stream (coordinator/http_server.cc)
  if (n == 2 && (what == "runs" || what == "workers" || what == "openapi.json")) return "GET, HEAD";
  if (what == "sweeps" && (n == 3 || (n == 4 && seg[3] == "table"))) return "GET, HEAD";
  if (what == "runs") {
    if (n == 3 || (n == 4 && (seg[3] == "metrics" || seg[3] == "events")) ||
        (n == 6 && seg[3] == "checkpoints"))
      return "GET, HEAD";
    if (n == 4 && (seg[3] == "cancel" || seg[3] == "retry")) return "POST";
  }
  return "";
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

  const auto seg = segments(path);  // "api", ...
  if (seg.size() == 2 && seg[1] == "openapi.json" && !mutation)
    return {200, "application/json", "", options_.openapi};
  if (seg.size() == 2 && seg[1] == "sweeps") {
    if (mutation) {
      Grid grid = parse_grid(request.body, "request body");
      SubmitResult r = store_.queue.submit(grid);
      return json_response(r.new_sweep ? 201 : 200, {{"sweep_id", r.sweep_id},
                                                     {"sweep", grid.name},
                                                     {"new_sweep", r.new_sweep},
                                                     {"runs_added", r.added},
                                                     {"runs_existing", r.existing}});
    }
    json out = json::array();
    for (const auto& s : store_.views.status()) out.push_back(sweep_status_json(s));
    return json_response(200, {{"sweeps", out}});
  }
  if (seg.size() == 3 && seg[1] == "sweeps" && !mutation) {
    auto doc = store_.views.sweep_document(seg[2]);
    if (!doc) return error_response(404, "no sweep named \"" + seg[2] + "\"");
    for (const auto& s : store_.views.status())
      if (s.name == seg[2]) {
        (*doc)["by_state"] = s.runs_by_state;
        (*doc)["eta_seconds"] = s.eta_seconds < 0 ? json() : json(s.eta_seconds);
      }
    const ResultsTable table = build_results_table(store_.views.run_outcomes(seg[2]));
    (*doc)["heatmap"] = results_table_json(table);
    (*doc)["results_json"] = table.tallrec_json;
    return json_response(200, *doc);
  }
  if (seg.size() == 4 && seg[1] == "sweeps" && seg[3] == "table" &&
      !mutation) {  // Table 1 export, as `results --format`
    if (!store_.views.sweep_document(seg[2]))
      return error_response(404, "no sweep named \"" + seg[2] + "\"");
    const std::string format = query.count("format") ? query.at("format") : "csv";
    static const std::map<std::string, std::string> types = {
        {"csv", "text/csv; charset=utf-8"},
        {"markdown", "text/markdown; charset=utf-8"},
        {"latex", "application/x-latex; charset=utf-8"}};
    if (!types.count(format)) return error_response(400, "format must be csv, markdown or latex");
    return {200,
            types.at(format),
            export_results_table(build_results_table(store_.views.run_outcomes(seg[2])), format),
            {}};
  }
  if (seg.size() == 2 && seg[1] == "runs" && !mutation) {
    const std::string sweep = query.count("sweep") ? query.at("sweep") : "",
                      state = query.count("state") ? query.at("state") : "";
    if (!state.empty() && !parse_run_state(state))
      return error_response(400, "state must be " + run_state_names());
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
  if (seg.size() >= 3 && seg[1] == "runs") {
    const int64_t id = id_segment(seg[2]);
    if (id < 0) return error_response(400, "\"" + seg[2] + "\" is not a run id");
    auto run = store_.views.run_detail(id);
    if (!run) return error_response(404, "no run " + seg[2]);
    if (seg.size() == 3 && !mutation) return json_response(200, *run);
    if (seg.size() == 4 && mutation && (seg[3] == "cancel" || seg[3] == "retry")) {
      const bool ok = seg[3] == "cancel" ? store_.queue.cancel(id, unix_time())
                                         : store_.queue.retry(id, unix_time());
      if (!ok) {
        return error_response(
            409, "run " + seg[2] + " is " + (*run)["state"].get<std::string>() + ": only " +
                     (seg[3] == "cancel" ? "queued, leased or running" : "failed or canceled") +
                     " runs can be " + (seg[3] == "cancel" ? "canceled" : "retried"));
      }
      return json_response(200, {{"run", id}, {"state", store_.views.run_state(id)}});
    }
    if (seg.size() == 4 && seg[3] == "metrics" && !mutation) {
      const std::string name = query.count("name") ? query.at("name") : "loss";
      const int64_t max_points = int_param(query, "max_points", 500, 2, 100000);
      return json_response(
          200, {{"run", id},
                {"name", name},
                {"points", downsample(store_.views.metric_series(id, name), size_t(max_points))}});
    }
    if (seg.size() == 4 && seg[3] == "events" && !mutation) {
      const int64_t after = int_param(query, "after", 0, 0, INT64_MAX),
                    limit = int_param(query, "limit", 200, 1, 1000);
      return json_response(200,
                           {{"run", id}, {"events", store_.views.run_events(id, after, limit)}});
    }
    if (seg.size() == 6 && seg[3] == "checkpoints" && !mutation) {
      // "best" is the result's best step (or, unfinished, the newest stored checkpoint).
      const auto& cps = (*run)["checkpoints"];
      if (cps.empty()) return error_response(404, "run " + seg[2] + " has no stored checkpoint");
      int64_t step = seg[4] == "best" ? ((*run)["result"].is_object()
                                             ? (*run)["result"].value("best_step", int64_t(-1))
                                             : cps.back()["step"].get<int64_t>())
                                      : id_segment(seg[4]);
      for (const auto& c : cps) {
        if (c["step"].get<int64_t>() != step) continue;
        if (!is_plain_file_name(seg[5]))
          return error_response(400, "\"" + seg[5] + "\" is not a file name");
        const fs::path file = options_.artifacts / c["path"].get<std::string>() / seg[5];
        if (!fs::is_regular_file(file))
          return error_response(
              404, "checkpoint step " + std::to_string(step) + " has no file " + seg[5]);
        return {200,
                seg[5].size() > 5 && seg[5].substr(seg[5].size() - 5) == ".json"
                    ? "application/json"
                    : "application/octet-stream",
                "", file};
      }
      return error_response(404, "run " + seg[2] + " has no stored checkpoint at step " + seg[4]);
    }
  }
  if (seg.size() == 2 && seg[1] == "workers" && !mutation) {
    json out = json::array();
    for (const auto& w : store_.workers.list()) out.push_back(worker_row_json(w));
    return json_response(200, {{"workers", out}, {"now", unix_time()}});
  }
  return error_response(404, "no such endpoint: " + method + " " + path);
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
