"""schemas/openapi.json is the contract the coordinator keeps: Schemathesis (the `schemathesis` of the
test virtualenv) generates requests from the document served at /api/openapi.json and sends them to
a real coordinator on 127.0.0.1, with its API token, in every phase (examples, coverage, fuzzing
and the stateful phase, which follows the document's links: a submitted grid to its sweep and runs,
a run to its cancel and retry), and runs all its checks (status codes, content types and response
schemas as documented, schema-valid requests accepted and invalid ones refused, the token enforced,
405 with `Allow` for a method a path does not serve). The run must end with zero failures.

What JSON Schema cannot say about a grid (a domain names a key of `datasets`, batch_size a multiple
of micro_batch_size, the baselines' hidden_size a multiple of sasrec_heads, at most 100000 runs) the document says in words and the server refuses with a
400; the hook below (this file again, loaded by Schemathesis through SCHEMATHESIS_HOOKS) makes the
grids Schemathesis means as valid ones satisfy those rules as well, and keeps each small (a few runs),
so that a valid grid is one the coordinator accepts. Invalid grids are sent as generated."""
import json
import os
import pathlib
import re
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

SCHEMATHESIS = pathlib.Path(sys.executable).parent / "schemathesis"
MAX_RUNS_PER_GRID = 4


def consistent_grid(body):
    """A schema-valid grid made to pass the server's cross-field rules too (see the module doc)."""
    if not isinstance(body, dict):
        return body
    grid = dict(body)
    datasets = {k: dict(v) for k, v in grid.get("datasets", {}).items()}
    for domain in grid.get("domains", []):
        for split in ("train", "valid", "test"):
            datasets.setdefault(domain, {}).setdefault(split, f"{split}.json")
    for domain in grid.get("test_domains", []):
        datasets.setdefault(domain, {}).setdefault("test", "test.json")
    grid["datasets"] = datasets
    hyper = dict(grid.get("hyper", {}))
    hyper["micro_batch_size"] = [1]  # every batch_size is a multiple of 1
    grid["hyper"] = hyper
    if isinstance(grid.get("baselines"), dict) and {"hidden_size", "sasrec_heads"} & set(grid["baselines"]):
        grid["baselines"] = {**grid["baselines"], "sasrec_heads": 1}  # every hidden_size is a multiple of 1
    methods = ["methods"] if isinstance(grid.get("methods"), list) else []
    axes = [grid, grid, grid] + [grid] * len(methods) + [hyper] * len(hyper)
    names = ["domains", "samples", "seeds", *methods, *hyper]
    while True:
        sizes = [len(owner[name]) for owner, name in zip(axes, names)]
        runs = 1
        for size in sizes:
            runs *= size
        if runs <= MAX_RUNS_PER_GRID:
            return grid
        longest = sizes.index(max(sizes))
        owner, name = axes[longest], names[longest]
        owner[name] = owner[name][: sizes[longest] - 1]


if __name__ == "_schemathesis_hooks":  # loaded by Schemathesis (SCHEMATHESIS_HOOKS=this file)
    import schemathesis

    @schemathesis.hook
    def map_case(context, case):
        meta = case.meta
        positive = meta is None or meta.generation.mode.is_positive
        if positive and case.operation.method.upper() == "POST" and case.operation.path == "/api/sweeps":
            case.body = consistent_grid(case.body)
        return case

else:
    import pytest
    import requests

    from cluster import Coordinator

    @pytest.fixture
    def coordinator(tmp_path):
        coordinator = Coordinator(tmp_path / "store.db", tmp_path / "artifacts", extra=["--http", "127.0.0.1:0"])
        yield coordinator
        coordinator.stop()

    def test_the_coordinator_answers_as_its_openapi_document_says(coordinator, tmp_path):
        url = coordinator.url.rstrip("/")
        auth = {"Authorization": f"Bearer {coordinator.token}"}
        # Runs exist (queued: no worker), one of them canceled, so that cancel and retry both have
        # a run they succeed on. No file of the grid is read by the coordinator.
        grid = {"name": "contract", "base_model": "model", "tokenizer": "tokenizer.model",
                "datasets": {"movie": {"train": "train.json", "valid": "valid.json", "test": "test.json"}},
                "domains": ["movie"], "samples": [16], "seeds": [0, 1, 2],
                "hyper": {"batch_size": [4], "micro_batch_size": [4], "max_steps": [2]}}
        submitted = requests.post(f"{url}/api/sweeps", json=grid, headers=auth, timeout=30)
        assert submitted.status_code == 201 and submitted.json()["runs_added"] == 3, submitted.text
        assert requests.post(f"{url}/api/runs/3/cancel", headers=auth, timeout=30).json()["state"] == "canceled"

        # GET /api/events is an endless stream: Schemathesis reads it for its request timeout.
        config = tmp_path / "schemathesis.toml"
        config.write_text('[[operations]]\ninclude-path = "/api/events"\nrequest-timeout = 0.5\n')
        # The document as served, from a file (loaded from its URL, Schemathesis leaves that operation out).
        document = tmp_path / "openapi.json"
        document.write_bytes(requests.get(f"{url}/api/openapi.json", timeout=30).content)
        command = [str(SCHEMATHESIS), "--config-file", str(config), "run", str(document), "--url", url,
                   "-H", f"Authorization: Bearer {coordinator.token}",
                   "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
                   "--max-examples", "25", "--seed", "20260421", "--generation-database", "none",
                   "--workers", "1", "--request-timeout", "10", "--no-color",
                   # Hypothesis' generation-speed health check trips on a loaded machine; the data is the same.
                   "--suppress-health-check", "too_slow",
                   "--report", "junit", "--report-dir", str(tmp_path / "report")]
        env = dict(os.environ, SCHEMATHESIS_HOOKS=__file__, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
        started = time.monotonic()
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        report = run.stdout + run.stderr
        print(report)
        print(f"schemathesis took {time.monotonic() - started:.1f} s")
        assert run.returncode == 0, f"schemathesis exited {run.returncode}:\n{report}"
        # Every operation, every phase (the stateful one following the document's links), no failure.
        operations = sum(len(item) for item in json.loads(document.read_text())["paths"].values())
        assert f"Operations:       {operations} selected / {operations} total" in report, report
        for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
            assert re.search(rf"✅ {phase}\n", report), f"{phase} did not pass:\n{report}"
        assert "API Links:" in report and "Scenarios:" in report, report
        generated = re.search(r"(\d+) generated, (\d+) passed", report)
        assert generated and generated[1] == generated[2], report
        assert coordinator.proc.poll() is None, coordinator.stderr
