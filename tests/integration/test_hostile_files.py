"""Files and values a user (or an attacker) hands us: each used to crash a binary, fail as
retryable forever, or end as a false success. Now each is a clear refusal that names the file
or field: `tallrec-train` emits a non-retryable `failed` event and exits 2; `tallrec submit`
exits 2 before anything is stored; the coordinator refuses a readable API token and a
malformed Last-Event-ID, and cleans up staging folders a killed coordinator left."""
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys

import pytest
import requests
import safetensors.torch
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
from cluster import Coordinator, free_port, make_grid  # noqa: E402
from conftest import BUILD_DIR, TOKENIZER, movie_workspace, run_tallrec  # noqa: E402

TRAIN = BUILD_DIR / "tallrec-train"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return movie_workspace(tmp_path_factory.mktemp("files"), (("train", "train", 8, 1), ("valid", "valid", 16, 1)))


def refused(w, name, **overrides):
    """Runs a 2-step training; asserts exit 2 with a non-retryable failed event; returns its reason."""
    spec = {"base_model": str(w / "model"), "train_tokens": str(w / "train"), "valid_tokens": str(w / "valid"),
            "micro_batch_size": 4, "batch_size": 4, "max_steps": 2, "eval_every": 2, "threads": 1, **overrides}
    (w / f"{name}.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(w / f"{name}.json"), "--out", str(w / name)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:])
    failed = json.loads(proc.stdout.splitlines()[-1])
    assert failed["type"] == "failed" and failed["retryable"] is False
    return failed["reason"]


def copy_model(w, name):
    shutil.copytree(w / "model", w / name, dirs_exist_ok=True)
    return w / name


def test_safetensors_offsets_near_2_64_are_refused(data):
    model = copy_model(data, "model-offsets")
    raw = (model / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    name = next(k for k in header if k != "__metadata__")
    header[name]["data_offsets"] = [2**64 - 16, 2**64 - 8]
    text = json.dumps(header).encode()
    (model / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    reason = refused(data, "offsets", base_model=str(model))
    assert "model.safetensors" in reason and "bad header" in reason


@pytest.mark.parametrize("garble", ["utf8", "deep"])
def test_garbled_config_json_names_the_file(data, garble):
    model = copy_model(data, f"model-config-{garble}")
    (model / "config.json").write_bytes(b'{"vocab_size": "\xff\xfe"}' if garble == "utf8" else b"[" * 100_000)
    reason = refused(data, f"config-{garble}", base_model=str(model))
    assert "config.json" in reason


def test_absurd_layer_count_is_refused_not_an_allocation_failure(data):
    model = copy_model(data, "model-layers")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(dict(config, num_hidden_layers=2**40)))
    assert "sizes out of range" in refused(data, "layers", base_model=str(model))


def test_garbled_token_files_are_refused(data):
    tokens = data / "train-garbled"
    shutil.copytree(data / "train", tokens, dirs_exist_ok=True)
    raw = bytearray((tokens / "tokens.bin").read_bytes())
    raw[-20] ^= 0xFF  # one id changed: it would train silently
    (tokens / "tokens.bin").write_bytes(bytes(raw))
    assert "SHA-256 differs" in refused(data, "garbled-ids", train_tokens=str(tokens))
    meta = data / "train-meta"
    shutil.copytree(data / "train", meta, dirs_exist_ok=True)
    (meta / "meta.json").write_bytes(b'{"format": "\xff"}')
    assert "meta.json" in refused(data, "garbled-meta", train_tokens=str(meta))


def test_nan_base_weights_end_as_a_failure_not_a_success(data):
    model = copy_model(data, "model-nan")
    tensors = safetensors.torch.load_file(model / "model.safetensors")
    tensors["model.layers.0.self_attn.q_proj.weight"][0, 0] = float("nan")
    safetensors.torch.save_file(tensors, model / "model.safetensors", metadata={"format": "pt"})
    assert "not finite" in refused(data, "nan", base_model=str(model))


@pytest.mark.parametrize("field,value,says", [("threads", -3, "threads must be"), ("max_steps", 0, "max_steps must be"),
                                              ("lora", {"r": -4}, "lora.r")])
def test_spec_values_out_of_range(data, field, value, says):
    spec = {"base_model": "m", "train_tokens": "t", "valid_tokens": "v", field: value}
    (data / "bad-spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(data / "bad-spec.json"), "--out", str(data / "bad")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and says in proc.stderr + proc.stdout


@pytest.mark.parametrize("hyper,says", [
    ({"lr": ["fast"]}, 'hyper.lr: "fast" must be a positive number'),
    ({"micro_batch_size": [0]}, "hyper.micro_batch_size: 0 must be a positive integer"),
    ({"max_steps": ["x"]}, 'hyper.max_steps: "x" must be -1'),
    ({"lora_r": [-4]}, "hyper.lora_r: -4 must be a positive integer"),
    ({"batch_size": [100], "micro_batch_size": [32]}, "batch_size 100 is not a multiple of micro_batch_size 32"),
    ({"target_modules": [["q_proj", "lm_head"]]}, "hyper.target_modules"),
])
def test_submit_refuses_hyper_values_a_worker_would_fail_on(tmp_path, hyper, says):
    grid = json.loads(make_grid(tmp_path, "g", [0], 2).read_text())
    grid["hyper"] = dict(grid["hyper"], **hyper)
    (tmp_path / "bad.json").write_text(json.dumps(grid))
    proc = run_tallrec("submit", tmp_path / "bad.json", "--db", tmp_path / "s.db", check=False)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("field,value,says", [
    ("init_adapter", "a" * (30 << 20), 'field "init_adapter" is 31457280 bytes; a path or name may have at most 4096'),
    ("tokenizer", "/tmp/" + "x" * 300 + "/tokenizer.model", "tokenizer: /tmp/xxx"),
    ("name", "n" * 5000, 'field "name" is 5000 bytes'),
], ids=["30MiB-init_adapter", "300-byte-component", "5000-byte-name"])
def test_submit_refuses_paths_no_file_system_takes(tmp_path, field, value, says):
    """Issue 21: a 30 MiB init_adapter ended in exit 1, "filesystem error: File name too long"."""
    grid = json.loads(make_grid(tmp_path, "g", [0], 2).read_text())
    grid[field] = value
    (tmp_path / "bad.json").write_text(json.dumps(grid))
    for command in (["submit", tmp_path / "bad.json", "--db", tmp_path / "s.db"], ["check", tmp_path / "bad.json"]):
        proc = run_tallrec(*command, check=False)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr[:500]
        assert len(proc.stderr) < 10000  # the value is not echoed back whole
    assert not (tmp_path / "s.db").exists()


def test_a_cutoff_that_cuts_every_answer_is_refused_at_tokenize(data):
    proc = run_tallrec("data", "tokenize", "--records", data / "movie" / "valid.json", "--tokenizer", TOKENIZER,
                       "--out", data / "short", "--sample", 16, "--seed", 0, "--cutoff-len", 64, check=False)
    assert proc.returncode == 2 and "cutoff_len 64 cuts the answer off every record" in proc.stderr


def test_coordinator_refuses_a_readable_token_and_cleans_staging_folders(tmp_path):
    token = tmp_path / "api-token"
    token.write_text("a" * 64 + "\n")
    os.chmod(token, 0o644)
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), "coordinator", "--db", str(tmp_path / "store.db"),
                           "--artifacts", str(tmp_path / "artifacts"), "--listen", f"tcp://127.0.0.1:{free_port()}",
                           "--http", f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "api-token: the API token must not be readable by others" in proc.stderr
    os.chmod(token, 0o600)
    stale = tmp_path / "artifacts" / "runs" / "abc" / "step-00000010.tmp-123-ff"
    stale.mkdir(parents=True)
    (stale / "adapter_model.safetensors").write_bytes(b"half")
    kept = tmp_path / "artifacts" / "runs" / "abc" / "step-00000010"
    kept.mkdir()
    c = Coordinator(tmp_path / "store.db", tmp_path / "artifacts")
    try:
        assert not stale.exists() and kept.exists()
        r = requests.get(c.url.rstrip("/") + "/api/events", headers={"Last-Event-ID": "1e3"}, timeout=10)
        assert r.status_code == 400
    finally:
        c.stop()
