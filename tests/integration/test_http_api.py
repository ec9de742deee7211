"""The coordinator's HTTP API against a real coordinator on 127.0.0.1: every endpoint of
schemas/openapi.json answers as documented (responses validated against its schemas), the token
rule, the error rules, static files without path traversal, Prometheus /metrics, and Server-Sent
Events resumed with Last-Event-ID."""
import json
import pathlib
import socket
import urllib.parse

import jsonschema
import pytest
import requests

from cluster import Coordinator, make_grid, query, run_tallrec, start_worker

OPENAPI = json.loads((pathlib.Path(__file__).resolve().parents[2] / "schemas" / "openapi.json").read_text())


def check(response, path, method="get"):
    """Validates a JSON response against the OpenAPI document's schema for it."""
    documented = OPENAPI["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, f"{method} {path} answered {response.status_code}, undocumented"
    doc = documented[str(response.status_code)]
    if "$ref" in doc:
        doc = OPENAPI["components"]["responses"][doc["$ref"].rsplit("/", 1)[1]]
    content = doc.get("content", {})
    if "application/json" in content:
        schema = dict(content["application/json"]["schema"], components=OPENAPI["components"])
        jsonschema.Draft202012Validator(schema).validate(response.json())
    return response


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    db = root / "store.db"
    grid_path = make_grid(root, "api", [0], 2)
    coordinator = Coordinator(db, root / "artifacts", extra=["--http", "127.0.0.1:0"])
    assert coordinator.token and len(coordinator.token) == 64
    assert oct((root / "api-token").stat().st_mode & 0o777) == "0o600"
    url = coordinator.url.rstrip("/")
    auth = {"Authorization": f"Bearer {coordinator.token}"}
    created = requests.post(f"{url}/api/sweeps", data=grid_path.read_text(), headers=auth)
    check(created, "/api/sweeps", "post")
    assert created.status_code == 201 and created.json()["runs_added"] == 1
    worker = start_worker(coordinator.endpoint, root, "w1", "--exit-when-idle")
    assert worker.wait(timeout=300) == 0
    yield {"url": url, "auth": auth, "root": root, "db": db, "coordinator": coordinator, "grid": grid_path}
    coordinator.stop()


def test_reads_answer_as_documented(site):
    url = site["url"]
    sweeps = check(requests.get(f"{url}/api/sweeps"), "/api/sweeps").json()["sweeps"]
    assert [(s["name"], s["by_state"]["succeeded"]) for s in sweeps] == [("api", 1)]
    sweep = check(requests.get(f"{url}/api/sweeps/api"), "/api/sweeps/{name}").json()
    cell = sweep["heatmap"]["cells"][0][0]
    assert sweep["heatmap"]["rows"] == [{"setting": "", "values": {}, "train": "movie", "test": "movie"}] and sweep["heatmap"]["samples"] == [16]
    assert cell["runs"] == cell["finished"] == cell["succeeded"] == 1 and 0 <= cell["mean"] <= 1
    assert cell["std"] is None  # sample std (ddof 1) of one run is undefined
    runs = check(requests.get(f"{url}/api/runs", params={"sweep": "api", "limit": 10}), "/api/runs").json()
    assert runs["total"] == 1 and runs["runs"][0]["state"] == "succeeded"
    run = check(requests.get(f"{url}/api/runs/1"), "/api/runs/{id}").json()
    assert run["result"]["test_auc"]["movie"] == cell["mean"] and run["attempts"][0]["worker"] == "w1"
    # The trainer's settings, resolved from RunSpec's defaults and the grid run's axes (one vocabulary).
    settings = run["trainer_settings"]
    assert settings["optim"]["lr"] == run["spec"]["lr"] and settings["max_steps"] == run["spec"]["max_steps"]
    assert settings["lora"] == {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    assert settings["warmup_steps"] == 20 and settings["data_seed"] == 42 and "train_tokens" not in settings
    loss = check(requests.get(f"{url}/api/runs/1/metrics", params={"name": "loss"}), "/api/runs/{id}/metrics").json()
    assert [p["step"] for p in loss["points"]] == [1, 2]
    thin = requests.get(f"{url}/api/runs/1/metrics", params={"name": "loss", "max_points": 2}).json()
    assert len(thin["points"]) == 2
    events = check(requests.get(f"{url}/api/runs/1/events"), "/api/runs/{id}/events").json()["events"]
    assert events[0]["event"]["type"] == "started" and events[-1]["event"]["type"] == "finished"
    after = requests.get(f"{url}/api/runs/1/events", params={"after": events[0]["id"]}).json()["events"]
    assert after == events[1:]
    workers = check(requests.get(f"{url}/api/workers"), "/api/workers").json()["workers"]
    assert workers[0]["id"] == "w1" and workers[0]["attempts"] == []
    assert check(requests.get(f"{url}/api/openapi.json"), "/api/openapi.json").json() == OPENAPI


def test_checkpoint_download_is_the_stored_adapter(site):
    url, root = site["url"], site["root"]
    best = requests.get(f"{url}/api/runs/1/checkpoints/best/adapter_model.safetensors")
    check(best, "/api/runs/{id}/checkpoints/{step}/{file}")
    assert best.status_code == 200 and "attachment" in best.headers["Content-Disposition"]
    (path,), = query(site["db"], "SELECT path FROM checkpoints WHERE run_id = 1 AND step = "
                                 "(SELECT json_extract(result, '$.best_step') FROM runs WHERE id = 1)")
    assert best.content == (root / "artifacts" / path / "adapter_model.safetensors").read_bytes()
    config = requests.get(f"{url}/api/runs/1/checkpoints/2/adapter_config.json").json()
    assert config["peft_type"] == "LORA"
    for bad, status in (("2/..%2Fstate.json", 400), ("2/nope.bin", 404), ("7/adapter_config.json", 404)):
        assert requests.get(f"{url}/api/runs/1/checkpoints/{bad}").status_code == status, bad


def test_changes_need_the_token_and_follow_the_state_rules(site):
    url, auth = site["url"], site["auth"]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": site["auth"]["Authorization"][:-1]}):
        refused = check(requests.post(f"{url}/api/runs/1/cancel", headers=headers), "/api/runs/{id}/cancel", "post")
        assert refused.status_code == 401 and "token" in refused.json()["error"]
    conflict = check(requests.post(f"{url}/api/runs/1/cancel", headers=auth), "/api/runs/{id}/cancel", "post")
    assert conflict.status_code == 409 and "succeeded" in conflict.json()["error"]
    assert check(requests.post(f"{url}/api/runs/9/retry", headers=auth), "/api/runs/{id}/retry", "post").status_code == 404
    # A second grid: its run can be cancelled, then retried.
    grid = json.loads(site["grid"].read_text())
    grid.update(name="api-2", seeds=[5])
    assert requests.post(f"{url}/api/sweeps", json=grid, headers=auth).status_code == 201
    again = requests.post(f"{url}/api/sweeps", json=grid, headers=auth)
    assert again.status_code == 200 and again.json()["runs_added"] == 0
    assert requests.post(f"{url}/api/runs/2/cancel", headers=auth).json() == {"run": 2, "state": "canceled"}
    assert requests.post(f"{url}/api/runs/2/retry", headers=auth).json() == {"run": 2, "state": "queued"}
    assert requests.post(f"{url}/api/runs/2/cancel", headers=auth).json()["state"] == "canceled"


def test_bad_requests_get_clear_errors_and_change_nothing(site):
    url, auth = site["url"], site["auth"]
    before = query(site["db"], "SELECT COUNT(*) FROM sweeps")
    cases = [
        (requests.post(f"{url}/api/sweeps", data="{not json", headers=auth), 400, "JSON"),
        (requests.post(f"{url}/api/sweeps", json={"name": "x"}, headers=auth), 400, "request body"),
        (requests.post(f"{url}/api/sweeps", data="x" * (1 << 21), headers=auth), 413, "1 MiB"),
        (requests.get(f"{url}/api/runs/77"), 404, "no run 77"),
        (requests.get(f"{url}/api/runs/abc"), 400, "not a run id"),
        (requests.get(f"{url}/api/runs", params={"limit": 5000}), 400, "limit"),
        (requests.get(f"{url}/api/runs", params={"state": "done"}), 400,
         "state must be queued, leased, running, succeeded, failed or canceled"),
        (requests.get(f"{url}/api/sweeps/nope"), 404, "nope"),
        (requests.get(f"{url}/api/nothing"), 404, "no such endpoint"),
        (requests.delete(f"{url}/api/runs/1", headers=auth), 405, "DELETE"),
    ]
    for response, status, words in cases:
        assert response.status_code == status and words in response.json()["error"], (response.url, response.text)
    assert query(site["db"], "SELECT COUNT(*) FROM sweeps") == before


def raw_get(url, path):
    """GET with the path sent exactly as written (no client-side normalisation of ..)."""
    parsed = urllib.parse.urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def test_static_files_and_no_path_traversal(site):
    url = site["url"]
    page = requests.get(f"{url}/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"] and "app.js" in page.text
    assert "Chart.js v3.9" in requests.get(f"{url}/vendor/chart.js").text[:200]
    assert requests.get(f"{url}/app.js").headers["Content-Type"] == "text/javascript"
    icon = requests.get(f"{url}/favicon.ico")  # browsers ask for it unprompted: no 404 in their console
    assert icon.status_code == 200 and icon.headers["Content-Type"] == "image/svg+xml"
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "/style.css/../../x"):
        status, body = raw_get(url, path)
        assert status in (400, 404) and b"root:" not in body, path


def test_prometheus_metrics(site):
    text = requests.get(f"{site['url']}/metrics").text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines['tallrec_runs{state="succeeded"}'] == "1"
    assert int(lines['tallrec_dispatch_seconds_bucket{le="+Inf"}']) >= 1
    assert int(lines["tallrec_checkpoint_bytes_total"]) > 0
    assert int(lines['tallrec_http_requests_total{method="GET",code="200"}']) > 0
    assert "# TYPE tallrec_dispatch_seconds histogram" in text


def read_events(response, count):
    events, current = [], {}
    for line in response.iter_lines(chunk_size=1, decode_unicode=True):
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return events


def test_server_sent_events_resume_from_last_event_id(site):
    url, auth = site["url"], site["auth"]
    with requests.get(f"{url}/api/events", stream=True, timeout=10) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        requests.post(f"{url}/api/runs/2/retry", headers=auth)
        (first,) = read_events(stream, 1)
    assert first["event"] == "run" and json.loads(first["data"]) == {"run": 2, "state": "queued"}
    requests.post(f"{url}/api/runs/2/cancel", headers=auth)
    requests.post(f"{url}/api/runs/2/retry", headers=auth)
    with requests.get(f"{url}/api/events", headers={"Last-Event-ID": first["id"]}, stream=True, timeout=10) as resumed:
        replay = read_events(resumed, 2)
    assert [int(e["id"]) for e in replay] == [int(first["id"]) + 1, int(first["id"]) + 2]
    assert [json.loads(e["data"])["state"] for e in replay] == ["canceled", "queued"]
    # From the start: the whole feed, the submitted sweep first.
    with requests.get(f"{url}/api/events", params={"after": 0}, stream=True, timeout=10) as everything:
        (oldest,) = read_events(everything, 1)
    assert oldest["event"] == "sweep" and json.loads(oldest["data"])["name"] == "api"


def test_reads_can_require_the_token(tmp_path):
    coordinator = Coordinator(tmp_path / "s.db", tmp_path / "artifacts", extra=["--http", "127.0.0.1:0", "--read-token"])
    try:
        url = coordinator.url.rstrip("/")
        assert requests.get(f"{url}/api/sweeps").status_code == 401
        assert requests.get(f"{url}/api/events").status_code == 401
        ok = requests.get(f"{url}/api/sweeps", headers={"Authorization": f"Bearer {coordinator.token}"})
        assert ok.status_code == 200 and ok.json() == {"sweeps": []}
    finally:
        coordinator.stop()


def test_table_one_export_equals_the_cli(site):
    url = site["url"]
    for fmt in ("csv", "markdown", "latex"):
        r = check(requests.get(f"{url}/api/sweeps/api/table", params={"format": fmt}), "/api/sweeps/{name}/table")
        assert r.status_code == 200
        assert r.text == run_tallrec("results", "api", "--db", site["db"], "--format", fmt).stdout
    csv = requests.get(f"{url}/api/sweeps/api/table").text.splitlines()
    assert csv[0] == "train,movie 16" and csv[1].startswith("movie,") and 0 < float(csv[1].split(",")[1]) <= 100
    assert check(requests.get(f"{url}/api/sweeps/api/table", params={"format": "xlsx"}), "/api/sweeps/{name}/table").status_code == 400
    assert check(requests.get(f"{url}/api/sweeps/nope/table"), "/api/sweeps/{name}/table").status_code == 404
