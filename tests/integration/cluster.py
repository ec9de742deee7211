"""Real processes for the coordinator/worker tests: a `tallrec coordinator` that can be killed
and restarted on the same port, `tallrec worker` processes, and the tiny model plus MovieLens
grid they train. Everything talks over ZeroMQ on 127.0.0.1."""
import json
import pathlib
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
from conftest import BUILD_DIR, SHARED_DIR, TOKENIZER, run_tallrec  # noqa: E402,F401


def make_grid(root, name, seeds, max_steps, samples=(16,)):
    """Writes a tiny model (once), MovieLens prompts (once) and a grid document; returns its path."""
    model, movie = root / "model", root / "movie"
    if not model.exists():
        subprocess.run([str(BUILD_DIR / "tallrec-train"), "init", "--preset", "tiny", "--out", str(model)],
                       check=True, capture_output=True)
    if not movie.exists():
        run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", movie)
    grid = {"name": name, "base_model": str(model), "tokenizer": str(TOKENIZER.resolve()),
            "datasets": {"movie": {k: str(movie / f"{k}.json") for k in ("train", "valid", "test")}},
            "domains": ["movie"], "samples": list(samples), "seeds": list(seeds), "valid_sample": 32,
            "hyper": {"micro_batch_size": [4], "batch_size": [4], "max_steps": [max_steps]}}
    path = root / f"{name}.json"
    path.write_text(json.dumps(grid))
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Coordinator:
    """`tallrec coordinator` on a fixed port, so that a restarted one is found by the same workers."""

    def __init__(self, db, artifacts, lease_seconds=30, backoff_seconds=0.2, extra=()):
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        extra = list(map(str, extra))
        http = [] if "--http" in extra else ["--http", f"127.0.0.1:{free_port()}"]  # fixed too, across restarts
        self.args = [str(BUILD_DIR / "tallrec"), "coordinator", "--db", str(db), "--artifacts", str(artifacts),
                     "--listen", self.endpoint, "--lease-seconds", str(lease_seconds),
                     "--backoff-seconds", str(backoff_seconds), *http, *extra]
        self.proc = None
        self.stderr = ""
        self.url = self.token = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "listening on" in self.proc.stdout.readline()
        if "off" not in self.args:
            self.url = self.proc.stdout.readline().split(" at ")[1].strip()
            token_line = self.proc.stdout.readline()
            if "shown once" in token_line:
                self.token = token_line.rsplit(": ", 1)[1].strip()

    def kill(self, sig):
        self.proc.send_signal(sig)
        self.stderr += self.proc.communicate(timeout=30)[1]
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.stderr += self.proc.communicate(timeout=30)[1]


def start_worker(endpoint, root, worker_id, *extra):
    log = open(root / f"{worker_id}.log", "w")
    return subprocess.Popen([str(BUILD_DIR / "tallrec"), "worker", "--coordinator", endpoint, "--id", worker_id,
                             "--work-dir", str(root / worker_id), "--threads", "1", *extra],
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def query(db, sql, *params):
    with sqlite3.connect(db, timeout=30) as c:
        return c.execute(sql, params).fetchall()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def all_runs_ended(db):
    return query(db, "SELECT COUNT(*) FROM runs WHERE state NOT IN ('succeeded', 'failed', 'canceled')")[0][0] == 0


def best_adapter(db, artifacts, run_id=1):
    """The bytes of the stored best checkpoint's adapter of a succeeded run."""
    (result,), = query(db, "SELECT result FROM runs WHERE id = ? AND state = 'succeeded'", run_id)
    best = json.loads(result)["best_step"]
    (path,), = query(db, "SELECT path FROM checkpoints WHERE run_id = ? AND step = ?", run_id, best)
    return (pathlib.Path(artifacts) / path / "adapter_model.safetensors").read_bytes(), json.loads(result)


def uninterrupted_run(root, grid_name, steps):
    """The run of a one-seed grid nobody interrupts, by a worker on this machine: its stored best
    adapter and result (what the fault tests compare with)."""
    work = root / "reference"
    work.mkdir()
    run_tallrec("submit", make_grid(root, grid_name, [0], steps), "--db", work / "store.db")
    coordinator = Coordinator(work / "store.db", work / "artifacts")
    try:
        worker = start_worker(coordinator.endpoint, work, "w0", "--exit-when-idle")
        assert worker.wait(timeout=300) == 0
    finally:
        coordinator.stop()
    return best_adapter(work / "store.db", work / "artifacts")


def submit_sweep(root, name, grid_name, steps, seeds=(0,)):
    """A store in root/name holding the grid's runs; returns (that folder, the store)."""
    work = root / name
    work.mkdir()
    db = work / "store.db"
    run_tallrec("submit", make_grid(root, grid_name, list(seeds), steps), "--db", db)
    return work, db


def loss_steps(db):
    """The newest optimizer step any attempt has reported."""
    return query(db, "SELECT COALESCE(MAX(step), 0) FROM metrics WHERE name = 'loss'")[0][0]


def check_trace(trace):
    """Validates every message of a `tallrec coordinator --trace` file against
    schemas/trp1.schema.json; returns the set of message types seen."""
    import jsonschema
    from referencing import Registry, Resource

    schemas = pathlib.Path(__file__).resolve().parents[2] / "schemas"
    trp = json.loads((schemas / "trp1.schema.json").read_text())
    event = json.loads((schemas / "train_event.schema.json").read_text())
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in (trp, event)])
    seen = set()
    for line in pathlib.Path(trace).read_text().splitlines():
        message = json.loads(line)
        validator = jsonschema.Draft202012Validator({"$ref": f"{trp['$id']}#/$defs/{message['type']}"}, registry=registry)
        errors = list(validator.iter_errors(message["body"]))
        assert not errors, f"{message['dir']} {message['type']} {message['body']}: {errors[0].message}"
        seen.add(message["type"])
    return seen
