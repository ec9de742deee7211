#!/usr/bin/env bash
# On a GPU machine (CMake, nvcc, PyTorch; no Debian -dev packages), the one prepared script for
# a device session: builds tallrec-train against the machine's libtorch, runs the CUDA
# correctness checks (bench/gpu/checks.sh, tiny model), then the benchmark: LLaMA-7B shapes
# (random weights, bf16), TALLRec's micro-batch (32) of real MovieLens prompts, LoRA q/v,
# gradient checkpointing, in tallrec-train and in transformers + PEFT, side by side. Prints
# tokens/s and peak GPU memory of both and the ratio, and `tallrec check`'s memory estimate for
# the run (the trainer's started event) against its measured peak. Goals: >= 1.5x the Python tokens/s; peak
# <= 22 GiB. Needs out/gpu-bench and .headers from bench/gpu/prepare.sh. With the device tool,
# $OUT/gpu-run.log brings the whole output back.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-/tmp/tallrec-gpu-bench}
steps=${STEPS:-6}
mkdir -p "$work"
tee_pid=
if [ -n "${OUT:-}" ]; then
  exec > >(tee -a "$OUT/gpu-run.log") 2>&1
  tee_pid=$!
fi
sampler=
finish() {  # stop the memory sampler whatever happened, and let tee write the log's end
  [ -n "$sampler" ] && kill "$sampler" 2> /dev/null
  if [ -n "$tee_pid" ]; then exec >&- 2>&-; wait "$tee_pid"; fi
}
trap finish EXIT
stamp() { echo "[$(date +%T), ${SECONDS}s] $*"; }  # where the device minutes went
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
stamp build
TALLREC_TRAIN_BUILD="$work/build" "$root/scripts/build-train-only.sh" > "$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
train="$work/build/tallrec-train"
grep -E "NCCL backend" "$work/build.log" || true
stamp checks
"$root/bench/gpu/checks.sh" "$train" "$work/checks" cuda || echo "(continuing to the benchmark)"
stamp "7b init"
[ -f "$work/7b/config.json" ] || "$train" init --preset 7b --out "$work/7b"
stamp "7b: tallrec-train"

cat > "$work/spec.json" <<JSON
{"base_model": "$work/7b", "train_tokens": "$root/out/gpu-bench/train", "valid_tokens": "$root/out/gpu-bench/valid",
 "device": "cuda", "dtype": "bfloat16", "micro_batch_size": 32, "batch_size": 32, "max_steps": $steps,
 "eval_every": 100000, "warmup_steps": 2, "gradient_checkpointing": true, "eval_batch_size": 8}
JSON
# Peak memory of our process as the driver sees it, sampled twice a second.
( while sleep 0.5; do nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits; done ) > "$work/smi.log" &
sampler=$!
rm -rf "$work/run"
"$train" train --spec "$work/spec.json" --out "$work/run" > "$work/events.jsonl" ||
  { echo "tallrec-train failed:"; tail -c 2000 "$work/events.jsonl"; exit 1; }
kill $sampler
sampler=
stamp "7b: transformers + peft"
python3 - "$work" "$root" "$steps" <<'PY'
import json, pathlib, sys, time
import numpy as np, torch, transformers, peft
work, root, steps = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
ev = [json.loads(l) for l in (work / "events.jsonl").read_text().splitlines() if l.startswith("{")]
prog = [e for e in ev if e["type"] == "progress"]
ours_tps = float(np.mean([e["tokens_per_s"] for e in prog[2:]]))
peaks = [int(l.split(",")[1]) for l in (work / "smi.log").read_text().splitlines() if l.strip()]
ours_peak = max(peaks) / 1024 if peaks else float("nan")
ours_allocated = max(e["memory_bytes"] for e in prog) / 2**30  # the caching allocator's peak
estimate = next(e for e in ev if e["type"] == "started")["memory_estimate_bytes"] / 2**30  # tallrec check's

raw = (root / "out/gpu-bench/train/tokens.bin").read_bytes()
n, nt = np.frombuffer(raw, np.uint64, 2, 8)
off = np.frombuffer(raw, np.uint64, int(n) + 1, 64)
ids_all = np.frombuffer(raw, np.int32, int(nt), 64 + 2 * ((int(n) + 1) * 8))
seqs = [ids_all[off[i]:off[i + 1]].tolist() for i in range(int(n))]
model = transformers.LlamaForCausalLM.from_pretrained(work / "7b", dtype=torch.bfloat16).cuda()
model.gradient_checkpointing_enable()
model.enable_input_require_grads()
model = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
torch.cuda.reset_peak_memory_stats()
rates = []
for s in range(steps):
    batch = seqs[s * 32:(s + 1) * 32]
    width = -(-max(map(len, batch)) // 8) * 8
    ids = torch.tensor([[0] * (width - len(x)) + x for x in batch]).cuda()
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in batch]).cuda()
    torch.cuda.synchronize(); t = time.perf_counter()
    loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step(); opt.zero_grad()
    torch.cuda.synchronize()
    rates.append(int(mask.sum()) / (time.perf_counter() - t))
hf_tps = float(np.mean(rates[2:]))
hf_peak = torch.cuda.max_memory_allocated() / 2**30
print(f"tallrec-train: {ours_tps:.0f} tokens/s, peak {ours_peak:.1f} GiB (nvidia-smi), {ours_allocated:.1f} GiB allocated (max_memory_allocated)")
print(f"HF + PEFT:     {hf_tps:.0f} tokens/s, peak {hf_peak:.1f} GiB (max_memory_allocated)")
print(f"tallrec check's estimate for this run: {estimate:.1f} GiB, against {ours_peak:.1f} GiB measured "
      f"({estimate / ours_peak:.2f}x)")
print(f"ratio tokens/s tallrec / HF: {ours_tps / hf_tps:.2f}x (goal >= 1.5x); our peak <= 22 GiB: {ours_peak <= 22}")
PY
