"""Side by side on this CPU: one LoRA training step (forward, backward, clip, AdamW) of the
tiny LLaMA in `tallrec-train` against HF transformers + PEFT doing the same step (same model
file, same left-padded token batches whose last padding position carries loss, fp32, same
thread count, the same torch build), HF with eager attention (TALLRec's) and with sdpa, each in
its own process so peak memory is its own; and test-prompt scoring throughput likewise. Prints
times and ratios (ours / theirs; below 1 means faster).
Run from the repo root: /opt/tallrec-venv/bin/python bench/train_step_vs_hf.py [--threads 2]
[--train path/to/another/tallrec-train, to compare builds]"""
import multiprocessing
import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import tempfile
import time

import numpy as np
import peft
import torch
import transformers

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TOKENIZER = SHARED / "models" / "llama-tokenizer" / "tokenizer.model"
TALLREC, TRAIN = ROOT / "build" / "tallrec", ROOT / "build" / "tallrec-train"
MICRO, STEPS = 16, 8


def sh(*args):
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def read_tokens(folder):
    raw = (folder / "tokens.bin").read_bytes()
    n, n_train, n_eval = np.frombuffer(raw, np.uint64, 3, 8)
    at, out = 64, []
    for dtype, count in ((np.uint64, n + 1), (np.uint64, n + 1), (np.int32, n_train), (np.int32, n_eval)):
        arr = np.frombuffer(raw, dtype, int(count), at)
        at += (arr.nbytes + 7) // 8 * 8
        out.append(arr)
    toff, eoff, train, evals = out
    return ([train[toff[i]:toff[i + 1]].tolist() for i in range(n)], [evals[eoff[i]:eoff[i + 1]].tolist() for i in range(n)])


def left_pad(seqs, multiple=8):
    width = -(-max(map(len, seqs)) // multiple) * multiple
    ids = torch.tensor([[0] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    return ids, mask


def hf_steps(folder, impl, threads):
    """HF + PEFT in this (spawned) process: the same model file, the same micro-batches (our
    epoch order is irrelevant to the cost: same shapes), the same optimizer and clipping.
    Returns (steady-state seconds per step, peak resident MiB of this process)."""
    torch.set_num_threads(threads)
    w = pathlib.Path(folder)
    train_ids, _ = read_tokens(w / "train")
    model = transformers.LlamaForCausalLM.from_pretrained(w / "model", dtype=torch.float32, attn_implementation=impl)
    model = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                                       target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    stamps = []
    for s in range(STEPS):
        ids, mask = left_pad(train_ids[s * MICRO:(s + 1) * MICRO])
        labels = ids.masked_fill(mask == 0, -100)  # as train_on_inputs: the last pad predicts BOS
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad()
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[1]) / (len(stamps) - 2), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--train", type=pathlib.Path, default=TRAIN, help="the tallrec-train binary to measure")
    a = ap.parse_args()
    train_bin = a.train.resolve()
    torch.set_num_threads(a.threads)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores ({a.threads} threads used), {cpu}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        w = pathlib.Path(tmp)
        sh(TRAIN, "init", "--preset", "tiny", "--out", w / "model")
        sh(TALLREC, "data", "prepare", "movielens", "--raw", SHARED / "data" / "ml-100k", "--out", w / "movie")
        sh(TALLREC, "data", "tokenize", "--records", w / "movie" / "train.json", "--tokenizer", TOKENIZER,
           "--out", w / "train", "--sample", MICRO * STEPS, "--seed", 0)
        sh(TALLREC, "data", "tokenize", "--records", w / "movie" / "test.json", "--tokenizer", TOKENIZER,
           "--out", w / "test", "--sample", 128, "--seed", 0)
        spec = {"base_model": str(w / "model"), "train_tokens": str(w / "train"), "valid_tokens": str(w / "test"),
                "micro_batch_size": MICRO, "batch_size": MICRO, "max_steps": STEPS, "eval_every": 1000,
                "warmup_steps": 2, "threads": a.threads, "eval_batch_size": 32}
        (w / "spec.json").write_text(json.dumps(spec))
        out = subprocess.run([str(train_bin), "train", "--spec", str(w / "spec.json"), "--out", str(w / "run")],
                             check=True, capture_output=True, text=True).stdout
        ours_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB: the trainer, the largest child
        times = [json.loads(l)["time"] for l in out.splitlines() if '"progress"' in l]
        ours_step = (times[-1] - times[1]) / (len(times) - 2)  # steady state: steps 3..N

        spawn = multiprocessing.get_context("spawn")
        hf = {}
        for impl in ("eager", "sdpa"):
            with spawn.Pool(1) as pool:
                hf[impl] = pool.apply(hf_steps, (str(w), impl, a.threads))
        model = transformers.LlamaForCausalLM.from_pretrained(w / "model", dtype=torch.float32)

        # Test-prompt scoring: 128 prompts, batches of 32, one forward pass each.
        t = time.perf_counter()
        sh(TRAIN, "score", "--model", w / "model", "--tokens", w / "test", "--batch-size", 32, "--out", w / "s.json")
        ours_score = time.perf_counter() - t
        _, eval_ids = read_tokens(w / "test")
        model.eval()
        t = time.perf_counter()
        with torch.no_grad():
            for start in range(0, len(eval_ids), 32):
                ids, mask = left_pad(eval_ids[start:start + 32], multiple=1)
                pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
                model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].softmax(-1)
        hf_score = time.perf_counter() - t
    for impl, (hf_step, hf_peak) in hf.items():
        print(f"LoRA training step (micro-batch {MICRO}, fp32): tallrec-train {ours_step:.3f} s, HF+PEFT ({impl}) "
              f"{hf_step:.3f} s, ratio {ours_step / hf_step:.2f}x; peak resident memory {ours_peak:.0f} MiB vs {hf_peak:.0f} MiB")
    print(f"scoring 128 test prompts: tallrec-train {128 / ours_score:.1f} prompts/s (whole command, model load included), "
          f"HF {128 / hf_score:.1f} prompts/s, time ratio {ours_score / hf_score:.2f}x")


if __name__ == "__main__":
    main()
