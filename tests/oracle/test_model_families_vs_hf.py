"""The model families of issue 20 against transformers + PEFT, each a small random model:
Llama-3 (rope_scaling llama3, an explicit head_dim), Llama with attention and MLP biases and
linear rope scaling, Qwen2 (q/k/v biases, tied), Mistral (a sliding window no sequence reaches).
Logits on a left-padded batch, and every LoRA gradient (all seven projections) after one
left-padded micro-batch of real movie prompts, equal HF eager's; the configs that are not
supported are refused by name."""
import json
import subprocess

import pytest
import safetensors.torch
import torch

import hf_reference as ref
from conftest import BUILD_DIR, movie_workspace
from test_gradients_vs_hf import GRAD_RTOL, LOSS_RTOL, ours, padded_rows, theirs

TRAIN = BUILD_DIR / "tallrec-train"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = movie_workspace(tmp_path_factory.mktemp("families"), [("train", "tokens-true", 16, 42)], tiny_model=False,
                        train_on_inputs=lambda out: "true")
    for name in ref.FAMILIES:
        ref.write_family_model(w / f"model-{name}", name)
        ref.write_start_adapter(w / f"model-{name}", w / f"adapter-{name}", 4, 8, ref.ALL_LINEAR)
    return w


@pytest.mark.parametrize("name", list(ref.FAMILIES))
def test_logits_equal_transformers(work, name, tmp_path):
    torch.manual_seed(5)
    ids = torch.randint(3, 32000, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[1, :4] = 0
    mask[2, :9] = 0
    ids[mask == 0] = 0
    safetensors.torch.save_file({"input_ids": ids, "attention_mask": mask}, tmp_path / "batch.safetensors")
    proc = subprocess.run([str(TRAIN), "logits", "--model", str(work / f"model-{name}"), "--batch",
                           str(tmp_path / "batch.safetensors"), "--out", str(tmp_path / "out.safetensors"),
                           "--positions", "mask"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = safetensors.torch.load_file(tmp_path / "out.safetensors")["logits"]
    hf = ref.load_hf(work / f"model-{name}").eval()
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(ref.FAMILIES))
def test_every_lora_gradient_equals_hf_eager(work, name):
    tokens = work / "tokens-true"
    records = ref.Records(tokens)
    rows = padded_rows(records)
    got = ours(work, name, tokens, rows, checkpointing=False)
    want_loss, want = theirs(work, name, records, rows, checkpointing=False)
    assert got.pop("loss").item() == pytest.approx(want_loss, rel=LOSS_RTOL)
    assert sorted(got) == sorted(want)
    worst = max(((got[k].double() - want[k].double()).norm() / want[k].double().norm()).item() for k in want)
    print(f"{name}: worst relative gradient error {worst:.3g}")
    assert worst <= GRAD_RTOL, f"largest relative gradient error {worst:.3g}"


@pytest.mark.parametrize("change, named", [
    ({"architectures": ["GemmaForCausalLM"]}, "architecture \"GemmaForCausalLM\" is not supported"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "type \"yarn\" is not supported"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "\"low_freq_factor\" must be a number"),
    ({"architectures": ["Qwen2ForCausalLM"], "use_sliding_window": True}, "use_sliding_window (Qwen2) is not supported"),
])
def test_unsupported_configs_are_refused_by_name(work, change, named, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    config = json.loads((work / "model-llama3" / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((work / "model-llama3" / "model.safetensors").read_bytes())
    proc = subprocess.run([str(TRAIN), "logits", "--model", str(folder), "--batch", "x", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and named in proc.stderr and "config.json" in proc.stderr, proc.stderr


def test_a_sequence_beyond_mistrals_sliding_window_is_refused(work, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    config = json.loads((work / "model-mistral" / "config.json").read_text())
    config["sliding_window"] = 8
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((work / "model-mistral" / "model.safetensors").read_bytes())
    ids = torch.randint(3, 32000, (1, 12))
    safetensors.torch.save_file({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, tmp_path / "b.safetensors")
    proc = subprocess.run([str(TRAIN), "logits", "--model", str(folder), "--batch", str(tmp_path / "b.safetensors"),
                           "--out", str(tmp_path / "o.safetensors")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "longer than the model's sliding_window of 8" in proc.stderr, proc.stderr
