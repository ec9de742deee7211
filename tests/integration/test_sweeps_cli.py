"""`tallrec submit | status | runs` on a real SQLite file: idempotent submission, the grid's
schema, JSON output, errors that name the field, nothing written on bad input."""
import json
import pathlib
import sqlite3
import sys

import jsonschema

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
from conftest import SOURCE_DIR, run_tallrec  # noqa: E402

GRID = {"name": "table1", "base_model": "/models/llama-7b", "tokenizer": "/models/tokenizer.model",
        "datasets": {"movie": {"train": "m/train.json", "valid": "m/valid.json", "test": "m/test.json"},
                     "book": {"train": "b/train.json", "valid": "b/valid.json", "test": "b/test.json"}},
        "domains": ["movie", "book"], "test_domains": ["movie", "book"], "samples": [16, 64, 256],
        "seeds": [0, 1, 2], "hyper": {"lr": [0.0001, 0.0003]}}


def test_submit_status_runs(tmp_path):
    jsonschema.validate(GRID, json.loads((SOURCE_DIR / "schemas" / "grid.schema.json").read_text()))
    (tmp_path / "g.json").write_text(json.dumps(GRID))
    db = tmp_path / "store.db"
    first = json.loads(run_tallrec("submit", tmp_path / "g.json", "--db", db, "--json", "--no-check-paths").stdout)
    assert first["new_sweep"] and first["runs_added"] == 36
    again = json.loads(run_tallrec("submit", tmp_path / "g.json", "--db", db, "--json", "--no-check-paths").stdout)
    assert again["runs_added"] == 0 and again["runs_existing"] == 36 and again["sweep_id"] == first["sweep_id"]
    status = json.loads(run_tallrec("status", "--db", db, "--json").stdout)
    assert status[0]["name"] == "table1" and status[0]["by_state"]["queued"] == 36
    assert "36 runs: queued 36" in run_tallrec("status", "table1", "--db", db).stdout
    page = json.loads(run_tallrec("runs", "--db", db, "--json", "--limit", 10, "--offset", 30).stdout)
    assert len(page) == 6 and {r["state"] for r in page} == {"queued"}
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        spec = json.loads(c.execute("SELECT spec FROM runs LIMIT 1").fetchone()[0])
    # Relative paths are resolved against the grid file's folder: the store holds absolute ones.
    assert spec["tests"] == {"movie": str(tmp_path / "m/test.json"), "book": str(tmp_path / "b/test.json")}
    assert spec["base_model"] == "/models/llama-7b" and spec["lora_r"] == 8


def test_bad_grid_is_refused_and_writes_nothing(tmp_path):
    bad = dict(GRID, samples=[16, 0])
    (tmp_path / "g.json").write_text(json.dumps(bad))
    proc = run_tallrec("submit", tmp_path / "g.json", "--db", tmp_path / "store.db", "--no-check-paths", check=False)
    assert proc.returncode == 2 and "g.json: samples: 0 must be -1 or a positive count" in proc.stderr
    assert not (tmp_path / "store.db").exists()


