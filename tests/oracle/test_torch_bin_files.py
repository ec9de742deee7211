"""The files labs have: PyTorch .bin base models (single and sharded, as HF's save_pretrained
with safe_serialization=False writes them, the format of decapoda-research/llama-7b-hf) and
PEFT .bin adapters (PEFT 0.3 wrote adapter_model.bin; its adapter_config.json carried fields
newer PEFT dropped), read by tallrec-train with libtorch's reader: the same logits as from the
safetensors form. And the failures TALLRec users report, each refused by name: a Git LFS
pointer, PyTorch's legacy pickle, an empty saved adapter, a .bin where a folder is expected."""
import json
import pathlib
import shutil
import subprocess
import sys

import peft
import pytest
import safetensors.torch
import torch
import transformers

from conftest import BUILD_DIR, SOURCE_DIR

transformers.logging.set_verbosity_error()
TRAIN = BUILD_DIR / "tallrec-train"


def make_model(folder):
    cfg = transformers.LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   tie_word_embeddings=False, rms_norm_eps=1e-6)
    torch.manual_seed(3)
    model = transformers.LlamaForCausalLM(cfg).eval()
    model.save_pretrained(folder / "st", safe_serialization=True)
    model.save_pretrained(folder / "bin", safe_serialization=False)
    model.save_pretrained(folder / "bin-sharded", safe_serialization=False, max_shard_size="20KB")
    return model


def logits(model_dir, tmp, adapter=None, expect_ok=True):
    ids = torch.tensor([[1, 5, 9, 33, 7, 2]])
    safetensors.torch.save_file({"input_ids": ids}, tmp / "batch.safetensors")
    cmd = [TRAIN, "logits", "--model", model_dir, "--batch", tmp / "batch.safetensors", "--out", tmp / "out.safetensors"]
    if adapter:
        cmd += ["--adapter", adapter]
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    if not expect_ok:
        return proc
    assert proc.returncode == 0, proc.stderr
    return safetensors.torch.load_file(tmp / "out.safetensors")["logits"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    w = tmp_path_factory.mktemp("bin")
    return w, make_model(w)


def test_bin_models_single_and_sharded_equal_safetensors(models, tmp_path):
    w, _ = models
    assert (w / "bin" / "pytorch_model.bin").exists() and (w / "bin-sharded" / "pytorch_model.bin.index.json").exists()
    assert len(list((w / "bin-sharded").glob("pytorch_model-*-of-*.bin"))) > 1
    want = logits(w / "st", tmp_path)
    assert torch.equal(logits(w / "bin", tmp_path), want)
    assert torch.equal(logits(w / "bin-sharded", tmp_path), want)


def test_peft_bin_adapter_with_old_config_fields_equals_peft(models, tmp_path):
    w, hf = models
    model = peft.get_peft_model(transformers.LlamaForCausalLM.from_pretrained(w / "st"),
                                peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.save_pretrained(tmp_path / "adapter", safe_serialization=False)
    assert (tmp_path / "adapter" / "adapter_model.bin").exists()
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    config.update(enable_lora=None, merge_weights=False, fan_in_fan_out=False)  # PEFT 0.3's fields
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(config))
    with torch.no_grad():
        want = model.eval()(input_ids=torch.tensor([[1, 5, 9, 33, 7, 2]])).logits
    got = logits(w / "bin", tmp_path, adapter=tmp_path / "adapter")
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)


def test_reproduction_failures_are_named(models, tmp_path):
    w, hf = models
    # A clone without `git lfs pull`: a 130-byte pointer where the weights should be.
    lfs = tmp_path / "lfs"
    shutil.copytree(w / "bin", lfs)
    (lfs / "pytorch_model.bin").write_text("version https://git-lfs.github.com/spec/v1\n"
                                           "oid sha256:" + "0" * 64 + "\nsize 13476839424\n")
    proc = logits(lfs, tmp_path, expect_ok=False)
    assert proc.returncode == 2 and "is a Git LFS pointer" in proc.stderr and "git lfs pull" in proc.stderr
    # PyTorch's pre-1.6 format.
    legacy = tmp_path / "legacy"
    shutil.copytree(w / "bin", legacy)
    torch.save(hf.state_dict(), legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    proc = logits(legacy, tmp_path, expect_ok=False)
    assert proc.returncode == 2 and "legacy (pre-1.6) pickle" in proc.stderr and "convert" in proc.stderr
    # An adapter saved empty (PEFT's 443-byte adapter_model.bin).
    empty = tmp_path / "empty-adapter"
    empty.mkdir()
    (empty / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16,
                                                            "target_modules": ["q_proj", "v_proj"]}))
    torch.save({}, empty / "adapter_model.bin")
    proc = logits(w / "bin", tmp_path, adapter=empty, expect_ok=False)
    assert proc.returncode == 2 and "holds no tensors" in proc.stderr
    # A .bin where a folder (or a llama2.c checkpoint) is expected: named, not misread.
    proc = subprocess.run([str(TRAIN), "generate", "--model", str(w / "bin" / "pytorch_model.bin")], capture_output=True, text=True)
    assert proc.returncode == 2 and "is a PyTorch torch.save (zip) file, not a llama2.c checkpoint" in proc.stderr
    proc = logits(w / "bin" / "pytorch_model.bin", tmp_path, expect_ok=False)
    assert proc.returncode == 2 and "is a file (PyTorch torch.save (zip))" in proc.stderr


