"""A real (short) TALLRec rec-tuning run of the tiny model on real MovieLens prompts, checked
against the Python stack: the learning rates against transformers' scheduler, our adapter
loaded by HF PEFT (same logits), validation and test AUCs recomputed with transformers + PEFT +
scikit-learn, events against their JSON schema."""
import json
import subprocess

import jsonschema
import numpy as np
import peft
import pytest
import safetensors.torch
import sklearn.metrics
import torch
import transformers

from conftest import BUILD_DIR, SHARED_DIR, SOURCE_DIR, TOKENIZER, read_tokens, run_tallrec

transformers.logging.set_verbosity_error()
TRAIN = BUILD_DIR / "tallrec-train"
# LoRA on every projection: on a randomly initialised base, q/v adapters alone barely move the
# loss (the frozen random lm_head keeps the output near uniform), which would test nothing.
SPEC = {"micro_batch_size": 8, "batch_size": 16, "max_steps": 12, "eval_every": 4, "warmup_steps": 2,
        "optim": {"lr": 0.003}, "eval_batch_size": 16, "seed": 3, "threads": 2,
        "lora": {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}}


def tokenize(records, out, sample, seed):
    run_tallrec("data", "tokenize", "--records", records, "--tokenizer", TOKENIZER, "--out", out,
                "--sample", sample, "--seed", seed)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    w = tmp_path_factory.mktemp("train")
    subprocess.run([str(TRAIN), "init", "--preset", "tiny", "--out", str(w / "model"), "--seed", "1"], check=True,
                   capture_output=True)
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", w / "movie")
    tokenize(w / "movie" / "train.json", w / "train", 16, 42)
    tokenize(w / "movie" / "valid.json", w / "valid", 48, 0)
    tokenize(w / "movie" / "test.json", w / "test-movie", 48, 1)
    tokenize(SHARED_DIR / "data" / "book-crossing" / "test.json", w / "test-book", 48, 1)
    spec = dict(SPEC, base_model=str(w / "model"), train_tokens=str(w / "train"), valid_tokens=str(w / "valid"),
                test_tokens={"movie": str(w / "test-movie"), "book": str(w / "test-book")})
    (w / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(w / "spec.json"), "--out", str(w / "out")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events == [json.loads(line) for line in (w / "out" / "events.jsonl").read_text().splitlines()]
    return w, spec, events


def test_spec_and_events_follow_their_schemas(run):
    w, spec, events = run
    jsonschema.validate(spec, json.loads((SOURCE_DIR / "schemas" / "run_spec.schema.json").read_text()))
    schema = json.loads((SOURCE_DIR / "schemas" / "train_event.schema.json").read_text())
    for e in events:
        jsonschema.validate(e, schema)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert kinds.count("progress") == 12 and kinds.count("eval") == 3 and kinds.count("checkpoint") == 3


def test_learning_rates_equal_transformers_schedule(run):
    _, spec, events = run
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=spec["optim"]["lr"])
    sched = transformers.get_linear_schedule_with_warmup(opt, spec["warmup_steps"], spec["max_steps"])
    want = []
    for _ in range(spec["max_steps"]):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    got = [e["lr"] for e in events if e["type"] == "progress"]
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_loss_falls(run):
    losses = [e["loss"] for e in run[2] if e["type"] == "progress"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


def hf_model(w):
    return transformers.LlamaForCausalLM.from_pretrained(w / "model", torch_dtype=torch.float32).eval()


def token_lists(folder):
    _, t = read_tokens(folder)
    return t["train_ids"], t["eval_ids"], t["prompt_len"].tolist(), t["label"].tolist()


def tallrec_score(logits_row):
    probs = logits_row.softmax(-1)
    return torch.stack([probs[3782], probs[8241]]).softmax(-1)[1].item()  # No, Yes


def test_peft_loads_our_adapter_and_validation_auc_matches(run):
    w, spec, events = run
    best = next(e for e in reversed(events) if e["type"] == "eval")["best_step"]
    best_eval = next(e for e in events if e["type"] == "eval" and e["step"] == best)
    model = peft.PeftModel.from_pretrained(hf_model(w), w / "out" / "adapter").eval()
    # Same logits as our forward pass with our adapter.
    ids = torch.randint(3, 32000, (2, 12))
    safetensors.torch.save_file({"input_ids": ids}, w / "b.safetensors")
    subprocess.run([str(TRAIN), "logits", "--model", str(w / "model"), "--batch", str(w / "b.safetensors"), "--out",
                    str(w / "o.safetensors"), "--adapter", str(w / "out" / "adapter")], check=True, capture_output=True)
    with torch.no_grad():
        torch.testing.assert_close(safetensors.torch.load_file(w / "o.safetensors")["logits"], model(input_ids=ids).logits,
                                   atol=2e-5, rtol=1e-5)
    # Validation AUC, recomputed as TALLRec's Trainer does it (answer included, left padding to a
    # multiple of 8, positions 0..T-1, score at the token before the answer), same batches of 16.
    train_ids, _, prompt_len, labels = token_lists(w / "valid")
    scores = []
    for start in range(0, len(train_ids), spec["eval_batch_size"]):
        rows = range(start, min(len(train_ids), start + spec["eval_batch_size"]))
        width = -(-max(len(train_ids[r]) for r in rows) // 8) * 8
        ids = torch.tensor([[0] * (width - len(train_ids[r])) + train_ids[r] for r in rows])
        mask = torch.tensor([[0] * (width - len(train_ids[r])) + [1] * len(train_ids[r]) for r in rows])
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        for k, r in enumerate(rows):
            pos = width - len(train_ids[r]) + prompt_len[r] - 1
            scores.append(tallrec_score(logits[k, pos]))
    assert sklearn.metrics.roc_auc_score(labels, scores) == pytest.approx(best_eval["val_auc"], abs=1e-6)


@pytest.mark.parametrize("name", ["movie", "book"])
def test_test_scores_equal_unbatched_hf_and_auc_equals_sklearn(run, name):
    w, spec, events = run
    finished = events[-1]
    subprocess.run([str(TRAIN), "score", "--model", str(w / "model"), "--adapter", str(w / "out" / "adapter"),
                    "--tokens", str(w / f"test-{name}"), "--out", str(w / f"scores-{name}.json"), "--batch-size", "16"],
                   check=True, capture_output=True)
    ours = json.loads((w / f"scores-{name}.json").read_text())
    assert ours["auc"] == finished["test_auc"][name]
    assert ours["auc"] == sklearn.metrics.roc_auc_score(ours["labels"], ours["scores"])
    model = peft.PeftModel.from_pretrained(hf_model(w), w / "out" / "adapter").eval()
    _, eval_ids, _, labels = token_lists(w / f"test-{name}")
    want = []
    for ids in eval_ids[:12]:  # evaluate.py: one unpadded prompt per forward pass
        with torch.no_grad():
            want.append(tallrec_score(model(input_ids=torch.tensor([ids])).logits[0, -1]))
    assert ours["labels"] == labels
    np.testing.assert_allclose(ours["scores"][:12], want, rtol=1e-5, atol=1e-6)


def test_merged_model_equals_peft_merge_and_unload(run):
    w, _, _ = run
    subprocess.run([str(TRAIN), "merge", "--model", str(w / "model"), "--adapter", str(w / "out" / "adapter"),
                    "--out", str(w / "merged")], check=True, capture_output=True)
    ours = transformers.LlamaForCausalLM.from_pretrained(w / "merged", torch_dtype=torch.float32).eval()
    theirs = peft.PeftModel.from_pretrained(hf_model(w), w / "out" / "adapter").merge_and_unload().eval()
    ids = torch.randint(3, 32000, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, theirs(input_ids=ids).logits, atol=2e-5, rtol=1e-5)


def test_bad_spec_fails_fast_and_not_retryable(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"base_model": "m", "train_tokens": "t", "valid_tokens": "v",
                                                  "batch_size": 100, "micro_batch_size": 32}))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "s.json"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "batch_size must be a positive multiple of micro_batch_size" in proc.stderr
    (tmp_path / "s.json").write_text(json.dumps({"base_model": str(tmp_path / "nope"), "train_tokens": "t",
                                                  "valid_tokens": "v"}))
    proc = subprocess.run([str(TRAIN), "train", "--spec", str(tmp_path / "s.json"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    failed = json.loads(proc.stdout.splitlines()[-1])
    assert failed["type"] == "failed" and failed["retryable"] is False and "t" in failed["reason"]
