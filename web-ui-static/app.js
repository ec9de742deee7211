// The tallrec dashboard: plain JavaScript over the coordinator's HTTP API (schemas/openapi.json).
// Views are chosen by the URL hash; /api/events (Server-Sent Events) keeps the open view current.
"use strict";

const main = document.getElementById("main");
const STATES = ["queued", "leased", "running", "succeeded", "failed", "canceled"];
// As coordinator/run_state.h groups them: a cancel applies to the unfinished, a retry to the
// finished without success.
const UNFINISHED = STATES.slice(0, 3), FINISHED = STATES.slice(3), RETRYABLE = STATES.slice(4);
let view = { name: "", refresh: () => {}, onChange: () => {} };
let generation = 0;  // bumped on every navigation: a render that finishes late for an old view is dropped

// Replaces the page's content, unless the user has navigated away since `gen`.
function paint(gen, ...nodes) {
  if (gen === generation) main.replaceChildren(...nodes);
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// Changes need the API token; it is asked once and kept for this browser session.
async function mutate(path, body) {
  let token = sessionStorage.getItem("tallrec-token");
  if (!token) {
    token = window.prompt("API token (printed when the coordinator first started; kept in its api-token file)");
    if (!token) return null;
    sessionStorage.setItem("tallrec-token", token);
  }
  try {
    return await api(path, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: body || "" });
  } catch (e) {
    if (/401|token/.test(e.message)) sessionStorage.removeItem("tallrec-token");
    throw e;
  }
}

function stateBadge(s) { return el("span", { class: `state ${s}`, text: s }); }
function fmt(x, digits = 4) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }
function ago(t) { return `${Math.max(0, Math.round(Date.now() / 1000 - t))} s ago`; }

// Ended runs by outcome: succeeded green, failed red, canceled grey (a sweep whose runs all
// failed must not look done and well).
function progress(byState, total) {
  const done = FINISHED.reduce((n, s) => n + (byState[s] || 0), 0);
  const parts = FINISHED.map((s) => {
    const part = el("div", { class: `part ${s}`, "data-state": s });
    part.style.width = `${total ? (100 * (byState[s] || 0)) / total : 0}%`;
    return part;
  });
  return el("div", { class: "progress", title: `${done} of ${total} finished: ${counts(byState)}` }, ...parts);
}

function counts(byState) {
  return STATES.filter((s) => byState[s]).map((s) => `${s} ${byState[s]}`).join(", ") || "no runs";
}

// ---- Sweeps ---------------------------------------------------------------------------------
async function sweepsView() {
  const gen = generation;
  const { sweeps } = await api("/api/sweeps");
  const rows = sweeps.map((s) =>
    el("tr", { "data-sweep": s.name },
      el("td", {}, el("a", { href: `#/sweep/${encodeURIComponent(s.name)}`, text: s.name })),
      el("td", {}, progress(s.by_state, s.runs)), el("td", { text: String(s.runs) }), el("td", { text: counts(s.by_state) })));
  const message = el("div", { class: "error" });
  const grid = el("textarea", { id: "grid-text", placeholder: "a grid document (schemas/grid.schema.json)" });
  paint(gen,
    el("h1", { text: "Sweeps" }),
    el("table", { id: "sweeps" }, el("tr", {}, el("th", { text: "sweep" }), el("th", { text: "progress" }),
      el("th", { text: "runs" }), el("th", { text: "by state" })), ...rows),
    el("h2", { text: "Submit a grid" }), grid, el("div", {},
      el("button", { id: "submit-grid", text: "Submit", onclick: async () => {
        try {
          const r = await mutate("/api/sweeps", grid.value);
          if (r) location.hash = `#/sweep/${encodeURIComponent(r.sweep)}`;
        } catch (e) { message.textContent = e.message; }
      } })), message);
}

// ---- One sweep: Table 1 as a heatmap, runs paged ------------------------------------------
function heatColor(mean) {
  if (mean === null) return "#fff";
  const t = Math.max(0, Math.min(1, (mean - 0.5) / 0.4));  // AUC 0.5 white .. 0.9 green
  return `rgb(${Math.round(255 - 150 * t)}, ${Math.round(255 - 40 * t)}, ${Math.round(255 - 150 * t)})`;
}

