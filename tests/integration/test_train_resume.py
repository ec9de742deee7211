"""Exact resume: a training run killed with SIGKILL (a real signal to a real process) and
restarted on the same output folder ends with an adapter bit-identical to the uninterrupted
run's (CPU). Also: a torn checkpoint (killed while writing) is never used."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
from conftest import BUILD_DIR, SHARED_DIR, TOKENIZER, run_tallrec  # noqa: E402

TRAIN = BUILD_DIR / "tallrec-train"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    w = tmp_path_factory.mktemp("resume")
    subprocess.run([str(TRAIN), "init", "--preset", "tiny", "--out", str(w / "model"), "--seed", "2"], check=True,
                   capture_output=True)
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", w / "movie")
    for split, out, sample, seed in (("train", "train", 24, 7), ("valid", "valid", 24, 0)):
        run_tallrec("data", "tokenize", "--records", w / "movie" / f"{split}.json", "--tokenizer", TOKENIZER,
                    "--out", w / out, "--sample", sample, "--seed", seed)
    # 24 records, micro-batch 8, batch 16: 3 micro-batches per epoch, so optimizer steps fall
    # mid-epoch and a leftover micro-batch carries its gradient into the next epoch (HF's rule).
    spec = {"base_model": str(w / "model"), "train_tokens": str(w / "train"), "valid_tokens": str(w / "valid"),
            "micro_batch_size": 8, "batch_size": 16, "max_steps": 10, "eval_every": 2, "warmup_steps": 2,
            "optim": {"lr": 0.003}, "eval_batch_size": 24, "seed": 11, "threads": 2, "early_stopping_patience": 100,
            "lora": {"dropout": 0.1, "target_modules": ["q_proj", "v_proj", "down_proj"]}}
    (w / "spec.json").write_text(json.dumps(spec))
    reference = w / "reference"
    subprocess.run([str(TRAIN), "train", "--spec", str(w / "spec.json"), "--out", str(reference)], check=True,
                   capture_output=True, timeout=600)
    return w, reference


def digest(folder):
    return hashlib.sha256((folder / "adapter" / "adapter_model.safetensors").read_bytes()).hexdigest()


def kill_when(out, predicate, spec):
    proc = subprocess.Popen([str(TRAIN), "train", "--spec", str(spec), "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        events = out / "events.jsonl"
        lines = events.read_text().splitlines() if events.exists() else []
        if predicate([json.loads(line) for line in lines if line.endswith("}")]):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    return proc.returncode


@pytest.mark.parametrize("when", ["after-first-checkpoint", "mid-step-7"])
def test_sigkill_then_restart_gives_identical_adapter(setup, tmp_path, when):
    w, reference = setup
    out = tmp_path / "run"
    if when == "after-first-checkpoint":
        predicate = lambda ev: any(e["type"] == "checkpoint" for e in ev)
    else:
        predicate = lambda ev: any(e["type"] == "progress" and e["step"] == 6 for e in ev)
    assert kill_when(out, predicate, w / "spec.json") == -signal.SIGKILL
    assert not (out / "adapter").exists()
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(w / "spec.json"), "--out", str(out)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    started = [json.loads(line) for line in proc.stdout.splitlines() if '"started"' in line][0]
    assert started["resumed_from_step"] > 0
    assert digest(out) == digest(reference)
    finished = json.loads(proc.stdout.splitlines()[-1])
    ref_finished = json.loads((reference / "events.jsonl").read_text().splitlines()[-1])
    assert finished["best_step"] == ref_finished["best_step"] and finished["best_val_auc"] == ref_finished["best_val_auc"]


def test_torn_checkpoint_is_skipped(setup, tmp_path):
    w, reference = setup
    out = tmp_path / "run"
    kill_when(out, lambda ev: any(e["type"] == "checkpoint" and e["step"] >= 4 for e in ev), w / "spec.json")
    newest = sorted((out / "checkpoints").glob("step-*"))[-1]
    blob = bytearray((newest / "optimizer.safetensors").read_bytes())
    blob[-1] ^= 0xFF  # as if the machine died mid-write: the manifest no longer matches
    (newest / "optimizer.safetensors").write_bytes(bytes(blob))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(w / "spec.json"), "--out", str(out)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    started = [json.loads(line) for line in proc.stdout.splitlines() if '"started"' in line][0]
    assert started["resumed_from_step"] < int(newest.name.split("-")[1])
    assert digest(out) == digest(reference)


def test_data_parallel_run_killed_and_restarted_gives_identical_adapter(setup, tmp_path):
    """Two Gloo ranks with dropout: each rank draws its own masks, so a resume must give every
    rank back its own RNG state (not rank 0's)."""
    w, _ = setup
    spec = json.loads((w / "spec.json").read_text())
    spec.update(world_size=2, threads=1)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    reference = tmp_path / "reference"
    subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "spec.json"), "--out", str(reference)], check=True,
                   capture_output=True, timeout=600)
    out = tmp_path / "run"
    # The launcher dies by SIGKILL; its ranks follow it (PR_SET_PDEATHSIG: SIGKILL).
    assert kill_when(out, lambda ev: any(e["type"] == "progress" and e["step"] == 5 for e in ev),
                     tmp_path / "spec.json") == -signal.SIGKILL
    deadline = time.time() + 30
    while subprocess.run(["pgrep", "-f", f"--out {out} "], capture_output=True).stdout and time.time() < deadline:
        time.sleep(0.1)  # the orphaned ranks are still exiting
    assert not (out / "adapter").exists()
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "spec.json"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    started = [json.loads(line) for line in proc.stdout.splitlines() if '"started"' in line][0]
    assert started["resumed_from_step"] == 4
    assert digest(out) == digest(reference)


