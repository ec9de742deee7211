"""The grids in examples/ cannot rot: each one, with only its paths pointed at test files (the tiny
model, LLaMA's tokenizer, MovieLens prompts, an adapter that fits), passes `tallrec check` and is
submitted into a scratch store with exactly the runs its axes promise."""
import json
import math
import pathlib

import pytest
import torch
from safetensors.torch import save_file

from cluster import TOKENIZER, make_grid, run_tallrec

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[2] / "examples").glob("*.json"))


def adapter_for(model, folder, r, targets):
    """A PEFT-layout adapter of rank r on `targets` that fits the model's shapes."""
    config = json.loads((model / "config.json").read_text())
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = hidden // heads
    out = {"q_proj": hidden, "k_proj": config.get("num_key_value_heads", heads) * head_dim,
           "v_proj": config.get("num_key_value_heads", heads) * head_dim, "o_proj": hidden,
           "gate_proj": config["intermediate_size"], "up_proj": config["intermediate_size"], "down_proj": hidden}
    into = {name: hidden for name in out} | {"down_proj": config["intermediate_size"]}
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for module in targets:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}" if module.endswith(
                ("q_proj", "k_proj", "v_proj", "o_proj")) else f"base_model.model.model.layers.{layer}.mlp.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.zeros(r, into[module])
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros(out[module], r)
    folder.mkdir()
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": targets}))
    return folder


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"table1-llama7b.json", "smollm2-cpu.json", "qwen2.json",
                                          "table1-baselines.json"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_an_example_checks_and_submits_with_its_paths_pointed_at_test_files(tmp_path, example):
    grid = json.loads(example.read_text())
    test_grid = json.loads(make_grid(tmp_path, "files", [0], 2).read_text())
    model, movie = pathlib.Path(test_grid["base_model"]), test_grid["datasets"]["movie"]
    grid["base_model"] = str(model)
    grid["tokenizer"] = str(TOKENIZER)
    hyper = grid.get("hyper", {})
    if "init_adapter" in grid:
        # The adapter must match every run's LoRA settings; the examples keep TALLRec's r 8 on q/v.
        assert hyper.get("lora_r", [8]) == [8] and hyper.get("target_modules", [["q_proj", "v_proj"]]) == [
            ["q_proj", "v_proj"]], "an example with an init_adapter varies no LoRA shape"
        grid["init_adapter"] = str(adapter_for(model, tmp_path / "adapter", 8, ["q_proj", "v_proj"]))
    grid["datasets"] = {domain: {split: movie[split] for split in files} for domain, files in grid["datasets"].items()}
    (tmp_path / "example.json").write_text(json.dumps(grid))

    check = run_tallrec("check", tmp_path / "example.json", "--gpu-memory", "24GiB", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ready to submit" in check.stdout

    # The LLM's runs multiply by its hyper axes; a baseline's do not (they hold none of its fields).
    methods = grid.get("methods", ["llm"])
    points = len(grid["domains"]) * len(grid["samples"]) * len(grid["seeds"])
    expected = points * (("llm" in methods) * math.prod(len(values) for values in hyper.values())
                         + len([m for m in methods if m != "llm"]))
    submitted = json.loads(run_tallrec("submit", tmp_path / "example.json", "--db", tmp_path / "scratch.db",
                                       "--json").stdout)
    assert submitted["sweep"] == grid["name"] and submitted["runs_added"] == expected, submitted