async function sweepView(name, page) {
  const gen = generation;
  const state = sessionStorage.getItem(`filter-${name}`) || "";
  const [s, runs] = await Promise.all([
    api(`/api/sweeps/${encodeURIComponent(name)}`),
    api(`/api/runs?sweep=${encodeURIComponent(name)}&limit=50&offset=${page * 50}${state ? `&state=${state}` : ""}`)]);
  const h = s.heatmap;
  // One row per setting (what differs between the sweep's runs besides seed) x train -> test.
  const header = el("tr", {}, el("th", { text: h.setting_fields.length ? `${h.setting_fields.join(", ")} | train → test` : "train → test" }),
    ...h.samples.map((n) => el("th", { text: `sample ${n}` })));
  const body = h.rows.map((row, r) =>
    el("tr", { class: row.train === row.test ? "" : "cross" },
      el("th", { text: `${row.setting ? `${row.setting} | ` : ""}${row.train} → ${row.test}` }),
      ...h.cells[r].map((c, k) => {
        const td = el("td", {
          class: "cell", "data-train": row.train, "data-test": row.test, "data-setting": row.setting, "data-sample": String(h.samples[k]),
          "data-mean": c.mean === null ? "" : String(c.mean),
          title: c.mean === null ? `${c.finished} of ${c.runs} runs finished`
                                 : `AUC ${fmt(c.mean)} ± ${fmt(c.std)} (sample std) over ${c.succeeded} runs (${c.finished}/${c.runs} finished)`,
        }, el("div", { text: c.mean === null ? "–" : c.std === null ? `${fmt(c.mean, 3)} (n=1)` : `${fmt(c.mean, 3)} ± ${fmt(c.std, 3)}` }),
           el("div", { class: "muted", text: `${c.finished}/${c.runs}` }));
        td.style.background = heatColor(c.mean);
        return td;
      })));
  const filter = el("select", { id: "state-filter", onchange: (e) => {
    sessionStorage.setItem(`filter-${name}`, e.target.value);
    location.hash = `#/sweep/${encodeURIComponent(name)}`;
    view.refresh();
  } }, el("option", { value: "", text: "all states" }), ...STATES.map((st) => el("option", { value: st, text: st })));
  filter.value = state;
  const pages = Math.max(1, Math.ceil(runs.total / 50));
  const go = (p) => { location.hash = `#/sweep/${encodeURIComponent(name)}/${p}`; };
  paint(gen,
    el("h1", { text: `Sweep ${s.name}` }),
    el("p", { id: "sweep-counts", text: counts(s.by_state) }),
    el("p", { id: "sweep-eta", class: "muted", text: s.eta_seconds === null || s.eta_seconds === undefined
      ? "ETA: when the first run has finished" : `ETA about ${Math.round(s.eta_seconds / 60)} min (from the runs finished so far)` }),
    el("h2", { text: "AUC by domain and sample count (mean ± std over seeds), TALLRec's Table 1" }),
    el("table", { class: "heatmap", id: "heatmap" }, header, ...body),
    el("p", { id: "export" }, "Table 1 for a paper (AUC × 100, mean ± std): ",
      ...["csv", "markdown", "latex"].flatMap((f, k) => [k ? " · " : "",
        el("a", { href: `/api/sweeps/${encodeURIComponent(name)}/table?format=${f}`, download: `${name}-table1.${f === "markdown" ? "md" : f === "latex" ? "tex" : f}`, text: f })])),
    el("h2", { text: `Runs (${runs.total})` }), el("div", {}, filter),
    el("div", { class: "pager" },
      el("button", { text: "‹ prev", onclick: () => go(Math.max(0, page - 1)) }),
      el("span", { text: ` page ${page + 1} of ${pages} ` }),
      el("button", { text: "next ›", onclick: () => go(Math.min(pages - 1, page + 1)) })),
    el("div", {}, el("button", { id: "compare", text: "Compare the checked runs", onclick: () => {
      const ids = [...document.querySelectorAll("#runs input.pick:checked")].map((c) => c.value);
      if (ids.length) location.hash = `#/compare/${ids.join(",")}`;
    } })),
    runsTable(runs.runs, h.setting_fields),
    el("h2", { text: "Test AUC against an axis (mean ± std over seeds)" }), axisChart(h));
}

