"""LLaMA-7B on this CPU (issue 13): the `7b` preset (LLaMA-7B's shapes, random weights, bfloat16)
written in the two forms labs download, both in huggyllama/llama-7b's layout (two shards, the
first about 10 GB): sharded safetensors and sharded PyTorch .bin. tallrec-train loads each and
runs one training step (micro-batch 1, one real MovieLens prompt, LoRA r 8 on q/v, gradient
checkpointing, AdamW), then scores 8 validation prompts (one left-padded batch); transformers +
PEFT does the same from the safetensors form, each in its own process. Prints load, step and
scoring times and each process's peak resident memory (the kernel's, for that process alone) against the
weights' size; the goal is peak <= weights + 3 GiB.
Not a test: about half an hour on 2 cores, ~40 GB of disk under --work (kept for reruns).
Run from the repo root: /opt/tallrec-venv/bin/python bench/cpu_7b.py [--work DIR] [--skip-hf]"""
import argparse
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from train_step_vs_hf import ROOT, SHARED, TALLREC, TOKENIZER, TRAIN, left_pad, read_tokens, sh  # noqa: E402

SHARD_BYTES = 10 * 10**9  # huggyllama/llama-7b: pytorch_model-00001-of-00002.bin is 9.98 GB
GIB = 2**30


def write_shards(work):
    """work/st and work/bin from the preset's single model.safetensors, one shard in memory at a
    time, tensors in HF's state_dict order (as save_pretrained writes them)."""
    import safetensors.torch
    import transformers
    from safetensors import safe_open
    config = json.loads((work / "single" / "config.json").read_text())
    with torch.device("meta"):
        order = list(transformers.LlamaForCausalLM(transformers.LlamaConfig(**config)).state_dict())
    groups, size = [[]], 0
    with safe_open(str(work / "single" / "model.safetensors"), framework="pt") as f:
        for name in order:
            shape = f.get_slice(name).get_shape()
            nbytes = 2 * math.prod(shape)  # bfloat16
            if groups[-1] and size + nbytes > SHARD_BYTES:
                groups.append([])
                size = 0
            groups[-1].append(name)
            size += nbytes
        for form, stem, suffix in (("st", "model", "safetensors"), ("bin", "pytorch_model", "bin")):
            (work / form).mkdir(exist_ok=True)
            (work / form / "config.json").write_text(json.dumps(config))
        weight_map = {"st": {}, "bin": {}}
        for i, names in enumerate(groups):
            shard = {name: f.get_tensor(name) for name in names}
            st_name = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
            bin_name = f"pytorch_model-{i + 1:05d}-of-{len(groups):05d}.bin"
            safetensors.torch.save_file(shard, str(work / "st" / st_name), metadata={"format": "pt"})
            torch.save(shard, work / "bin" / bin_name)
            for name in names:
                weight_map["st"][name], weight_map["bin"][name] = st_name, bin_name
            del shard
    total = sum((work / "st" / n).stat().st_size for n in set(weight_map["st"].values()))
    for form, index in (("st", "model.safetensors.index.json"), ("bin", "pytorch_model.bin.index.json")):
        (work / form / index).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map[form]}))


def prepare(work, preset):
    if not (work / "single" / "config.json").exists():
        print(f"writing the {preset} preset (bfloat16) ...", flush=True)
        sh(TRAIN, "init", "--preset", preset, "--dtype", "bfloat16", "--out", work / "single")
    if not (work / "bin" / "pytorch_model.bin.index.json").exists():
        print("writing it as sharded safetensors and sharded .bin ...", flush=True)
        write_shards(work)
    if not (work / "valid" / "meta.json").exists():
        sh(TALLREC, "data", "prepare", "movielens", "--raw", SHARED / "data" / "ml-100k", "--out", work / "movie")
        sh(TALLREC, "data", "tokenize", "--records", work / "movie" / "train.json", "--tokenizer", TOKENIZER,
           "--out", work / "train", "--sample", 1, "--seed", 0)
        sh(TALLREC, "data", "tokenize", "--records", work / "movie" / "valid.json", "--tokenizer", TOKENIZER,
           "--out", work / "valid", "--sample", 8, "--seed", 0)


def run_measured(cmd, work):
    """Runs cmd; returns (start time, its stdout lines each with its arrival time, seconds, peak
    RSS in bytes). The peak is measured by scripts/peak_rss.py: a child of this process would
    report at least this process's own peak (it held a 10 GB shard while writing them)."""
    result = work / "peak_rss.json"
    start = time.time()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "peak_rss.py"), str(result)] + [str(c) for c in cmd],
                            stdout=subprocess.PIPE, text=True)
    lines = [(time.time(), line) for line in proc.stdout]
    if proc.wait() != 0:
        raise SystemExit(f"{cmd[0]} failed (exit {proc.returncode}):\n" + "".join(l for _, l in lines[-20:]))
    return start, lines, time.time() - start, json.loads(result.read_text())["peak_rss_bytes"]


