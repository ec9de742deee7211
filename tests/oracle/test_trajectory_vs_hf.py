"""Whole training trajectories of `tallrec-train train` against an independent reference loop:
transformers eager + PEFT + torch.optim.AdamW + transformers' linear warm-up schedule +
clip_grad_norm_, over the same micro-batches in the same order (`tallrec-train batches`),
written as HF Trainer 4.28's inner loop (TALLRec's) and, for token_mean, today's HF. Real
MovieLens prompts, left-padded; six optimizer steps with accumulation 3 (epochs of 8
micro-batches, so HF's leftover micro-batches carry into the next epoch), warm-up, clipping that
triggers, a starting adapter with non-zero B. Compared: per-step loss and gradient norm, and
the adapter after the last step.

Tolerance (fp32, CPU): 1e-5 relative on every per-step loss and grad norm, 1e-4 relative on
each final adapter tensor's update (measured: ~1e-7 and ~1e-6)."""
import json
import subprocess

import numpy as np
import pytest
import safetensors.torch
import torch
import transformers

import hf_reference as ref
from conftest import BUILD_DIR, movie_workspace

TRAIN = BUILD_DIR / "tallrec-train"
STEPS, MICRO, BATCH, MAX_NORM = 6, 2, 6, 0.05
CASES = {
    # name: model config, LoRA targets, train_on_inputs, loss normalisation, group_by_length, checkpointing
    "gqa-all-linear-inputs": ("gqa", ref.ALL_LINEAR, "true", "micro_batch_mean", False, False),
    "gqa-qv-no-inputs-token-mean": ("gqa", ["q_proj", "v_proj"], "false", "token_mean", False, False),
    "mha-all-linear-grouped-checkpointed": ("mha", ref.ALL_LINEAR, "true", "micro_batch_mean", True, True),
    "mha-qv-inputs-token-mean-grouped": ("mha", ["q_proj", "v_proj"], "true", "token_mean", True, False),
}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = movie_workspace(tmp_path_factory.mktemp("trajectory"), [("train", f"train-{i}", 16, 42) for i in ("true", "false")],
                        tiny_model=False, train_on_inputs=lambda out: out.split("-")[1])
    movie_workspace(w, [("valid", "valid", 16, 0)], tiny_model=False)
    for name in ref.CONFIGS:
        ref.write_tiny_llama(w / f"model-{name}", name)
    return w


def steps_after(i, n_micro, accum, token_mean):
    if (i + 1) % accum == 0:
        return True
    return i + 1 == n_micro if token_mean else (n_micro <= accum and i + 1 == n_micro)


def reference(w, model_name, adapter, tokens, batches, token_mean, checkpointing, lr, warmup):
    records = ref.Records(tokens)
    model = ref.peft_model(w / f"model-{model_name}", adapter)
    if checkpointing:
        model.base_model.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
    params = list(ref.lora_tensors(model).values())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    sched = transformers.get_linear_schedule_with_warmup(opt, warmup, STEPS)
    accum = BATCH // MICRO
    log, tally, step = [], [], 0
    for epoch in batches:
        n = len(epoch)
        for i, rows in enumerate(epoch):
            ids, mask, labels = records.batch(rows)
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            if token_mean:  # today's HF: sum over the group / its labels != -100 (before the shift)
                first = i - i % accum
                group = [r for k in range(first, min(n, first + accum)) for r in epoch[k]]
                items = sum((records.batch([r])[2] != -100).sum().item() for r in group)
                shifted = (labels[:, 1:] != -100).sum().item()
                loss = out.loss * shifted / items
            else:  # HF 4.28: each micro-batch's mean / accumulation
                loss = out.loss / accum
            loss.backward()
            tally.append(out.loss.item())
            if steps_after(i, n, accum, token_mean):
                norm = torch.nn.utils.clip_grad_norm_(params, MAX_NORM).item()
                opt.step()
                sched.step()
                opt.zero_grad()
                log.append((float(np.mean(tally)), norm))
                tally, step = [], step + 1
                if step == STEPS:
                    return log, {k: p.detach().clone() for k, p in ref.lora_tensors(model).items()}
    raise AssertionError("the batches ran out before the last step")


@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_equals_hf_stack(work, case):
    model_name, targets, inputs, normalization, grouped, checkpointing = CASES[case]
    w = work
    adapter = ref.write_start_adapter(w / f"model-{model_name}", w / f"start-{case}", 4, 8, targets, seed=7)
    lr, warmup = 3e-3, 2
    spec = ref.write_spec(
        w / f"spec-{case}.json", base_model=str(w / f"model-{model_name}"), init_adapter=str(adapter),
        train_tokens=str(w / f"train-{inputs}"), valid_tokens=str(w / "valid"),
        lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": targets}, optim={"lr": lr},
        warmup_steps=warmup, max_grad_norm=MAX_NORM, batch_size=BATCH, micro_batch_size=MICRO, max_steps=STEPS,
        eval_every=STEPS, eval_batch_size=16, loss_normalization=normalization, group_by_length=grouped,
        gradient_checkpointing=checkpointing, threads=2, seed=0)
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(spec), "--out", str(w / f"out-{case}")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    progress = [json.loads(line) for line in proc.stdout.splitlines() if '"progress"' in line]
    batches_out = subprocess.run([str(TRAIN), "batches", "--spec", str(spec), "--epochs", "4"],
                                 capture_output=True, text=True, check=True).stdout
    batches = [json.loads(line)["micro_batches"] for line in batches_out.splitlines()]

    want_log, want_adapter = reference(w, model_name, adapter, w / f"train-{inputs}", batches,
                                       normalization == "token_mean", checkpointing, lr, warmup)
    assert len(progress) == STEPS
    np.testing.assert_allclose([p["loss"] for p in progress], [l for l, _ in want_log], rtol=1e-5)
    np.testing.assert_allclose([p["grad_norm"] for p in progress], [g for _, g in want_log], rtol=1e-5)
    loss_err = max(abs(p["loss"] / l - 1) for p, (l, _) in zip(progress, want_log))
    norm_err = max(abs(p["grad_norm"] / g - 1) for p, (_, g) in zip(progress, want_log))
    assert sum(g > MAX_NORM for _, g in want_log) >= 2, "clipping should trigger"

    got = safetensors.torch.load_file(w / f"out-{case}" / "checkpoints" / f"step-{STEPS:08d}" / "adapter_model.safetensors")
    start = safetensors.torch.load_file(adapter / "adapter_model.safetensors")
    assert sorted(got) == sorted(want_adapter)
    adapter_err = 0.0
    for k, want in want_adapter.items():  # the update, not the (shared) starting point
        moved = (want - start[k]).norm()
        assert moved > 0
        adapter_err = max(adapter_err, ((got[k] - want).norm() / moved).item())
    print(f"{case}: relative errors: loss {loss_err:.2g}, grad norm {norm_err:.2g}, adapter update {adapter_err:.2g}")
    assert adapter_err <= 1e-4