// Test AUC against a chosen axis (sample count, or a setting field such as lr), from the
// results table: one line per everything-else (train -> test and the other fields), the seeds'
// spread as a band of mean ± std.
function axisChart(h) {
  const axes = ["sample", ...h.setting_fields];
  const select = el("select", { id: "axis-select" }, ...axes.map((a) => el("option", { value: a, text: a })));
  const holder = el("div", { class: "chart wide" });
  const draw = () => {
    const axis = select.value;
    if (charts["axis-chart"]) { charts["axis-chart"].chart.destroy(); delete charts["axis-chart"]; }
    const lines = new Map();  // group label -> [{x, mean, std}]
    h.rows.forEach((row, r) => h.cells[r].forEach((c, k) => {
      if (c.mean === null) return;
      const values = { ...row.values, sample: h.samples[k] };
      const x = values[axis];
      const rest = Object.entries(values).filter(([f]) => f !== axis).map(([f, v]) => `${f}=${JSON.stringify(v)}`);
      const label = `${row.train} → ${row.test}${rest.length ? ` (${rest.join(", ")})` : ""}`;
      if (!lines.has(label)) lines.set(label, []);
      lines.get(label).push({ x, mean: c.mean, std: c.std ?? 0 });
    }));
    const numeric = [...lines.values()].flat().every((p) => typeof p.x === "number");
    const datasets = [];
    [...lines.entries()].forEach(([label, points], i) => {
      points.sort((a, b) => (a.x < b.x ? -1 : a.x > b.x ? 1 : 0));
      const color = PALETTE[i % PALETTE.length];
      const xy = (f) => points.map((p) => ({ x: numeric ? p.x : String(p.x), y: f(p) }));
      datasets.push({ label: `${label} − std`, data: xy((p) => p.mean - p.std), borderWidth: 0, pointRadius: 0, borderColor: color });
      datasets.push({ label: `${label} + std`, data: xy((p) => p.mean + p.std), borderWidth: 0, pointRadius: 0, fill: "-1",
                      backgroundColor: color + "33", borderColor: color });
      datasets.push({ label, data: xy((p) => p.mean), borderColor: color, backgroundColor: color, pointRadius: 3, borderWidth: 1.5 });
    });
    const canvas = el("canvas", { id: "axis-chart", "data-lines": String(lines.size) });
    holder.replaceChildren(canvas);
    const chart = new Chart(canvas, { type: "line", data: { datasets },
      options: { animation: false, maintainAspectRatio: false, parsing: true,
                 plugins: { legend: { labels: { filter: (item) => !/ [−+] std$/.test(item.text) } } },
                 scales: { x: numeric ? { type: "linear", title: { display: true, text: axis } } : { type: "category", title: { display: true, text: axis } },
                           y: { min: 0, max: 1, title: { display: true, text: "test AUC" } } } } });
    charts["axis-chart"] = { chart, canvas, count: lines.size };
  };
  select.addEventListener("change", draw);
  setTimeout(draw, 0);  // after the holder is in the page
  return el("div", {}, el("label", {}, "axis ", select), holder);
}

// The sweep's runs with the axes that differ between its settings and their results; a click
// on a column header sorts this page by it (again: the other way).
function runsTable(runs, axes) {
  const tests = [...new Set(runs.flatMap((r) => Object.keys(r.spec.tests || {})))];
  const columns = [
    ["run", (r) => r.id], ["state", (r) => r.state], ["domain", (r) => r.domain], ["sample", (r) => r.sample],
    ["seed", (r) => r.seed], ...axes.map((a) => [a, (r) => r.spec[a]]),
    ["val AUC", (r) => r.result?.best_val_auc ?? null], ...tests.map((t) => [`test ${t}`, (r) => r.result?.test_auc?.[t] ?? null]),
    ["steps", (r) => r.result?.steps ?? null], ["attempts", (r) => r.attempts], ["reason", (r) => r.reason]];
  const text = (v) => v === null || v === undefined ? "–" : typeof v === "number" && !Number.isInteger(v) ? fmt(v) :
                                                           typeof v === "object" ? JSON.stringify(v) : String(v);
  let sortBy = -1, descending = false;
  const table = el("table", { id: "runs" });
  const render = () => {
    const rows = [...runs];
    if (sortBy >= 0) {
      const get = columns[sortBy][1];
      rows.sort((x, y) => {
        const a = get(x), b = get(y);
        if ((a === null) !== (b === null)) return a === null ? 1 : -1;
        return (a < b ? -1 : a > b ? 1 : 0) * (descending ? -1 : 1);
      });
    }
    table.replaceChildren(
      el("tr", {}, ...columns.map(([name], k) => el("th", { text: name + (k === sortBy ? (descending ? " ▼" : " ▲") : ""),
        class: "sortable", "data-column": name, onclick: () => { descending = k === sortBy ? !descending : false; sortBy = k; render(); } }))),
      ...rows.map((r) => el("tr", { "data-run": String(r.id) },
        ...columns.map(([name, get]) => name === "run" ? el("td", {}, el("input", { type: "checkbox", class: "pick", value: String(r.id) }), " ",
                                                            el("a", { href: `#/run/${r.id}`, text: String(r.id) }))
                                        : name === "state" ? el("td", {}, stateBadge(r.state))
                                        : el("td", { text: text(get(r)), "data-column": name })))));
  };
  render();
  return table;
}