def test_resume_refuses_a_different_data_order(setup, tmp_path):
    """A checkpoint records the epoch order it was written under; resuming it under another
    would silently change which records the rest of the run sees."""
    w, _ = setup
    out = tmp_path / "run"
    kill_when(out, lambda ev: any(e["type"] == "checkpoint" for e in ev), w / "spec.json")
    spec = json.loads((w / "spec.json").read_text())
    spec["data_order"] = "seeded"
    (tmp_path / "seeded.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "seeded.json"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    failed = json.loads(proc.stdout.splitlines()[-1])
    assert failed["type"] == "failed" and failed["retryable"] is False
    assert 'data_order "hf"' in failed["reason"] and '"seeded"' in failed["reason"]


def test_resume_with_half_the_micro_batch_continues_at_the_same_record(setup, tmp_path):
    """The retry after an out-of-memory resumes with half the micro-batch: the checkpoint's data
    cursor counts micro-batches of the old size, so it must be converted, or the rest of the run
    would train on other records. With token_mean and no dropout the split run's loss is the same
    sum, so the adapter equals the unsplit one up to summation order."""
    w, _ = setup
    spec = json.loads((w / "spec.json").read_text())
    # 24 records in updates of 8: checkpoints at steps 4 and 8 only, where the cursor is
    # mid-epoch (records 8 and 16; micro-batch 2 and 4 of 4 records, 4 and 8 of 2).
    spec.update(loss_normalization="token_mean", eval_every=4, batch_size=8, micro_batch_size=4, eval_at_end=True)
    spec["lora"]["dropout"] = 0.0
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    reference = tmp_path / "reference"
    subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "spec.json"), "--out", str(reference)], check=True,
                   capture_output=True, timeout=600)
    out = tmp_path / "run"
    kill_when(out, lambda ev: any(e["type"] == "checkpoint" for e in ev), tmp_path / "spec.json")
    spec["micro_batch_size"] = 2
    (tmp_path / "split.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "split.json"), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    started = [json.loads(line) for line in proc.stdout.splitlines() if '"started"' in line][0]
    assert started["resumed_from_step"] in (4, 8) and (started["micro_batch_size"], started["accumulation"]) == (2, 4)
    # Right after the resume the weights are the checkpoint's, so the first update's gradient is
    # the same function of the same records: its norm equals the reference's up to rounding
    # (measured 1.3e-4 relative: each micro-batch is padded to its own length, so the kernels
    # see other shapes; the adapters drift further apart later, as AdamW magnifies rounding where
    # gradients are near zero). On other records it is another number (measured: half of it).
    resumed = started["resumed_from_step"]
    ours = [json.loads(line) for line in proc.stdout.splitlines() if '"progress"' in line][0]
    theirs = [json.loads(line) for line in (reference / "events.jsonl").read_text().splitlines()
              if '"progress"' in line and json.loads(line)["step"] == resumed + 1][0]
    assert ours["step"] == resumed + 1
    assert ours["epoch"] == theirs["epoch"]
    assert abs(ours["grad_norm"] - theirs["grad_norm"]) <= 1e-3 * theirs["grad_norm"], (ours, theirs)
