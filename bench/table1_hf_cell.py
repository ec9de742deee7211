"""One Table 1 cell trained again by HF Trainer + PEFT, for comparison with the sweep's own run.

Give it the folder of a run a worker trained (WORK_DIR/runs/<key>-a<N>: its spec.json names the
model and the token folders the worker prepared). This script trains the same LoRA on the same
token ids in the same epoch order (`tallrec-train batches`) with HF Trainer + PEFT as TALLRec's
finetune_rec.py sets them up (left padding to a multiple of 8, AdamW, linear warm-up and decay),
scores the validation prompts every eval_every steps with TALLRec's double softmax, keeps the
adapter of the best validation AUC, and scores every test set with it. It prints both sides: the
sweep's figures from the run's events.jsonl and HF's. LoRA dropout draws its masks differently on
each side, so the two agree only within the noise of the prompt counts.

Run from the repo root: /opt/tallrec-venv/bin/python bench/table1_hf_cell.py --run DIR [--out FILE]
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAIN = ROOT / "build" / "tallrec-train"
sys.path[:0] = [str(ROOT / "tests" / "oracle"), str(ROOT / "bench")]


def tallrec_eval_every(sample):
    """common/run_spec.h: every 10 steps up to 128 records, else sample / 128 * 5."""
    return 10 if sample <= 128 else max(1, int(sample / 128 * 5))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=pathlib.Path, required=True, help="a worker's run folder (has spec.json)")
    ap.add_argument("--out", type=pathlib.Path, help="write both sides' figures here as JSON")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import peft
    import torch
    import transformers
    from sklearn.metrics import roc_auc_score

    import hf_reference as ref
    import hf_side
    from conftest import read_tokens

    spec = json.loads((a.run / "spec.json").read_text())
    for key in ("recipe", "init_adapter", "group_by_length", "gradient_checkpointing"):
        if spec.get(key) not in (None, False, "", "finetune_rec"):
            sys.exit(f"{a.run}/spec.json: {key} is not reproduced by this script")
    if spec.get("batch_size", 128) != spec.get("micro_batch_size", 32):
        sys.exit(f"{a.run}/spec.json: gradient accumulation is not reproduced by this script")
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    torch.manual_seed(spec.get("seed", 0))
    records = ref.Records(pathlib.Path(spec["train_tokens"]))
    meta = json.loads((pathlib.Path(spec["train_tokens"]) / "meta.json").read_text())
    micro = spec["micro_batch_size"]
    steps = spec["max_steps"]
    every = spec.get("eval_every") or tallrec_eval_every(meta.get("sample") or len(records.ids))
    lora = spec.get("lora", {})
    epochs = math.ceil(steps * micro / len(records.ids))
    batches = subprocess.run([TRAIN, "batches", "--spec", a.run / "spec.json", "--epochs", str(epochs)],
                             check=True, capture_output=True, text=True).stdout
    order = [[r for mb in json.loads(l)["micro_batches"] for r in mb] for l in batches.splitlines()]

    def auc(net, folder):
        m, tokens = read_tokens(pathlib.Path(folder))
        scores = hf_side.tallrec_scores(net, tokens["eval_ids"], m["answer_ids"]["yes"], m["answer_ids"]["no"],
                                        spec.get("eval_batch_size", 32))
        return float(roc_auc_score(tokens["label"].tolist(), scores))

    started = time.perf_counter()
    base = transformers.AutoModelForCausalLM.from_pretrained(spec["base_model"], torch_dtype=torch.float32,
                                                             attn_implementation="eager")
    net = peft.get_peft_model(base, peft.LoraConfig(
        r=lora.get("r", 8), lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.05),
        target_modules=lora.get("target_modules", ["q_proj", "v_proj"]), bias="none", task_type="CAUSAL_LM"))
    curve, best = {}, {"auc": -1.0, "step": 0, "state": None}

    class Evaluate(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every == 0 or state.global_step == steps:
                value = auc(net, spec["valid_tokens"])
                curve[state.global_step] = value
                print(f"  HF step {state.global_step}: val AUC {value:.4f}", flush=True)
                if value > best["auc"]:
                    best.update(auc=value, step=state.global_step,
                                state={k: v.detach().clone() for k, v in net.state_dict().items() if "lora_" in k})

    optim = spec.get("optim", {})
    args = transformers.TrainingArguments(
        output_dir=str(a.run.parent / "hf-cell-out"), per_device_train_batch_size=micro,
        gradient_accumulation_steps=1, warmup_steps=spec.get("warmup_steps", 20), max_steps=steps,
        learning_rate=optim.get("lr", 1e-4), weight_decay=optim.get("weight_decay", 0.0), optim="adamw_torch",
        max_grad_norm=spec.get("max_grad_norm", 1.0), logging_steps=1, save_strategy="no", eval_strategy="no",
        report_to=[], seed=42, use_cpu=True, remove_unused_columns=False, dataloader_num_workers=0,
        disable_tqdm=True)
    hf_side.same_order_trainer(records, order, args, net, [Evaluate()]).train()
    net.load_state_dict(best["state"], strict=False)
    test = {name: auc(net, folder) for name, folder in sorted(spec.get("test_tokens", {}).items())}
    hf = {"curve": curve, "best_step": best["step"], "best_val_auc": best["auc"], "test_auc": test,
          "seconds": time.perf_counter() - started}

    events = [json.loads(l) for l in (a.run / "events.jsonl").read_text().splitlines() if l.startswith("{")]
    finished = next((e for e in events if e.get("type") == "finished"), {})
    ours = {"curve": {e["step"]: e["val_auc"] for e in events if e.get("type") == "eval"},
            "best_step": finished.get("best_step"), "best_val_auc": finished.get("best_val_auc"),
            "test_auc": finished.get("test_auc", {})}
    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    print(f"\ncell: {a.run.name}, {len(records.ids)} records, seed {spec.get('seed', 0)}, {steps} steps")
    print(f"{'':>22} {'tallrec (sweep)':>16} {'HF Trainer + PEFT':>18}")
    for s in sorted(set(ours["curve"]) | set(curve)):
        o, h = ours["curve"].get(s), curve.get(s)
        print(f"{'val AUC, step ' + str(s):>22} {fmt(o):>16} {fmt(h):>18}")
    print(f"{'best step':>22} {ours['best_step']!s:>16} {hf['best_step']!s:>18}")
    for name in sorted(set(ours["test_auc"]) | set(test)):
        o, h = ours["test_auc"].get(name), test.get(name)
        print(f"{'test AUC, ' + name:>22} {fmt(o):>16} {fmt(h):>18}")
    if a.out:
        a.out.write_text(json.dumps({"run": str(a.run), "tallrec": ours, "hf": hf}, indent=1))


if __name__ == "__main__":
    main()