// ---- One run: live curves, attempts, checkpoints, cancel and retry -----------------------
let charts = {};
// Every series the store records per step (coordinator/store.cc): name, title, y range.
const RUN_SERIES = [["loss", "training loss"], ["val_auc", "validation AUC", [0, 1]], ["lr", "learning rate"],
                    ["grad_norm", "gradient norm (before clipping)"], ["tokens_per_s", "tokens/s"],
                    ["memory_bytes", "memory (bytes: RSS on CPU, allocator peak on a GPU)"]];

const PALETTE = ["#277", "#b63", "#66a", "#393", "#a36"];

// One line per attempt, numbered within the run (attempt 1, 2, ...; the store's ids are global):
// a resumed attempt continues from its checkpoint's step.
let attemptNumber = new Map();
function attemptLabel(attempt) {
  if (!attemptNumber.has(attempt)) attemptNumber.set(attempt, attemptNumber.size + 1);
  return `attempt ${attemptNumber.get(attempt)}`;
}

function lineChart(id, label, points, yRange) {
  const byAttempt = new Map();
  for (const p of points) {
    if (!byAttempt.has(p.attempt)) byAttempt.set(p.attempt, []);
    byAttempt.get(p.attempt).push({ x: p.step, y: p.value });
  }
  const canvas = el("canvas", { id, "data-points": String(points.length) });
  const chart = new Chart(canvas, {
    type: "line",
    data: { datasets: [] },
    options: { animation: false, maintainAspectRatio: false, parsing: false,
               plugins: { title: { display: true, text: label } },
               scales: { x: { type: "linear", title: { display: true, text: "step" } },
                         ...(yRange ? { y: { min: yRange[0], max: yRange[1] } } : {}) } },
  });
  charts[id] = { chart, canvas, count: points.length };
  for (const [attempt, data] of byAttempt) dataset(id, attempt).data.push(...data);
  chart.update("none");
  return el("div", { class: "chart" }, canvas);
}

function dataset(id, attempt) {
  const { chart } = charts[id];
  let d = chart.data.datasets.find((s) => s.attempt === attempt);
  if (!d) {
    const color = PALETTE[chart.data.datasets.length % PALETTE.length];
    d = { label: attemptLabel(attempt), attempt, data: [], borderColor: color, backgroundColor: color, pointRadius: 1.5, borderWidth: 1.5 };
    chart.data.datasets.push(d);
  }
  return d;
}

function addPoint(id, attempt, step, value) {
  const c = charts[id];
  if (!c || value === undefined) return;
  dataset(id, attempt).data.push({ x: step, y: value });
  c.chart.update("none");
  c.canvas.setAttribute("data-points", String(++c.count));
}

// Every event of a run, page by page (the API gives at most 1000 at a time), up to
// EVENTS_SHOWN: a log table longer than that is for `tallrec` and the API, not a page.
const EVENTS_PAGE = 1000, EVENTS_SHOWN = 20000;
async function runEvents(id) {
  const events = [];
  for (let after = 0; events.length < EVENTS_SHOWN;) {
    const page = (await api(`/api/runs/${id}/events?limit=${EVENTS_PAGE}&after=${after}`)).events;
    events.push(...page);
    if (page.length < EVENTS_PAGE) return { events, complete: true };
    after = page[page.length - 1].id;
  }
  return { events, complete: false };
}