def ours(work, form, threads):
    spec = {"base_model": str(work / form), "train_tokens": str(work / "train"), "valid_tokens": str(work / "valid"),
            "device": "cpu", "dtype": "bfloat16", "micro_batch_size": 1, "batch_size": 1, "max_steps": 1,
            "eval_every": 1, "warmup_steps": 0, "gradient_checkpointing": True, "eval_batch_size": 8,
            "threads": threads}
    (work / f"spec-{form}.json").write_text(json.dumps(spec))
    run = work / f"run-{form}"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    start, lines, total, peak = run_measured([TRAIN, "train", "--spec", work / f"spec-{form}.json", "--out", run], work)
    at = {}
    for t, line in lines:
        if line.startswith("{"):
            at.setdefault(json.loads(line)["type"], t)
    return {"load_s": at["started"] - start, "step_s": at["progress"] - at["started"],
            "score8_s": at["eval"] - at["progress"], "total_s": total, "peak_bytes": peak}


def hf_child(work, threads):
    """transformers + PEFT, TALLRec's stack, in this process: the same step and scoring. Prints
    when it was ready to train, had stepped and had scored (epoch seconds): its load time counts
    from the process's start, Python's imports included, as tallrec-train's does."""
    import peft
    import transformers
    torch.set_num_threads(threads)
    model = transformers.LlamaForCausalLM.from_pretrained(work / "st", dtype=torch.bfloat16)
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    model = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                                       target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=3e-4)
    train_ids, _ = read_tokens(work / "train")
    _, eval_ids = read_tokens(work / "valid")
    model.train()
    ready = time.time()
    ids = torch.tensor([train_ids[0]])
    model(input_ids=ids, labels=ids).loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    opt.step()
    opt.zero_grad()
    stepped = time.time()
    model.eval()
    ids, mask = left_pad(eval_ids, multiple=1)
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=ids, attention_mask=mask).logits[:, -1].float(), -1)
    assert torch.isfinite(probs).all()
    print(json.dumps({"ready": ready, "stepped": stepped, "scored": time.time()}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/tallrec-7b"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--preset", default="7b", help="tiny: a dry run of this script in seconds")
    ap.add_argument("--skip-hf", action="store_true", help="only tallrec-train")
    ap.add_argument("--prepare-only", action="store_true", help="write the model files and the data, then stop")
    ap.add_argument("--hf-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    work = a.work.resolve()
    if a.hf_child:
        return hf_child(work, a.threads)
    work.mkdir(parents=True, exist_ok=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))) * 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores ({a.threads} threads used), {cpu}, "
          f"{mem / GIB:.1f} GiB memory; torch {torch.__version__}")
    prepare(work, a.preset)
    if a.prepare_only:
        return
    weights = sum(p.stat().st_size for p in (work / "st").glob("model-*.safetensors"))
    shards = len(list((work / "st").glob("model-*.safetensors")))
    print(f"weights: {weights / GIB:.2f} GiB bfloat16 in {shards} shard(s); goal: peak <= {weights / GIB + 3:.2f} GiB")
    rows = {}
    for form, label in (("st", "tallrec-train, sharded safetensors"), ("bin", "tallrec-train, sharded .bin")):
        rows[label] = ours(work, form, a.threads)
        print(label, json.dumps(rows[label]), flush=True)
    if not a.skip_hf:
        start, lines, total, peak = run_measured([sys.executable, __file__, "--work", work, "--threads", a.threads,
                                                  "--hf-child"], work)
        t = json.loads(lines[-1][1])
        rows["transformers + PEFT, sharded safetensors"] = {
            "load_s": t["ready"] - start, "step_s": t["stepped"] - t["ready"], "score8_s": t["scored"] - t["stepped"],
            "total_s": total, "peak_bytes": peak}
    print(f"\n{'':42} {'load s':>8} {'step s':>8} {'score 8':>8} {'total s':>8} {'peak GiB':>9} {'peak - weights':>15}")
    for label, r in rows.items():
        print(f"{label:42} {r['load_s']:8.1f} {r['step_s']:8.1f} {r['score8_s']:8.1f} {r['total_s']:8.1f} "
              f"{r['peak_bytes'] / GIB:9.2f} {(r['peak_bytes'] - weights) / GIB:+14.2f}")
    hf = rows.get("transformers + PEFT, sharded safetensors")
    if hf:
        for label in list(rows)[:2]:
            print(f"{label}: step {rows[label]['step_s'] / hf['step_s']:.2f}x, scoring "
                  f"{rows[label]['score8_s'] / hf['score8_s']:.2f}x, load {rows[label]['load_s'] / hf['load_s']:.2f}x "
                  "of HF's time (below 1: faster)")
    (work / "results.json").write_text(json.dumps({"weights_bytes": weights, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
