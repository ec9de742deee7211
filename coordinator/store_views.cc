#include "coordinator/store_views.h"

#include <sqlite3.h>

#include <algorithm>

#include "common/error.h"
#include "common/run_spec.h"
#include "coordinator/database.h"
#include "coordinator/run_state.h"
#include "coordinator/store_sql.h"

namespace tallrec {
using json = nlohmann::json;

json worker_row_json(const WorkerRow& w) {
  return {{"id", w.id},       {"host", w.host},         {"version", w.version},
          {"slots", w.slots}, {"gpus", w.gpus},         {"last_seen", w.last_seen},
          {"alive", w.alive}, {"attempts", w.attempts}, {"slurm", w.slurm}};
}

namespace {
// A state as the store holds it (the schema's CHECK allows no other).
RunState stored_state(const std::string& name, const std::string& path) {
  if (auto state = parse_run_state(name)) return *state;
  throw Error(path + ": a run in the unknown state \"" + name + "\"");
}

// A state filter as the queries take it: "" for any.
std::string state_filter(std::optional<RunState> state) {
  return state ? run_state_name(*state) : "";
}

// Every state, with 0 runs.
std::map<RunState, int64_t> no_runs() {
  std::map<RunState, int64_t> out;
  for (RunState st : kAllRunStates) out[st] = 0;
  return out;
}
}  // namespace

json runs_by_state_json(const std::map<RunState, int64_t>& counts) {
  json out = json::object();
  for (const auto& [state, n] : counts) out[run_state_name(state)] = n;
  return out;
}

json run_row_json(const RunRow& r) {
  json result = nullptr;
  if (r.result.is_object())
    result = {{"best_val_auc", r.result.value("best_val_auc", json())},
              {"best_step", r.result.value("best_step", json())},
              {"steps", r.result.value("steps", json())},
              {"test_auc", r.result.value("test_auc", json::object())}};
  return {{"id", r.id},
          {"key", r.key},
          {"state", run_state_name(r.state)},
          {"domain", r.domain},
          {"sample", r.sample},
          {"seed", r.seed},
          {"attempts", r.attempts},
          {"spec", r.spec},
          {"result", result},
          {"reason", r.reason.empty() ? json() : json(r.reason)},
          {"micro_batch_size", r.micro_batch_size > 0 ? json(r.micro_batch_size) : json()},
          {"preemptions", r.preemptions}};
}

json sweep_status_json(const SweepStatus& s) {
  return {{"id", s.id},
          {"name", s.name},
          {"runs", s.total()},
          {"by_state", runs_by_state_json(s.runs_by_state)},
          {"eta_seconds", s.eta_seconds < 0 ? json() : json(s.eta_seconds)}};
}

StoreViews::StoreViews(Database& database)
    : db_(database.handle()), path_(database.path()), checkpoints_(database) {}

int64_t SweepStatus::total() const {
  int64_t t = 0;
  for (const auto& [state, n] : runs_by_state) t += n;
  return t;
}

std::vector<SweepStatus> StoreViews::status() {
  std::vector<SweepStatus> out;
  Statement s(db_,
              "SELECT s.id, s.name, r.state, COUNT(r.id) FROM sweeps s LEFT JOIN sweep_runs sr ON "
              "sr.sweep_id = s.id "
              "LEFT JOIN runs r ON r.id = sr.run_id GROUP BY s.id, r.state ORDER BY s.id",
              path_);
  while (s.step()) {
    if (out.empty() || out.back().id != s.integer(0)) {
      out.push_back({s.integer(0), s.text(1), no_runs()});
    }
    if (!s.is_null(2)) out.back().runs_by_state[stored_state(s.text(2), path_)] = s.integer(3);
  }
  // Per method (a run's spec names one only when it is not the LLM's, coordinator/grid.h): a
  // Table 1 sweep mixes baselines of seconds with LLM runs of hours, and one mean over both
  // would promise the LLM's runs in the baselines' time.
  Statement mean(db_,
                 "SELECT json_extract(r.spec, '$.method'), AVG(a.ended - a.started) "
                 "FROM attempts a JOIN sweep_runs sr ON sr.run_id = a.run_id "
                 "JOIN runs r ON r.id = a.run_id WHERE sr.sweep_id = ? AND a.state = ? AND "
                 "a.ended IS NOT NULL AND a.started IS NOT NULL GROUP BY 1",
                 path_);
  Statement open(db_,
                 "SELECT json_extract(r.spec, '$.method'), r.state, COUNT(*) FROM runs r "
                 "JOIN sweep_runs sr ON sr.run_id = r.id WHERE sr.sweep_id = ? AND r.state IN "
                 "(?, ?, ?) GROUP BY 1, 2",
                 path_);
  for (auto& sweep : out) {
    std::map<std::string, double> each;  // method ("" for the LLM) -> mean seconds
    mean.bind(1, sweep.id).bind(2, AttemptState::kSucceeded);
    while (mean.step()) each[mean.text(0)] = mean.real(1);
    mean.reset();
    // The remaining work: each queued or leased run whole, a running one half, at its method's
    // mean; unknown while a method with runs left has finished none.
    double work = 0;
    bool known = !each.empty();
    open.bind(1, sweep.id)
        .bind(2, RunState::kQueued)
        .bind(3, RunState::kLeased)
        .bind(4, RunState::kRunning);
    while (open.step()) {
      const auto it = each.find(open.text(0));
      if (it == each.end()) {
        known = false;
        continue;
      }
      const bool running = stored_state(open.text(1), path_) == RunState::kRunning;
      work += it->second * double(open.integer(2)) * (running ? 0.5 : 1.0);
    }
    open.reset();
    auto& n = sweep.runs_by_state;
    const double in_flight = double(n[RunState::kLeased] + n[RunState::kRunning]);
    if (known) sweep.eta_seconds = work / std::max(1.0, in_flight);
  }
  return out;
}

std::vector<RunRow> StoreViews::runs(const std::string& sweep_name, std::optional<RunState> state,
                                     int64_t limit, int64_t offset) {
  Statement s(db_,
              "SELECT DISTINCT r.id, r.key, r.state, r.domain, r.sample, r.seed, r.attempts, "
              "r.spec, r.result, "
              "(SELECT reason FROM attempts a WHERE a.run_id = r.id ORDER BY a.id DESC LIMIT 1), "
              "r.micro_batch_size, r.preemptions FROM runs r "
              "JOIN sweep_runs sr ON sr.run_id = r.id JOIN sweeps s ON s.id = sr.sweep_id "
              "WHERE (?1 = '' OR s.name = ?1) AND (?2 = '' OR r.state = ?2) ORDER BY r.id LIMIT ?3 "
              "OFFSET ?4",
              path_);
  s.bind(1, sweep_name).bind(2, state_filter(state)).bind(3, limit).bind(4, offset);
  std::vector<RunRow> out;
  while (s.step())
    out.push_back({s.integer(0), s.text(1), stored_state(s.text(2), path_), s.text(3), s.integer(4),
                   uint64_t(s.integer(5)), s.integer(6), nlohmann::json::parse(s.text(7)),
                   s.text(8).empty() ? nlohmann::json() : nlohmann::json::parse(s.text(8)),
                   s.text(9), s.is_null(10) ? 0 : s.integer(10), s.integer(11)});
  return out;
}

int64_t StoreViews::event_count(int64_t attempt_id) {
  Statement s(db_, "SELECT COUNT(*) FROM events WHERE attempt_id = ?", path_);
  s.bind(1, attempt_id).step();
  return s.integer(0);
}

std::optional<RunState> StoreViews::run_state(int64_t run_id) {
  Statement s(db_, "SELECT state FROM runs WHERE id = ?", path_);
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return stored_state(s.text(0), path_);
}

std::vector<std::pair<nlohmann::json, nlohmann::json>> StoreViews::results(
    const std::string& sweep_name) {
  Statement s(db_,
              "SELECT r.spec, r.result FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id JOIN "
              "sweeps s ON s.id = sr.sweep_id "
              "WHERE s.name = ? AND r.state = ? ORDER BY r.id",
              path_);
  s.bind(1, sweep_name).bind(2, RunState::kSucceeded);
  std::vector<std::pair<nlohmann::json, nlohmann::json>> out;
  while (s.step())
    out.push_back({nlohmann::json::parse(s.text(0)), nlohmann::json::parse(s.text(1))});
  return out;
}

std::optional<json> StoreViews::sweep_document(const std::string& name) {
  Statement s(db_,
              "SELECT id, name, grid, priority, max_attempts, created FROM sweeps WHERE name = ?",
              path_);
  s.bind(1, name);
  if (!s.step()) return std::nullopt;
  return json{{"id", s.integer(0)},
              {"name", s.text(1)},
              {"grid", json::parse(s.text(2))},
              {"priority", s.integer(3)},
              {"max_attempts", s.integer(4)},
              {"created", s.real(5)}};
}

std::vector<RunOutcome> StoreViews::run_outcomes(const std::string& sweep_name) {
  Statement s(db_,
              "SELECT r.domain, r.sample, r.seed, r.state, r.result, r.spec FROM runs r JOIN "
              "sweep_runs sr ON sr.run_id = r.id "
              "JOIN sweeps s ON s.id = sr.sweep_id WHERE s.name = ? ORDER BY r.id",
              path_);
  s.bind(1, sweep_name);
  std::vector<RunOutcome> out;
  while (s.step()) {
    out.push_back({s.text(0), s.integer(1), uint64_t(s.integer(2)), stored_state(s.text(3), path_),
                   s.text(4).empty() ? json() : json::parse(s.text(4)), json::parse(s.text(5))});
  }
  return out;
}

int64_t StoreViews::count_runs(const std::string& sweep_name, std::optional<RunState> state) {
  Statement s(db_,
              "SELECT COUNT(DISTINCT r.id) FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id JOIN "
              "sweeps s ON s.id = sr.sweep_id "
              "WHERE (?1 = '' OR s.name = ?1) AND (?2 = '' OR r.state = ?2)",
              path_);
  s.bind(1, sweep_name).bind(2, state_filter(state)).step();
  return s.integer(0);
}

std::map<RunState, int64_t> StoreViews::runs_by_state() {
  std::map<RunState, int64_t> out = no_runs();
  Statement s(db_, "SELECT state, COUNT(*) FROM runs GROUP BY state", path_);
  while (s.step()) out[stored_state(s.text(0), path_)] = s.integer(1);
  return out;
}

std::optional<json> StoreViews::run_detail(int64_t run_id) {
  Statement r(db_,
              "SELECT id, key, state, domain, sample, seed, attempts, max_attempts, spec, result, "
              "created, updated "
              "FROM runs WHERE id = ?",
              path_);
  r.bind(1, run_id);
  if (!r.step()) return std::nullopt;
  json run = {{"id", r.integer(0)},
              {"key", r.text(1)},
              {"state", r.text(2)},
              {"domain", r.text(3)},
              {"sample", r.integer(4)},
              {"seed", uint64_t(r.integer(5))},
              {"attempts_used", r.integer(6)},
              {"max_attempts", r.integer(7)},
              {"spec", json::parse(r.text(8))},
              {"trainer_settings", resolved_trainer_settings(json::parse(r.text(8)))},
              {"result", r.text(9).empty() ? json() : json::parse(r.text(9))},
              {"created", r.real(10)},
              {"updated", r.real(11)}};
  json attempts = json::array();
  Statement a(db_,
              "SELECT a.id, a.worker_id, a.state, a.started, a.ended, a.exit_code, a.reason, "
              "(SELECT json_extract(body, '$.resumed_from_step') FROM events e WHERE e.attempt_id "
              "= a.id AND e.type = 'started'), a.micro_batch_size, a.eval_batch_size "
              "FROM attempts a WHERE a.run_id = ? ORDER BY a.id",
              path_);
  a.bind(1, run_id);
  while (a.step()) {
    attempts.push_back({{"id", a.integer(0)},
                        {"worker", a.text(1)},
                        {"state", a.text(2)},
                        {"started", a.real(3)},
                        {"ended", a.is_null(4) ? json() : json(a.real(4))},
                        {"exit_code", a.is_null(5) ? json() : json(a.integer(5))},
                        {"reason", a.is_null(6) ? json() : json(a.text(6))},
                        {"resumed_from_step", a.is_null(7) ? json() : json(a.integer(7))},
                        {"micro_batch_size", a.is_null(8) ? json() : json(a.integer(8))},
                        {"eval_batch_size", a.is_null(9) ? json() : json(a.integer(9))}});
  }
  run["attempts"] = attempts;
  json checkpoints = json::array();
  for (const auto& c : checkpoints_.of_run(run_id))
    checkpoints.push_back(
        {{"step", c.step}, {"sha256", c.sha256}, {"bytes", c.bytes}, {"path", c.path}});
  run["checkpoints"] = checkpoints;
  json sweeps = json::array();
  Statement w(db_,
              "SELECT s.name FROM sweeps s JOIN sweep_runs sr ON sr.sweep_id = s.id WHERE "
              "sr.run_id = ? ORDER BY s.id",
              path_);
  w.bind(1, run_id);
  while (w.step()) sweeps.push_back(w.text(0));
  run["sweeps"] = sweeps;
  return run;
}

std::vector<MetricPoint> StoreViews::metric_series(int64_t run_id, const std::string& name) {
  Statement s(
      db_,
      "SELECT m.attempt_id, m.step, m.value FROM metrics m JOIN attempts a ON a.id = m.attempt_id "
      "WHERE a.run_id = ? AND m.name = ? ORDER BY m.attempt_id, m.step",
      path_);
  s.bind(1, run_id).bind(2, name);
  std::vector<MetricPoint> out;
  while (s.step()) out.push_back({s.integer(0), s.integer(1), s.real(2)});
  return out;
}

json StoreViews::run_events(int64_t run_id, int64_t after_id, int64_t limit) {
  Statement s(db_,
              "SELECT e.id, e.attempt_id, e.seq, e.body FROM events e JOIN attempts a ON a.id = "
              "e.attempt_id "
              "WHERE a.run_id = ? AND e.id > ? ORDER BY e.id LIMIT ?",
              path_);
  s.bind(1, run_id).bind(2, after_id).bind(3, limit);
  json out = json::array();
  while (s.step())
    out.push_back({{"id", s.integer(0)},
                   {"attempt", s.integer(1)},
                   {"seq", s.integer(2)},
                   {"event", json::parse(s.text(3))}});
  return out;
}

}  // namespace tallrec