async function runView(id) {
  const gen = generation;
  const [run, events, ...series] = await Promise.all([api(`/api/runs/${id}`), runEvents(id),
    ...RUN_SERIES.map(([name]) => api(`/api/runs/${id}/metrics?name=${name}`))]);
  if (gen !== generation) return;  // navigated away meanwhile: leave the charts of the new view alone
  for (const c of Object.values(charts)) c.chart.destroy();
  charts = {};
  attemptNumber = new Map([...run.attempts].sort((a, b) => a.id - b.id).map((a, k) => [a.id, k + 1]));
  const message = el("div", { class: "error", id: "run-message" });
  const act = (what) => async () => {
    try {
      if (await mutate(`/api/runs/${id}/${what}`)) view.refresh();
    } catch (e) { message.textContent = e.message; }
  };
  const result = run.result;
  paint(gen,
    el("h1", {}, `Run ${run.id} `, el("span", { id: "run-state", class: `state ${run.state}`, text: run.state })),
    el("p", {}, `${run.domain}, sample ${run.sample}, seed ${run.seed}; attempts ${run.attempts_used} of ${run.max_attempts}; sweeps `,
      ...run.sweeps.flatMap((sw, k) => [k ? ", " : "", el("a", { class: "sweep-link", href: `#/sweep/${encodeURIComponent(sw)}`, text: sw })]),
      `; key ${run.key.slice(0, 12)}`),
    // Only what the run's state allows: cancel an unfinished run, retry a failed or canceled one.
    el("div", {}, el("button", { id: "cancel", text: "Cancel", onclick: act("cancel"),
                                 ...(UNFINISHED.includes(run.state) ? {} : { disabled: "" }) }),
                  el("button", { id: "retry", text: "Retry", onclick: act("retry"),
                                 ...(RETRYABLE.includes(run.state) ? {} : { disabled: "" }) })), message,
    result ? el("p", { id: "run-result", text: `best validation AUC ${fmt(result.best_val_auc)} at step ${result.best_step}; test AUC ` +
                        Object.entries(result.test_auc).map(([d, a]) => `${d} ${fmt(a)}`).join(", ") }) : el("span"),
    el("div", { class: "charts" }, ...RUN_SERIES.map(([name, label, range], k) =>
      lineChart(`${name.replaceAll("_", "-")}-chart`, label, series[k].points, range))),
    el("h2", { text: "Attempts" }),
    el("table", { id: "attempts" },
      el("tr", {}, ...["attempt", "worker", "state", "resumed from step", "micro-batch", "exit", "reason"].map((t) => el("th", { text: t }))),
      ...run.attempts.map((a) => el("tr", {}, el("td", { text: `${attemptNumber.get(a.id)} (id ${a.id})` }), el("td", { text: a.worker || "" }),
        el("td", {}, stateBadge(a.state)), el("td", { text: a.resumed_from_step ?? "–" }),
        // Set when an out-of-memory halved it; "–": the run's own.
        el("td", { class: "micro-batch", text: a.micro_batch_size ? `${a.micro_batch_size} (after out-of-memory)` : "–" }),
        el("td", { text: a.exit_code ?? "–" }), el("td", { text: a.reason || "" })))),
    el("h2", { text: "Checkpoints (PEFT adapter)" }),
    el("table", { id: "checkpoints" },
      el("tr", {}, ...["step", "bytes", "adapter"].map((t) => el("th", { text: t }))),
      ...run.checkpoints.map((c) => el("tr", { class: result && c.step === result.best_step ? "best" : "" },
        el("td", { text: result && c.step === result.best_step ? `${c.step} (best)` : String(c.step) }), el("td", { text: String(c.bytes) }),
        el("td", {}, ...["adapter_model.safetensors", "adapter_config.json"].map((f) =>
          el("a", { href: `/api/runs/${id}/checkpoints/${c.step}/${f}`, text: f + " ", download: "" })))))),
    el("h2", { text: "Resolved spec" }),
    el("p", { class: "muted", text: "What the trainer runs it with: its defaults, the recipe, then the grid's axes " +
                                     "(token folders are the worker's; a GPU worker trains in bfloat16 unless the grid chose)." }),
    el("pre", { id: "run-spec", text: JSON.stringify(run.trainer_settings, null, 2) }),
    el("h2", { text: "Grid run" }), el("pre", { id: "grid-run", text: JSON.stringify(run.spec, null, 2) }),
    el("h2", { text: `Events (${events.complete ? events.events.length : `the first ${events.events.length}`})` }),
    el("p", { class: "muted", text: "The run's log, oldest first, times in this browser's clock; consecutive progress " +
                                     "events are one line. A click on a line shows what the trainer sent." }),
    eventLog(id, run, events.events));
}

// ---- The run's event log: one sentence per event (schemas/train_event.schema.json) ----------
// Event fields come from the trainer and the worker: they are only ever set as text.
let openEvents = { run: null, keys: new Set() };  // the lines opened, kept across live refreshes
// A line's class is "event event-<type>": the trainer's types, and the end of an attempt that sent none.
const EVENT_TYPES = ["started", "progress", "eval", "checkpoint", "preempted", "failed", "finished", "attempt-ended"];

