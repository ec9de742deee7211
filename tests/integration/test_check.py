"""`tallrec check GRID`: the pre-flight from headers only. A good grid is ready; the failures
TALLRec users report are each a FAIL line naming the file (and `submit` refuses the cheap ones
before anything is stored); the GPU memory estimate for LLaMA-7B's shapes puts TALLRec's
micro-batch 32 with gradient checkpointing inside a 24 GiB card and micro-batch 64 outside it."""
import json
import struct

from cluster import make_grid, run_tallrec


def header_only_safetensors(path, tensors):
    text = json.dumps({"__metadata__": {"format": "pt"}, **tensors}).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text)


def llama_7b_config(folder):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "torch_dtype": "float16"}))
    header_only_safetensors(folder / "model.safetensors", {})
    return folder


def check(grid, tmp_path, *extra):
    (tmp_path / "g.json").write_text(json.dumps(grid))
    return run_tallrec("check", tmp_path / "g.json", *extra, check=False)


def test_a_good_grid_is_ready(tmp_path):
    grid = json.loads(make_grid(tmp_path, "good", [0, 1], 2).read_text())
    proc = check(grid, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok   model" in proc.stdout and "answer ids yes=8241 no=3782" in proc.stdout
    assert "8000 records, labels Yes./No." in proc.stdout and "good: 2 runs, ready to submit" in proc.stdout
    assert "BOS 1 <s>, EOS 2 </s>, pad 0 <unk> (special_ids \"llama\")" in proc.stdout, proc.stdout


def test_special_ids_the_grid_overrides_are_printed_and_checked(tmp_path):
    grid = json.loads(make_grid(tmp_path, "over", [0], 2).read_text())
    grid["special_ids"] = "llama,bos=none,pad=2"
    proc = check(grid, tmp_path, "--no-datasets")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BOS none, EOS 2 </s>, pad 2 </s> (special_ids \"llama,bos=none,pad=2\")" in proc.stdout, proc.stdout
    grid["special_ids"] = "llama,eos=40000"
    proc = check(grid, tmp_path, "--no-datasets")
    assert proc.returncode == 2 and "eos 40000 is not in the tokenizer's vocabulary of 32000" in proc.stdout, proc.stdout


def test_llama_7b_memory_estimate_against_a_24_gib_card(tmp_path):
    grid = json.loads(make_grid(tmp_path, "7b", [0], 2).read_text())
    grid["base_model"] = str(llama_7b_config(tmp_path / "llama-7b"))
    grid["hyper"] = {"recipe": ["instruct_7b"], "micro_batch_size": [32, 64], "batch_size": [128]}
    proc = check(grid, tmp_path, "--no-datasets")
    assert proc.returncode == 2
    lines = proc.stdout.splitlines()
    fits = next(i for i, l in enumerate(lines) if "micro-batch 32 x cutoff 512, gradient checkpointing" in l)
    over = next(i for i, l in enumerate(lines) if "micro-batch 64 x cutoff 512, gradient checkpointing" in l)
    assert lines[fits].startswith("ok") and "fits 24.0 GiB" in lines[fits + 1], lines[fits:fits + 2]
    gib = float(lines[fits + 1].split("about ")[1].split(" GiB")[0])
    assert 18 < gib < 24  # 12.6 GiB of fp16 weights + checkpointed activations of 16,384 tokens
    assert lines[over].startswith("FAIL") and "does not fit 24.0 GiB" in lines[over + 1]
    assert check(grid, tmp_path, "--no-datasets", "--gpu-memory", "80GB").returncode == 0


def test_reported_reproduction_failures_are_named(tmp_path):
    grid = json.loads(make_grid(tmp_path, "bad", [0], 2).read_text())
    # Weights that are a Git LFS pointer (a clone without `git lfs pull`).
    (tmp_path / "model" / "model.safetensors").rename(tmp_path / "weights.bak")
    (tmp_path / "model" / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    proc = check(grid, tmp_path, "--no-datasets")
    assert proc.returncode == 2 and "is a Git LFS pointer" in proc.stdout and "git lfs pull" in proc.stdout
    submitted = run_tallrec("submit", tmp_path / "g.json", "--db", tmp_path / "s.db", check=False)
    assert submitted.returncode == 2 and "is a Git LFS pointer" in submitted.stderr and not (tmp_path / "s.db").exists()
    (tmp_path / "weights.bak").rename(tmp_path / "model" / "model.safetensors")
    # An adapter of another rank (public alpaca-lora is r 16; TALLRec's runs are r 8), and an empty one.
    adapter = tmp_path / "alpaca-lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 16, "lora_alpha": 16,
                                                              "target_modules": ["q_proj", "v_proj"]}))
    header_only_safetensors(adapter / "adapter_model.safetensors", {})
    proc = check(dict(grid, init_adapter=str(adapter)), tmp_path, "--no-datasets")
    assert proc.returncode == 2 and "r is 16, the grid's lora_r is 8" in proc.stdout
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16,
                                                              "target_modules": ["q_proj", "v_proj"]}))
    proc = check(dict(grid, init_adapter=str(adapter)), tmp_path, "--no-datasets")
    assert proc.returncode == 2 and "holds no tensors" in proc.stdout
    # A dataset whose labels are not Yes./No.
    records = json.loads((tmp_path / "movie" / "test.json").read_text())[:5]
    records[2]["output"] = "Maybe."
    (tmp_path / "odd.json").write_text(json.dumps(records))
    odd = dict(grid, datasets={"movie": dict(grid["datasets"]["movie"], test=str(tmp_path / "odd.json"))})
    proc = check(odd, tmp_path)
    assert proc.returncode == 2 and "1 record(s) whose output is not exactly" in proc.stdout and "record 2" in proc.stdout


