"""Our LLaMA forward pass against transformers.LlamaForCausalLM itself: same safetensors, same
logits (fp32, CPU), for GQA and MHA, tied and untied embeddings, single-file and sharded
checkpoints, left-padded batches; and LoRA adapters against HF PEFT in the direction
"we load theirs" (the other direction is in test_training_vs_hf.py, with an adapter we trained)."""
import subprocess

import peft
import pytest
import safetensors.torch
import torch
import transformers

from conftest import BUILD_DIR, SHARED_DIR

transformers.logging.set_verbosity_error()


def make_model(folder, kv_heads, tie, shard=False):
    cfg = transformers.LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=64,
                                   tie_word_embeddings=tie, rms_norm_eps=1e-6, rope_theta=10000.0)
    torch.manual_seed(kv_heads * 10 + tie)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)  # not all ones, so the norms are really tested
    model.save_pretrained(folder, safe_serialization=True, **({"max_shard_size": "20KB"} if shard else {}))
    return model


def batch():
    torch.manual_seed(5)
    ids = torch.randint(3, 96, (3, 10))
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, :4] = 0
    mask[2, :7] = 0
    ids[mask == 0] = 0
    return ids, mask


def our_logits(model_dir, ids, mask, tmp, positions="mask", adapter=None):
    safetensors.torch.save_file({"input_ids": ids, "attention_mask": mask}, tmp / "batch.safetensors")
    cmd = [BUILD_DIR / "tallrec-train", "logits", "--model", model_dir, "--batch", tmp / "batch.safetensors",
           "--out", tmp / "out.safetensors", "--positions", positions]
    if adapter:
        cmd += ["--adapter", adapter]
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return safetensors.torch.load_file(tmp / "out.safetensors")["logits"]


def hf_positions(mask):
    pos = mask.cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


@pytest.mark.parametrize("kv_heads,tie,shard", [(2, False, False), (4, True, False), (2, True, True), (4, False, True)])
def test_logits_equal_transformers(tmp_path, kv_heads, tie, shard):
    hf = make_model(tmp_path / "m", kv_heads, tie, shard)
    if shard:
        assert (tmp_path / "m" / "model.safetensors.index.json").exists()
    ids, mask = batch()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, position_ids=hf_positions(mask)).logits
    got = our_logits(tmp_path / "m", ids, mask, tmp_path)
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], atol=2e-5, rtol=1e-5)
    # No padding, default positions 0..T-1 (what HF's Trainer uses in training).
    full = torch.ones_like(mask)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=full).logits
    torch.testing.assert_close(our_logits(tmp_path / "m", ids, full, tmp_path, positions="arange"), want,
                               atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], ["k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]])
def test_we_load_peft_adapters(tmp_path, targets):
    hf = make_model(tmp_path / "m", 2, False)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0, init_lora_weights=False,
                          task_type="CAUSAL_LM")
    model = peft.get_peft_model(hf, cfg).eval()
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    ids, mask = batch()
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, position_ids=hf_positions(mask)).logits
    got = our_logits(tmp_path / "m", ids, mask, tmp_path, adapter=tmp_path / "adapter")
    real = mask.bool()
    torch.testing.assert_close(got[real], want[real], atol=2e-5, rtol=1e-5)


def test_bad_checkpoints_are_named(tmp_path):
    make_model(tmp_path / "m", 2, False)
    ids, mask = batch()
    safetensors.torch.save_file({"input_ids": ids}, tmp_path / "b.safetensors")

    def run():
        return subprocess.run([str(BUILD_DIR / "tallrec-train"), "logits", "--model", str(tmp_path / "m"), "--batch",
                               str(tmp_path / "b.safetensors"), "--out", str(tmp_path / "o.safetensors")],
                              capture_output=True, text=True)

    weights = tmp_path / "m" / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-100])
    proc = run()
    assert proc.returncode == 2 and "model.safetensors: truncated: tensor" in proc.stderr
    weights.write_bytes(b"\xff" * 16)
    proc = run()
    assert proc.returncode == 2 and "model.safetensors: bad header" in proc.stderr
    weights.write_bytes(good)
    tensors = safetensors.torch.load_file(weights)
    del tensors["model.layers.1.mlp.up_proj.weight"]
    safetensors.torch.save_file(tensors, weights)
    proc = run()
    assert proc.returncode == 2 and 'missing tensor "model.layers.1.mlp.up_proj.weight"' in proc.stderr
    tensors = safetensors.torch.load_file(weights)
    tensors["model.layers.1.mlp.up_proj.weight"] = torch.zeros(48, 31)
    safetensors.torch.save_file(tensors, weights)
    proc = run()
    assert proc.returncode == 2 and "has shape [48, 31], expected [48, 32]" in proc.stderr


def test_llama2c_greedy_ids_equal_run_c():
    model = SHARED_DIR / "models" / "llama2c-gqa-260k"
    proc = subprocess.run([str(BUILD_DIR / "tallrec-train"), "generate", "--model", str(model / "model.bin"),
                           "--steps", "200"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == (model / "expected_greedy_ids.txt").read_text().split()