function clock(t) {
  if (typeof t !== "number") return "";
  const d = new Date(t * 1000);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

function count(x) { return typeof x === "number" ? x.toLocaleString("en-US") : "?"; }

// The sentence for one event; `attempt` is its attempt in GET /api/runs/{id} (worker, state, the
// coordinator's reason) and `next` the attempt after it.
function eventSentence(e, attempt, next) {
  const v = e.event, n = attemptNumber.get(e.attempt) ?? e.attempt;
  switch (v.type) {
    case "started":
      return `Attempt ${n} started${attempt?.worker ? ` on ${attempt.worker}` : ""}: ${count(v.records)} records, ` +
        `${count(v.steps)} steps, micro-batch ${v.micro_batch_size} x ${v.accumulation}` +
        (v.resumed_from_step > 0 ? `, resumed from step ${v.resumed_from_step}` : "") +
        `, ${count(v.threads)} thread${v.threads === 1 ? "" : "s"}, ${count(v.trainable_parameters)} trainable parameters`;
    case "eval":
      return `Step ${v.step}: validation AUC ${fmt(v.val_auc)}` +
        (v.best_step === v.step ? " (best so far)" : typeof v.best_val_auc === "number" ? ` (best ${fmt(v.best_val_auc)} at step ${v.best_step})` : "");
    case "checkpoint":
      return `Step ${v.step}: checkpoint saved`;
    case "preempted": {
      const then = attempt?.state === "canceled" ? "the run was canceled"
        : /max-preemptions/.test(attempt?.reason || "") ? "preempted too often: the run failed" : "the run goes back to the queue";
      return `Preempted at step ${v.step} (${v.reason}); ` +
        (v.checkpoint_step >= 0 ? `checkpoint at step ${v.checkpoint_step}` : "no checkpoint yet") + `; ${then}`;
    }
    case "failed": {
      const oom = v.out_of_memory;
      if (oom && typeof oom === "object") {
        // What the coordinator made of it: the attempt's reason, or the next attempt's micro-batch.
        const reason = attempt?.reason || "";
        const retried = reason.match(/retrying with micro-batch (\d+)/)?.[1] ?? next?.micro_batch_size;
        const then = retried ? `retried with micro-batch ${retried}`
          : /does not fit either/.test(reason) ? "micro-batch 1 does not fit either: not retried"
          : /would not help/.test(reason) ? "a smaller batch would not help: not retried" : "";
        return `Out of memory in ${oom.phase}` + (oom.phase === "train" || oom.phase === "evaluation" ? ` at step ${oom.step}` : "") +
          ` with micro-batch ${oom.micro_batch_size}` + (then ? `; ${then}` : "");
      }
      const reason = String(v.reason ?? "no reason given");
      return `Failed: ${reason.length > 300 ? `${reason.slice(0, 300)}…` : reason} (${v.retryable === false ? "not retryable" : "retryable"})`;
    }
    case "finished":
      return `Finished: test AUC ${Object.entries(v.test_auc || {}).map(([d, a]) => `${d} ${fmt(a)}`).join(", ") || "–"}` +
        `; best validation AUC ${fmt(v.best_val_auc)} at step ${v.best_step}, ${v.steps} steps${v.stopped_early ? " (stopped early)" : ""}`;
    default:
      return `Event ${JSON.stringify(String(v.type))}`;
  }
}

// One line of consecutive progress events of one attempt.
function progressSentence(group) {
  const first = group[0].event, last = group[group.length - 1].event;
  const steps = first.step === last.step ? `Step ${first.step}` : `Steps ${first.step}–${last.step}`;
  return `${steps}: loss ${fmt(first.loss, 3)}` + (group.length > 1 ? ` → ${fmt(last.loss, 3)}` : "") +
    (typeof last.tokens_per_s === "number" ? `, ${Math.round(last.tokens_per_s).toLocaleString("en-US")} tokens/s` : "");
}

// A line of the log: the time, the attempt, the sentence; the raw event(s) under the sentence,
// written when first opened (a progress line may stand for thousands).
function logLine(key, type, attempt, time, timeTitle, sentence, raw) {
  const body = el("pre", { class: "raw" });
  const details = el("details", {}, el("summary", { text: sentence }), body);
  const fill = () => { if (!body.textContent) body.textContent = raw(); };
  details.addEventListener("toggle", () => {
    if (details.open) { fill(); openEvents.keys.add(key); } else openEvents.keys.delete(key);
  });
  if (openEvents.keys.has(key)) { fill(); details.open = true; }
  return el("tr", { class: `event event-${EVENT_TYPES.includes(type) ? type : "other"}`, "data-attempt": String(attempt) },
    el("td", { class: "time", text: time, title: timeTitle }),
    el("td", { class: "attempt", text: `#${attempt}`, title: `attempt ${attempt}` }),
    el("td", { class: "what" }, details));
}

function eventLog(runId, run, events) {
  if (openEvents.run !== runId) openEvents = { run: runId, keys: new Set() };
  const attempts = [...run.attempts].sort((a, b) => a.id - b.id);
  const byId = new Map(attempts.map((a, k) => [a.id, { attempt: a, next: attempts[k + 1] }]));
  const number = (e) => attemptNumber.get(e.attempt) ?? e.attempt;
  const pretty = (e) => JSON.stringify(e.event, null, 2);
  const withOutcome = new Set(events.filter((e) => ["finished", "failed", "preempted"].includes(e.event.type)).map((e) => e.attempt));
  const lastOf = new Map(events.map((e, k) => [e.attempt, k]));
  const rows = [];
  // An attempt that ended without an outcome event of its own, or was canceled, lost or released
  // whatever its trainer said.
  const ending = (a) => {
    if (!a || ["leased", "running"].includes(a.state) ||
        (withOutcome.has(a.id) && !["canceled", "lost", "released"].includes(a.state))) return;
    const n = attemptNumber.get(a.id) ?? a.id;
    rows.push(logLine(`attempt-${a.id}`, "attempt-ended", n, clock(a.ended), a.ended ? new Date(a.ended * 1000).toISOString() : "",
      `Attempt ${n} ${a.state}${a.reason ? `: ${a.reason}` : ""}`, () => JSON.stringify(a, null, 2)));
  };
  // Attempts with no events at all (ended before their trainer started) go before the next attempt's.
  const seen = new Set(events.map((e) => e.attempt));
  const silent = attempts.filter((a) => !seen.has(a.id));
  const silentBefore = (id) => { while (silent.length && silent[0].id < id) ending(silent.shift()); };
  for (let k = 0; k < events.length;) {
    const e = events[k];
    const { attempt, next } = byId.get(e.attempt) || {};
    silentBefore(e.attempt);
    let end = k + 1;
    if (e.event.type === "progress") {
      while (end < events.length && events[end].event.type === "progress" && events[end].attempt === e.attempt) ++end;
      const group = events.slice(k, end), t0 = group[0].event.time, t1 = group[group.length - 1].event.time;
      rows.push(logLine(`event-${e.id}`, "progress", number(e), clock(t0),
        typeof t0 === "number" && typeof t1 === "number" ? `${new Date(t0 * 1000).toISOString()} – ${new Date(t1 * 1000).toISOString()}` : "",
        progressSentence(group),
        () => group.length === 1 ? pretty(e) : `${group.length} progress events, one per line:\n` + group.map((g) => JSON.stringify(g.event)).join("\n")));
    } else {
      rows.push(logLine(`event-${e.id}`, e.event.type, number(e), clock(e.event.time),
        typeof e.event.time === "number" ? new Date(e.event.time * 1000).toISOString() : "",
        eventSentence(e, attempt, next), () => pretty(e)));
    }
    // The attempt's last event: a line for its end if no event said how it ended.
    for (let j = k; j < end; ++j) if (lastOf.get(events[j].attempt) === j) ending(attempt);
    k = end;
  }
  silentBefore(Infinity);
  return el("table", { id: "events", class: "timeline" }, ...rows);
}

// ---- Compare: runs' curves overlaid -------------------------------------------------------
async function compareView(ids) {
  const gen = generation;
  const runs = await Promise.all(ids.map((id) => api(`/api/runs/${id}`)));
  const series = await Promise.all(ids.flatMap((id) => ["loss", "val_auc"].map((n) => api(`/api/runs/${id}/metrics?name=${n}`))));
  if (gen !== generation) return;
  for (const c of Object.values(charts)) c.chart.destroy();
  charts = {};
  const chart = (id, title, k, range) => {
    const canvas = el("canvas", { id, "data-lines": String(runs.length) });
    const datasets = runs.map((run, i) => ({
      label: `run ${run.id}: ${run.domain}, sample ${run.sample}, seed ${run.seed}`,
      data: series[2 * i + k].points.map((p) => ({ x: p.step, y: p.value })),
      borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length], pointRadius: 1.5, borderWidth: 1.5 }));
    const c = new Chart(canvas, { type: "line", data: { datasets }, options: { animation: false, maintainAspectRatio: false, parsing: false,
      plugins: { title: { display: true, text: title } },
      scales: { x: { type: "linear", title: { display: true, text: "step" } }, ...(range ? { y: { min: range[0], max: range[1] } } : {}) } } });
    charts[id] = { chart: c, canvas, count: runs.length };
    return el("div", { class: "chart" }, canvas);
  };
  paint(gen, el("h1", { text: `Compare runs ${ids.join(", ")}` }),
    el("p", {}, ...runs.flatMap((r, i) => [i ? " · " : "", el("a", { href: `#/run/${r.id}`, text: `run ${r.id}` })])),
    el("div", { class: "charts" }, chart("compare-loss", "training loss", 0), chart("compare-auc", "validation AUC", 1, [0, 1])));
}