def test_coordinator_serves_until_a_signal(tmp_path):
    import signal
    import subprocess
    import time
    from conftest import BUILD_DIR
    proc = subprocess.Popen([str(BUILD_DIR / "tallrec"), "coordinator", "--db", str(tmp_path / "c.db"), "--listen",
                             "tcp://127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on tcp://127.0.0.1:" in line
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_grid_files_must_exist_unless_told_otherwise(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps(GRID))
    proc = run_tallrec("submit", tmp_path / "g.json", "--db", tmp_path / "store.db", check=False)
    assert proc.returncode == 2 and "base_model: /models/llama-7b does not exist" in proc.stderr, proc.stderr
    assert not (tmp_path / "store.db").exists()
    proc = run_tallrec("submit", tmp_path, "--db", tmp_path / "store.db", check=False)
    assert proc.returncode == 2 and "is a folder, not a grid file" in proc.stderr


def test_read_commands_never_create_a_store_and_unknown_names_are_exit_2(tmp_path):
    typo = tmp_path / "typo.db"
    for args in (["results", "demo"], ["status"], ["runs"], ["workers"], ["cancel", "1"], ["retry", "1"]):
        proc = run_tallrec(*args, "--db", typo, check=False)
        assert proc.returncode == 2 and "typo.db: no such store" in proc.stderr, (args, proc.stderr)
        assert not typo.exists()
    (tmp_path / "g.json").write_text(json.dumps(GRID))
    db = tmp_path / "store.db"
    run_tallrec("submit", tmp_path / "g.json", "--db", db, "--no-check-paths")
    for args in (["results", "nope"], ["status", "nope"], ["runs", "--sweep", "nope"], ["cancel", "--sweep", "nope"]):
        proc = run_tallrec(*args, "--db", db, check=False)
        assert proc.returncode == 2 and 'no sweep named "nope"' in proc.stderr, (args, proc.stderr)
    proc = run_tallrec("runs", "--state", "done", "--db", db, check=False)
    assert proc.returncode == 2 and '--state "done"' in proc.stderr
    table = json.loads(run_tallrec("results", "table1", "--db", db, "--json").stdout)
    # lr differs between the grid's runs: it labels the rows; nothing finished yet.
    assert table["setting_fields"] == ["lr"] and table["samples"] == [16, 64, 256]
    assert {r["setting"] for r in table["rows"]} == {"lr=0.0001", "lr=0.0003"}
    assert all(c["runs"] == 3 and c["succeeded"] == 0 and c["mean"] is None for row in table["cells"] for c in row)


def test_runs_show_the_differing_axes_filter_and_sort(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps(GRID))
    db = tmp_path / "store.db"
    run_tallrec("submit", tmp_path / "g.json", "--db", db, "--no-check-paths")
    table = run_tallrec("runs", "--sweep", "table1", "--db", db, "--limit", 5).stdout.splitlines()
    assert table[0].split()[:6] == ["run", "state", "domain", "sample", "seed", "lr"]
    assert "test movie" in table[0] and "test book" in table[0] and "val AUC" in table[0]
    fast = json.loads(run_tallrec("runs", "--sweep", "table1", "--db", db, "--where", "lr=0.0003", "--where", "domain=book",
                                  "--limit", 100, "--json").stdout)
    assert len(fast) == 9 and {r["spec"]["lr"] for r in fast} == {0.0003} and {r["domain"] for r in fast} == {"book"}
    first = json.loads(run_tallrec("runs", "--sweep", "table1", "--db", db, "--sort", "-sample", "--limit", 1, "--json").stdout)
    assert first[0]["sample"] == 256
    proc = run_tallrec("runs", "--sweep", "table1", "--db", db, "--where", "lr", check=False)
    assert proc.returncode == 2 and 'expected AXIS=VALUE' in proc.stderr


def test_failed_runs_say_why(tmp_path):
    import safetensors.torch
    from cluster import Coordinator, make_grid, start_worker
    grid = json.loads(make_grid(tmp_path, "nan", [0], 2).read_text())
    tensors = safetensors.torch.load_file(tmp_path / "model" / "model.safetensors")
    tensors["model.layers.0.self_attn.q_proj.weight"][0, 0] = float("nan")
    safetensors.torch.save_file(tensors, tmp_path / "model" / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "nan.json").write_text(json.dumps(grid))
    db = tmp_path / "store.db"
    run_tallrec("submit", tmp_path / "nan.json", "--db", db)
    c = Coordinator(db, tmp_path / "artifacts")
    try:
        worker = start_worker(c.endpoint, tmp_path, "w1", "--exit-when-idle")
        assert worker.wait(timeout=300) == 0
    finally:
        c.stop()
    failed = run_tallrec("runs", "--sweep", "nan", "--state", "failed", "--db", db).stdout
    assert "failed" in failed and "not finite" in failed, failed
    rows = json.loads(run_tallrec("runs", "--sweep", "nan", "--db", db, "--json").stdout)
    assert rows[0]["state"] == "failed" and rows[0]["attempts"] == 1  # not retryable: one attempt


def test_the_coordinator_opens_the_store_tallrec_db_names(tmp_path):
    """$TALLREC_DB is the default store of every command, the coordinator's too."""
    import os
    import subprocess

    from cluster import BUILD_DIR, free_port
    db = tmp_path / "named.db"
    proc = subprocess.Popen([str(BUILD_DIR / "tallrec"), "coordinator", "--listen", f"tcp://127.0.0.1:{free_port()}",
                             "--http", "off"], cwd=tmp_path, env={**os.environ, "TALLREC_DB": str(db)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"store {db}" in line, line
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert db.exists() and not (tmp_path / "tallrec.db").exists()
