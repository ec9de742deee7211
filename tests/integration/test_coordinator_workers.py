"""A coordinator and two workers, real processes talking TRP/1 over ZeroMQ on 127.0.0.1: a grid of 8 runs
submitted to the store is leased, trained by tallrec-train (tiny model, capped steps), its events
relayed and stored, and every run ends succeeded once with its result."""
import hashlib
import json
import pathlib
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
from conftest import BUILD_DIR, SHARED_DIR, TOKENIZER, run_tallrec  # noqa: E402


def test_grid_runs_on_two_workers(tmp_path):
    subprocess.run([str(BUILD_DIR / "tallrec-train"), "init", "--preset", "tiny", "--out", str(tmp_path / "model")],
                   check=True, capture_output=True)
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", tmp_path / "movie")
    grid = {"name": "two-workers", "base_model": str(tmp_path / "model"), "tokenizer": str(TOKENIZER.resolve()),
            "datasets": {"movie": {k: str(tmp_path / "movie" / f"{k}.json") for k in ("train", "valid", "test")}},
            "domains": ["movie"], "samples": [16, 32], "seeds": [0, 1, 2, 3], "valid_sample": 32,
            "hyper": {"micro_batch_size": [8], "batch_size": [16], "max_steps": [2]}}
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    db = tmp_path / "store.db"
    run_tallrec("submit", tmp_path / "grid.json", "--db", db)

    coordinator = subprocess.Popen([str(BUILD_DIR / "tallrec"), "coordinator", "--db", str(db), "--listen",
                                    "tcp://127.0.0.1:0", "--trace", str(tmp_path / "trace.jsonl")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = coordinator.stdout.readline().split("listening on ")[1].split()[0]
        workers = [subprocess.Popen([str(BUILD_DIR / "tallrec"), "worker", "--coordinator", endpoint, "--id", f"w{i}",
                                     "--work-dir", str(tmp_path / f"w{i}"), "--exit-when-idle", "--threads", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2)]
        for w in workers:
            out, err = w.communicate(timeout=600)
            assert w.returncode == 0, err
    finally:
        coordinator.send_signal(signal.SIGTERM)
        coordinator.communicate(timeout=10)
    assert coordinator.returncode == 0

    status = json.loads(run_tallrec("status", "--db", db, "--json").stdout)[0]["by_state"]
    assert status["succeeded"] == 8 and sum(status.values()) == 8
    with sqlite3.connect(db) as c:
        attempts = c.execute("SELECT worker_id, state FROM attempts").fetchall()
        assert sorted(state for _, state in attempts) == ["succeeded"] * 8
        assert {w for w, _ in attempts} <= {"w1", "w2"}
        types = [t for (t,) in c.execute("SELECT type FROM events ORDER BY attempt_id, seq")]
        assert types.count("started") == 8 and types.count("finished") == 8
        assert c.execute("SELECT COUNT(*) FROM metrics WHERE name = 'val_auc'").fetchone()[0] >= 8
        # Every run's best checkpoint was uploaded, verified and recorded before the run ended.
        for run_id, result in c.execute("SELECT id, result FROM runs"):
            best = json.loads(result)["best_step"]
            stored = c.execute("SELECT path, sha256 FROM checkpoints WHERE run_id = ? AND step = ?", (run_id, best)).fetchall()
            assert len(stored) == 1, (run_id, best)
            folder = tmp_path / "artifacts" / stored[0][0]
            assert hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest() == stored[0][1]
            for name, sha in json.loads((folder / "manifest.json").read_text()).items():
                assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha
    assert "movie -> movie" in run_tallrec("results", "two-workers", "--db", db).stdout
    # Every message both ways matches schemas/trp1.schema.json.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from cluster import check_trace
    assert check_trace(tmp_path / "trace.jsonl") >= {"READY", "REQUEST", "LEASE", "NOWORK", "HEARTBEAT", "EVENT", "ACK",
                                                      "DONE", "OFFER", "CREDIT", "CHUNK"}


def test_one_worker_runs_two_attempts_at_once_with_two_slots(tmp_path):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from cluster import Coordinator, make_grid, query, start_worker

    db = tmp_path / "store.db"
    run_tallrec("submit", make_grid(tmp_path, "slots", [0, 1], 10), "--db", db)
    coordinator = Coordinator(db, tmp_path / "artifacts")
    try:
        worker = start_worker(coordinator.endpoint, tmp_path, "w", "--exit-when-idle", "--slots", "2", "--gpus", "none")
        assert worker.wait(timeout=300) == 0
    finally:
        coordinator.stop()
    assert query(db, "SELECT id, slots FROM workers") == [("w", 2)]
    assert query(db, "SELECT state FROM runs") == [("succeeded",), ("succeeded",)]
    spans = query(db, "SELECT MIN(json_extract(body, '$.time')), MAX(json_extract(body, '$.time')) FROM events "
                      "GROUP BY attempt_id")
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end and b_start < a_end, "the two attempts ran at the same time"
