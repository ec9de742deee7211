"""One sweep runs Table 1 whole: a grid with `methods` puts the LLM (the tiny model) and the four
sequential baselines (DROS included) through a real coordinator and worker, and `tallrec results`
prints the paper's layout, the baselines' rows then TALLRec's. A baseline run trains on the interactions
behind exactly the prompts the LLM's run of the same sample and seed trains on."""
import json

from cluster import Coordinator, make_grid, query, run_tallrec, start_worker

METHODS = ["llm", "gru4rec", "caser", "sasrec", "dros"]


def encode_like_the_worker(movie, records, users, items):
    return {"user": [users[r["user"]] for r in records],
            "history": [[items[i] for i in r["history"]] for r in records],
            "history_length": [len(r["history"]) for r in records],
            "target": [items[r["target"]] for r in records], "label": [r["label"] for r in records]}


def test_one_sweep_runs_the_llm_and_every_baseline_and_prints_table_one(tmp_path):
    grid_path = make_grid(tmp_path, "table1", [0, 1], max_steps=2)
    grid = json.loads(grid_path.read_text())
    grid.update({"methods": METHODS, "test_sample": 200, "baselines": {"epochs": 30}})
    grid_path.write_text(json.dumps(grid))
    db = tmp_path / "store.db"
    check = run_tallrec("check", grid_path)
    assert "train.interactions.jsonl" in check.stdout and "8000 interaction records, one per prompt" in check.stdout
    assert json.loads(run_tallrec("submit", grid_path, "--db", db, "--json").stdout)["runs_added"] == 10

    coordinator = Coordinator(db, tmp_path / "artifacts", extra=["--http", "off"])
    try:
        worker = start_worker(coordinator.endpoint, tmp_path, "w0", "--exit-when-idle")
        assert worker.wait(timeout=900) == 0, (tmp_path / "w0.log").read_text()[-3000:]
    finally:
        coordinator.stop()
    runs = query(db, "SELECT state, spec, result FROM runs")
    assert [state for state, _, _ in runs] == ["succeeded"] * 10, (tmp_path / "w0.log").read_text()[-3000:]
    for _, spec, result in runs:
        spec, result = json.loads(spec), json.loads(result)
        assert set(result["test_auc"]) == {"movie"}
        if "method" in spec:  # a baseline: none of the LLM's fields, the grid's baseline settings
            assert "base_model" not in spec and "lr" not in spec and spec["baseline"] == {"epochs": 30}
            assert result["steps"] <= 30  # one step an epoch (16 records), at most 30 epochs

    # DROS is SASRec plus a robust term: the same seed's first loss is SASRec's and more.
    first_loss = {}
    for spec_file in (tmp_path / "w0").glob("runs/*/spec.json"):
        spec = json.loads(spec_file.read_text())
        if spec.get("seed") == 0 and spec.get("method") in ("sasrec", "dros"):
            events = [json.loads(x) for x in (spec_file.parent / "events.jsonl").read_text().splitlines()]
            first_loss[spec["method"]] = next(e["loss"] for e in events if e["type"] == "progress")
    assert first_loss["dros"] > first_loss["sasrec"] + 0.1, first_loss

    # Table 1's layout: one row per method, the baselines in order, then TALLRec.
    table = run_tallrec("results", "table1", "--db", db, "--format", "markdown").stdout.splitlines()
    assert [line.split(" | ")[0].strip("| ") for line in table[2:]] == ["GRU4Rec", "Caser", "SASRec", "DROS",
                                                                        "TALLRec"]
    assert table[0] == "| setting | train | movie 16 |"
    as_json = json.loads(run_tallrec("results", "table1", "--db", db, "--json").stdout)
    assert [r["values"]["method"] for r in as_json["rows"]] == ["gru4rec", "caser", "sasrec", "dros", "llm"]
    assert all(cell["succeeded"] == 2 for row in as_json["cells"] for cell in row)

    # The baselines trained on the interactions behind the LLM's few-shot prompts: the worker's
    # inputs are `tallrec data subset`'s records (sample 16, seed 1), numbered as documented.
    movie = tmp_path / "movie"
    read = lambda split: [json.loads(x) for x in (movie / f"{split}.interactions.jsonl").read_text().splitlines()]
    train, valid, test = read("train"), read("valid"), read("test")
    users, items = {}, {}
    for r in train + valid + test:
        users.setdefault(r["user"], len(users) + 1)
        for i in r["history"] + [r["target"]]:
            items.setdefault(i, len(items) + 1)
    indices = json.loads(run_tallrec("data", "subset", "--count", len(train), "--sample", 16, "--seed", 1).stdout)
    (inputs,) = [json.loads(p.read_text()) for p in (tmp_path / "w0").glob("runs/*/baseline_inputs.json")
                 if json.loads((p.parent / "spec.json").read_text())["seed"] == 1
                 and json.loads((p.parent / "spec.json").read_text())["method"] == "caser"]
    assert inputs["train"] == encode_like_the_worker(movie, [train[i] for i in indices], users, items)
    assert inputs["items"] == len(items) + 1 and inputs["users"] == len(users) + 1
    assert len(inputs["valid"]["label"]) == 32 and len(inputs["tests"]["movie"]["label"]) == 200
