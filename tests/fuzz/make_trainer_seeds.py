"""Writes the seed corpora of the trainer-file fuzz targets from real files: a tokenized slice of
TALLRec's Book-Crossing prompts (made by `tallrec data tokenize`), safetensors and torch.save
files made by the libraries themselves, a checkpoint as tallrec-train writes it, and a run spec.
Run from the repository root with the test virtualenv's Python after a build:
    /opt/tallrec-venv/bin/python tests/fuzz/make_trainer_seeds.py build
"""
import json
import pathlib
import struct
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import save as safetensors_bytes

root = pathlib.Path(__file__).resolve().parents[2]
build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
corpus = root / "tests" / "fuzz" / "corpus"
shared = root.parent / "shared"


def two_files(first: bytes, second: bytes) -> bytes:
    """The fuzz_files.h split_in_two layout."""
    return struct.pack("<I", len(first)) + first + second


def put(target: str, name: str, data: bytes) -> None:
    (corpus / target).mkdir(parents=True, exist_ok=True)
    (corpus / target / name).write_bytes(data)


torch.manual_seed(0)
adapter = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(8, 64),
           "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(64, 8)}
mixed = {"a": torch.randn(2, 3), "b": torch.ones(4, dtype=torch.bfloat16), "c": torch.arange(5),
         "d": torch.zeros(0, 3, dtype=torch.float16), "e": torch.tensor([True, False])}
put("safetensors_header", "adapter.safetensors", safetensors_bytes(adapter))
put("safetensors_header", "dtypes.safetensors", safetensors_bytes(mixed, metadata={"format": "pt"}))

with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for name, tensors in {"adapter": adapter, "dtypes": mixed}.items():
        torch.save(tensors, tmp / f"{name}.bin")
        put("torch_bin", f"{name}.bin", (tmp / f"{name}.bin").read_bytes())
    shared_storage = torch.randn(6)
    torch.save({"x": shared_storage[:3], "y": shared_storage[3:].view(1, 3)}, tmp / "views.bin")
    put("torch_bin", "views.bin", (tmp / "views.bin").read_bytes())

    records = json.loads((shared / "data" / "book-crossing" / "valid.json").read_text())[:3]
    (tmp / "records.json").write_text(json.dumps(records))
    subprocess.run([str(build / "tallrec"), "data", "tokenize", "--records", str(tmp / "records.json"),
                    "--tokenizer", str(shared / "models" / "llama-tokenizer" / "tokenizer.model"),
                    "--out", str(tmp / "tokens"), "--cutoff-len", "512"], check=True, capture_output=True)
    put("token_file", "three-records", two_files((tmp / "tokens" / "meta.json").read_bytes(),
                                                 (tmp / "tokens" / "tokens.bin").read_bytes()))

state = {"global_step": 4, "epoch": 1, "micro_batch": 2, "best_auc": 0.61, "best_step": 2,
         "evals_without_improvement": 1, "history": [{"step": 2, "val_auc": 0.61, "val_loss": 0.7}],
         "scheduler_steps": 4, "loss_scale": 1.0, "clean_steps": 0, "data_order": "hf", "data_seed": 42}
optimizer = {"exp_avg.0": torch.randn(8, 64), "exp_avg_sq.0": torch.rand(8, 64),
             "exp_avg.1": torch.randn(64, 8), "exp_avg_sq.1": torch.rand(64, 8),
             "rng_state.0": torch.get_rng_state()}
put("checkpoint_state", "step-4", two_files(json.dumps(state).encode(), safetensors_bytes(optimizer)))

config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32000, "hidden_size": 64,
          "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 4,
          "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
          "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "float32"}
put("model_config", "tiny.json", json.dumps(config).encode())

spec = {"base_model": "models/tiny", "train_tokens": "data/train", "valid_tokens": "data/valid",
        "test_tokens": {"book": "data/test"}, "seed": 1, "lr": 3e-4, "batch_size": 128, "micro_batch_size": 32,
        "epochs": 200, "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
        "early_stopping_patience": 10, "device": "cpu", "dtype": "float32", "recipe": "finetune_rec"}
put("run_spec", "spec.json", json.dumps(spec).encode())
print("seeds written under", corpus)