def test_check_reads_the_model_folder_as_the_trainer_does(tmp_path):
    """The pre-flight and tallrec-train share one config.json reader and one index reader: a
    config the trainer refuses (a rope type it lacks, an odd head_dim) and an index whose shard points
    outside the folder fail the check, naming the file, instead of passing and failing later."""
    grid = json.loads(make_grid(tmp_path, "folder", [0], 2).read_text())
    grid["base_model"] = str(llama_7b_config(tmp_path / "llama-7b"))
    config_path = tmp_path / "llama-7b" / "config.json"
    config = json.loads(config_path.read_text())
    for change, message in [({"rope_scaling": {"type": "yarn", "factor": 2.0}},
                             'rope_scaling: type "yarn" is not supported (default, linear, llama3)'),
                            ({"num_attention_heads": 4096 // 3 + 1}, "num_attention_heads must divide hidden_size"),
                            ({"hidden_size": 4096 + 32, "num_attention_heads": 32}, "head_dim must be even")]:
        config_path.write_text(json.dumps({**config, **change}))
        proc = check(grid, tmp_path, "--no-datasets")
        assert proc.returncode == 2 and f"{config_path}: {message}" in proc.stdout, proc.stdout
    config_path.write_text(json.dumps(config))
    (tmp_path / "llama-7b" / "model.safetensors").unlink()
    index = tmp_path / "llama-7b" / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"model.embed_tokens.weight": "../elsewhere.safetensors"}}))
    proc = check(grid, tmp_path, "--no-datasets")
    assert proc.returncode == 2 and f'{index}: shard "../elsewhere.safetensors" is not a file name' in proc.stdout, proc.stdout


def test_the_grids_memory_limit_is_the_budget_when_it_is_below_the_card(tmp_path):
    """A run capped by memory_limit_gib (issue 19) is checked against the cap, not the card."""
    grid = json.loads(make_grid(tmp_path, "7b", [0], 2).read_text())
    grid["base_model"] = str(llama_7b_config(tmp_path / "llama-7b"))
    grid["hyper"] = {"recipe": ["instruct_7b"], "micro_batch_size": [32], "batch_size": [128]}
    grid["memory_limit_gib"] = 16
    proc = check(grid, tmp_path, "--no-datasets")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, l in enumerate(lines) if "micro-batch 32 x cutoff 512" in l)
    assert lines[at].startswith("FAIL")
    assert "does not fit 16.0 GiB (the grid's memory_limit_gib)" in lines[at + 1], lines[at:at + 2]
    grid["memory_limit_gib"] = 40  # above the card: the card is the budget
    proc = check(grid, tmp_path, "--no-datasets")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " fits 24.0 GiB; an estimate" in proc.stdout, proc.stdout


