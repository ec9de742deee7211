#!/usr/bin/env bash
# Correctness of tallrec-train on a CUDA device, on the tiny model (seconds each), printed as
# one PASS / FAIL / INFO / SKIP line per check; the exit status is 0 when nothing FAILed.
#   1. llama2.c greedy decoding on the device gives run.c's 200 ids
#   2. test scores of the tiny model on the device equal the CPU's (fp32)
#   3. a bf16 training run on the device finishes with finite losses and reports memory
#   4. without dropout, fp32 training on the device follows the CPU's (losses and adapter)
#   5. a run SIGKILLed after its first checkpoint and restarted resumes there; its adapter
#      against the uninterrupted run's (bit-identical on CPU; GPU kernels may differ)
#   6. two NCCL ranks against one process (same global batch), where there are 2+ GPUs
#   7. every LoRA gradient of a left-padded micro-batch (its padding rows see no key) on the
#      device, fp32, with and without gradient checkpointing, against the CPU in fp64
# Usage: bench/gpu/checks.sh TALLREC_TRAIN WORK_DIR [DEVICE]   (DEVICE: cuda; cpu for a dry run)
# Needs out/gpu-bench from bench/gpu/prepare.sh.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
train=$1 work=$2 device=${3:-cuda}
data=$root/out/gpu-bench
python=${PYTHON:-python3}
[ -x /opt/tallrec-venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=/opt/tallrec-venv/bin/python
mkdir -p "$work"
fails=0
say() { echo "$1: $2"; [ "$1" = FAIL ] && fails=$((fails + 1)); return 0; }

# 1. The external oracle on the device.
ids=$("$train" --device "$device" generate --model "$data/llama2c/model.bin" 2> "$work/generate.stderr")
if [ "$(echo $ids)" = "$(echo $(cat "$data/llama2c/expected_greedy_ids.txt"))" ]; then
  say PASS "llama2.c greedy ids on $device equal run.c's"
else
  say FAIL "llama2.c greedy ids on $device differ from run.c's: $(echo "$ids" | head -c 300) $(tail -c 300 "$work/generate.stderr")"
fi

# 2. Scores on the device against the CPU.
[ -f "$work/tiny/config.json" ] || "$train" init --preset tiny --out "$work/tiny" > /dev/null
rm -f "$work"/scores-*.json
"$train" --device cpu score --model "$work/tiny" --tokens "$data/valid" --out "$work/scores-cpu.json" > /dev/null &&
  "$train" --device "$device" score --model "$work/tiny" --tokens "$data/valid" --out "$work/scores-dev.json" > /dev/null ||
  say FAIL "score on $device did not run"

# 3-5. Training runs.
spec() {  # name, device, then JSON fields to add
  local name=$1 on=$2; shift 2
  cat > "$work/$name.json" <<JSON
{"base_model": "$work/tiny", "train_tokens": "$data/train", "valid_tokens": "$data/valid", "device": "$on",
 "micro_batch_size": 8, "batch_size": 16, "max_steps": 12, "eval_every": 4, "warmup_steps": 2, "eval_batch_size": 32,
 "optim": {"lr": 0.003}, "seed": 5, "early_stopping_patience": 100 $*}
JSON
}
run() { rm -rf "$work/$1"; "$train" train --spec "$work/$1.json" --out "$work/$1" > /dev/null 2> "$work/$1.stderr"; }
spec bf16 "$device" ', "dtype": "bfloat16"'
run bf16 || say FAIL "bf16 training on $device failed: $(tail -c 400 "$work/bf16/events.jsonl")"
# Without dropout the device's fp32 run must follow the CPU's step for step (dropout masks come
# from each device's own generator, so they differ).
spec plain "$device" ', "lora": {"dropout": 0.0}'
spec plain-cpu cpu ', "lora": {"dropout": 0.0}'
run plain || say FAIL "fp32 training on $device failed: $(tail -c 400 "$work/plain/events.jsonl")"
run plain-cpu || say FAIL "fp32 training on the CPU failed: $(tail -c 400 "$work/plain-cpu/events.jsonl")"
spec dropout "$device"
run dropout || say FAIL "training with dropout on $device failed: $(tail -c 400 "$work/dropout/events.jsonl")"
cp "$work/dropout.json" "$work/killed.json"
rm -rf "$work/killed"
"$train" train --spec "$work/killed.json" --out "$work/killed" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 3000); do
  grep -q '"checkpoint"' "$work/killed/events.jsonl" 2> /dev/null && break
  sleep 0.02
done
kill -KILL $pid 2> /dev/null; wait $pid 2> /dev/null
"$train" train --spec "$work/killed.json" --out "$work/killed" > "$work/killed.restart.jsonl" 2> /dev/null ||
  say FAIL "restart after SIGKILL on $device failed"
gpus=$(nvidia-smi -L 2> /dev/null | wc -l)
if [ "$device" != cpu ] && [ "$gpus" -ge 2 ]; then
  spec ws1 "$device" ', "world_size": 1, "lora": {"dropout": 0.0}'
  spec ws2 cuda ', "world_size": 2, "lora": {"dropout": 0.0}'
  run ws1 && run ws2 || say FAIL "data parallel on $device failed: $(tail -c 400 "$work/ws2/events.jsonl")"
else
  say SKIP "two NCCL ranks: this machine has $gpus GPU(s); NCCL needs one GPU per rank"
fi