// ---- Workers -------------------------------------------------------------------------------
// "1234_0 on node7, GPUs 2,3, requeued 1x" for a worker Slurm runs; "–" for one it does not.
function slurmTask(s) {
  if (!s) return "–";
  const job = s.array_job ? `${s.array_job}_${s.array_task}` : s.job;
  return `${job} on ${s.node || "?"}` + (s.gpus ? `, GPUs ${s.gpus}` : "") +
    (s.restarts && s.restarts !== "0" ? `, requeued ${s.restarts}x` : "");
}
async function workersView() {
  const gen = generation;
  const { workers } = await api("/api/workers");
  paint(gen, el("h1", { text: "Workers" }),
    el("table", { id: "workers" },
      el("tr", {}, ...["worker", "host", "alive", "slots", "GPUs", "Slurm job", "last heartbeat", "attempts"].map((t) => el("th", { text: t }))),
      ...workers.map((w) => el("tr", { "data-worker": w.id }, el("td", { text: w.id }), el("td", { text: w.host || "" }),
        el("td", { text: w.alive ? "alive" : "lost" }), el("td", { text: String(w.slots ?? "") }),
        el("td", { text: w.gpus.map((g) => `${g.index}: ${g.name}`).join(", ") || "CPU" }),
        el("td", { class: "slurm", text: slurmTask(w.slurm) }),
        el("td", { text: ago(w.last_seen) }), el("td", { text: w.attempts.join(", ") || "–" })))));
}

