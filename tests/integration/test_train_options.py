"""Training options on CPU. Half precision: bfloat16 trains (frozen base in bf16, fp32 LoRA
master weights); float16 uses dynamic loss scaling as torch's GradScaler (an update whose
gradients overflow is skipped, the scale halves, the schedule does not advance). Gradient
checkpointing gives the very same adapter. Length grouping cuts padding."""
import hashlib
import json
import subprocess
import sys
import pathlib

import pytest
import safetensors

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "oracle"))
from conftest import BUILD_DIR, SHARED_DIR, TOKENIZER, movie_workspace, read_tokens, run_tallrec  # noqa: E402

TRAIN = BUILD_DIR / "tallrec-train"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return movie_workspace(tmp_path_factory.mktemp("precision"),
                           (("train", "train", 8, 1), ("valid", "valid", 16, 1), ("train", "train64", 64, 2)))


def train(w, name, **overrides):
    spec = {"base_model": str(w / "model"), "train_tokens": str(w / "train"), "valid_tokens": str(w / "valid"),
            "micro_batch_size": 4, "batch_size": 4, "max_steps": 6, "eval_every": 6, "warmup_steps": 1,
            "eval_batch_size": 16, "seed": 3, "optim": {"lr": 0.003}, **overrides}
    spec = {k: v for k, v in spec.items() if v is not None}  # None: leave the field to the defaults
    (w / f"{name}.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(w / f"{name}.json"), "--out", str(w / name)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_bfloat16_trains_with_fp32_adapters(data):
    # One update per epoch over the same 8 records, so the losses are comparable step to step.
    events = train(data, "bf16", dtype="bfloat16", batch_size=8,
                   lora={"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]})
    losses = [e["loss"] for e in events if e["type"] == "progress"]
    assert losses[-1] < losses[1], losses  # step 1 runs at warm-up lr 0
    assert events[0]["dtype"] == "bfloat16" and events[-1]["type"] == "finished"
    with safetensors.safe_open(data / "bf16" / "adapter" / "adapter_model.safetensors", "pt") as f:
        assert all(f.get_tensor(k).dtype.is_floating_point and f.get_tensor(k).element_size() == 4 for k in f.keys())


def test_float16_skips_overflowing_updates_and_halves_the_scale(data):
    events = train(data, "fp16", dtype="float16", loss_scale_init=2.0 ** 23)
    progress = [e for e in events if e["type"] == "progress"]
    skipped = [e["skipped"] for e in progress]
    assert skipped[0] and not skipped[-1], skipped  # overflow at 2^23, fine once the scale has come down
    first_ok = skipped.index(False)
    assert all(skipped[:first_ok]) and not any(skipped[first_ok:])
    assert [e["loss_scale"] for e in progress[:first_ok]] == [2.0 ** (22 - k) for k in range(first_ok)]
    # Skipped updates do not advance the schedule: the first real update runs at warm-up lr 0.
    assert progress[first_ok]["lr"] == 0.0 and progress[first_ok + 1]["lr"] > 0
    assert events[-1]["type"] == "finished"


def test_group_by_length_reduces_padding(data):
    """HF's megabatches here hold 64 // (4 * 8) = 2 update batches (16 records), sorted by
    length: padding falls by about a third (the exact order is checked against transformers in
    tests/oracle/test_data_order_vs_torch.py)."""
    padding = {}
    for grouped in (False, True):
        events = train(data, f"grouped-{grouped}", train_tokens=str(data / "train64"), micro_batch_size=8,
                       batch_size=8, max_steps=8, eval_every=8, group_by_length=grouped)
        padding[grouped] = sum(e["padding_fraction"] for e in events if e["type"] == "progress") / 8
    assert padding[True] < padding[False] * 0.75, padding


def test_evaluation_batches_longest_first_waste_little_padding(data):
    """Validation (and test) scoring forms its batches longest first: the 64 records of train64,
    scored in batches of 8, pad far less than in record order (the AUC against HF's record-order
    batches is checked in tests/oracle/test_training_vs_hf.py), and the event says how fast."""
    _, tokens = read_tokens(data / "train64")
    lengths = [-(-len(ids) // 8) * 8 for ids in tokens["train_ids"]]  # padded to a multiple of 8
    real = sum(len(ids) for ids in tokens["train_ids"])
    in_order = 1 - real / sum(8 * max(lengths[i:i + 8]) for i in range(0, 64, 8))
    events = train(data, "eval-padding", valid_tokens=str(data / "train64"), eval_batch_size=8, max_steps=1,
                   eval_every=1)
    evaluation = next(e for e in events if e["type"] == "eval")
    assert evaluation["padding_fraction"] < in_order / 2, (evaluation["padding_fraction"], in_order)
    assert evaluation["prompts_per_s"] > 0


def test_gradient_checkpointing_gives_the_same_adapter(data):
    common = dict(micro_batch_size=4, batch_size=8, max_steps=4, eval_every=4,
                  lora={"dropout": 0.1, "target_modules": ["q_proj", "v_proj", "up_proj"]})
    train(data, "gc-off", gradient_checkpointing=False, **common)
    train(data, "gc-on", gradient_checkpointing=True, **common)

    def digest(name):
        return hashlib.sha256((data / name / "adapter" / "adapter_model.safetensors").read_bytes()).hexdigest()

    assert digest("gc-on") == digest("gc-off")  # replayed with the same dropout masks: bit for bit


def test_two_data_parallel_ranks_match_one_process(data):
    """c10d Gloo, two processes on this box, the same global batch: the same adapter."""
    import safetensors.torch
    common = dict(train_tokens=str(data / "train64"), micro_batch_size=8, batch_size=16, max_steps=5, eval_every=2,
                  threads=1, lora={"dropout": 0.0})  # dropout draws differ per rank by design
    one = train(data, "ws1", world_size=1, **common)
    two = train(data, "ws2", world_size=2, **common)
    a = safetensors.torch.load_file(data / "ws1" / "adapter" / "adapter_model.safetensors")
    b = safetensors.torch.load_file(data / "ws2" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-7
    assert [e["loss"] for e in one if e["type"] == "progress"] == pytest.approx(
        [e["loss"] for e in two if e["type"] == "progress"], rel=1e-6)
    assert (data / "ws2" / "rank-1.events.jsonl").exists()


@pytest.mark.parametrize("world_size", [1, 2])
def test_cuda_spec_without_a_gpu_fails_clearly(data, tmp_path, world_size):
    """On a box without a usable GPU (this one), a CUDA run says so in one line, as a retryable
    failure (another worker may have the GPU), before touching NCCL or the weights."""
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    spec = {"base_model": str(data / "model"), "train_tokens": str(data / "train"), "valid_tokens": str(data / "valid"),
            "device": "cuda", "world_size": world_size}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "spec.json"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    failed = json.loads((tmp_path / "out" / "events.jsonl").read_text().splitlines()[-1])
    assert failed["type"] == "failed" and failed["retryable"] is True
    assert failed["reason"].startswith("device cuda") and "usable CUDA device" in failed["reason"]
    assert "frame #" not in failed["reason"]


def test_tools_take_a_device(data):
    """`--device` for generate/logits/score: cpu gives the default's answer; a bad name is a usage
    error (2) naming the flag; a CUDA device this machine lacks is a failure (1) that says so."""
    import torch
    base = [str(TRAIN), "score", "--model", str(data / "model"), "--tokens", str(data / "valid")]
    default = subprocess.run(base, capture_output=True, text=True, timeout=120)
    on_cpu = subprocess.run([str(TRAIN), "--device", "cpu", *base[1:]], capture_output=True, text=True, timeout=120)
    assert default.returncode == on_cpu.returncode == 0 and default.stdout == on_cpu.stdout
    bad = subprocess.run([str(TRAIN), "--device", "cuda:x", *base[1:]], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--device" in bad.stderr and "cuda:x" in bad.stderr
    if not torch.cuda.is_available():
        gpu = subprocess.run([str(TRAIN), "--device", "cuda", *base[1:]], capture_output=True, text=True, timeout=120)
        assert gpu.returncode == 1 and "usable CUDA device" in gpu.stderr and "frame #" not in gpu.stderr


def test_score_keeps_the_weights_in_the_dtype_asked(data, tmp_path):
    """`score --dtype bfloat16` (a 7B model in fp32 would need 27 GB): scores close to fp32's; an
    unknown dtype is a usage error naming it."""
    base = [str(TRAIN), "score", "--model", str(data / "model"), "--tokens", str(data / "valid")]
    for dtype in ("float32", "bfloat16"):
        proc = subprocess.run([*base, "--dtype", dtype, "--out", str(tmp_path / f"{dtype}.json")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    fp32, bf16 = (json.loads((tmp_path / f"{d}.json").read_text())["scores"] for d in ("float32", "bfloat16"))
    assert len(fp32) == len(bf16) and fp32 != bf16
    assert max(abs(a - b) for a, b in zip(fp32, bf16)) < 0.05
    bad = subprocess.run([*base, "--dtype", "int8"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and 'unknown dtype "int8"' in bad.stderr


def write_adapter(w, name, r, alpha, targets, dropout=0.0):
    """A PEFT-layout adapter for the tiny model (ours: trained 0 steps, so B is zero)."""
    events = train(w, f"make-{name}", max_steps=1, eval_every=1,
                   lora={"r": r, "alpha": alpha, "dropout": dropout, "target_modules": targets})
    return pathlib.Path(events[-1]["adapter"])


def failed_run(w, name, **overrides):
    spec = {"base_model": str(w / "model"), "train_tokens": str(w / "train"), "valid_tokens": str(w / "valid"),
            "micro_batch_size": 4, "batch_size": 4, "max_steps": 2, **overrides}
    (w / f"{name}.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(w / f"{name}.json"), "--out", str(w / name)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout[-1000:]
    failed = json.loads(proc.stdout.splitlines()[-1])
    assert failed["type"] == "failed" and failed["retryable"] is False
    return failed["reason"]


def test_init_adapter_must_fit_the_runs_lora_settings(data):
    adapter = write_adapter(data, "r4", 4, 8, ["q_proj", "v_proj"], dropout=0.0)
    # The spec's LoRA block defines the model (TALLRec's command line); a different r, alpha or
    # target list is refused with both values named, never trained silently.
    reason = failed_run(data, "r-conflict", init_adapter=str(adapter), lora={"r": 8, "alpha": 8, "dropout": 0.3})
    assert "r is 4, the run's lora.r is 8" in reason and "adapter_config.json" in reason
    reason = failed_run(data, "alpha-conflict", init_adapter=str(adapter), lora={"r": 4, "alpha": 16})
    assert "lora_alpha is 8, the run's lora.alpha is 16" in reason
    reason = failed_run(data, "target-conflict", init_adapter=str(adapter),
                        lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "k_proj"]})
    assert "target_modules are q_proj,v_proj, the run's lora.target_modules are q_proj,k_proj" in reason
    # Matching settings train; the run's dropout applies (0.3 here, the adapter's file says 0).
    events = train(data, "from-adapter", init_adapter=str(adapter), lora={"r": 4, "alpha": 8, "dropout": 0.3})
    assert events[0]["lora"] == {"r": 4, "alpha": 8.0, "dropout": 0.3, "target_modules": ["q_proj", "v_proj"],
                                 "init_adapter": str(adapter)}


def test_instruct_7b_recipe_is_the_papers_script_and_fields_still_win(data):
    started = train(data, "recipe", recipe="instruct_7b", micro_batch_size=None, batch_size=128)[0]
    assert (started["recipe"], started["micro_batch_size"], started["accumulation"]) == ("instruct_7b", 64, 2)
    assert started["group_by_length"] is True and started["gradient_checkpointing"] is True
    started = train(data, "recipe-own", recipe="instruct_7b", micro_batch_size=4, batch_size=8,
                    gradient_checkpointing=False)[0]
    assert (started["micro_batch_size"], started["gradient_checkpointing"]) == (4, False)  # the spec's fields win
    assert train(data, "recipe-default", micro_batch_size=None, batch_size=128)[0]["micro_batch_size"] == 32
    (data / "bad-recipe.json").write_text(json.dumps({"base_model": "m", "train_tokens": "t", "valid_tokens": "v",
                                                       "recipe": "alpaca"}))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(data / "bad-recipe.json"), "--out", str(data / "bad")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'unknown recipe "alpaca"' in proc.stderr + proc.stdout


def test_evaluation_follows_hf_and_eval_at_end_adds_the_last_step(data):
    hf = train(data, "eval-hf", max_steps=5, eval_every=2)
    assert [e["step"] for e in hf if e["type"] == "eval"] == [2, 4]  # HF's Trainer: every eval_every steps only
    assert hf[-1]["steps"] == 5
    ours = train(data, "eval-end", max_steps=5, eval_every=2, eval_at_end=True)
    assert [e["step"] for e in ours if e["type"] == "eval"] == [2, 4, 5]
    short = train(data, "eval-short", max_steps=3, eval_every=10)  # ends before its first evaluation
    assert [e["step"] for e in short if e["type"] == "eval"] == [3]


def test_the_trainer_allocates_with_jemalloc_keeping_freed_pages():
    """glibc's heap fragments under training (a SmolLM2 run peaked at 11 GB resident for 4.5 GB
    of live tensors); tallrec-train links jemalloc and keeps freed pages for reuse instead of
    handing them back to be zeroed again. jemalloc prints its options when asked."""
    proc = subprocess.run([str(TRAIN), "--version"], capture_output=True, text=True, timeout=60,
                          env={"MALLOC_CONF": "stats_print:true"})
    assert proc.returncode == 0, proc.stderr
    assert "Begin jemalloc statistics" in proc.stderr, "tallrec-train does not allocate with jemalloc"
    assert "opt.dirty_decay_ms: -1" in proc.stderr and "opt.muzzy_decay_ms: -1" in proc.stderr