# 7. Gradients of one left-padded micro-batch: the trained fp32 adapter (non-zero B) as the point.
if [ -f "$work/plain-cpu/adapter/adapter_model.safetensors" ]; then
  grads() {  # out, device, dtype, extra flags
    "$train" --device "$2" gradients --model "$work/tiny" --adapter "$work/plain-cpu/adapter" --tokens "$data/train" \
      --records 0,1,2,3,4,5,6,7 --dtype "$3" --out "$work/$1" ${4:-} > /dev/null 2> "$work/$1.stderr" ||
      say FAIL "gradients ($2, $3 ${4:-}) did not run: $(tail -c 300 "$work/$1.stderr")"
  }
  grads grads-ref.safetensors cpu float64
  grads grads-dev.safetensors "$device" float32
  grads grads-dev-ckpt.safetensors "$device" float32 --gradient-checkpointing
fi

"$python" - "$work" "$device" <<'PY' || fails=$((fails + $?))
import json, math, pathlib, sys
from safetensors.numpy import load_file
work, device = pathlib.Path(sys.argv[1]), sys.argv[2]
fails = 0
def say(kind, text):
    global fails
    fails += kind == "FAIL"
    print(f"{kind}: {text}")
def events(path):
    p = pathlib.Path(path)
    return [json.loads(l) for l in p.read_text().splitlines() if l.startswith("{")] if p.exists() else []
def adapter_diff(a, b):
    """Largest absolute difference of two runs' adapters; None when either has none."""
    if not all((work / r / "adapter" / "adapter_model.safetensors").exists() for r in (a, b)):
        return None
    x = load_file(work / a / "adapter" / "adapter_model.safetensors")
    y = load_file(work / b / "adapter" / "adapter_model.safetensors")
    return max(float(abs(x[k].astype("float64") - y[k].astype("float64")).max()) for k in x)

try:
    cpu, dev = (json.loads((work / f"scores-{n}.json").read_text()) for n in ("cpu", "dev"))
    diff = max((abs(a - b) for a, b in zip(cpu["scores"], dev["scores"])), default=float("inf"))
    say("PASS" if diff < 1e-4 else "FAIL", f"P(Yes) of {len(cpu['scores'])} prompts on {device} vs CPU: max |diff| {diff:.2e}, "
        f"AUC {dev['auc']:.6f} vs {cpu['auc']:.6f}")
except FileNotFoundError as e:
    say("FAIL", f"scores missing: {e}")

def losses(name):
    return [e["loss"] for e in events(work / name / "events.jsonl") if e["type"] == "progress"]

ev = events(work / "bf16" / "events.jsonl")
done = [e for e in ev if e["type"] == "finished"]
mem = max([e["memory_bytes"] for e in ev if e["type"] == "progress"] or [0])
ok = done and losses("bf16") and all(map(math.isfinite, losses("bf16"))) and mem > 0
say("PASS" if ok else "FAIL", f"bf16 run on {device}: {len(losses('bf16'))} steps, finite losses, "
    f"best val AUC {done[0]['best_val_auc'] if done else '-'}, memory {mem / 2**20:.1f} MiB")

ours, cpu_losses = losses("plain"), losses("plain-cpu")
diff = adapter_diff("plain", "plain-cpu")
if ours and len(ours) == len(cpu_losses) and diff is not None:
    rel = max(abs(a - b) / abs(b) for a, b in zip(ours, cpu_losses))
    say("PASS" if rel < 1e-4 and diff < 1e-4 else "FAIL",
        f"fp32 training on {device} vs CPU, 12 steps: losses max rel diff {rel:.2e}, adapters max |diff| {diff:.2e}")
else:
    say("FAIL", f"fp32 training on {device} vs CPU: a run did not finish")

started = [e for e in events(work / "killed.restart.jsonl") if e["type"] == "started"]
diff = adapter_diff("dropout", "killed")
if started and diff is not None:
    step = started[0]["resumed_from_step"]
    if step >= 12:
        say("INFO", f"the run on {device} finished before the SIGKILL landed: resume not exercised")
    elif step <= 0:
        say("FAIL", f"the restarted run on {device} did not resume from a checkpoint")
    elif diff == 0:
        say("PASS", f"SIGKILL at step {step} and restart on {device}: adapter bit-identical to the uninterrupted run's")
    else:
        say("FAIL" if device == "cpu" else "INFO",
            f"SIGKILL at step {step} and restart on {device}: adapter differs by max {diff:.2e} (GPU kernels need not be deterministic)")
else:
    say("FAIL", f"no resumed run on {device}")

if (work / "grads-ref.safetensors").exists():
    ref = load_file(work / "grads-ref.safetensors")
    for name in ("grads-dev", "grads-dev-ckpt"):
        if not (work / f"{name}.safetensors").exists():
            say("FAIL", f"{name} on {device}: no gradients written")
            continue
        got = load_file(work / f"{name}.safetensors")
        worst = max(float(((got[k].astype("float64") - ref[k]) ** 2).sum() ** 0.5 / max((ref[k] ** 2).sum() ** 0.5, 1e-300))
                    for k in ref if k != "loss")
        say("PASS" if worst < 1e-4 else "FAIL",
            f"LoRA gradients of a left-padded micro-batch on {device} ({name}) vs CPU fp64: worst relative error {worst:.2e}")
else:
    say("FAIL", "no reference gradients (the fp32 CPU run has no adapter)")

if (work / "ws2.json").exists():
    diff = adapter_diff("ws1", "ws2")
    if diff is None:
        say("FAIL", f"two NCCL ranks vs one process on {device}: a run has no adapter")
    else:
        say("PASS" if diff < 1e-5 else "FAIL", f"two NCCL ranks vs one process on {device}: adapter max |diff| {diff:.2e}")
sys.exit(min(fails, 100))
PY
echo "checks on $device: $fails failed"
[ "$fails" -eq 0 ]