// ---- Routing and live updates ---------------------------------------------------------------
function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let refresh;
  let onChange = () => view.refresh();
  if (parts[0] === "sweep" && parts[1]) {
    refresh = () => sweepView(parts[1], Number(parts[2] || 0));
    onChange = (kind) => { if (kind === "run" || kind === "sweep") view.refresh(); };
  } else if (parts[0] === "compare" && parts[1]) {
    const ids = parts[1].split(",").filter((x) => /^\d+$/.test(x)).map(Number);
    refresh = () => compareView(ids);
    onChange = () => {};
  } else if (parts[0] === "run" && parts[1]) {
    const id = Number(parts[1]);
    refresh = () => runView(id);
    onChange = (kind, body) => {
      if (body.run !== id) return;
      if (kind === "metric") {
        for (const [name] of RUN_SERIES) addPoint(`${name.replaceAll("_", "-")}-chart`, body.attempt, body.step, body.values[name]);
      } else {
        view.refresh();
      }
    };
  } else if (parts[0] === "workers") {
    refresh = workersView;
    onChange = (kind) => { if (kind === "worker" || kind === "run") view.refresh(); };
  } else {
    refresh = sweepsView;
    onChange = (kind) => { if (kind === "run" || kind === "sweep") view.refresh(); };
  }
  const gen = ++generation;
  let pending = null;
  const debounced = () => {  // many changes in a burst: one refresh
    if (pending) return;
    pending = setTimeout(() => { pending = null; if (gen === generation) show(refresh); }, 300);
  };
  view = { refresh: debounced, onChange: (kind, body) => onChange(kind, body) };
  show(refresh);
}

async function show(render) {
  const gen = generation;
  try {
    await render();
  } catch (e) {
    paint(gen, el("p", { class: "error", text: e.message }));
  }
}

const live = document.getElementById("live");
const events = new EventSource("/api/events");  // reconnects by itself, resuming from Last-Event-ID
events.onopen = () => { live.textContent = "live"; live.classList.remove("off"); };
events.onerror = () => { live.textContent = "reconnecting"; live.classList.add("off"); };
for (const kind of ["run", "sweep", "metric", "checkpoint", "worker"]) {
  events.addEventListener(kind, (e) => view.onChange(kind, JSON.parse(e.data)));
}
window.addEventListener("hashchange", route);
route();
