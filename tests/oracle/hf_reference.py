"""The independent reference for training fidelity: transformers' LlamaForCausalLM with eager
attention (the only kind TALLRec-era transformers had) + PEFT LoRA, batches built here from the
raw token files (left padding to a multiple of 8, labels -100 on padding and, without
train_on_inputs, on the prompt), and the tiny models and starting adapters both sides train."""
import json

import peft
import torch
import transformers

from conftest import read_tokens

transformers.logging.set_verbosity_error()

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Configs no earlier test used: GQA with head dim 16, rope_theta 5e5, eps 1e-5, untied; and MHA
# with tied embeddings.
CONFIGS = {
    "gqa": dict(hidden_size=96, intermediate_size=160, num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False),
    "mha": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
}


def write_tiny_llama(folder, name, seed=0):
    cfg = transformers.LlamaConfig(vocab_size=32000, max_position_embeddings=1024, **CONFIGS[name])
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


# The families of issue 20, small and random: Llama-3's rope scaling with an explicit head_dim
# (q is wider than the hidden size); Llama with attention and MLP biases and linear rope scaling,
# tied; Qwen2 (q/k/v biases), tied; Mistral with a sliding window longer than any sequence here.
FAMILIES = {
    "llama3": (transformers.LlamaConfig, transformers.LlamaForCausalLM, dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=24, rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64})),
    "llama-biases": (transformers.LlamaConfig, transformers.LlamaForCausalLM, dict(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        attention_bias=True, mlp_bias=True, rope_scaling={"rope_type": "linear", "factor": 2.0},
        tie_word_embeddings=True)),
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False)),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM, dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        sliding_window=4096, rope_theta=10000.0, tie_word_embeddings=False)),
}


def write_family_model(folder, name, seed=0):
    config_class, model_class, fields = FAMILIES[name]
    torch.manual_seed(seed)
    model = model_class(config_class(vocab_size=32000, max_position_embeddings=1024, **fields))
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.uniform_(0.5, 1.5)
            elif pname.endswith(".bias"):
                p.uniform_(-0.1, 0.1)  # HF starts them at 0: random, so they are really tested
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def load_hf(folder, dtype=torch.float32):
    return transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=dtype, attn_implementation="eager")


def write_start_adapter(model_dir, folder, r, alpha, targets, seed=1):
    """A PEFT adapter with non-zero A and B on `targets`: a starting point whose gradient
    reaches every LoRA tensor (B = 0 would zero A's)."""
    model = peft.get_peft_model(load_hf(model_dir), peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                                    target_modules=targets, task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    model.save_pretrained(folder)
    return folder


def peft_model(model_dir, adapter_dir, dtype=torch.float32):
    model = peft.PeftModel.from_pretrained(load_hf(model_dir, dtype), adapter_dir, is_trainable=True)
    model.train()  # dropout is 0 in these adapters; train() only matters for it
    return model


def lora_tensors(model):
    """PEFT's key names as saved (base_model.model....lora_A.weight) -> parameter."""
    return {name.replace(".default", ""): p for name, p in model.named_parameters() if "lora_" in name}


class Records:
    """A tokenized folder read independently of the C++ reader (conftest.read_tokens)."""

    def __init__(self, folder):
        self.meta, t = read_tokens(folder)
        self.ids = t["train_ids"]
        self.prompt_len = t["prompt_len"].tolist()

    def batch(self, rows):
        """DataCollatorForSeq2Seq(padding_side="left", pad_to_multiple_of=8) over these records."""
        width = -(-max(len(self.ids[r]) for r in rows) // 8) * 8
        ids, mask, labels = [], [], []
        for r in rows:
            seq = self.ids[r]
            lab = list(seq) if self.meta["train_on_inputs"] else [-100] * self.prompt_len[r] + list(seq[self.prompt_len[r]:])
            pad = width - len(seq)
            ids.append([self.meta["special_ids"]["pad"]] * pad + seq)
            mask.append([0] * pad + [1] * len(seq))
            labels.append([-100] * pad + lab)
        return torch.tensor(ids), torch.tensor(mask), torch.tensor(labels)


def write_spec(path, **fields):
    path.write_text(json.dumps(fields))
    return path