def test_every_missing_path_is_a_fail_line_in_one_pass(tmp_path):
    """A grid with a missing model, tokenizer, adapter and train file: `check` lists all four as
    FAIL lines (each naming its grid field) and still runs the remaining checks, exit 2; `submit`
    refuses with the same four lines and stores nothing. Neither names an option it lacks."""
    grid = json.loads(make_grid(tmp_path, "gaps", [0], 2).read_text())
    grid["base_model"] = str(tmp_path / "no-model")
    grid["tokenizer"] = str(tmp_path / "no-tokenizer.model")
    grid["init_adapter"] = str(tmp_path / "no-adapter")
    grid["datasets"]["movie"]["train"] = str(tmp_path / "no-train.json")
    proc = check(grid, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    fails = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 4, proc.stdout
    for field, path in [("base_model", "no-model"), ("tokenizer", "no-tokenizer.model"),
                        ("init_adapter", "no-adapter"), ("datasets.movie.train", "no-train.json")]:
        assert f"{field}: {tmp_path / path} does not exist" in proc.stdout, proc.stdout
    # The checks of what does exist still ran: the validation and test prompts were read.
    assert proc.stdout.count("ok   dataset") == 2, proc.stdout
    assert "4 problem(s)" in proc.stderr and "--no-check-paths" not in proc.stdout + proc.stderr

    submitted = run_tallrec("submit", tmp_path / "g.json", "--db", tmp_path / "s.db", check=False)
    assert submitted.returncode == 2, submitted.stderr
    assert len([line for line in submitted.stderr.splitlines() if line.startswith("FAIL")]) == 4, submitted.stderr
    assert "datasets.movie.train" in submitted.stderr and "nothing submitted" in submitted.stderr
    assert not (tmp_path / "s.db").exists()


def test_baseline_runs_have_their_datasets_checked_but_no_llm(tmp_path):
    """A grid's methods (coordinator/grid.h): a baseline run trains no LLM, so the pre-flight
    checks its datasets but neither the model, the tokenizer nor an LLM memory estimate for it; a
    grid of baselines alone needs no model. The LLM's runs beside baselines are checked as ever."""
    llama_7b_config(tmp_path / "model")  # make_grid keeps a model it finds (no tallrec-train)
    grid = json.loads(make_grid(tmp_path, "methods", [0, 1], 2).read_text())
    grid["methods"] = ["llm", "sasrec"]
    proc = check(grid, tmp_path, "--gpu-memory", "80GB")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "methods: 4 runs, ready to submit" in proc.stdout, proc.stdout
    assert "ok   model" in proc.stdout and "ok   tokenizer" in proc.stdout and "ok   memory" in proc.stdout
    # The LLM's memory still fails a small card; the baselines add no estimate of their own.
    proc = check(grid, tmp_path, "--no-datasets", "--gpu-memory", "1GiB")
    assert proc.returncode == 2 and proc.stdout.count("FAIL memory") == 1, proc.stdout

    grid["methods"] = ["gru4rec", "caser", "sasrec"]
    grid["base_model"] = str(tmp_path / "no-model")
    grid["tokenizer"] = str(tmp_path / "no-tokenizer.model")
    grid["init_adapter"] = str(tmp_path / "no-adapter")
    proc = check(grid, tmp_path, "--gpu-memory", "1GiB")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "methods: 6 runs, ready to submit" in proc.stdout, proc.stdout
    # Each prompt file, and the interaction file beside it (one record per prompt, same labels).
    assert proc.stdout.count("ok   dataset") == 6, proc.stdout
    assert proc.stdout.count("interaction records, one per prompt") == 3, proc.stdout
    for what in ("model", "tokenizer", "adapter", "memory"):
        assert f" {what} " not in proc.stdout, proc.stdout
    # An interaction file that is not its prompts' records is named.
    interactions = tmp_path / "movie" / "valid.interactions.jsonl"
    lines = interactions.read_text().splitlines()
    interactions.write_text("\n".join(lines[:-1]) + "\n")
    proc = check(grid, tmp_path)
    assert proc.returncode == 2 and f"{interactions}: 999 records, but " in proc.stdout, proc.stdout
    interactions.write_text("\n".join(lines) + "\n")
    # A missing dataset is still a FAIL line for a baseline.
    grid["datasets"]["movie"]["train"] = str(tmp_path / "no-train.json")
    proc = check(grid, tmp_path)
    assert proc.returncode == 2 and "datasets.movie.train: " in proc.stdout, proc.stdout