def test_damaged_or_foreign_bin_files_are_refused_by_name(models, tmp_path):
    """What fuzz_torch_bin found, as a user would meet it (its findings are the files): a storage
    of a dtype no LLaMA weight has (UInt6: libtorch cannot convert it, and its exception escaped
    the reader), and pickles whose length fields claim more bytes than there are (libtorch
    allocates, and zero-fills, the claim before reading: gigabytes from a 1 kB file; now refused
    before it unpickles), and a tensor whose shape reaches past its (empty) storage, which was
    read out of bounds. Each is exit 2 naming the file, never a crash."""
    w, _ = models
    findings = pathlib.Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "torch_bin"
    for finding, message in [("unreadable-dtype", "has dtype UInt6, which tallrec does not read"),
                             ("huge-string-length", "pytorch_model.bin (data.pkl): damaged pickle: a length of"),
                             ("huge-length-zero-filled", "pytorch_model.bin (data.pkl): damaged pickle: a length of"),
                             ("huge-memo-index", "pytorch_model.bin (data.pkl): damaged pickle: memo index"),
                             ("tensor-past-its-storage", "reaches past the bytes of its storage")]:
        damaged = tmp_path / finding
        shutil.copytree(w / "bin", damaged)
        shutil.copy(findings / finding, damaged / "pytorch_model.bin")
        proc = logits(damaged, tmp_path, expect_ok=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def peak_rss_loading(model_dir, tmp):
    """Peak resident bytes of `tallrec-train logits` (load, one 6-token forward pass) on model_dir,
    measured by the kernel for that process alone (scripts/peak_rss.py says why in a process of
    its own)."""
    ids = torch.tensor([[1, 5, 9, 33, 7, 2]])
    safetensors.torch.save_file({"input_ids": ids}, tmp / "batch.safetensors")
    proc = subprocess.run([sys.executable, str(SOURCE_DIR / "scripts" / "peak_rss.py"), str(tmp / "rss.json"),
                           str(TRAIN), "--threads", "1", "logits", "--model", str(model_dir), "--batch",
                           str(tmp / "batch.safetensors"), "--out", str(tmp / "out.safetensors")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp / "rss.json").read_text())["peak_rss_bytes"]


def test_weights_are_held_once_while_loading(models, tmp_path):
    """The issue's "never two full copies of a shard": loading a 190 MB model (fp32, one file, the
    worst case of a shard) may add its weights to the process's peak memory, not twice them.
    Before, a .bin's tensors were copied out of the file's tensors (peak: file + copies), and a
    safetensors file's mapped pages stayed resident beside their copies."""
    w, _ = models
    cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_hidden_layers=4,
                                   num_attention_heads=8, num_key_value_heads=8, tie_word_embeddings=False)
    torch.manual_seed(0)
    big = transformers.LlamaForCausalLM(cfg)
    weights = sum(p.numel() * p.element_size() for p in big.parameters())
    big.save_pretrained(tmp_path / "st", safe_serialization=True, max_shard_size="1GB")
    big.save_pretrained(tmp_path / "bin", safe_serialization=False, max_shard_size="1GB")
    del big
    baseline = peak_rss_loading(w / "st", tmp_path)  # libtorch and a model of a few kB
    for form in ("st", "bin"):
        extra = peak_rss_loading(tmp_path / form, tmp_path) - baseline
        assert extra < 1.3 * weights, f"{form}: loading {weights / 2**20:.0f} MiB of weights added {extra / 2**20:.0f} MiB"
